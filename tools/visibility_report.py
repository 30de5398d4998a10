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
import csv
import json
import sys
from pathlib import Path

import numpy as np


from driver_monitor.errors import DriverMonitorError, report


def summarise(folder: Path, min_visibility: float) -> dict:
    """One analyze folder -> {frames, regions: {name: {median, hidden_share}}, aus_hidden: {au: share}}."""
    path = folder / "frames.csv"
    if not path.is_file():
        raise DriverMonitorError(f"{folder} has no frames.csv; pass analyze output folders")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        rows = [r for r in reader if r.get("face_detected") == "1"]
    regions = [c[4:] for c in reader.fieldnames or () if c.startswith("vis_")]
    if not regions:
        raise DriverMonitorError(f"{path} has no vis_* columns: it was written without a region-attention model")
    rows = [r for r in rows if r["vis_" + regions[0]] != ""]
    out: dict = {"folder": folder.name, "frames": len(rows), "regions": {}, "aus_hidden": {}}
    for name in regions:
        v = np.array([float(r["vis_" + name]) for r in rows])
        out["regions"][name] = ({"median": float(np.median(v)), "hidden_share": float(np.mean(v < min_visibility))}
                                if len(v) else {"median": float("nan"), "hidden_share": float("nan")})
    hidden = [r["aus_hidden"].split() for r in rows]
    for au in sorted({a for h in hidden for a in h}, key=lambda a: int(a[2:])):
        out["aus_hidden"][au] = float(np.mean([au in h for h in hidden]))
    return out


def markdown(results: list[dict]) -> str:
    regions = list(results[0]["regions"])
    lines = ["| drive | frames | " + " | ".join(r.replace("_", " ") for r in regions) + " | AUs greyed out |",
             "|---" * (len(regions) + 3) + "|"]
    for res in results:
        cells = [f"{res['regions'][r]['median']:.2f} ({100 * res['regions'][r]['hidden_share']:.0f} %)"
                 for r in regions]
        greyed = ", ".join(f"{au} {100 * s:.0f} %" for au, s in res["aus_hidden"].items() if s >= 0.01) or "none"
        lines.append(f"| {res['folder']} | {res['frames']} | " + " | ".join(cells) + f" | {greyed} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="analyze output folders (each with frames.csv)")
    ap.add_argument("--min-visibility", type=float, default=0.8, help="engine.min_region_visibility of the runs")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
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
