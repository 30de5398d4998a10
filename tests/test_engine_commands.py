"""`driver-monitor engines build | list | clean` and `bench` through the real CLI, on the tiny model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from driver_monitor.bench import engines, pipeline
from driver_monitor.cli import main
from driver_monitor.engine.cache import PlanKey, write_plan
from driver_monitor.engine.precision import copy_path

from .test_engine_model import export_tiny, random_crops


@pytest.fixture
def setup(tmp_path):
    import cv2

    model = export_tiny(tmp_path / "m.onnx")
    calib = tmp_path / "calib"
    calib.mkdir()
    for i, c in enumerate(random_crops(24, seed=3)):
        cv2.imwrite(str(calib / f"{i}.png"), c)
    cache = tmp_path / "cache"
    sets = ["--set", f"engine.model={model}", "--set", f"engine.cache_dir={cache}"]
    return {"model": model, "calib": calib, "cache": cache, "sets": sets, "tmp": tmp_path}


def test_build_list_clean(setup, capsys):
    s = setup
    assert main([*s["sets"], "engines", "build", "--calib-dir", str(s["calib"]), "--plans", "no"]) == 0
    out = capsys.readouterr().out
    for p in ("fp16", "int8"):
        assert copy_path(s["model"], p, s["cache"]).is_file()
        assert f"{p}: " in out
    cpu_copy = copy_path(s["model"], "int8", s["cache"], "cpu")  # int8 also makes the CPU's copy
    assert cpu_copy.is_file() and f"int8 (CPU): {cpu_copy}" in out

    # a plan for an ONNX that no longer exists, and a leftover temp file: stale
    stale = write_plan(s["cache"], "m", PlanKey("0" * 64, "11.0.0", "GPU", "9.0", "fp32", (1, 48, 48)), b"PLAN")
    (s["cache"] / ".m.plan.x.tmp").write_bytes(b"x")
    assert main([*s["sets"], "engines", "list"]) == 0
    out = capsys.readouterr().out
    assert "fp16 copy:" in out and "(up to date)" in out
    assert f"int8 (CPU) copy: {cpu_copy} (up to date)" in out
    assert stale.name in out and "TensorRT 11.0.0" in out

    assert main([*s["sets"], "engines", "clean", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and stale.exists()
    assert main([*s["sets"], "engines", "clean"]) == 0
    out = capsys.readouterr().out
    assert not stale.exists() and not (s["cache"] / ".m.plan.x.tmp").exists()
    assert copy_path(s["model"], "fp16", s["cache"]).is_file()  # current copies are kept

    # the fp32 model changes: its copies become stale, list says so, clean removes them
    export_tiny(s["model"], seed=9)
    assert main([*s["sets"], "engines", "list"]) == 0
    assert "STALE" in capsys.readouterr().out
    assert main([*s["sets"], "engines", "clean"]) == 0
    assert not copy_path(s["model"], "fp16", s["cache"]).exists()
    assert not cpu_copy.exists()


@pytest.mark.parametrize("argv,message", [
    (["engines", "build", "--precision", "int8"], "needs --calib-dir"),
    (["engines", "build", "--plans", "yes", "--precision", "fp32"], "TensorRT cannot run here"),
    (["bench", "--video", "/nonexistent.mp4"], "does not exist"),
])
def test_user_errors_are_one_line_messages(setup, capsys, argv, message):
    from driver_monitor.engine.tensorrt_backend import probe

    if "--plans" in argv and probe("cuda") is None:
        pytest.skip("TensorRT is available here")
    rc = main([*setup["sets"], *argv])
    assert rc != 0
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_bench_checks_out_before_measuring_and_says_when_nothing_ran(setup, capsys):
    s = setup
    not_a_folder = s["tmp"] / "file"
    not_a_folder.write_text("x")
    assert main([*s["sets"], "bench", "--no-engines", "--out", str(not_a_folder)]) != 0
    err = capsys.readouterr().err
    assert "bench --out" in err and "is not a writable folder" in err
    out_dir = s["tmp"] / "empty"
    assert main([*s["sets"], "bench", "--no-engines", "--out", str(out_dir)]) == 8
    err = capsys.readouterr().err
    assert "nothing could be measured here" in err and str(out_dir / "bench.md") in err
    assert (out_dir / "bench.json").is_file()


def test_bench_engines_writes_json_markdown_and_chart(setup, capsys):
    s = setup
    out_dir = s["tmp"] / "bench"
    assert main([*s["sets"], "bench", "--backends", "onnxruntime", "torch", "--precisions", "fp32",
                 "--iters", "5", "--batches", "1", "2", "--out", str(out_dir)]) == 0
    report = json.loads((out_dir / "bench.json").read_text())
    rows = {(r["backend"], r["device"], r["precision"]): r for r in report["engines"]}
    ort = rows[("onnxruntime", "cpu", "fp32")]
    assert ort["status"] == "ok" and [r["batch"] for r in ort["results"]] == [1, 2]
    assert all(r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"] for r in ort["results"])
    # torch needs the checkpoint beside the ONNX: the tiny model has none, so it is listed as skipped
    assert rows[("torch", "cpu", "fp32")]["status"] == "skipped"
    assert "torch checkpoint" in rows[("torch", "cpu", "fp32")]["reason"]
    md = (out_dir / "bench.md").read_text()
    assert "| onnxruntime | CPU | fp32 |" in md and "Not measured here" in md
    assert (out_dir / "bench.png").stat().st_size > 1000
    assert report["machine"]["usable_cores"] >= 1 and "onnxruntime" in report["machine"]["libraries"]


def test_speedups_relative_to_torch_cpu():
    rows = [
        {"backend": "torch", "device": "cpu", "precision": "fp32", "status": "ok",
         "results": [{"batch": 1, "p50_ms": 2.0}]},
        {"backend": "onnxruntime", "device": "cpu", "precision": "fp32", "status": "ok",
         "results": [{"batch": 1, "p50_ms": 0.5}]},
        {"backend": "tensorrt", "device": "cuda", "precision": "fp16", "status": "skipped", "reason": "x"},
    ]
    assert engines.speedups(rows, 1) == {"torch CPU fp32": 1.0, "onnxruntime CPU fp32": 4.0}
    assert engines.speedups(rows[1:], 1) == {}


@pytest.mark.parametrize("backends,precisions,expected", [
    (["torch"], ["fp32", "fp16"], [("torch", "cuda", "fp32"), ("torch", "cpu", "fp32")]),
    (["tensorrt"], ["int8"], [("tensorrt", "cuda", "int8")]),
    (["onnxruntime"], ["fp16"], [("onnxruntime", "cuda", "fp16"), ("onnxruntime", "cpu", "fp16")]),
])
def test_engine_candidates(backends, precisions, expected):
    assert engines.engine_candidates(backends, precisions) == expected


def test_stats_percentiles():
    s = engines._stats([0.001] * 95 + [0.010] * 5, batch=8)
    assert s["p50_ms"] == pytest.approx(1.0) and s["p95_ms"] == pytest.approx(1.0, abs=0.5)
    assert s["throughput_faces_per_s"] == pytest.approx(8000, rel=1e-3)
    assert np.isclose(s["mean_ms"], 1.45)


@pytest.mark.data
def test_bench_end_to_end_reads_the_pipeline_stage_timings(setup):
    from tests.conftest import need_data

    from driver_monitor.config import load_config

    video = need_data("videos/single_face.mp4")
    cfg = load_config(None, [f"engine.model={setup['model']}", f"engine.cache_dir={setup['cache']}",
                             "engine.backend=onnxruntime", "engine.rate_hz=0"])  # the engine on every frame
    runs = pipeline.bench_pipelines(cfg, video, backends=["onnxruntime"], max_frames=15, log=lambda m: None)
    assert [r["label"] for r in runs] == ["no engine", "onnxruntime CPU fp32"]
    for r in runs:
        assert r["frames"] == 15 and r["fps"] > 0 and r["resolution"] == "640x360"
        assert {"decode", "mesh", "state"} <= set(r["stages_ms"])
    assert "engine" not in runs[0]["stages_ms"]
    assert runs[1]["stages_ms"]["engine"]["frames"] == runs[1]["frames_with_face"] > 0


def test_time_engines_interleaves_engines_in_rounds():
    from driver_monitor.preprocess import InputSpec

    order: list[str] = []

    class Fake:
        spec = InputSpec()

        def __init__(self, name):
            self.name = name

        def infer(self, crops):
            order.append(self.name)

    stats = engines.time_engines([Fake("a"), Fake("b")], 2, iters=20, warmup=1, rounds=4)
    timed = order[2:]  # after one warm-up call each
    assert timed == (["a"] * 5 + ["b"] * 5) * 4
    assert [s["iters"] for s in stats] == [20, 20] and all(s["batch"] == 2 for s in stats)


@pytest.mark.data
def test_bench_end_to_end_to_the_end_of_the_file():
    from tests.conftest import need_data

    from driver_monitor.config import load_config

    video = need_data("videos/single_face.mp4")
    r = pipeline.bench_pipeline(load_config(None, []), video, engine=None, log=lambda m: None)
    assert r["frames"] == 72 and r["resolution"] == "640x360" and r["fps"] > 0
