"""The tables of the phone detector's evaluation (``phone``): the Markdown ``tools/phone_eval.py
--doc`` writes."""
from __future__ import annotations

from pathlib import Path

from .phone import HAND_AT_HEAD_DX, HAND_AT_HEAD_DY, HAND_LOW_DY, THRESHOLDS

def _detector_tables(s: dict[str, object], command: str, size: int) -> list[str]:
    """What one detector call sees: phone frames found, false phones, per phone clip."""
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
    return lines


def _vote_table(s: dict[str, object]) -> list[str]:
    """The voting chosen on the other drivers, scored on each infrared driver."""
    lines: list[str] = []
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
    return lines


def _hand_tables(s: dict[str, object]) -> list[str]:
    """Where the hands were against the marks."""
    lines: list[str] = []
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
    return lines


def write_doc(s: dict[str, object], path: Path, command: str, size: int) -> None:
    """The tables of the summary ``s`` (:func:`driver_monitor.evaluation.phone.summary`) to ``path``."""
    lines = _detector_tables(s, command, size) + _vote_table(s) + _hand_tables(s)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
