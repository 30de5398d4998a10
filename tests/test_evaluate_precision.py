"""``tools/evaluate.py --precision-copies``: the fp16 / int8 ONNX copies scored against fp32 on a
FERPlus-layout test split, on the tiny model of test_engine_model (labels from torch, not ONNX)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .test_engine_model import export_tiny, random_crops, tiny_module


@pytest.fixture(scope="module")
def evaluate_tool():
    from tools import evaluate

    return evaluate


def _fake_ferplus(root: Path, crops: np.ndarray, labels: np.ndarray) -> Path:
    """A FERPlus-layout test split: PNGs + label.csv with 10 vote counts (8 for the label, 2 for another
    emotion), so both FERPlus protocols keep every image with that label."""
    import cv2

    split = root / "FER2013Test"
    split.mkdir(parents=True)
    rows = []
    for i, (c, lab) in enumerate(zip(crops, labels)):
        cv2.imwrite(str(split / f"t{i:04d}.png"), c)
        votes = [0] * 10
        votes[int(lab)] = 8
        votes[(int(lab) + 3) % 8] = 2
        rows.append(f't{i:04d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (split / "label.csv").write_text("\n".join(rows) + "\n")
    return root


def test_precision_copies_against_independent_torch_predictions(tmp_path, evaluate_tool, capsys):
    from driver_monitor.engine.precision import build_copy
    from driver_monitor.engine.torch_backend import TorchEngine
    from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec

    crops = random_crops(50, seed=21)
    with TorchEngine(tiny_module(), InputSpec(), EMOTIONS, AUS) as ref:
        pred = ref.infer(crops).emotion_probs.argmax(1)
    labels = np.where(np.arange(50) < 30, pred, (pred + 1) % 8)  # torch is right on exactly 30 of 50
    root = _fake_ferplus(tmp_path / "ferplus", crops, labels)
    model = export_tiny(tmp_path / "m.onnx")
    cache = tmp_path / "cache"
    build_copy(model, "fp16", cache)  # no int8 copy: it is listed as skipped with the command that makes it
    out = tmp_path / "eval"
    assert evaluate_tool.main(["--onnx", str(model), "--ferplus", str(root), "--precision-copies", "fp16", "int8",
                               "--cache-dir", str(cache), "--latency-runs", "0", "--out", str(out)]) == 0
    res = json.loads((out / "metrics.json").read_text())
    copies = res["precision_copies"]
    assert set(copies) == {"ferplus_test", "ferplus_test_authors_majority"}
    for key, part in copies.items():
        rows = {r["precision"]: r for r in part["rows"]}
        assert [r["precision"] for r in part["rows"]] == ["fp32", "fp16", "int8"], key
        assert rows["fp32"]["accuracy_pct"] == 60.0 and rows["fp32"]["faces"] == 50
        assert rows["fp32"]["delta_vs_fp32_points"] == 0.0 and rows["fp32"]["agreement_with_fp32_pct"] == 100.0
        assert 0 < rows["fp32"]["macro_f1"] <= 1
        assert rows["fp16"]["status"] == "ok" and abs(rows["fp16"]["delta_vs_fp32_points"]) <= 4.0
        assert rows["fp16"]["max_abs_diff_probs"] < 1e-2 and rows["fp16"]["model"].endswith("m.fp16.onnx")
        assert rows["int8"]["status"] == "skipped" and "engines build --precision int8" in rows["int8"]["reason"]
    # the headline figures (what export stores in the model) are the fp32 model's, as without the option
    assert res["summary"]["ferplus_test_accuracy"] == pytest.approx(0.6)
    assert not any("fp16" in k or "int8" in k for k in res["summary"])
    md = (out / "report.md").read_text()
    assert "## Precision copies on FERPlus test" in md and "| fp32 | 60.00 | +0.00 |" in md
    assert "| int8 | skipped: " in md
    assert "precision copies: ferplus_test: fp16: accuracy" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [["--precision-copies", "fp16"], ["--precision-copies", "int8", "--ferplus", "x"]])
def test_precision_copies_need_an_onnx_model_and_ferplus(tmp_path, evaluate_tool, capsys, extra):
    model = export_tiny(tmp_path / "m.onnx")
    args = ["--onnx", str(model)] if "--ferplus" not in extra else ["--checkpoint", str(tmp_path / "m.pt")]
    rc = evaluate_tool.main([*args, *extra, "--latency-runs", "0", "--out", str(tmp_path / "eval")])
    err = capsys.readouterr().err
    assert rc != 0 and "--precision-copies" in err and err.startswith("error: ")
