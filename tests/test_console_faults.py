"""Faults of the console commands (analyze, evaluate, config, bench): each gives one clear line,
an exit code that agrees with summary.json, and keeps every result written."""
from __future__ import annotations

import csv
import json
import signal
import time
from pathlib import Path

import pytest

from driver_monitor import errors, recording
from driver_monitor.cli import main
from driver_monitor.config import Config

from .conftest import analyze_running, need_data

NO_ENGINE = ["--set", "engine.enabled=false"]


def last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


@pytest.fixture
def own_handlers():
    """main() installs its stop handlers in this process: put the test runner's back afterwards."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {s: signal.getsignal(s) for s in sigs}
    yield
    for s, h in before.items():
        signal.signal(s, h)
    errors.reset_stop_signals()


# ---------------------------------------------------------------- a second signal while stopping

def test_a_second_signal_while_the_summary_is_written_loses_nothing(tmp_path, monkeypatch, capsys, own_handlers):
    """Ctrl-C during the frame loop, SIGTERM while the results are closed: summary.json is the real
    one, and it and the exit code both give the first stop (Ctrl-C)."""
    write, write_events = recording.ResultWriter.write, recording.ResultWriter.write_events
    stopped = []

    def write_then_ctrl_c(self, result):
        written = write(self, result)
        if self.frames_written == 10:
            stopped.append(True)
            signal.raise_signal(signal.SIGINT)
        return written

    def term_while_closing(self, events):
        if stopped:  # the final events: close() has begun
            signal.raise_signal(signal.SIGTERM)
        return write_events(self, events)

    monkeypatch.setattr(recording.ResultWriter, "write", write_then_ctrl_c)
    monkeypatch.setattr(recording.ResultWriter, "write_events", term_while_closing)
    out = tmp_path / "r"
    rc = main(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress", *NO_ENGINE])
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] is not None and summary["frames"] >= 10, summary
    assert summary["reason"] == "interrupted (Ctrl-C)" and rc == 130, (rc, err)
    assert last_line(err).startswith("interrupted"), err


def test_a_stop_during_the_final_write_of_a_complete_run_waits_for_it(tmp_path, monkeypatch, capsys, own_handlers):
    """The drive ran to its end; a Ctrl-C while summary.json is written lets it be written whole,
    then stops (130)."""
    write_summary = recording.ResultWriter._write_summary

    def ctrl_c_first(self, data):
        if "frames" in data:  # the real summary, not the marker written at the start
            signal.raise_signal(signal.SIGINT)
        return write_summary(self, data)

    monkeypatch.setattr(recording.ResultWriter, "_write_summary", ctrl_c_first)
    out = tmp_path / "r"
    rc = main(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress",
               "--max-frames", "5", *NO_ENGINE])
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 130 and summary["frames"] == 5 and summary["complete"] is True
    assert "interrupted" in last_line(capsys.readouterr().err)


def test_signals_after_the_first_are_ignored_and_said_once():
    errors.reset_stop_signals()
    try:
        with pytest.raises(errors.Terminated) as info:
            errors.stop_signal(signal.SIGTERM)
        assert info.value.exit_code == 143 and info.value.name == "SIGTERM"
        errors.stop_signal(signal.SIGINT)  # ignored: the run is already stopping
        errors.stop_signal(signal.SIGHUP)
        assert errors.stopping()
    finally:
        errors.reset_stop_signals()
    with errors.hold_stop_signals() as held:
        errors.stop_signal(signal.SIGHUP)  # held, not raised
    assert held == [signal.SIGHUP]
    with pytest.raises(errors.Terminated) as info:
        errors.raise_held(held)
    assert info.value.exit_code == 129
    errors.reset_stop_signals()


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_two_real_signals_50ms_apart_keep_the_summary_and_the_first_reason(tmp_path: Path, second):
    out = tmp_path / "r"
    proc = analyze_running(out, poll_s=0.02)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(second)
    _, err = proc.communicate(timeout=60)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] is not None and summary["reason"] == "interrupted (Ctrl-C)", summary
    assert proc.returncode == 130 and last_line(err).startswith("interrupted"), (proc.returncode, err)


# ---------------------------------------------------------------- analyze's console and summary

@pytest.mark.parametrize("model", ["missing", "corrupt"])
def test_a_run_without_the_engine_says_so_in_the_summary_and_on_the_console(tmp_path, capsys, model):
    path = tmp_path / "emotion_au.onnx"
    if model == "corrupt":
        path.write_bytes(b"\x08\x07not an onnx graph" * 100)
    out = tmp_path / "r"
    rc = main(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress",
               "--max-frames", "5", "--set", f"engine.model={path}"])
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 0 and summary["frames"] == 5  # the driver state still ran
    assert str(path) in summary["engine_missing"] and summary["engine"]["backend"] == "none"
    assert "analysed without the emotion/AU engine" in last_line(err) and "engine_missing" in last_line(err)


def test_an_engine_switched_off_is_not_reported_missing(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress",
               "--max-frames", "3", *NO_ENGINE])
    assert rc == 0 and "engine_missing" not in json.loads((out / "summary.json").read_text())
    assert "without the emotion/AU engine" not in capsys.readouterr().err


def test_the_printed_rate_is_named_as_in_the_summary(tmp_path, capsys):
    out = tmp_path / "r"
    rc = main(["analyze", str(need_data("videos/single_face.mp4")), "--out", str(out), "--no-progress",
               "--max-frames", "10", *NO_ENGINE])
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 0 and f"loop_fps {summary['loop_fps']} " in printed, printed


@pytest.mark.parametrize("what", ["missing", "not a video", "a folder"])
def test_a_bad_input_is_said_before_any_model_loads(tmp_path, monkeypatch, capsys, what):
    from driver_monitor.runtime import Runtime

    def no_models_yet(*a, **kw):
        raise AssertionError("the models were loaded before the input was checked")

    monkeypatch.setattr(Runtime, "_open_models", no_models_yet)
    video = tmp_path / "drive.mp4"
    if what == "not a video":
        video.write_bytes(b"no video here" * 1000)
    elif what == "a folder":
        video.mkdir()
    rc = main(["analyze", str(video), "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 3 and last_line(err).startswith("error: ") and str(video) in last_line(err), err
    assert not (tmp_path / "r" / "summary.json").exists()


# ---------------------------------------------------------------- config

@pytest.mark.parametrize("holds_one", [True, False])
def test_a_folder_given_as_the_config_is_said_to_be_a_folder(tmp_path, capsys, holds_one):
    folder = tmp_path / "settings"
    folder.mkdir()
    if holds_one:
        (folder / "config.yaml").write_text("capture:\n  fps: 25\n")
    rc = main(["analyze", "drive.mp4", "--out", str(tmp_path / "r"), "--config", str(folder)])
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and f"config file {str(folder)!r} is a folder, not a file" in line and "does not exist" not in line
    assert (str(folder / "config.yaml") in line) == holds_one, line


# ---------------------------------------------------------------- live sources

class _StallingCamera:
    """A camera that gives frames until 5 rows are written, hangs for 1.2 s, gives frames until 15
    rows are, then fails for good (``rows``: the rows written so far)."""

    rows: list = []

    def __init__(self, *_a):
        self.n = 0
        self.stalled = False

    def isOpened(self):
        return True

    def get(self, _prop):
        return 0.0

    def set(self, *_a):
        return True

    def read(self):
        import numpy as np

        self.n += 1
        if len(self.rows) >= 5 and not self.stalled:
            self.stalled = True
            time.sleep(1.2)
        if len(self.rows) >= 15:
            return False, None
        time.sleep(1 / 30)
        return True, np.full((48, 64, 3), 40 + self.n % 200, np.uint8)

    def release(self):
        pass


@pytest.mark.parametrize("overlap", [True, False])
def test_each_camera_lost_row_has_its_own_frame_index(tmp_path, monkeypatch, overlap):
    from driver_monitor import capture
    from driver_monitor.analyze import analyze
    from driver_monitor.config import load_config

    rows_written, write = [], recording.ResultWriter.write

    def count(self, result):
        rows_written.append(result.index)
        return write(self, result)

    monkeypatch.setattr(recording.ResultWriter, "write", count)
    monkeypatch.setattr(_StallingCamera, "rows", rows_written)
    monkeypatch.setattr(capture, "_default_factory", _StallingCamera)
    cfg = load_config(None, ["engine.enabled=false", "capture.read_timeout_s=0.2", "capture.reconnect_attempts=0"])
    out = tmp_path / "live"
    analyze(0, out, cfg, progress=False, overlap=overlap, log=lambda m: None)
    rows = list(csv.DictReader(open(out / "frames.csv", newline="")))
    index = [int(r["frame"]) for r in rows]
    lost = [int(r["frame"]) for r in rows if r["camera_ok"] == "0"]
    assert len(lost) >= 3 and sum(r["camera_ok"] == "1" for r in rows) >= 10, index
    assert len(set(index)) == len(index) and index == sorted(index), index  # each row its own, in order
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    gone = [e for e in events if e["type"] == "camera_lost"]
    assert gone and gone[0]["start_frame"] == lost[0], (gone, lost)


# ---------------------------------------------------------------- evaluate's truth file

def _truth(tmp_path: Path, intervals: str, video: str = "single_face.mp4") -> Path:
    path = tmp_path / "truth.yaml"
    path.write_text(f"video_dir: {need_data('videos')}\nclips:\n  - name: c\n    video: {video}\n"
                    f"    intervals:\n{intervals}", encoding="utf-8")
    return path


def test_an_interval_past_the_end_of_the_clip_is_refused_before_analysing(tmp_path, capsys):
    truth = _truth(tmp_path, "      - [attentive, 0.0, 2.0]\n      - [attentive, 2.0, 60.0, \"copied\"]\n")
    rc = main(["evaluate", str(truth), "--out", str(tmp_path / "eval")])
    line = last_line(capsys.readouterr().err)
    assert rc == 2 and "truth.yaml clip 'c' interval 2 (attentive 2-60 s) ends past the clip" in line, line
    assert "single_face.mp4 ends at" in line and "frames at" in line
    assert not (tmp_path / "eval" / "c").exists()  # refused before anything was analysed


def test_overlapping_intervals_that_contradict_each_other_are_refused(tmp_path):
    from driver_monitor.scenarios import load_truth

    truth = _truth(tmp_path, "      - [attentive, 0.0, 5.0]\n      - [eyes_closed, 3.0, 6.5]\n")
    with pytest.raises(errors.ConfigError) as info:
        load_truth(truth, lambda o: None)
    msg = str(info.value)
    assert "interval 2 (eyes_closed 3-6.5 s) expects drowsiness >= warning" in msg, msg
    assert "interval 1 (attentive 0-5 s) overlaps it by 2.00 s and forbids drowsiness" in msg, msg
    # overlaps that do not contradict stay allowed: a yawn inside eyes hidden behind sunglasses
    ok = _truth(tmp_path, "      - [eyes_hidden, 0.0, 6.0]\n      - [yawn, 1.0, 3.0]\n      - [attentive, 3.0, 6.0]\n")
    assert len(load_truth(ok, lambda o: None)[0].intervals) == 3


def test_attentive_time_counts_only_the_frames_there_are():
    from driver_monitor.scenarios import Clip, Interval, Results, score_clip, summarise

    t = [i / 10 for i in range(100)]  # 10 s of frames
    res = Results(t, [{"time_s": str(x), "drowsiness": "none", "distraction": "none"} for x in t], [])
    clip = Clip("c", Path("c.mp4"), (Interval("attentive", 0.0, 4.0, forbid=("drowsiness",)),
                                      Interval("attentive", 4.0, 30.0, forbid=("drowsiness",))))
    s = summarise([(clip, score_clip(clip, res, Config()))])
    assert s["attentive_s"] == 10.0  # not 30: 20 s of it have no frame


# ---------------------------------------------------------------- bench

def test_bench_says_the_whole_reason_a_backend_was_skipped(tmp_path, capsys):
    from dataclasses import replace

    from driver_monitor.config import load_config
    from driver_monitor.engine.select import create_engine

    cfg = load_config(None)
    try:
        create_engine(replace(cfg.engine, backend="tensorrt", device="cuda", precision="fp32"))
        pytest.skip("TensorRT runs here: nothing is skipped")
    except errors.DriverMonitorError as exc:
        reason = " ".join(str(exc).split())
    rc = main(["bench", "--iters", "1", "--batches", "1", "--backends", "tensorrt", "--precisions", "fp32",
               "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert rc == 8 and f"bench: tensorrt CUDA fp32: skipped ({reason})" in err, err  # whole, its fix included
    assert "To fix" in reason and len(reason) > 160


def test_a_skipped_line_wraps_between_words_on_a_terminal():
    from driver_monitor.bench.common import skipped_line

    reason = ("engine backend 'onnxruntime' on cuda cannot run here: CUDAExecutionProvider is not in this "
              "onnxruntime build. To fix: install the GPU build of ONNX Runtime: `pip uninstall onnxruntime && "
              "pip install onnxruntime-gpu`; or choose another with --backend auto|onnxruntime|torch")
    one = skipped_line("onnxruntime CUDA fp32", reason)
    wrapped = skipped_line("onnxruntime CUDA fp32", reason, 80)
    lines = wrapped.splitlines()
    assert len(lines) > 1 and all(len(x) <= 80 for x in lines)
    assert " ".join(wrapped.split()) == one and one.endswith("auto|onnxruntime|torch)")  # no word lost or cut


def test_a_stop_while_the_commands_load_is_a_stop(monkeypatch, capsys) -> None:
    from driver_monitor import cli
    from driver_monitor.errors import Terminated

    def stopped():
        raise Terminated(15, "SIGTERM")

    monkeypatch.setattr(cli, "build_parser", stopped)
    assert cli.main(["analyze", "x.mp4", "--out", "y"]) == 143
    assert "stopped by SIGTERM" in capsys.readouterr().err
