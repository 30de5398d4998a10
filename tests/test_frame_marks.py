"""The per-frame marks (scenarios/frame_marks): complete, with allowed values, one frame per
decoded frame of each video, and scenarios/ir_clips.yaml generated from them unchanged."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from driver_monitor.capture import open_source
from driver_monitor.config import CaptureConfig
from driver_monitor.evaluation.frame_marks import phone_intervals
from tests.conftest import need_data
from tools import frame_marks_to_truth as tool

ROOT = Path(__file__).resolve().parent.parent
MARKS = ROOT / "scenarios" / "frame_marks"
ALLOWED = {
    "eyes": {"open", "closed", "half", "hidden"},
    "gaze": {"road", "down", "aside", "up", "unknown", "camera"},
    "head": {"forward", "down", "aside", "up", "away"},
    "phone": {"none", "ear", "hand", "front", "unsure"},
    "mouth": {"closed", "open", "yawn"},
}
MARK_FILES = sorted(MARKS.glob("*/*.csv"))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("path", MARK_FILES, ids=lambda p: p.stem)
def test_marks_cover_every_frame_with_allowed_values(path: Path) -> None:
    rows = _rows(path)
    assert [int(r["frame"]) for r in rows] == list(range(len(rows)))
    for r in rows:
        for col, allowed in ALLOWED.items():
            if col in r:
                assert r[col] in allowed, (path.name, r["frame"], col, r[col])


def test_every_marked_clip_has_a_subject_and_a_video() -> None:
    subjects = {r["clip"]: r for r in _rows(MARKS / "subjects.csv")}
    assert {p.stem for p in MARK_FILES} == set(subjects)
    assert len(MARK_FILES) == 40 and len({r["subject"] for r in subjects.values()}) == 7


def test_marks_have_one_row_per_decoded_frame() -> None:
    data = need_data()
    for r in _rows(MARKS / "subjects.csv"):
        with open_source(data / r["video"], CaptureConfig()) as src:
            n = sum(1 for _ in src)
        marks = next(MARKS.glob(f"*/{r['clip']}.csv"))
        assert len(_rows(marks)) == n, r["clip"]


def test_ir_truth_file_is_generated_from_the_marks(tmp_path: Path) -> None:
    out = tmp_path / "ir_clips.yaml"
    note = (MARKS / "ir_note.txt").read_text(encoding="utf-8").strip()
    assert tool.main([str(MARKS / "ir_clips"), "--fps", "10", "--video-dir", "../../shared/data/ir_clips",
                      "--out", str(out), "--note", note]) == 0
    committed = (ROOT / "scenarios" / "ir_clips.yaml").read_text(encoding="utf-8")
    generated = out.read_text(encoding="utf-8").replace(str(MARKS / "ir_clips"), "scenarios/frame_marks/ir_clips")
    assert generated == committed


def test_the_phone_truth_file_is_generated_from_the_marks(tmp_path: Path) -> None:
    out = tmp_path / "ir_phone.yaml"
    committed = (ROOT / "scenarios" / "ir_phone.yaml").read_text(encoding="utf-8")
    note = committed.split("note: >-\n  ", 1)[1].split("\n", 1)[0]
    assert tool.main([str(MARKS / "ir_clips"), "--fps", "10", "--video-dir", "../../shared/data/ir_clips",
                      "--out", str(out), "--phone", "--note", note]) == 0
    generated = out.read_text(encoding="utf-8").replace(str(MARKS / "ir_clips"), "scenarios/frame_marks/ir_clips")
    assert generated == committed
    assert committed.count("[phone,") == 11  # every phone clip has its phone


def test_phone_intervals_bridge_unsure_frames_between_phone_frames() -> None:
    marks = ["none"] * 4 + ["ear"] * 3 + ["unsure"] * 2 + ["hand"] * 3 + ["unsure"] * 3 + ["none"] * 3
    rows = [{"phone": m} for m in marks]
    assert phone_intervals(rows, 10.0) == [
        ("no_phone", 0.0, 0.3, "frames 0-3"),
        ("phone", 0.4, 1.1, "frames 4-11, ear / hand"),
        ("no_phone", 1.5, 1.7, "frames 15-17"),
    ]
