"""Event pictures: the annotated frame at each alert's peak, written into the drive folder as
`events/NNN.jpg` (NNN: the event's line in events.jsonl) while `analyze` runs."""
from __future__ import annotations

import json
from types import SimpleNamespace

import cv2
import pytest

from driver_monitor import event_pictures
from driver_monitor.types import Event, Level


def fake_result(i: int, drowsiness: Level, events=()) -> SimpleNamespace:
    state = SimpleNamespace(drowsiness=drowsiness, distraction=Level.NONE, level=drowsiness,
                            eyes_closed_s=0.0, off_road_s=0.0)
    return SimpleNamespace(index=i, time_s=i / 10, state=state, smoothed=None, phone_score=None,
                           frame=object(), events=tuple(events))


def test_the_picture_is_the_first_frame_at_the_alert_s_highest_level(tmp_path, monkeypatch):
    monkeypatch.setattr(event_pictures, "encode", lambda r: f"frame {r.index}".encode())
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "007.jpg").write_bytes(b"old run")
    pics = event_pictures.EventPictures(tmp_path)
    assert not (tmp_path / "events" / "007.jpg").exists()  # an earlier run's pictures are gone
    start = Event("drowsiness", Level.WARNING, 0.0)
    yawn = Event("yawn", Level.NONE, 0.0)
    levels = [Level.WARNING, Level.WARNING, Level.CRITICAL, Level.CRITICAL, Level.NONE]
    for i, lvl in enumerate(levels):
        pics.update(fake_result(i, lvl, [start, yawn] if i == 0 else []), [])
    ended = Event("drowsiness", Level.CRITICAL, 0.0, 0.5, 0, 5)
    pics.update(fake_result(5, Level.NONE), [(3, ended)])
    pics.close([(4, Event("yawn", Level.NONE, 0.0, 0.6)),  # below warning: no picture
                (5, Event("phone_use", Level.NONE, 0.5, 0.6))])  # phone use: at any level
    assert (tmp_path / "events" / "003.jpg").read_bytes() == b"frame 2"
    assert (tmp_path / "events" / "005.jpg").read_bytes() == b"frame 5"
    assert not (tmp_path / "events" / "004.jpg").exists()
    index = [json.loads(x) for x in (tmp_path / "events" / "pictures.jsonl").read_text().splitlines()]
    assert index[0] == {"line": 3, "file": "003.jpg", "type": "drowsiness", "level": "critical", "start_s": 0.0,
                        "peak_s": 0.2, "peak_frame": 2}
    assert [p["line"] for p in index] == [3, 5] and pics.written == 2


@pytest.mark.data
@pytest.mark.slow
def test_analyze_writes_a_picture_for_every_alert_of_a_real_clip(tmp_path):
    from driver_monitor.cli import main
    from tests.conftest import need_data

    video = need_data("videos/driver_eyes_closed_glasses.mp4")
    out = tmp_path / "out"
    assert main(["analyze", str(video), "--out", str(out), "--no-progress", "--set", "engine.enabled=false"]) == 0
    events = [{**json.loads(x), "line": i} for i, x in enumerate((out / "events.jsonl").read_text().splitlines(), 1)]
    alerts = [e for e in events if e["level"] in ("warning", "critical")]
    assert len(alerts) >= 2  # the closure's microsleep and the drowsiness alarm at least
    index = {p["line"]: p for p in map(json.loads, (out / "events" / "pictures.jsonl").read_text().splitlines())}
    assert sorted(index) == [e["line"] for e in alerts]
    for e in alerts:
        p = index[e["line"]]
        assert p["type"] == e["type"] and e["start_s"] - 0.05 <= p["peak_s"] <= e["end_s"] + 0.05
        img = cv2.imread(str(out / "events" / p["file"]))
        assert img is not None and img.shape[1] == event_pictures.WIDTH


def test_a_picture_that_cannot_be_written_stops_the_pictures_not_the_drive(tmp_path, monkeypatch):
    monkeypatch.setattr(event_pictures, "encode", lambda r: b"jpeg")
    (tmp_path / "events").write_text("a file where the folder should be")
    pics = event_pictures.EventPictures(tmp_path)
    pics.update(fake_result(0, Level.WARNING, [Event("drowsiness", Level.WARNING, 0.0)]), [])
    pics.update(fake_result(1, Level.NONE), [(1, Event("drowsiness", Level.WARNING, 0.0, 0.1))])  # no raise
    assert pics.written == 0 and "events.jsonl line 1 could not be written" in pics.error
    assert "later alerts have no picture" in pics.error
