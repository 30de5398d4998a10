"""`driver-monitor analyze` on the real videos in ../shared/data/videos: what each clip must show.

Each video is analysed once per session (engine off: these check the face, geometry and
driver-state logic; the engine has its own tests) and the tests read the files analyze wrote,
exactly as a user would.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.cli import main
from driver_monitor.config import load_config
from tests.conftest import need_data

pytestmark = [pytest.mark.data, pytest.mark.slow]

NO_ENGINE = ["engine.enabled=false"]


class Run:
    def __init__(self, out: Path, rc: int, stderr: str):
        self.out, self.rc, self.stderr = out, rc, stderr
        self.rows = list(csv.DictReader(open(out / "frames.csv")))
        self.events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        self.summary = json.loads((out / "summary.json").read_text())

    def col(self, name: str) -> np.ndarray:
        return np.array([float(r[name]) if r[name] != "" else np.nan for r in self.rows])

    def events_of(self, *types: str) -> list[dict]:
        return [e for e in self.events if e["type"] in types]


_cache: dict[str, Run] = {}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory):
    def get(name: str, extra: tuple[str, ...] = ()) -> Run:
        key = name + "|" + ",".join(extra)
        if key not in _cache:
            video = need_data(f"videos/{name}")
            out = tmp_path_factory.mktemp(name.replace(".", "_"))
            sets = [a for o in (*NO_ENGINE, *extra) for a in ("--set", o)]
            rc = main(["analyze", str(video), "--out", str(out), "--no-progress", *sets])
            _cache[key] = Run(out, rc, "")
        return _cache[key]

    return get


def _levels(run: Run, col: str) -> set[str]:
    return {r[col] for r in run.rows}


def test_sleeping_driver_with_glasses(analysed) -> None:
    run = analysed("driver_eyes_closed_glasses.mp4")
    assert run.rc == 0
    face = run.col("face_detected") == 1
    closed = run.col("eyes_closed") == 1
    assert face.sum() >= 0.9 * len(run.rows)
    assert closed[face].mean() >= 0.80, f"eyes closed in {closed[face].mean():.0%} of frames with a face"
    early = [e for e in run.events_of("eyes_closed", "microsleep")
             if e["level"] in ("warning", "critical") and e["start_s"] <= 2.5]
    assert early, f"no eyes-closed/microsleep event >= warning starting by 2.5 s: {run.events}"
    assert "warning" in _levels(run, "drowsiness") or "critical" in _levels(run, "drowsiness")


def test_head_turns_span_and_sign_convention(analysed) -> None:
    run = analysed("head_turns.mp4")
    yaw, pitch = run.col("yaw_deg"), run.col("pitch_deg")
    assert np.nanmax(yaw) >= 30 and np.nanmin(yaw) <= -30, (np.nanmin(yaw), np.nanmax(yaw))
    assert np.nanmax(pitch) >= 20 and np.nanmin(pitch) <= -20, (np.nanmin(pitch), np.nanmax(pitch))
    # Sign convention, checked on the mesh itself (independent of the pose solver): yaw > 0 means
    # the face turns towards the image's right, so the nose tip lies right of the face's centre
    # line; pitch > 0 (chin up) puts the nose tip higher between the eyes and the chin.
    from driver_monitor.evaluation.scenario_clips import read_frames
    from driver_monitor.face.mesh import FaceMeshDetector

    cfg = load_config(None, NO_ENGINE)
    frames = read_frames(need_data("videos/head_turns.mp4"))
    det = FaceMeshDetector(cfg.face, static_image_mode=True)  # frames far apart: no tracking
    try:
        def nose_offsets(i: int) -> tuple[float, float]:
            lm = det.detect(frames[i])[0].landmarks
            cx = (lm[234, 0] + lm[454, 0]) / 2  # cheek contour points, left and right
            width = abs(lm[454, 0] - lm[234, 0])
            eyes_y = (lm[33, 1] + lm[263, 1]) / 2
            return (lm[1, 0] - cx) / width, (lm[1, 1] - eyes_y) / (lm[152, 1] - eyes_y)

        iy_pos, iy_neg = int(np.nanargmax(yaw)), int(np.nanargmin(yaw))
        ip_pos, ip_neg = int(np.nanargmax(pitch)), int(np.nanargmin(pitch))
        assert nose_offsets(iy_pos)[0] > 0.05 > -0.05 > nose_offsets(iy_neg)[0]
        assert nose_offsets(ip_pos)[1] < nose_offsets(ip_neg)[1] - 0.05
    finally:
        det.close()


def test_single_face_no_alerts(analysed) -> None:
    run = analysed("single_face.mp4")
    assert run.rc == 0
    assert (run.col("face_detected") == 1).mean() >= 0.95
    assert _levels(run, "drowsiness") == {"none"} and _levels(run, "distraction") == {"none"}
    assert not run.events_of("drowsiness", "distraction", "microsleep")


def test_no_face_is_driver_absent_and_exit_0(analysed) -> None:
    run = analysed("no_face.mp4")
    assert run.rc == 0
    assert (run.col("face_detected") == 0).all()
    absent = run.events_of("driver_absent")
    assert absent and absent[0]["start_s"] <= 1.5
    assert run.summary["complete"] is True and run.summary["frames"] == len(run.rows) > 90


def test_face_then_noface_flag_and_absent_event(analysed) -> None:
    # By eye (and by frame differences): the face is on screen for frames 0-71, frame 72 is black,
    # a cartoon sky from frame 73 on; the file runs at 26.4 fps, so the face leaves at 2.73 s.
    run = analysed("face_then_noface.mov")
    face = run.col("face_detected") == 1
    assert face[:72].mean() >= 0.95 and not face[73:].any()
    fps = run.summary["source_fps"]
    absent = run.events_of("driver_absent")
    assert len(absent) == 1 and 72 <= absent[0]["start_frame"] <= 72 + 1.5 * fps


def test_noface_then_face_flag_and_absent_event(analysed) -> None:
    # By eye: sky for frames 0-95, the face from frame 96 (3.62 s) to 167, frame 168 is black.
    run = analysed("noface_then_face.mov")
    face = run.col("face_detected") == 1
    assert not face[:96].any() and face[96:168].mean() >= 0.95
    absent = run.events_of("driver_absent")
    assert absent and absent[0]["start_s"] <= 1.5
    assert 96 <= absent[0]["end_frame"] <= 101, absent


def test_yawn_in_car(analysed) -> None:
    # A wide yawn about 2.5-5.8 s; smiling and talking before it must not count.
    run = analysed("yawn_in_car.mp4")
    yawns = run.events_of("yawn")
    assert any(e["start_s"] < 5.8 and e["end_s"] > 2.5 for e in yawns), yawns
    assert not [e for e in yawns if e["end_s"] < 2.3], yawns


def test_sunglasses_eyes_not_visible(analysed) -> None:
    # Dark sunglasses: the eyes are never visible. The monitor must say so instead of guessing
    # (no eyes-closed verdicts, no microsleep), and it still sees the clear yawn at 24.2-27.1 s.
    run = analysed("sunglasses_talking_yawns.avi")
    face = run.col("face_detected") == 1
    hidden = run.col("eyes_visible") == 0
    assert hidden[face].mean() >= 0.8, f"eyes reported hidden in only {hidden[face].mean():.0%}"
    assert not run.events_of("microsleep")
    assert run.events_of("eyes_not_visible")
    assert any(e["start_s"] < 27.1 and e["end_s"] > 24.2 for e in run.events_of("yawn"))


def test_ir_night_camera_grey_input(analysed) -> None:
    # Near-infrared, 10 fps, first 2 frames undecodable; eyes closed from about 1.4 s to the end.
    run = analysed("ir_driver_eyes_closed.avi")
    assert run.rc == 0
    face = run.col("face_detected") == 1
    assert face.mean() >= 0.9
    t = run.col("time_s")
    closed = run.col("eyes_closed") == 1
    late = (t >= 2.0) & face
    assert closed[late].mean() >= 0.8


def test_truncated_video_keeps_decoded_rows(tmp_path: Path, capsys) -> None:
    # This file keeps its index (moov) at the front: half of it opens and 113 of 229 frames decode.
    data = need_data("videos/driver_eyes_closed_glasses.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["analyze", str(cut), "--out", str(out), "--no-progress",
                               "--set", "engine.enabled=false"], capsys)
    assert rc != 0 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(out) in last
    rows = list(csv.DictReader(open(out / "frames.csv")))
    assert 100 <= len(rows) < 229
    assert [int(r["frame"]) for r in rows] == list(range(len(rows)))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["frames"] == len(rows) and summary["reason"]


def test_truncated_video_without_index_is_a_clear_error(tmp_path: Path, capsys) -> None:
    # This file keeps its index at the end: half of it cannot be opened at all.
    data = need_data("videos/single_face.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    rc, _, err = run_cli(["analyze", str(cut), "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert rc != 0 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "cut.mp4" in last


def test_non_video_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("this is not a video\n" * 100)
    rc, _, err = run_cli(["analyze", str(bogus), "--out", str(tmp_path / "o"), "--no-progress"], capsys)
    assert rc != 0 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "notes.mp4" in line
    rc, _, err = run_cli(["analyze", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")], capsys)
    assert rc != 0 and "missing.mp4" in err and "Traceback" not in err


@pytest.mark.data
def test_drives_over_one_runtime_give_what_fresh_runs_give(tmp_path: Path) -> None:
    """A fleet worker opens the models once (runtime.Runtime) and analyses drive after drive: each
    drive's results are those of a run that opened its own models, the models stay open between
    drives, and no drive leaves its phone thread behind."""
    import threading

    from driver_monitor.analyze import analyze
    from driver_monitor.runtime import Runtime

    cfg = load_config(None, ["engine.enabled=false"])
    video = str(need_data("videos/single_face.mp4"))
    before = set(threading.enumerate())  # other tests' pipelines may hold threads of their own
    analyze(video, tmp_path / "fresh", cfg, progress=False, log=lambda m: None)
    with Runtime(cfg, log=lambda m: None) as runtime:
        for i in range(2):
            s = analyze(video, tmp_path / f"d{i}", cfg, progress=False, runtime=runtime, log=lambda m: None)
            assert s["frames"] == 72
            assert runtime.models is not None and runtime.models.phone_detector is not None  # kept open
            assert _rows(tmp_path / f"d{i}") == _rows(tmp_path / "fresh")
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("phone")]


def _rows(folder: Path) -> list[dict[str, str]]:
    """frames.csv without the timing columns (which vary from run to run)."""
    with open(folder / "frames.csv", newline="", encoding="utf-8") as f:
        return [{k: v for k, v in r.items() if not k.startswith("ms_")} for r in csv.DictReader(f)]


@pytest.mark.data
def test_a_drive_over_a_shared_runtime_reads_its_source_with_its_own_capture_settings(tmp_path: Path) -> None:
    """evaluate lends one Runtime to clips whose models agree; a clip's capture settings (its frame
    rate, say) are its own."""
    from driver_monitor.analyze import analyze
    from driver_monitor.runtime import Runtime

    run = load_config(None, ["engine.enabled=false"])
    clip = load_config(None, ["engine.enabled=false", "capture.fps=12"])
    with Runtime(run, log=lambda m: None) as runtime:
        s = analyze(str(need_data("videos/single_face.mp4")), tmp_path / "d", clip, progress=False,
                    runtime=runtime, log=lambda m: None, max_frames=5)
    assert (s["source_fps"], s["fps_source"]) == (12.0, "set (capture.fps / --fps)")
