"""Per-frame marks (``scenarios/frame_marks/ir_clips/*.csv``) turned into a truth file of the
scenario scorer (``scenarios/ir_clips.yaml``) by fixed rules, so the intervals follow the marks
exactly (``tools/frame_marks_to_truth.py``).

Each frame gets one state, the first that applies:

* ``closed``: eyes marked closed (a lone ``half`` frame between closed ones is closed too);
* ``aside``: head ``away`` or ``aside``, or gaze ``aside``;
* ``down``: gaze ``down`` (eyes open, with the head down or not);
* ``up``: head ``up`` with the eyes open (the chin raised, eyes on the road or above);
* ``open``: eyes open with the gaze on the road, or a blink (closed and half-open frames between
  open ones, ``BLINK_MAX_S`` at most), with no phone marked (a phone in use is a distraction of
  its own, judged by the phone's truth below);
* nothing (``half``, ``hidden`` with the head forward, ``unknown``): left out of every interval.

Runs of one state become intervals from their first to their last frame's time: ``closed`` ->
``eyes_closed``, ``aside`` -> ``looking_aside``, ``down`` -> ``looking_down``, ``up`` ->
``looking_up``, ``open`` -> ``attentive``; runs shorter than ``MIN_RUN_FRAMES`` are left out
(marking noise). Runs of ``mouth: yawn`` of ``MIN_YAWN_S`` or more give ``yawn`` intervals (they
overlap the eye states; a yawn cut short by the clip's start cannot be told from talking).
The phone's truth (a file of its own, ``scenarios/ir_phone.yaml``): runs of a phone marked at the
ear, in the hand or in front of the face (``unsure`` frames between such frames count with them)
give ``phone`` intervals, runs with no phone ``no_phone`` ones (both ``MIN_RUN_FRAMES`` or more).
"""
from __future__ import annotations

import csv
from pathlib import Path

BLINK_MAX_S = 0.5
MIN_RUN_FRAMES = 3
MIN_YAWN_S = 1.0  # a yawn the clip shows for less (cut by its start) cannot be told from talking
PHONE_MARKS = ("ear", "hand", "front")
LABEL = {"closed": "eyes_closed", "aside": "looking_aside", "down": "looking_down", "up": "looking_up",
         "open": "attentive"}


def read_marks(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(fh)]


def _runs(values: list[str]) -> list[tuple[str, int, int]]:
    """(value, first, last) of each run of equal values."""
    out: list[tuple[str, int, int]] = []
    for i, v in enumerate(values):
        if out and out[-1][0] == v and out[-1][2] == i - 1:
            out[-1] = (v, out[-1][1], i)
        else:
            out.append((v, i, i))
    return out


def eye_states(rows: list[dict[str, str]], fps: float) -> list[str]:
    """The state of each frame (see the module docstring); "" for frames left out."""
    eyes = [r["eyes"] for r in rows]
    for i in range(1, len(eyes) - 1):  # a lone half frame inside a closure is part of it
        if eyes[i] == "half" and eyes[i - 1] == "closed" and eyes[i + 1] == "closed":
            eyes[i] = "closed"
    # a blink: a closure (with the half-open frames around it) no longer than BLINK_MAX_S between
    # open frames; it belongs to the attentive driving around it, whatever its gaze mark says
    lidded = ["shut" if e in ("closed", "half") else e for e in eyes]
    blink = set()
    for v, a, b in _runs(lidded):
        if (v == "shut" and "closed" in eyes[a:b + 1] and (b - a + 1) / fps <= BLINK_MAX_S and a > 0
                and b < len(eyes) - 1 and eyes[a - 1] == "open" and eyes[b + 1] == "open"):
            blink.update(range(a, b + 1))
    out = []
    for i, r in enumerate(rows):
        head, gaze = r.get("head", ""), r.get("gaze", "")
        if eyes[i] == "closed" and i not in blink:
            out.append("closed")
        elif head in ("away", "aside") or gaze == "aside":
            out.append("aside")
        elif gaze == "down" and eyes[i] in ("open", "half"):
            out.append("down")
        elif head == "up" and (eyes[i] == "open" or i in blink):
            out.append("up")
        elif r.get("phone", "") in PHONE_MARKS:  # a phone in use is never attentive driving
            out.append("")
        elif i in blink or (eyes[i] == "open" and gaze in ("road", "camera", "")):
            out.append("open")
        else:
            out.append("")
    return out


def intervals(rows: list[dict[str, str]], fps: float) -> list[tuple[str, float, float, str]]:
    out = []
    for state, a, b in _runs(eye_states(rows, fps)):
        if state and b - a + 1 >= MIN_RUN_FRAMES:
            out.append((LABEL[state], a / fps, b / fps, f"frames {a}-{b}"))
    for v, a, b in _runs([r.get("mouth", "") for r in rows]):
        if v == "yawn" and (b - a + 1) / fps >= MIN_YAWN_S:
            out.append(("yawn", a / fps, b / fps, f"frames {a}-{b}"))
    return sorted(out, key=lambda iv: (iv[1], iv[0]))



def phone_intervals(rows: list[dict[str, str]], fps: float) -> list[tuple[str, float, float, str]]:
    marks = [r.get("phone", "") or "none" for r in rows]
    state = ["phone" if m in PHONE_MARKS else "no_phone" if m == "none" else "" for m in marks]
    for i, m in enumerate(marks):  # unsure frames between phone frames count with them
        if m == "unsure":
            before = next((s for s in reversed(state[:i]) if s), "")
            after = next((s for s in state[i + 1:] if s), "")
            if before == after == "phone":
                state[i] = "phone"
    out = []
    for lab, a, b in _runs(state):
        if lab and b - a + 1 >= MIN_RUN_FRAMES:
            kinds = sorted({marks[i] for i in range(a, b + 1)} & set(PHONE_MARKS))
            note = f"frames {a}-{b}" + (f", {' / '.join(kinds)}" if kinds else "")
            out.append((lab, a / fps, b / fps, note))
    return out


def truth_file(marks: str | Path, fps: float, video_dir: str, *, ext: str = ".avi", note: str = "",
               phone: bool = False) -> str:
    """The truth file (YAML text) of every marks CSV in the folder ``marks``: the eye / gaze / yawn
    intervals, or with ``phone`` the phone's; ``video_dir``: the videos' folder relative to the file."""
    lines = ["# Generated by tools/frame_marks_to_truth.py from the per-frame marks in",
             f"# {marks} (marked by eye; the rules are in the tool's docstring). Do not edit by hand:",
             "# change the marks and generate again.", f"video_dir: {video_dir}"]
    if note:
        lines.append(f"note: >-\n  {note}")
    lines.append("clips:")
    for path in sorted(Path(marks).glob("*.csv")):
        rows = read_marks(path)
        ivs = phone_intervals(rows, fps) if phone else intervals(rows, fps)
        if not ivs:
            continue
        lines += [f"  - name: {path.stem}", f"    video: {path.stem}{ext}", "    intervals:"]
        lines += [f"      - [{lab}, {a:.2f}, {b:.2f}, \"{why}\"]" for lab, a, b, why in ivs]
    return "\n".join(lines) + "\n"
