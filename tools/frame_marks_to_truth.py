#!/usr/bin/env python
"""Turn per-frame marks (scenarios/frame_marks/ir_clips/*.csv) into a truth file of the scenario
scorer (scenarios/ir_clips.yaml), by fixed rules, so the intervals follow the marks exactly:

    python tools/frame_marks_to_truth.py scenarios/frame_marks/ir_clips --fps 10 \
        --video-dir ../../shared/data/ir_clips --out scenarios/ir_clips.yaml --note "$(cat \
        scenarios/frame_marks/ir_note.txt)"

The rules (the states of a frame, the runs that become intervals, the phone's truth with
``--phone``) are those of ``driver_monitor/evaluation/frame_marks.py``, which says them in full.
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
