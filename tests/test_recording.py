"""frames.csv / events.jsonl / summary.json: columns, streaming flush, events, summary."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from driver_monitor.config import Config, load_config
from driver_monitor.preprocess import AUS, EMOTIONS
from driver_monitor.recording import ResultWriter, frame_columns
from driver_monitor.types import DriverState, EngineReading, Event, Face, Frame, FrameResult, Level, Signals, Status

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
                       faces_count=int(face), events=events, engine=EngineReading(probs, aus),
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


def test_every_column_holds_its_own_field(tmp_path: Path) -> None:
    """frames.csv rows are built in column order: each column, read back by its name, holds the
    field of that name (distinct values everywhere, so a swapped pair shows)."""
    raw = Signals(ear_left=0.211, ear_right=0.212, ear=0.213, mar=0.114, yaw_deg=15.1, pitch_deg=-6.2,
                  roll_deg=2.3, gaze_x=0.181, gaze_y=-0.292, eyes_visible=True, eye_closed_p=0.417)
    smooth = Signals(ear_left=0.311, ear_right=0.312, ear=0.313, mar=0.214, yaw_deg=16.1, pitch_deg=-7.2,
                     roll_deg=3.3, gaze_x=0.281, gaze_y=-0.392, eyes_visible=True)
    state = DriverState(t_s=1.5, status=Status.OK, eyes_closed=True, eyes_closed_s=0.75, perclos=0.125,
                        blink_count=7, blink_rate_per_min=11.5, yawning=True, yawn_count=3, off_road=True,
                        off_road_s=1.25, off_road_reason="head", time_sharing_s=2.5, lids_read=True,
                        drowsiness=Level.WARNING, distraction=Level.CRITICAL, calibrated=True, phone_use=True)
    result = FrameResult(frame=Frame(np.zeros((4, 4, 3), np.uint8), 45, 1.5), camera_ok=True, state=state,
                         face=FACE, signals=raw, smoothed=smooth, faces_count=2, phone_score=0.625,
                         engine=EngineReading(emotion_probs={name: i / 100 for i, name in enumerate(EMOTIONS)},
                                              aus={au: 0.5 + i / 100 for i, au in enumerate(AUS)}),
                         timings_ms={s: 1.0 + i for i, s in enumerate(("decode", "mesh", "align", "eyes",
                                                                        "engine", "phone", "state", "total"))})
    w = ResultWriter(tmp_path, Config(), emotion_names=EMOTIONS, au_names=AUS)
    w.write(result)
    w.close()
    row = next(csv.DictReader(open(tmp_path / "frames.csv")))
    want = {"frame": "45", "time_s": "1.5000", "camera_ok": "1", "face_detected": "1", "faces": "2",
            "status": str(Status.OK), "yaw_deg": "16.1000", "pitch_deg": "-7.2000", "roll_deg": "3.3000",
            "ear": "0.3130", "ear_left": "0.3110", "ear_right": "0.3120", "ear_raw": "0.2130", "mar": "0.2140",
            "mar_raw": "0.1140", "gaze_x": "0.2810", "gaze_y": "-0.3920", "eyes_visible": "1", "eye_closed_p": "0.4170",
            "eyes_closed": "1",
            "eyes_closed_s": "0.7500", "perclos": "0.1250", "blinks": "7", "blink_rate_per_min": "11.5000",
            "yawning": "1", "yawns": "3", "off_road": "1", "off_road_s": "1.2500", "off_road_reason": "head",
            "time_sharing_s": "2.5000", "drowsiness": str(Level.WARNING), "distraction": str(Level.CRITICAL),
            "alert": str(state.alert), "calibrated": "1", "phone_use": "1", "phone_score": "0.6250",
            "emotion": EMOTIONS[-1],  # the top probability
            "ms_decode": "1.000", "ms_mesh": "2.000", "ms_align": "3.000", "ms_eyes": "4.000",
            "ms_engine": "5.000", "ms_phone": "6.000", "ms_state": "7.000", "ms_total": "8.000"}
    want.update({f"p_{name}": f"{i / 100:.4f}" for i, name in enumerate(EMOTIONS)})
    want.update({au.lower(): f"{0.5 + i / 100:.4f}" for i, au in enumerate(AUS)})
    assert list(row) == frame_columns(EMOTIONS, AUS)
    assert row == want
