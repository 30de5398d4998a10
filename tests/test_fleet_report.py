"""The fleet report's pure parts (rates or counts, numbers, bins, event rows with their pictures,
drivers, why PERCLOS is missing) on made-up drive folders."""
from __future__ import annotations

import base64
import csv
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np

from driver_monitor import fleet_report as fr

JPEG = cv2.imencode(".jpg", np.full((90, 160, 3), 128, np.uint8))[1].tobytes()


def make_drive(root: Path, name: str, *, duration_s: float = 30.0, driver: str = "", events=(), pictures=(),
               frames: int = 10, face: bool = True, start_time: str = "") -> Path:
    """A drive folder as a batch leaves it: frames.csv, events.jsonl, summary.json, drive.json, events/."""
    d = root / "drives" / name
    (d / "events").mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"duration_s": duration_s, "frames": frames, "complete": True,
                                                "config": {"drowsiness": {"perclos_window_s": 60.0,
                                                                          "perclos_min_coverage": 0.8}}}))
    (d / "drive.json").write_text(json.dumps({"driver_id": driver, "start_time": start_time}))
    step = duration_s / max(1, frames - 1)
    lines = ["frame,time_s,camera_ok,face_detected,eyes_closed,perclos,off_road_s,eyes_closed_s"]
    lines += [f"{i},{i * step:.4f},1,{int(face)},{0 if face else ''},,0,0" for i in range(frames)]
    (d / "frames.csv").write_text("\n".join(lines) + "\n")
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for p in pictures:
        (d / "events" / p["file"]).write_bytes(JPEG)
    (d / "events" / "pictures.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pictures))
    return d


def ev(type_: str, level: str, start_s: float, duration_s: float = 2.0) -> dict:
    return {"type": type_, "level": level, "start_s": start_s, "end_s": start_s + duration_s,
            "duration_s": duration_s}


def pic(line: int, type_: str, start_s: float, peak_s: float) -> dict:
    return {"line": line, "file": f"{line:03d}.jpg", "type": type_, "level": "warning", "start_s": start_s,
            "peak_s": peak_s, "peak_frame": int(peak_s * 30)}


# ------------------------------------------------------------------ rates, numbers, bins

def test_a_rate_only_over_ten_minutes_of_driving_else_a_count():
    assert fr.RATE_MIN_S == 600.0
    assert fr.rate_or_count(1, 18.0) == "1"  # not "200.0 /h" from an 18-second drive
    assert fr.rate_or_count(3, 599.0) == "3"
    assert fr.rate_or_count(3, 1800.0) == "6.0 /h"
    assert math.isnan(fr.per_hour(1, 18.0)) and fr.per_hour(2, 3600.0) == 2.0


def test_numbers_read_as_people_write_them():
    assert (fr.plural(1, "drive"), fr.plural(3, "drive"), fr.plural(0, "alert")) == ("1 drive", "3 drives", "0 alerts")
    assert fr.fmt_duration(4.04) == "4.0 s" and fr.fmt_duration(56.1) == "56 s"
    assert fr.fmt_duration(750) == "12.5 min" and fr.fmt_duration(3 * 3600) == "3.0 h"
    assert fr.fmt_clock(75.9) == "1:15" and fr.fmt_clock(3725) == "1:02:05"
    assert fr.wall_clock("2026-12-01T08:00:00", 75.0) == "2026-12-01 08:01:15" and fr.wall_clock("", 5) == ""


def test_bins_have_readable_names_and_keep_their_edges():
    assert fr.bin_labels(fr.GLANCE_EDGES, "s") == ["0–1 s", "1–2 s", "2–3 s", "3–3.5 s", "3.5–6 s", "6 s or more"]
    assert fr.bin_labels(fr.PERCLOS_EDGES, "%", 100.0)[-1] == "30–100 %"
    assert fr.bin_counts([0.0, 0.3, 1.0, math.nan], fr.PERCLOS_EDGES) == [1, 0, 0, 0, 0, 2]  # 1.0 in the last
    assert fr.bin_counts([7.0, 1e6], fr.GLANCE_EDGES)[-1] == 2
    svg = fr.histogram([1.0, 1.5, 7.0, math.nan], fr.GLANCE_EDGES, "s")
    assert "2 drives" in svg and ">1 drive<" in svg and "Not measured on 1 drive" in svg
    assert not re.search(r"\d\.0 drive|e\+0|inf", svg)


# ------------------------------------------------------------------ drives, events, drivers

def test_event_rows_carry_time_level_and_the_matching_picture(tmp_path):
    d = make_drive(tmp_path, "d1", driver="anna", start_time="2026-12-01T08:00:00",
                   events=[ev("yawn", "none", 1.0), ev("drowsiness", "warning", 2.0, 6.5),
                           ev("distraction", "critical", 9.0), ev("phone_use", "warning", 12.0),
                           ev("glance", "none", 14.0), ev("phone_use", "none", 15.0)],
                   pictures=[pic(2, "drowsiness", 2.0, 4.1), pic(4, "drowsiness", 0.0, 1.0)])
    rows = fr.event_rows(d, fr.drive_row(d))
    assert [(r["type"], r["level"], r["line"]) for r in rows] == \
        [("drowsiness", "warning", 2), ("distraction", "critical", 3), ("phone_use", "warning", 4),
         ("phone_use", "none", 6)]  # phone use at any level, other events from warning up
    first = rows[0]
    assert base64.b64decode(first["picture"]) == JPEG and first["peak_s"] == 4.1 and first["duration_s"] == 6.5
    assert rows[1]["picture"] == "" and "without event pictures" in rows[1]["picture_missing"]
    assert rows[2]["picture"] == ""  # the entry of line 4 is another event's (a stale folder): not shown
    card = fr._event_card(first)
    assert "at 0:02 into the drive (2.0 s)" in card and "2026-12-01 08:00:02" in card and "lasted 6.5 s" in card
    assert 'href="drives/d1/events/002.jpg"' in card and "events.jsonl</a> line 2" in card
    assert fr._folder_href("van 7 & co") == "drives/van%207%20%26%20co/"  # a link that works from fleet.html


def test_a_missing_picture_file_is_named(tmp_path):
    d = make_drive(tmp_path, "d1", events=[ev("drowsiness", "warning", 2.0)],
                   pictures=[pic(1, "drowsiness", 2.0, 2.5)])
    (d / "events" / "001.jpg").unlink()
    (row,) = fr.event_rows(d, fr.drive_row(d))
    assert row["picture"] == "" and "events/001.jpg is missing" in row["picture_missing"]


def test_drivers_group_counts_and_get_a_rate_only_with_enough_driving(tmp_path):
    a1 = fr.drive_row(make_drive(tmp_path, "a1", driver="anna", duration_s=400.0,
                                 events=[ev("distraction", "warning", 5.0)]))
    a2 = fr.drive_row(make_drive(tmp_path, "a2", driver="anna", duration_s=500.0,
                                 events=[ev("distraction", "critical", 5.0), ev("yawn", "none", 9.0)]))
    b1 = fr.drive_row(make_drive(tmp_path, "b1", duration_s=30.0, events=[ev("phone_use", "warning", 1.0)]))
    assert math.isnan(a1["distraction_per_h"]) and a1["distraction_count"] == 1
    drivers = {d["driver_id"]: d for d in fr.driver_rows([a1, a2, b1])}
    anna, unknown = drivers["anna"], drivers[fr.UNKNOWN_DRIVER]
    assert anna["drives"] == 2 and anna["distraction_count"] == 2 and anna["distraction_critical_count"] == 1
    assert anna["distraction_per_h"] == 8.0  # 2 in 900 s: 15 minutes is enough for a rate
    assert unknown["phone_use_count"] == 1 and math.isnan(unknown["phone_use_per_h"])
    assert [d["driver_id"] for d in sorted(drivers.values(), key=fr.rank_key, reverse=True)] == \
        ["anna", fr.UNKNOWN_DRIVER]  # rates rank before counts


def test_missing_perclos_says_why(tmp_path):
    short = fr.drive_row(make_drive(tmp_path, "short", duration_s=9.0, frames=10))
    assert math.isnan(short["perclos_p95"]) and short["perclos_missing"] == "needs 48 s of readable eyes, had 10 s"
    nobody = fr.drive_row(make_drive(tmp_path, "nobody", face=False))
    assert nobody["perclos_missing"] == "driver never seen"
    assert "needs 48 s of readable eyes, had 10 s" in fr._perclos_cell(short)
    assert fr._perclos_cell({"perclos_p95": 0.123}) == '<td class="n">12%</td>'


def test_report_is_one_offline_file_with_every_alert_by_driver(tmp_path):
    make_drive(tmp_path, "a1", driver="anna", events=[ev("drowsiness", "critical", 2.0)],
               pictures=[pic(1, "drowsiness", 2.0, 3.0)])
    make_drive(tmp_path, "x1", events=[ev("phone_use", "warning", 1.0), ev("yawn", "none", 3.0)],
               pictures=[pic(1, "phone_use", 1.0, 1.5)])
    stats = fr.write_report(tmp_path)
    page = (tmp_path / "fleet.html").read_text()
    assert stats["report_drives"] == 2 and page.startswith("<!doctype html>")
    assert page.count('class="ev"') == 2 and page.count("data:image/jpeg;base64,") == 2
    assert 'id="driver-anna"' in page and "Unknown driver (no manifest named a driver" in page
    assert 'data-f="type" value="phone_use"' in page and 'data-f="level" value="critical"' in page
    assert not re.search(r'(src|href)="(https?:)?//|<link|@import|url\(', page)  # nothing fetched
    assert not re.search(r"\d\.0 drives|e\+0|>nan<|NaN", page.split("<script>")[0].replace(
        page[page.find("data:image"):page.rfind("base64,") + 8], ""))
    row = {r["drive"]: r for r in csv.DictReader(open(tmp_path / "fleet.csv"))}["a1"]
    assert row["drowsiness_count"] == "1" and row["drowsiness_per_h"] == ""  # 30 s: a count, no rate


def test_metrics_of_an_older_version_are_recomputed(tmp_path):
    d = make_drive(tmp_path, "d1", events=[ev("yawn", "none", 1.0)])
    (d / "metrics.json").write_text(json.dumps({"drive": "d1", "yawn_per_h": 120.0}))
    assert fr.read_row(d)["yawn_count"] == 1
    fr.write_metrics(d)
    assert fr.read_row(d)["row_version"] == fr.ROW_VERSION


def test_drives_left_out_of_the_report_are_named_with_their_reason(tmp_path):
    make_drive(tmp_path, "good", driver="anna")
    bad = make_drive(tmp_path, "cut", driver="ben")
    (bad / "summary.json").write_text('{"duration_s": 3')  # cut off
    (tmp_path / "fleet.jsonl").write_text(
        json.dumps({"drive": "broken", "status": "failed", "reason": "the video could not be opened"}) + "\n" +
        json.dumps({"drive": "good", "status": "ok"}) + "\n")
    stats = fr.write_report(tmp_path)
    page = (tmp_path / "fleet.html").read_text()
    assert stats["report_drives"] == 1
    assert "2 drives not in this report" in page and "broken: failed: the video could not be opened" in page
    assert "cut: its results cannot be read (JSONDecodeError" in page and "analyse it again with --force" in page
