#!/usr/bin/env python3
"""Build scenario clips from a marked clip by re-ordering its frames, with their truth file.

What the clips are and why (``driver_monitor/evaluation/scenario_clips.py`` says it in full): the
real frames of ``head_turns.mp4`` re-ordered into glances long enough for the long-distraction
rule, a look down, a face that slides out of the picture and attention time-sharing.

    python tools/make_scenario_clips.py --out results/scenario_clips
    driver-monitor evaluate results/scenario_clips/derived_clips.yaml --out results/derived_eval

The clips are derived from research-use material: keep them out of the repository (results/ is
ignored).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.evaluation.scenario_clips import make_clips

ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--truth", default=str(ROOT / "scenarios" / "shared_clips.yaml"),
                    help="the source clip's truth file (default: scenarios/shared_clips.yaml)")
    ap.add_argument("--video-dir", help="folder of the source videos (default: the truth file's video_dir)")
    ap.add_argument("--out", required=True, help="folder for the clips and derived_clips.yaml")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        make_clips(args.truth, args.video_dir, args.out)
        return 0
    except DriverMonitorError as exc:
        return report(exc)


if __name__ == "__main__":
    sys.exit(main())
