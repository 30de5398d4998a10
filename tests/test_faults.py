"""A new user's first hour and faults that must not lose results: each case gives one clear line,
a sensible exit code and a results folder that is complete or says it is not."""
from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from driver_monitor import recording
from driver_monitor.cli import build_parser, main
from driver_monitor.config import load_config
from driver_monitor.errors import ConfigError, OutputError
from tests.pipelines import FakeDetector, make_pipeline
from driver_monitor.recording import ResultWriter
from driver_monitor.types import DriverState, Frame, FrameResult

from .conftest import PROJECT_ROOT, analyze_running, need_data

NO_ENGINE = ["--set", "engine.enabled=false"]


def last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


def run_cli(args, capsys):
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---------------------------------------------------------------- results folders

def test_existing_results_are_not_overwritten_without_asking(tmp_path: Path, capsys):
    video = str(need_data("videos/single_face.mp4"))
    out = tmp_path / "r"
    assert run_cli(["analyze", video, "--out", str(out), "--no-progress", *NO_ENGINE], capsys)[0] == 0
    before = (out / "frames.csv").read_bytes()
    for extra in ([], ["--max-frames", "5"]):
        rc, _, err = run_cli(["analyze", video, "--out", str(out), "--no-progress", *NO_ENGINE, *extra], capsys)
        assert rc == OutputError.exit_code and "already holds results" in last_line(err) and "--overwrite" in err
        assert (out / "frames.csv").read_bytes() == before
    rc, _, _ = run_cli(["analyze", video, "--out", str(out), "--no-progress", *NO_ENGINE, "--max-frames", "5",
                        "--overwrite"], capsys)
    assert rc == 0 and len(list(csv.DictReader(open(out / "frames.csv")))) == 5


@pytest.mark.parametrize("args, needle", [
    (["--out", ""], "--out: is empty"),
    (["--out", "x", "--max-frames", "0"], "--max-frames: must be 1 or more"),
    (["--out", "x", "--max-frames", "-5"], "--max-frames: must be 1 or more"),
    (["--out", "x", "--fps", "0"], "--fps: must be between 1 and 1000"),
])
def test_bad_options_are_refused(args, needle, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["analyze", "drive.mp4", *args])
    assert ex.value.code == 2 and needle in capsys.readouterr().err


class _FullDisk:
    """A text file that takes ``room`` characters and then fails like a full disk."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def write(self, text: str) -> int:
        if len(text) > self._room:
            self._fh.write(text[: self._room])  # a partial write, as a full disk leaves it
            self._fh.flush()
            self._room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room -= len(text)
        return self._fh.write(text)

    def __getattr__(self, name):
        return getattr(self._fh, name)


def test_a_full_disk_keeps_whole_rows_and_marks_the_folder(tmp_path: Path, monkeypatch, capsys):
    real_open = open

    def fake_open(path, mode="r", *a, **kw):
        fh = real_open(path, mode, *a, **kw)
        return _FullDisk(fh, 6000) if str(path).endswith("frames.csv") and "w" in mode else fh

    monkeypatch.setattr(recording, "open", fake_open, raising=False)
    out = tmp_path / "r"
    rc, _, err = run_cli(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress",
                          *NO_ENGINE], capsys)
    line = last_line(err)
    assert rc == OutputError.exit_code and line.startswith("error: cannot write to") and "No space left" in line
    assert "Traceback" not in err
    rows = list(csv.reader(open(out / "frames.csv")))
    assert len(rows) > 2 and len({len(r) for r in rows}) == 1  # the header and whole rows only
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and "No space left" in summary["reason"]
    assert summary["frames"] == len(rows) - 1


def test_a_folder_that_cannot_take_new_files_is_refused_before_anything_is_touched(tmp_path: Path, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()
    (out / "frames.csv").write_text("old results\n")

    def no_new_files(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(recording.os, "replace", no_new_files)
    with pytest.raises(OutputError, match="cannot write summary.json.*Permission denied"):
        ResultWriter(out, load_config(None, ["engine.enabled=false"]))
    assert (out / "frames.csv").read_text() == "old results\n"  # not truncated


def test_summary_says_incomplete_while_running(tmp_path: Path):
    w = ResultWriter(tmp_path, load_config(None, []))
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] is False
    w.write(FrameResult(frame=Frame(np.zeros((4, 4), np.uint8), 0, 0.0), camera_ok=True, state=DriverState(t_s=0.0)))
    w.close({"complete": True})
    assert json.loads((tmp_path / "summary.json").read_text())["complete"] is True


# ---------------------------------------------------------------- signals

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_keep_the_results(tmp_path: Path, sig):
    out = tmp_path / "r"
    proc = analyze_running(out)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    name = signal.Signals(sig).name
    assert proc.returncode == 128 + sig and f"stopped by {name}" in last_line(err), err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["reason"] == f"terminated ({name})"
    rows = list(csv.DictReader(open(out / "frames.csv")))
    assert 0 < summary["frames"] == len(rows) < 1683
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert any(e.get("details", {}).get("ended_by") == "end_of_drive" for e in events)  # open events closed


# ---------------------------------------------------------------- sources

def test_an_implausible_frame_rate_is_said_and_can_be_set(tmp_path: Path, capsys):
    import cv2

    path = tmp_path / "fast.avi"
    src = cv2.VideoCapture(str(need_data("videos/single_face.mp4")))
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (640, 360))
    for _ in range(20):
        ok, img = src.read()
        vw.write(img)
    vw.release()
    src.release()
    rc, _, err = run_cli(["analyze", str(path), "--out", str(tmp_path / "a"), "--no-progress", *NO_ENGINE], capsys)
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert rc == 0 and "outside 1-240" in err and "--fps" in err
    assert s["source_fps"] == 30.0 and s["fps_source"].startswith("fallback (the file gives 1000 fps")
    rc, _, err = run_cli(["analyze", str(path), "--out", str(tmp_path / "b"), "--no-progress", *NO_ENGINE,
                          "--fps", "12"], capsys)
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert rc == 0 and (s["source_fps"], s["fps_source"]) == (12.0, "set (capture.fps / --fps)")
    assert s["duration_s"] == pytest.approx(19 / 12, abs=1e-3)


def test_lost_ticks_carry_on_the_clock_and_the_event_ends_with_them():
    cfg = load_config(None, ["engine.enabled=false"])

    class NoFace(FakeDetector):
        def faces(self, image):
            return []

        def close(self):
            pass

    p = make_pipeline(cfg, None, detector=NoFace())
    p.process(Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0))
    for t in (0.5, 1.0, 1.5, 2.0):
        r = p.process(None, t_s=t)
        assert not r.camera_ok and r.time_s == t
    lost = [e for e in p.finish() if e.type == "camera_lost"]
    assert lost and lost[0].start_s == 0.5 and lost[0].end_s == 2.0


def test_the_frame_loop_times_the_lost_ticks_on_its_clock():
    """session.LostClock: a tick once no frame came for read_timeout_s, one more every
    read_timeout_s; timed from the last frame's video time on, or from the loop's start."""
    from driver_monitor.session import LostClock

    now = [100.0]
    clock = LostClock(2.0, lambda: now[0])
    assert clock.due() is None
    now[0] = 102.0
    assert clock.due() == 2.0  # never a frame: the time since the loop started
    now[0] = 103.0
    clock.frame(7.5)
    now[0] = 104.9
    assert clock.due() is None
    now[0] = 105.0
    assert clock.due() == pytest.approx(9.5)
    now[0] = 106.0
    assert clock.due() is None  # the next one after another read_timeout_s
    now[0] = 107.0
    assert clock.due() == pytest.approx(11.5)


# ---------------------------------------------------------------- models and engines

@pytest.fixture
def broken_models(tmp_path: Path):
    import onnx

    out = {}
    for name, key, value in (("size", "dm.input_size", "64"), ("aus", "dm.au_names", json.dumps(["AU1", "AU2"]))):
        m = onnx.load(str(PROJECT_ROOT / "engines" / "emotion_au.onnx"))
        for prop in m.metadata_props:
            if prop.key == key:
                prop.value = value
        out[name] = tmp_path / f"{name}.onnx"
        onnx.save(m, str(out[name]))
    return out


@pytest.mark.parametrize("which, needle", [("size", "dm.input_size is 64 but the graph takes 48x48"),
                                          ("aus", "dm.au_names lists 2 names but au_intensity has 13")])
def test_a_model_whose_metadata_does_not_match_its_graph(broken_models, which, needle, tmp_path, capsys):
    video = str(need_data("videos/single_face.mp4"))
    sets = ["--set", f"engine.model={broken_models[which]}"]
    rc, _, err = run_cli(["analyze", video, "--out", str(tmp_path / "x"), "--no-progress", *sets,
                          "--backend", "onnxruntime"], capsys)
    assert rc == 4 and needle in last_line(err) and "Traceback" not in err
    # auto runs without the engine and says why, on one line
    rc, _, err = run_cli(["analyze", video, "--out", str(tmp_path / "y"), "--no-progress", *sets], capsys)
    assert rc == 0 and needle in err
    assert json.loads((tmp_path / "y" / "summary.json").read_text())["engine"]["backend"] == "none"


def test_device_cuda_without_a_gpu_backend_is_an_error_not_a_cpu_run(tmp_path, capsys):
    rc, _, err = run_cli(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(tmp_path / "x"),
                          "--no-progress", "--set", "engine.device=cuda"], capsys)
    line = last_line(err)
    if rc == 0:  # a machine with a GPU runtime may well run it
        pytest.skip("a CUDA backend is usable here")
    assert rc == 5 and "engine.device is cuda" in line and "onnxruntime-gpu" in line and "engine.device=auto" in line


def test_engine_choice_is_one_short_line_unless_verbose(tmp_path, capsys):
    video = str(need_data("videos/single_face.mp4"))
    rc, _, err = run_cli(["analyze", video, "--out", str(tmp_path / "a"), "--no-progress", "--max-frames", "3"], capsys)
    first = err.strip().splitlines()[0]
    assert rc == 0 and first.startswith("engine: ") and len(first) < 80
    rc, _, err = run_cli(["analyze", video, "--out", str(tmp_path / "b"), "--no-progress", "--max-frames", "3", "-v"],
                         capsys)
    assert rc == 0 and len(err.strip().splitlines()[0]) > 80  # with the reasoning
    assert "reason" in json.loads((tmp_path / "a" / "summary.json").read_text())["engine"]


def test_engines_actions_take_the_common_options(tmp_path, capsys):
    rc, out, _ = run_cli(["engines", "list", "--set", f"engine.cache_dir={tmp_path / 'c'}"], capsys)
    assert rc == 0 and str(tmp_path / "c") in out
    (tmp_path / "file").write_text("x")
    rc, _, err = run_cli(["engines", "build", "--set", f"engine.cache_dir={tmp_path / 'file'}", "--plans", "no"],
                         capsys)
    assert rc == 2 and "is not a writable folder" in last_line(err) and "Traceback" not in err


def test_malformed_yaml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("drowsiness:\n  microsleep_s: [1.0\n  blink_max_s: 0.5\n")
    rc, _, err = run_cli(["--config", str(bad), "analyze", "x.mp4", "--out", str(tmp_path / "o")], capsys)
    assert rc == ConfigError.exit_code and len(err.strip().splitlines()) == 1 and "line " in err


# ---------------------------------------------------------------- bench

def test_bench_defaults_to_a_results_folder_and_checks_it_first(tmp_path, capsys):
    args = build_parser().parse_args(["bench"])
    assert args.out == "results/bench"
    (tmp_path / "file").write_text("x")
    t0 = time.monotonic()
    rc, _, err = run_cli(["bench", "--out", str(tmp_path / "file" / "b")], capsys)
    assert rc == 2 and "is not a writable folder" in last_line(err) and time.monotonic() - t0 < 5


def test_bench_with_nothing_measured_fails(tmp_path, capsys):
    rc, _, err = run_cli(["bench", "--backends", "tensorrt", "--iters", "1", "--out", str(tmp_path / "b")], capsys)
    if rc == 0:
        pytest.skip("TensorRT runs here")
    assert rc == 8 and "nothing could be measured" in last_line(err)


# ---------------------------------------------------------------- the dashboard without a display

def test_gui_without_a_display_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "driver_monitor.cli", "gui", "--source",
                        str(need_data("videos/single_face.mp4"))], cwd=PROJECT_ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    line = last_line(r.stderr)
    assert line.startswith("error: the dashboard cannot open a window: there is no display") and "xvfb-run" in line


# ---------------------------------------------------------------- the app without torch

def test_the_app_runs_without_torch(tmp_path):
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('torch is not installed (blocked by the test)')\n"
            "sys.meta_path.insert(0, Block())\n"
            "from driver_monitor.cli import main\n"
            f"rc = main(['analyze', {str(need_data('videos/single_face.mp4'))!r}, '--out', {str(tmp_path / 'o')!r},"
            " '--no-progress'])\n"
            "assert 'torch' not in sys.modules\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["engine"]["backend"] == "onnxruntime" and s["frames"] == 72


def test_the_app_install_needs_no_torch():
    import tomllib

    meta = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in meta["dependencies"] if d.lower().startswith(("torch", "nvidia", "triton"))]
    assert any(d.startswith("torch") for d in meta["optional-dependencies"]["train"])
