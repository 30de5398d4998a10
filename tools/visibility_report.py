#!/usr/bin/env python
"""What a region-attention model said it saw on real drives: per analyze folder (frames.csv with
``vis_<region>`` columns), each region's median visibility over the frames with a face, the share of
those frames where it was hidden, and how often each AU was greyed out.

    driver-monitor evaluate scenarios/shared_clips.yaml --out /tmp/clips
    python tools/visibility_report.py /tmp/clips/*/

Prints a markdown table (one row per folder); ``--json FILE`` also writes the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.evaluation.visibility import markdown, summarise


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="analyze output folders (each with frames.csv)")
    ap.add_argument("--min-visibility", type=float, default=0.8, help="engine.min_region_visibility of the runs")
    ap.add_argument("--json", help="also write the figures here")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        results = [summarise(Path(f), args.min_visibility) for f in args.folders]
    except DriverMonitorError as err:
        return report(err)
    print(markdown(results), end="")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
