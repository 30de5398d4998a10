"""frames.csv / events.jsonl / summary.json: columns, streaming flush, events, summary."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from driver_monitor.config import Config, load_config
from driver_monitor.preprocess import AUS, EMOTIONS
from driver_monitor.recording import ResultWriter, frame_columns
from driver_monitor.types import DriverState, Event, Face, Frame, FrameResult, Level, Signals, Status

FACE = Face(np.array([0, 0, 2, 2], np.float32), np.zeros((478, 3), np.float32))

REQUIRED = ["frame", "time_s", "face_detected", "yaw_deg", "pitch_deg", "roll_deg", "ear", "mar",
            "gaze_x", "gaze_y", "eyes_closed", "perclos", "drowsiness", "distraction"]


def make_result(i: int, *, face: bool = True, events: tuple[Event, ...] = (), probs=None, aus=None,
                eyes_visible: bool = True) -> FrameResult:
    frame = Frame(np.zeros((4, 4, 3), np.uint8), i, i / 30)
    sig = Signals(0.3, 0.28, 0.29, 0.1, 12.5, -3.0, 1.0, 0.1, -0.2, eyes_visible) if face else None
    state = DriverState(t_s=i / 30, status=Status.OK if face else Status.DRIVER_ABSENT, perclos=0.05,
                        drowsiness=Level.WARNING if i > 2 else Level.NONE)
    return FrameResult(frame=frame, camera_ok=True, state=state, face=FACE if face else None, signals=sig, smoothed=sig,
                       faces_count=int(face), events=events, emotion_probs=probs, aus=aus,
                       timings_ms={"mesh": 4.0, "total": 5.5})


def test_columns_cover_the_issue_and_engine_outputs() -> None:
    cols = frame_columns(EMOTIONS, AUS)
    for c in REQUIRED + ["emotion", "p_neutral", "p_contempt", "au12", "au45", "ms_mesh", "ms_total"]:
        assert c in cols
    assert "emotion" not in frame_columns()


def test_rows_are_flushed_as_written_and_summary_at_close(tmp_path: Path) -> None:
    w = ResultWriter(tmp_path, Config(), emotion_names=EMOTIONS, au_names=AUS)
    probs = {name: (0.65 if name == "happiness" else 0.05) for name in EMOTIONS}
    w.write(make_result(0, probs=probs, aus={a: 0.5 for a in AUS}))
    w.write(make_result(1, face=False))
    # before close: both rows are on disk already (crash / Ctrl-C keeps them)
    rows = list(csv.DictReader(open(tmp_path / "frames.csv")))
    assert [r["frame"] for r in rows] == ["0", "1"]
    assert rows[0]["emotion"] == "happiness" and rows[0]["p_happiness"] == "0.6500"
    assert rows[0]["yaw_deg"] == "12.5000" and rows[0]["face_detected"] == "1"
    assert rows[1]["face_detected"] == "0" and rows[1]["ear"] == "" and rows[1]["status"] == "driver_absent"
    assert rows[0]["ms_mesh"] == "4.000"
    ev = Event("microsleep", Level.WARNING, 0.5, 2.0, 15, 60)
    w.write(make_result(2, events=(Event("microsleep", Level.WARNING, 0.5, None, 15),)))  # start: not written
    w.write(make_result(3, events=(ev,)))
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 1
    obj = json.loads(lines[0])
    assert obj["type"] == "microsleep" and obj["level"] == "warning"
    assert obj["start_s"] == 0.5 and obj["end_s"] == 2.0 and obj["duration_s"] == 1.5
    summary = w.close({"complete": True, "processing_fps": 99.0})
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == summary
    assert saved["frames"] == 4 and saved["events"] == {"microsleep": 1} and saved["duration_s"] == 0.1
    assert saved["events_by_level"] == {"warning": 1}


def test_hidden_eyes_write_blank_eye_columns(tmp_path: Path) -> None:
    w = ResultWriter(tmp_path, load_config(None, ["output.decimals=2"]))
    w.write(make_result(0, eyes_visible=False))
    w.close()
    row = next(csv.DictReader(open(tmp_path / "frames.csv")))
    assert row["ear"] == "" and row["gaze_x"] == "" and row["eyes_visible"] == "0"
    assert row["mar"] == "0.10"  # the mouth is still measured


def test_unwritable_output_folder_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from driver_monitor.errors import DriverMonitorError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DriverMonitorError, match="--out"):
        ResultWriter(blocker / "sub")
