"""How the phone detector alone sees the marked phones (``tools/phone_eval.py``): every frame of the
marked clips, on the whole frame and on the crop around the driver.

Reads the per-frame marks (``scenarios/frame_marks/``: the ``phone`` column of the near-infrared
clips: none / ear / hand / front / unsure) and runs ``engines/phone/yolox_nano.onnx`` on each frame
twice: the whole frame, and the region around the driver's face (``engine.phone.driver_region``,
the face from the app's own face mesh). Every clip of ``../shared/data/videos`` (no phone in any) is
a no-phone check too. The summary: frames found by mark and score threshold, frames with a phone
found on phone-free clips, clips with any, the detector's milliseconds, and what voting over runs
finds on each infrared driver when its threshold and votes are chosen on the other drivers; the
tables are ``phone_report``'s.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import PROJECT_ROOT, PhoneConfig
from ..monitor.phone import PhoneSchedule, PhoneVote
from ..stages.phone import PHONE_SCHEDULE_DELAY

MARKS = PROJECT_ROOT / "scenarios" / "frame_marks"
PHONE_MARKS = ("ear", "hand", "front")
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


def clips(data: Path) -> list[tuple[str, Path, dict[int, str]]]:
    """``(clip, video, frame -> phone mark)`` for every marked infrared clip and every shared video
    (marked ``none`` throughout: no phone shows in any)."""
    out = []
    with open(MARKS / "subjects.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            marks_csv = MARKS / "ir_clips" / f"{row['clip']}.csv"
            if not marks_csv.is_file():
                continue
            with open(marks_csv, newline="", encoding="utf-8") as mf:
                marks = {int(r["frame"]): (r.get("phone") or "none").strip() for r in csv.DictReader(mf)}
            out.append((row["clip"], data / row["video"], marks))
    for video in sorted((data / "videos").iterdir()):
        if video.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"):
            out.append((video.stem, video, {}))
    return out


def _detect(det, fr, faces, finder, cfg) -> dict[str, object]:
    """One frame's detector readings: the whole frame, the driver's region (when a face is seen),
    the hands and where they are against the driver's face."""
    from ..engine.phone import driver_region
    from ..face.hands import hand_place
    from ..face.select import pick_driver

    t0 = time.perf_counter()
    full = det.detect(fr.image)
    full_ms = (time.perf_counter() - t0) * 1e3
    crop: list = []
    crop_ms = float("nan")
    region = None
    places: list[tuple[float, float]] = []
    found_hands = finder.find(fr.image) if finder is not None else []
    if faces:
        face = faces[pick_driver(faces, fr.image.shape[:2], cfg.face) or 0]
        region = driver_region(face.bbox, fr.image.shape)
        t0 = time.perf_counter()
        crop = det.detect(fr.image, region)
        crop_ms = (time.perf_counter() - t0) * 1e3
        places = [hand_place(hd.box, face.bbox) for hd in found_hands]
    return {
        "full_score": round(full[0].score, 4) if full else 0.0,
        "crop_score": round(crop[0].score, 4) if crop else 0.0,
        "full_box": " ".join(f"{v:.0f}" for v in full[0].box) if full else "",
        "crop_box": " ".join(f"{v:.0f}" for v in crop[0].box) if crop else "",
        "region": " ".join(str(v) for v in region) if region else "",
        "full_ms": round(full_ms, 2), "crop_ms": round(crop_ms, 2),
        "hands": len(found_hands) if finder is not None else "",
        "hand_places": " ".join(f"{dx:.2f},{dy:.2f}" for dx, dy in places),
    }


def _clip_rows(clip: str, video: Path, marks: dict[int, str], det, cfg, hands: bool) -> list[dict[str, object]]:
    """Every frame of one clip: its mark, whether a face was seen, and the detector's readings."""
    from ..capture import open_source
    from ..face.hands import HandFinder
    from ..face.mesh import FaceMeshDetector

    rows: list[dict[str, object]] = []
    mesh = FaceMeshDetector(cfg.face)
    finder = HandFinder() if hands else None
    try:
        with open_source(video, cfg.capture) as src:
            for fr in src:
                faces = mesh.detect(fr.image, t_s=fr.time_s)
                mark = marks.get(fr.index, "none") if marks else "none"
                rows.append({"clip": clip, "frame": fr.index, "time_s": round(fr.time_s, 3), "mark": mark,
                             "face": int(bool(faces)), **_detect(det, fr, faces, finder, cfg)})
    finally:
        mesh.close()
        if finder is not None:
            finder.close()
    return rows


def run(data: Path, out_dir: Path, size: int | None = None, hands: bool = False,
        log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[dict[str, object]]:
    """Every frame of every clip (:func:`clips`) read by the phone detector (and with ``hands`` the
    hand finder); writes ``<out_dir>/frames.csv`` and returns its rows."""
    from ..config import load_config
    from ..engine.phone import PhoneDetector

    cfg = load_config(None)
    det = PhoneDetector(PROJECT_ROOT / "engines" / "phone" / "yolox_nano.onnx", min_score=0.05, size=size)
    rows: list[dict[str, object]] = []
    for clip, video, marks in clips(data):
        rows += _clip_rows(clip, video, marks, det, cfg, hands)
        log(f"phone_eval: {clip}: {sum(1 for r in rows if r['clip'] == clip)} frames")
    det.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_frames(rows, out_dir / "frames.csv")
    return rows


def write_frames(rows: list[dict[str, object]], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def read_frames(path: Path) -> list[dict[str, str]]:
    """The rows of a frames.csv written by :func:`run`."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_subjects() -> dict[str, str]:
    """clip -> the person it shows (``scenarios/frame_marks/subjects.csv``)."""
    with open(MARKS / "subjects.csv", newline="", encoding="utf-8") as fh:
        return {row["clip"]: row["subject"] for row in csv.DictReader(fh)}


def summary(rows: list[dict], rate_hz: float, busy_rate_hz: float) -> dict[str, object]:
    """Everything summary.json holds: the detector's hits by mark and threshold, the false ones, the
    voting chosen on the other drivers (:func:`vote_by_driver`) and, when the hands were read, theirs."""
    s = summarise(rows)
    s["rate_hz"] = rate_hz
    s["busy_rate_hz"] = busy_rate_hz
    s["vote_by_driver"] = vote_by_driver(rows, read_subjects(), rate_hz, busy_rate_hz)
    if any(str(r.get("hands", "")) != "" for r in rows):
        s["hands"] = hand_summary(rows, rate_hz)
    return s


def _score(r: dict[str, object], view: str) -> float:
    """A frame's best phone score on one view: ``full``, ``crop`` or ``either`` (the higher)."""
    return (max(float(r["full_score"]), float(r["crop_score"])) if view == "either"  # type: ignore[arg-type]
            else float(r[f"{view}_score"]))  # type: ignore[arg-type]


def _by_clip(rows: list[dict[str, object]]) -> dict[str, list[dict[str, object]]]:
    by: dict[str, list[dict[str, object]]] = {}
    for r in rows:
        by.setdefault(str(r["clip"]), []).append(r)
    return by


def summarise(rows: list[dict[str, object]]) -> dict[str, object]:
    views = ("full", "crop", "either")
    found: dict[str, dict[str, dict[str, float]]] = {}
    for mark in PHONE_MARKS + ("all phone",):
        sel = [r for r in rows if (r["mark"] in PHONE_MARKS if mark == "all phone" else r["mark"] == mark)]
        found[mark] = {v: {str(t): 100.0 * np.mean([_score(r, v) >= t for r in sel]) if sel else float("nan")
                           for t in THRESHOLDS} for v in views}
        found[mark]["frames"] = {"n": float(len(sel))}
    phone_clips = sorted({str(r["clip"]) for r in rows if r["mark"] in PHONE_MARKS})
    free = [r for r in rows if str(r["clip"]) not in phone_clips]
    free_clips = sorted({str(r["clip"]) for r in free})
    false = {v: {str(t): {"frames": int(sum(_score(r, v) >= t for r in free)),
                          "clips": sorted({str(r["clip"]) for r in free if _score(r, v) >= t})}
                 for t in THRESHOLDS} for v in views}
    per_clip = {}
    for clip in phone_clips:
        sel = [r for r in rows if r["clip"] == clip and r["mark"] in PHONE_MARKS]
        per_clip[clip] = {"phone frames": len(sel), **{
            f"{v} >= {t}": int(sum(_score(r, v) >= t for r in sel)) for v in views for t in (0.1, 0.2, 0.3)}}
    free_max = {c: max(_score(r, "either") for r in free if r["clip"] == c) for c in free_clips}
    ms = {v: float(np.nanmedian([float(r[f"{v}_ms"]) for r in rows])) for v in ("full", "crop")}  # type: ignore[arg-type]
    return {"found_pct": found, "false": false, "per_clip": per_clip, "phone_clips": phone_clips,
            "free_clips": len(free_clips), "free_frames": len(free), "median_ms": ms,
            "free_max_score": free_max}


#: a hand "at the head": its centre beside the face (0.35-1.6 face widths from the face's centre, not
#: over the mouth or the nose) and between a third of a face height above the face's centre and half
#: of one below (the ear and the jaw), where a hand holding a phone to the ear is
HAND_AT_HEAD_DX = (0.35, 1.6)
HAND_AT_HEAD_DY = (-0.35, 0.5)
#: a hand "low": below the chin (a phone held at the chest or in the lap)
HAND_LOW_DY = 0.9


def hand_places(r: dict[str, object]) -> list[tuple[float, float]]:
    out = []
    for item in str(r.get("hand_places") or "").split():
        dx, dy = item.split(",")
        out.append((float(dx), float(dy)))
    return out


def hand_at_head(r: dict[str, object]) -> bool:
    return any(HAND_AT_HEAD_DX[0] <= abs(dx) <= HAND_AT_HEAD_DX[1] and HAND_AT_HEAD_DY[0] <= dy <= HAND_AT_HEAD_DY[1]
               for dx, dy in hand_places(r))


def hand_low(r: dict[str, object]) -> bool:
    return any(dy >= HAND_LOW_DY for _, dy in hand_places(r))


def hand_summary(rows: list[dict[str, object]], rate_hz: float) -> dict[str, object]:
    """The hands against the marks: frames with a hand at the head / low by phone mark (and on
    phone-free clips), and clips where a hand stays at the head for 2 of 3 runs at ``rate_hz``."""
    groups: dict[str, list[dict[str, object]]] = {}
    phone_clips = {str(r["clip"]) for r in rows if r["mark"] in PHONE_MARKS}
    for r in rows:
        key = (str(r["mark"]) if r["mark"] in PHONE_MARKS
               else "no phone, phone clip" if str(r["clip"]) in phone_clips else "phone-free clip")
        groups.setdefault(key, []).append(r)
    def spread(v: list[dict[str, object]], axis: int) -> str:
        vals = [abs(p[0]) if axis == 0 else p[1] for r in v for p in hand_places(r)]
        return " / ".join(f"{q:.2f}" for q in np.percentile(vals, (5, 50, 95))) if vals else "-"

    frames = {k: {"frames": len(v), "any hand %": 100.0 * np.mean([bool(hand_places(r)) for r in v]),
                  "hand at head %": 100.0 * np.mean([hand_at_head(r) for r in v]),
                  "hand low %": 100.0 * np.mean([hand_low(r) for r in v]),
                  "|dx| 5/50/95": spread(v, 0), "dy 5/50/95": spread(v, 1)} for k, v in groups.items()}
    by = _by_clip(rows)
    fixed = PhoneConfig(min_score=0.5, votes=2, runs=3, rate_hz=rate_hz, busy_rate_hz=rate_hz)
    voted = {c: _first_vote([{**r, "full_score": float(hand_at_head(r)), "crop_score": 0.0} for r in rs],
                            "full", fixed)[0] for c, rs in by.items()}
    any_hand = {c: _first_vote([{**r, "full_score": float(bool(hand_places(r))), "crop_score": 0.0} for r in rs],
                               "full", fixed)[0] for c, rs in by.items()}
    return {"frames": frames,
            "phone clips with a hand by the face (2 of 3 runs)": sorted(c for c in phone_clips
                                                                        if any_hand[c] is not None),
            "phone-free clips with a hand by the face": sorted(c for c in by if c not in phone_clips
                                                               and any_hand[c] is not None),
            "phone clips with a hand at the head (2 of 3 runs)": sorted(c for c in phone_clips if voted[c] is not None),
            "phone clips without": sorted(c for c in phone_clips if voted[c] is None),
            "phone-free clips with a hand at the head": sorted(c for c in by if c not in phone_clips
                                                               and voted[c] is not None)}


VOTE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
VOTES = ((2, 3), (3, 5), (4, 7), (5, 7))
WAKE_SCORES = (0.05, 0.1, 0.15)


def _first_vote(rows: list[dict[str, object]], view: str, cfg: PhoneConfig) -> tuple[float | None, int]:
    """The time of the first detector run at which the monitor's vote (:class:`PhoneVote`) says a
    phone is in use, with the runs on the frames the pipeline's :class:`PhoneSchedule` picks
    (readings counting for the rate ``PHONE_SCHEDULE_DELAY`` frames later, as in the pipeline);
    None if never; and how many runs the clip took."""
    vote, schedule = PhoneVote(cfg), PhoneSchedule(cfg, PHONE_SCHEDULE_DELAY)
    first, runs = None, 0
    for r in rows:
        ts, index = float(r["time_s"]), int(r["frame"])  # type: ignore[arg-type]
        if not schedule.due(ts, index):
            continue
        s = _score(r, view)
        schedule.ran(ts, index, s)
        runs += 1
        if vote.update(s) and first is None:
            first = ts
    return first, runs


def _choose(by: dict[str, list[dict[str, object]]], train: list[str], phone: set[str],
            rate_hz: float, busy_hz: float) -> tuple[str, PhoneConfig]:
    """The view, score threshold, k-of-n and wake score that find the most phone clips of ``train``
    within 2 s with no false clip (a false clip costs two found ones; fewer runs break ties)."""
    best = None
    for view in ("full", "crop", "either"):
        for t in VOTE_THRESHOLDS:
            for k, n in VOTES:
                for wake in WAKE_SCORES:
                    cfg = PhoneConfig(min_score=t, votes=k, runs=n, rate_hz=rate_hz, busy_rate_hz=busy_hz,
                                      wake_score=wake)
                    found = false = runs = 0
                    for c in train:
                        hit, r = _first_vote(by[c], view, cfg)
                        runs += r * (2 if view == "either" else 1)
                        if c in phone:
                            found += hit is not None and hit - _phone_start(by[c]) <= 2.0
                        else:
                            false += hit is not None
                    key = (found - 2 * false, -false, -runs, t)
                    if best is None or key > best[0]:
                        best = (key, view, cfg)
    assert best is not None
    return best[1], best[2]


def _phone_start(rows: list[dict[str, object]]) -> float:
    return min(float(r["time_s"]) for r in rows if r["mark"] in PHONE_MARKS)  # type: ignore[arg-type]


def vote_by_driver(rows: list[dict[str, object]], subjects: dict[str, str], rate_hz: float,
                   busy_hz: float) -> dict[str, object]:
    """Voting chosen on the other drivers, scored on each infrared driver in turn (:func:`_choose`),
    then on the held-out driver the phone clips found within 2 s, the latency from the first frame
    marked with a phone, the phone-free clips with a false phone and the detector runs a second of
    video on them. The shared clips (no phone) always count among the others."""
    by = _by_clip(rows)
    phone = {c for c, rs in by.items() if any(r["mark"] in PHONE_MARKS for r in rs)}
    drivers = sorted({subjects[c] for c in by if c in subjects and subjects[c].startswith("ir_")})
    out: dict[str, object] = {}
    for held in drivers:
        view, cfg = _choose(by, [c for c in by if subjects.get(c) != held], phone, rate_hz, busy_hz)
        lat, missed, false_clips, runs, seconds = [], [], [], 0, 0.0
        for c in (c for c in by if subjects.get(c) == held):
            hit, r = _first_vote(by[c], view, cfg)
            if c in phone:
                late = hit is None or hit - _phone_start(by[c]) > 2.0
                (missed.append(c) if late else lat.append(round(max(0.0, hit - _phone_start(by[c])), 2)))  # type: ignore[operator]
                continue
            false_clips += [c] if hit is not None else []
            runs += r * (2 if view == "either" else 1)
            seconds += float(by[c][-1]["time_s"]) - float(by[c][0]["time_s"]) + 0.1  # type: ignore[arg-type]
        out[held] = {"chosen": {"view": view, "threshold": cfg.min_score, "votes": f"{cfg.votes} of {cfg.runs}",
                                "wake": cfg.wake_score},
                     "phone clips": sum(c in phone for c in by if subjects.get(c) == held), "found": len(lat),
                     "missed": missed, "latency_s": lat,
                     "phone-free clips": sum(c not in phone for c in by if subjects.get(c) == held),
                     "false clips": false_clips, "runs_per_s_phone_free": round(runs / max(seconds, 1e-9), 2)}
    return out
