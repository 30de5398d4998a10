"""How the phone detector alone sees the marked phones: every frame of the marked clips, on the whole
frame and on the crop around the driver.

    python tools/phone_eval.py --out results/phone_eval --doc docs/phone_eval.md

Reads the per-frame marks (``scenarios/frame_marks/``: the ``phone`` column of the near-infrared
clips: none / ear / hand / front / unsure) and runs ``engines/phone/yolox_nano.onnx`` on each frame
twice: the whole frame, and the region around the driver's face (``engine.phone.driver_region``,
the face from the app's own face mesh). Every clip of ``../shared/data/videos`` (no phone in any) is
a no-phone check too. Writes ``frames.csv`` (the best phone score of each frame on each view) and
``summary.json`` under ``--out``, and the tables to ``--doc``: frames found by mark and score
threshold, frames with a phone found on phone-free clips, clips with any, the detector's
milliseconds, and what voting over runs at ``--rate`` Hz finds on each infrared driver when its
threshold and votes are chosen on the other drivers.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

from driver_monitor.config import PROJECT_ROOT, PhoneConfig
from driver_monitor.errors import DriverMonitorError
from driver_monitor.monitor.phone import PhoneSchedule, PhoneVote
from driver_monitor.stages.phone import PHONE_SCHEDULE_DELAY

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


def run(data: Path, out_dir: Path, size: int | None = None, hands: bool = False) -> list[dict[str, object]]:
    from driver_monitor.capture import open_source
    from driver_monitor.config import load_config
    from driver_monitor.engine.phone import PhoneDetector, driver_region
    from driver_monitor.face.hands import HandFinder, hand_place
    from driver_monitor.face.mesh import FaceMeshDetector
    from driver_monitor.face.select import pick_driver

    cfg = load_config(None)
    det = PhoneDetector(PROJECT_ROOT / "engines" / "phone" / "yolox_nano.onnx", min_score=0.05, size=size)
    rows: list[dict[str, object]] = []
    for clip, video, marks in clips(data):
        mesh = FaceMeshDetector(cfg.face)
        finder = HandFinder() if hands else None
        try:
            with open_source(video, cfg.capture) as src:
                for fr in src:
                    faces = mesh.detect(fr.image, t_s=fr.time_s)
                    mark = marks.get(fr.index, "none") if marks else "none"
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
                    rows.append({
                        "clip": clip, "frame": fr.index, "time_s": round(fr.time_s, 3), "mark": mark,
                        "face": int(bool(faces)),
                        "full_score": round(full[0].score, 4) if full else 0.0,
                        "crop_score": round(crop[0].score, 4) if crop else 0.0,
                        "full_box": " ".join(f"{v:.0f}" for v in full[0].box) if full else "",
                        "crop_box": " ".join(f"{v:.0f}" for v in crop[0].box) if crop else "",
                        "region": " ".join(str(v) for v in region) if region else "",
                        "full_ms": round(full_ms, 2), "crop_ms": round(crop_ms, 2),
                        "hands": len(found_hands) if finder is not None else "",
                        "hand_places": " ".join(f"{dx:.2f},{dy:.2f}" for dx, dy in places),
                    })
        finally:
            mesh.close()
            if finder is not None:
                finder.close()
        print(f"phone_eval: {clip}: {sum(1 for r in rows if r['clip'] == clip)} frames", file=sys.stderr)
    det.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "frames.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


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


def write_doc(s: dict[str, object], path: Path, command: str, size: int) -> None:
    found: dict = s["found_pct"]  # type: ignore[assignment]
    false: dict = s["false"]  # type: ignore[assignment]
    lines = ["# The phone detector and the hands on the marked frames", "", "Produced by:", "",
             "```", command, "```", "",
             f"YOLOX-Nano (COCO, class 67 \"cell phone\", input {size} x {size}) on every frame, once on the "
             "whole frame and once on the region around the driver's face (3.2 face widths wide, 0.6 face "
             "heights above the face to 2.6 below). Frames marked `unsure` are left out. The first tables "
             "are what one detector call sees (no voting, no hands); the voting and the hands follow.", "",
             f"Median milliseconds a call (one thread): whole frame {s['median_ms']['full']:.1f}, "  # type: ignore[index]
             f"driver region {s['median_ms']['crop']:.1f}.", "",
             "## Phone frames found (%), by mark and score threshold", "",
             "| mark | frames | view | " + " | ".join(f">= {t}" for t in THRESHOLDS) + " |",
             "|---|---|---|" + "---|" * len(THRESHOLDS)]
    for mark, by_view in found.items():
        for v in ("full", "crop", "either"):
            lines.append(f"| {mark} | {int(by_view['frames']['n'])} | {v} | "
                         + " | ".join(f"{by_view[v][str(t)]:.1f}" for t in THRESHOLDS) + " |")
    lines += ["", f"## Phone-free clips ({s['free_clips']} clips, {s['free_frames']} frames): frames (clips) "
              "with a phone found", "",
              "| view | " + " | ".join(f">= {t}" for t in THRESHOLDS) + " |", "|---|" + "---|" * len(THRESHOLDS)]
    for v in ("full", "crop", "either"):
        lines.append(f"| {v} | " + " | ".join(
            f"{false[v][str(t)]['frames']} ({len(false[v][str(t)]['clips'])})" for t in THRESHOLDS) + " |")
    lines += ["", "Clips with a false phone at 0.3 (either view): "
              + (", ".join(false["either"]["0.3"]["clips"]) or "none"), "",
              "## Per phone clip: frames marked with a phone, and those found", "",
              "(whole frame / driver region / either)", "",
              "| clip | phone frames | >= 0.1 | >= 0.2 | >= 0.3 |", "|---|---|---|---|---|"]
    for clip, d in s["per_clip"].items():  # type: ignore[union-attr]
        lines.append(f"| {clip} | {d['phone frames']} | " + " | ".join(
            f"{d[f'full >= {t}']} / {d[f'crop >= {t}']} / {d[f'either >= {t}']}" for t in (0.1, 0.2, 0.3)) + " |")
    top = sorted(s["free_max_score"].items(), key=lambda kv: -kv[1])[:6]  # type: ignore[union-attr]
    lines += ["", "Phone-free clips with the highest phone score on any frame (either view): "
              + ", ".join(f"{c} {v:.2f}" for c, v in top)]
    vote: dict = s.get("vote_by_driver") or {}  # type: ignore[assignment]
    if vote:
        lines += ["", f"## Voting over detector runs at {s['rate_hz']} Hz ({s.get('busy_rate_hz')} Hz once a run "
                  "scores the wake score), chosen on the other drivers", "",
                  "The runs fall on the frames the app's schedule picks (`PhoneSchedule`: `phone.rate_hz` runs a "
                  "second of video, `phone.busy_rate_hz` while one of the last n runs reached `phone.wake_score`). "
                  "For each infrared driver in turn: the view, score threshold, k-of-n votes and wake score that "
                  "find the most phone clips of the other drivers within 2 s with no false clip on theirs or on "
                  "the shared clips (a false clip costs two found ones; fewer runs break ties), then scored on the "
                  "held-out driver. Latency: from the first frame marked with a phone to the run that completes "
                  "the vote; a phone found later than 2 s counts as missed.", "",
                  "| held-out driver | chosen on the others | phone clips found | latency (s) | missed | "
                  "phone-free clips with a phone | runs a second, phone-free clips |", "|---|---|---|---|---|---|---|"]
        for d, v in vote.items():
            ch = v["chosen"]
            lines.append(f"| {d} | {ch['view']}, >= {ch['threshold']}, {ch['votes']}, wake {ch.get('wake')} | "
                         f"{v['found']} / {v['phone clips']} | {', '.join(str(x) for x in v['latency_s']) or '-'} | "
                         f"{', '.join(v['missed']) or '-'} | {len(v['false clips'])} / {v['phone-free clips']}"
                         f"{' (' + ', '.join(v['false clips']) + ')' if v['false clips'] else ''} | "
                         f"{v.get('runs_per_s_phone_free', '-')} |")
    hands: dict = s.get("hands") or {}  # type: ignore[assignment]
    if hands:
        lines += ["", "## The hands (MediaPipe Hands, every frame)", "",
                  f"A hand at the head: its centre {HAND_AT_HEAD_DX[0]}-{HAND_AT_HEAD_DX[1]} face widths beside the "
                  f"face's centre and {HAND_AT_HEAD_DY[0]} to {HAND_AT_HEAD_DY[1]} face heights below it; low: "
                  f"{HAND_LOW_DY} face heights or more below.", "",
                  "| frames | n | any hand % | hand at head % | hand low % | hands' \\|dx\\| 5 / 50 / 95 % | "
                  "hands' dy 5 / 50 / 95 % |", "|---|---|---|---|---|---|---|"]
        for k, v in hands["frames"].items():
            lines.append(f"| {k} | {v['frames']} | {v['any hand %']:.1f} | {v['hand at head %']:.1f} | "
                         f"{v['hand low %']:.1f} | {v['|dx| 5/50/95']} | {v['dy 5/50/95']} |")
        with_hand = hands["phone clips with a hand at the head (2 of 3 runs)"]
        lines += ["", "Clips where a hand is at the head in 2 of 3 runs at the voting rate: phone clips "
                  + f"{len(with_hand)} of {len(with_hand) + len(hands['phone clips without'])}"
                  + f" (without: {', '.join(hands['phone clips without']) or 'none'}); phone-free clips: "
                  + (", ".join(hands["phone-free clips with a hand at the head"]) or "none") + ".",
                  "", "Clips where a hand is found beside the face (anywhere in the frame) in 2 of 3 runs: phone clips "
                  + f"{len(hands['phone clips with a hand by the face (2 of 3 runs)'])} of "
                  + f"{len(with_hand) + len(hands['phone clips without'])}; phone-free clips: "
                  + (", ".join(hands["phone-free clips with a hand by the face"]) or "none") + "."]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data",
                    help="the shared data folder (ir_clips/, videos/)")
    ap.add_argument("--out", type=Path, default=Path("results/phone_eval"))
    ap.add_argument("--doc", type=Path, help="write the tables to this Markdown file")
    ap.add_argument("--size", type=int, help="the detector's input side (default the file's, 416)")
    ap.add_argument("--hands", action="store_true", help="also find the hands (MediaPipe) and say where they are")
    ap.add_argument("--rate", type=float, default=PhoneConfig().rate_hz,
                    help="detector runs a second of video while nothing phone-like was seen")
    ap.add_argument("--busy-rate", type=float, default=PhoneConfig().busy_rate_hz,
                    help="detector runs a second of video once a run scored the wake score")
    ap.add_argument("--reuse", action="store_true", help="summarise the frames.csv already under --out")
    args = ap.parse_args(argv)
    if not (args.data / "ir_clips").is_dir():
        print(f"phone_eval: {args.data}/ir_clips not found; pass --data pointing at the shared data folder",
              file=sys.stderr)
        return 2
    try:
        if args.reuse:
            with open(args.out / "frames.csv", newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        else:
            rows = run(args.data, args.out, args.size, args.hands)
    except DriverMonitorError as err:
        print(f"phone_eval: {err}", file=sys.stderr)
        return err.exit_code
    s = summarise(rows)
    with open(MARKS / "subjects.csv", newline="", encoding="utf-8") as fh:
        subjects = {row["clip"]: row["subject"] for row in csv.DictReader(fh)}
    s["rate_hz"] = args.rate
    s["busy_rate_hz"] = args.busy_rate
    s["vote_by_driver"] = vote_by_driver(rows, subjects, args.rate, args.busy_rate)
    if any(str(r.get("hands", "")) != "" for r in rows):
        s["hands"] = hand_summary(rows, args.rate)
    (args.out / "summary.json").write_text(json.dumps(s, indent=1), encoding="utf-8")
    if args.doc:
        write_doc(s, args.doc, "python tools/phone_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  args.size or 416)
    print(json.dumps({"found_pct_all_phone_either": s["found_pct"]["all phone"]["either"],  # type: ignore[index]
                      "false_either": {t: v["frames"] for t, v in s["false"]["either"].items()}}))  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
