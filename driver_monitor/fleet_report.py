"""The fleet report: one row per drive, one per driver, and a self-contained HTML page.

Built from the drive folders a batch wrote (``out/drives/<id>/`` with frames.csv, events.jsonl,
summary.json, drive.json), so it can be rebuilt at any time and covers drives of earlier runs.

* ``fleet.csv``: per drive: driver / vehicle / start time, complete, duration, frames, processing
  fps, share of frames with the driver visible, PERCLOS p95, longest eyes-off-road glance, longest
  eyes-closed stretch, and events per hour by type (and by level for the alerts);
* ``fleet_drivers.csv``: the same per driver id (hours driven, events per hour, worst values);
* ``fleet.html``: what a safety manager looks at first: alerts per hour per drive, worst drives
  first, and the distributions of PERCLOS p95 and of the longest glance; inline SVG, no scripts,
  no files beside it.
"""
from __future__ import annotations

import csv
import html
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

# event types counted per hour; the alerts also by level
EVENT_TYPES = ("drowsiness", "distraction", "microsleep", "eyes_closed", "yawn", "glance", "time_sharing",
               "driver_absent", "eyes_not_visible", "camera_lost")
LEVELED = ("drowsiness", "distraction", "microsleep")
LEVELS = ("warning", "critical")


def _num(v: str | None) -> float:
    try:
        return float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _p95(values: list[float]) -> float:
    vals = sorted(v for v in values if math.isfinite(v))
    if not vals:
        return math.nan
    return vals[min(len(vals) - 1, int(math.ceil(0.95 * len(vals))) - 1)]


def drive_row(folder: Path) -> dict[str, Any]:
    """The fleet.csv row of one drive folder."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "drive.json").read_text(encoding="utf-8")) if (folder / "drive.json").is_file() else {}
    with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    duration = float(summary.get("duration_s") or 0.0)
    hours = duration / 3600.0
    seen = [r for r in rows if r.get("camera_ok") == "1"]
    out: dict[str, Any] = {
        "drive": folder.name, "driver_id": meta.get("driver_id", ""), "vehicle_id": meta.get("vehicle_id", ""),
        "start_time": meta.get("start_time", ""), "path": meta.get("path", ""),
        "complete": bool(summary.get("complete", False)), "reason": summary.get("reason", ""),
        "duration_s": round(duration, 3), "frames": int(summary.get("frames") or 0),
        "processing_fps": summary.get("processing_fps"),
        "driver_visible": round(sum(r.get("face_detected") == "1" for r in seen) / len(seen), 4) if seen else math.nan,
        "perclos_p95": _p95([_num(r.get("perclos")) for r in rows]),
        "longest_off_road_s": max((_num(r.get("off_road_s")) for r in rows), default=0.0),
        "longest_eyes_closed_s": max((_num(r.get("eyes_closed_s")) for r in rows), default=0.0),
    }
    for t in EVENT_TYPES:
        of_type = [e for e in events if e.get("type") == t]
        out[f"{t}_per_h"] = round(len(of_type) / hours, 2) if hours > 0 else math.nan
        if t in LEVELED:
            for lvl in LEVELS:
                n = sum(e.get("level") == lvl for e in of_type)
                out[f"{t}_{lvl}_per_h"] = round(n / hours, 2) if hours > 0 else math.nan
    return out


def write_metrics(folder: Path) -> dict[str, Any]:
    """Compute a drive's row once, where its results are, and keep it as metrics.json."""
    row = drive_row(folder)
    (folder / "metrics.json").write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    return row


def read_row(folder: Path) -> dict[str, Any]:
    """A drive's row: its metrics.json (named after the folder it is in now), else computed."""
    try:
        row = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return drive_row(folder)
    row["drive"] = folder.name
    return {k: (math.nan if v is None else v) for k, v in row.items()}


def driver_rows(drive_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per driver id: drives, hours, events per hour over all their driving, worst drive values."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in drive_rows:
        groups.setdefault(r["driver_id"] or "(unknown)", []).append(r)
    out = []
    for driver, rs in sorted(groups.items()):
        hours = sum(r["duration_s"] for r in rs) / 3600.0
        row: dict[str, Any] = {"driver_id": driver, "drives": len(rs), "hours": round(hours, 4)}
        for key in [k for k in rs[0] if k.endswith("_per_h")]:
            count = sum((r[key] if math.isfinite(r[key]) else 0.0) * r["duration_s"] / 3600.0 for r in rs)
            row[key] = round(count / hours, 2) if hours > 0 else math.nan
        for key in ("perclos_p95", "longest_off_road_s", "longest_eyes_closed_s"):
            vals = [r[key] for r in rs if math.isfinite(r[key])]
            row[f"worst_{key}"] = max(vals) if vals else math.nan
        out.append(row)
    return out


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    cols = list(rows[0]) if rows else ["drive"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})


def alerts_per_hour(r: dict[str, Any]) -> float:
    """Drowsiness and distraction alerts per hour: how a safety manager ranks drives."""
    v = [r.get("drowsiness_per_h", 0.0), r.get("distraction_per_h", 0.0)]
    return float(sum(x for x in v if isinstance(x, (int, float)) and math.isfinite(x)))


def _bars(items: Sequence[tuple[str, float]], unit: str, width: int = 720, bar_h: int = 16) -> str:
    """A horizontal bar chart as inline SVG."""
    top = max([v for _, v in items] + [1e-9])
    h = bar_h * len(items) + 8
    parts = [f'<svg width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg" font-size="11" '
             f'font-family="sans-serif">']
    for i, (label, v) in enumerate(items):
        y = 4 + i * bar_h
        w = (width - 330) * v / top
        parts.append(f'<text x="0" y="{y + 12}">{html.escape(label[:40])}</text>'
                     f'<rect x="260" y="{y + 2}" width="{w:.1f}" height="{bar_h - 4}" fill="#c62828"/>'
                     f'<text x="{264 + w:.1f}" y="{y + 12}">{v:.1f} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: Iterable[float], edges: Sequence[float], unit: str) -> str:
    vals = [v for v in values if math.isfinite(v)]
    counts = [sum(lo <= v < hi for v in vals) for lo, hi in zip(edges[:-1], edges[1:])]
    labels = [f"{lo:g}-{hi:g} {unit}" for lo, hi in zip(edges[:-1], edges[1:])]
    return _bars(list(zip(labels, [float(c) for c in counts])), "drives")


def _fmt(v: Any, spec: str) -> str:
    return "" if not isinstance(v, (int, float)) or not math.isfinite(v) else format(v, spec)


def _table_row(r: dict[str, Any]) -> str:
    cells = [html.escape(r["drive"]), html.escape(str(r["driver_id"])), _fmt(r["duration_s"] / 60, ".1f"),
             _fmt(alerts_per_hour(r), ".1f"), _fmt(r["longest_off_road_s"], ".1f"),
             _fmt(r["longest_eyes_closed_s"], ".1f"), _fmt(r["perclos_p95"], ".2f"), "yes" if r["complete"] else "no"]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def write_html(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    worst = sorted(rows, key=alerts_per_hour, reverse=True)
    total_h = sum(r["duration_s"] for r in rows) / 3600.0
    n_alerts = sum(alerts_per_hour(r) * r["duration_s"] / 3600.0 for r in rows)
    table = "".join(_table_row(r) for r in worst)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Fleet report</title>
<style>body{{font-family:sans-serif;margin:24px}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}</style></head><body>
<h1>Fleet report</h1>
<p>{len(rows)} drives, {total_h:.2f} hours, {n_alerts:.0f} drowsiness / distraction alerts
({n_alerts / total_h if total_h else 0:.1f} per hour).</p>
<h2>Alerts per hour, worst drives first</h2>
{_bars([(r['drive'], alerts_per_hour(r)) for r in worst[:40]], "/h")}
<h2>PERCLOS p95 across drives</h2>
{_histogram((r['perclos_p95'] for r in rows), [0, 0.05, 0.1, 0.15, 0.2, 0.3, 1.01], "")}
<h2>Longest glance off the road across drives</h2>
{_histogram((r['longest_off_road_s'] for r in rows), [0, 1, 2, 3, 3.5, 6, 1e9], "s")}
<h2>Drives</h2>
<table><tr><th>drive</th><th>driver</th><th>minutes</th><th>alerts / h</th><th>longest glance s</th>
<th>longest closure s</th><th>PERCLOS p95</th><th>complete</th></tr>{table}</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def write_report(out: str | Path, drives: Sequence[Any] | None = None) -> dict[str, Any]:
    """fleet.csv, fleet_drivers.csv and fleet.html from every complete drive folder in ``out``
    (in the order of ``drives`` when given); returns their paths and the number of drives."""
    out = Path(out)
    root = out / "drives"
    order = [root / d.id for d in drives] if drives is not None else sorted(root.iterdir())
    folders = [f for f in order if f.is_dir() and not f.name.startswith(".") and (f / "summary.json").is_file()
               and (f / "frames.csv").is_file()]
    rows = [read_row(f) for f in folders]
    _write_csv(out / "fleet.csv", rows)
    _write_csv(out / "fleet_drivers.csv", driver_rows(rows))
    write_html(out / "fleet.html", rows)
    return {"report_drives": len(rows), "fleet_csv": str(out / "fleet.csv"), "fleet_html": str(out / "fleet.html")}
