#!/usr/bin/env python
"""Turn per-frame marks (scenarios/frame_marks/ir_clips/*.csv) into a truth file of the scenario
scorer (scenarios/ir_clips.yaml), by fixed rules, so the intervals follow the marks exactly:

    python tools/frame_marks_to_truth.py scenarios/frame_marks/ir_clips --fps 10 \
        --video-dir ../../shared/data/ir_clips --out scenarios/ir_clips.yaml --note "$(cat \
        scenarios/frame_marks/ir_note.txt)"

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
With ``--phone`` the truth is the phone's instead (a file of its own, ``scenarios/ir_phone.yaml``):
runs of a phone marked at the ear, in the hand or in front of the face (``unsure`` frames between
such frames count with them) give ``phone`` intervals, runs with no phone ``no_phone`` ones (both
``MIN_RUN_FRAMES`` or more).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from driver_monitor.evaluation.frame_marks import truth_file


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("marks", help="folder of per-frame marks CSVs")
    ap.add_argument("--fps", type=float, required=True)
    ap.add_argument("--video-dir", required=True, help="the videos' folder, relative to the output file")
    ap.add_argument("--ext", default=".avi")
    ap.add_argument("--out", required=True)
    ap.add_argument("--note", default="", help="what the clips are, for the report")
    ap.add_argument("--phone", action="store_true", help="the phone's truth (phone / no_phone intervals)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    text = truth_file(args.marks, args.fps, args.video_dir, ext=args.ext, note=args.note, phone=args.phone)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
