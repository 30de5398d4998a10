"""ONNX export: contract (names, dynamic batch, opset), parity with PyTorch, metadata round trip,
and the shipped engines/emotion_au.onnx + .pt pair."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from driver_monitor.errors import ModelError  # noqa: E402
from driver_monitor.model import EmotionAUNet, NetConfig, load_checkpoint  # noqa: E402
from driver_monitor.model.checkpoint import default_meta  # noqa: E402
from driver_monitor.engine.contract import META_KEYS, model_metadata, read_metadata  # noqa: E402
from driver_monitor.model.export import check_parity, export_onnx  # noqa: E402
from driver_monitor.preprocess import AUS, EMOTIONS, to_input  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = NetConfig(stem=(8, 16), widths=(16, 32), extra_blocks=1, se_ratio=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = EmotionAUNet(TINY).eval()
    # non-trivial batch-norm statistics, so folding them is exercised
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    meta = default_meta(model_version="9.9.9", training_data="synthetic",
                        metrics={"ferplus_test_accuracy": 0.5})
    props = model_metadata(meta, torch_checkpoint="tiny.pt")
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", props)
    return model, path, props


def test_contract_names_shapes_opset(exported):
    _, path, _ = exported
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["face"]
    assert [o.name for o in proto.graph.output] == ["emotion_probs", "au_intensity"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [1, 48, 48]
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == 17


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_dynamic_batch_and_parity(exported, batch):
    model, path, _ = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    crops = np.random.default_rng(batch).integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    x = to_input(crops)
    p, a = sess.run(["emotion_probs", "au_intensity"], {"face": x})
    assert p.shape == (batch, len(EMOTIONS)) and a.shape == (batch, len(AUS))
    with torch.no_grad():
        rp, ra = model(torch.from_numpy(x))
    np.testing.assert_allclose(p, rp.numpy(), atol=1e-4)
    np.testing.assert_allclose(a, ra.numpy(), atol=1e-4)


def test_check_parity_passes_and_catches_a_mismatch(exported):
    model, path, _ = exported
    assert check_parity(model, path) < 1e-4
    other = EmotionAUNet(TINY).eval()
    with pytest.raises(ModelError, match="differs from PyTorch"):
        check_parity(other, path)


def test_metadata_round_trip(exported):
    _, path, props = exported
    got = read_metadata(path)
    assert {k: got[k] for k in META_KEYS} == props
    assert json.loads(got["dm.emotion_names"]) == list(EMOTIONS)
    assert json.loads(got["dm.au_names"]) == list(AUS)
    assert (int(got["dm.input_size"]), float(got["dm.input_mean"]), float(got["dm.input_std"])) == (48, 0.5, 0.5)
    assert json.loads(got["dm.metrics"]) == {"ferplus_test_accuracy": 0.5}
    assert got["dm.model_version"] == "9.9.9" and got["dm.torch_checkpoint"] == "tiny.pt"


def test_missing_metadata_is_a_model_error(tmp_path, exported):
    _, path, _ = exported
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="lacks metadata"):
        read_metadata(bare)
    with pytest.raises(ModelError, match="not found"):
        read_metadata(tmp_path / "nope.onnx")


def test_shipped_model_matches_its_checkpoint():
    onnx_path = ROOT / "engines" / "emotion_au.onnx"
    props = read_metadata(onnx_path)
    assert onnx_path.stat().st_size < 10_000_000
    pt = onnx_path.parent / props["dm.torch_checkpoint"]
    assert pt.stat().st_size < 10_000_000
    model, meta = load_checkpoint(pt, map_location="cpu")
    assert meta["emotion_names"] == json.loads(props["dm.emotion_names"]) == list(EMOTIONS)
    assert meta["au_names"] == json.loads(props["dm.au_names"]) == list(AUS)
    assert check_parity(model, onnx_path, batches=(1, 4)) < 1e-4
    metrics = json.loads(props["dm.metrics"])
    assert "ferplus_test_accuracy" in metrics


def test_flip_tta_exports_with_parity(tmp_path):
    import dataclasses

    torch.manual_seed(4)
    model = EmotionAUNet(dataclasses.replace(TINY, flip_tta=True)).eval()
    props = model_metadata(default_meta(), torch_checkpoint="tta.pt")
    path = export_onnx(model, tmp_path / "tta.onnx", props)
    assert check_parity(model, path, batches=(1, 5)) < 1e-4
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_input(np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8))
    p, _ = sess.run(["emotion_probs", "au_intensity"], {"face": x})
    pm, _ = sess.run(["emotion_probs", "au_intensity"], {"face": np.ascontiguousarray(x[..., ::-1])})
    np.testing.assert_allclose(p, pm, atol=1e-5)
