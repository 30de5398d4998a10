"""bench --side-by-side: the bare mesh loop, analyze's runs and their ratios, the stride's cost."""
from __future__ import annotations

import json

from driver_monitor.config import load_config
from driver_monitor.bench.side_by_side import RUNS, side_by_side, stride_cost
from tests.conftest import need_data


def test_stride_cost_counts_agreement_and_differences() -> None:
    every = [{"emotion": "neutral", "p_neutral": "0.9", "au12": "0.1", "aus_hidden": "au12 au25"},
             {"emotion": "happiness", "p_neutral": "0.2", "au12": "0.8", "aus_hidden": ""},
             {"emotion": "", "p_neutral": "", "au12": "", "aus_hidden": ""}]
    held = [{"emotion": "neutral", "p_neutral": "0.9", "au12": "0.1", "aus_hidden": "au12"},
            {"emotion": "neutral", "p_neutral": "0.6", "au12": "0.5", "aus_hidden": ""},
            {"emotion": "", "p_neutral": "", "au12": "", "aus_hidden": ""}]
    c = stride_cost(every, held)
    assert c["frames"] == 2 and c["emotion_agreement"] == 0.5
    assert abs(c["p_max_abs_diff"] - 0.4) < 1e-9 and abs(c["au_mean_abs_diff"] - 0.15) < 1e-9


def test_side_by_side_on_a_short_clip(tmp_path) -> None:
    video = need_data("videos/single_face.mp4")
    report = side_by_side(load_config(None), [video], repeats=1, out_dir=tmp_path, log=lambda m: None)
    clip = report["clips"][0]
    assert clip["frames"] == 72
    runs = {r["run"]: r for r in clip["runs"]}
    assert set(runs) == {"mesh", *(name for name, _, _ in RUNS)}
    assert runs["mesh"]["ratio_to_mesh_median"] == 1.0
    assert all(r["fps_median"] > 0 for r in runs.values())
    assert "engine" in runs["analyze"]["stages_ms"] and "engine" not in runs["analyze, no engine"]["stages_ms"]
    assert clip["engine_rate"]["frames"] > 60
    assert json.loads((tmp_path / "throughput.json").read_text())["clips"][0]["video"] == "single_face.mp4"
    assert all(0.3 < r["cores_median"] < 8 for r in runs.values())  # CPU time over the loop's wall time
    assert "x bare mesh" in (tmp_path / "throughput.md").read_text()
    assert "cores busy" in (tmp_path / "throughput.md").read_text()
