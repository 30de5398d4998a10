"""What a region-attention model said it saw on real drives (``tools/visibility_report.py``): per
analyze folder (frames.csv with ``vis_<region>`` columns), each region's median visibility over the
frames with a face, the share of those frames where it was hidden, and how often each AU was greyed
out."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DriverMonitorError


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
