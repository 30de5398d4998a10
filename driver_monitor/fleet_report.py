"""The fleet report: one row per drive, one per driver, and a self-contained HTML page.

Built from the drive folders a batch wrote (``out/drives/<id>/`` with frames.csv, events.jsonl,
summary.json, drive.json and the alerts' pictures in ``events/``), so it can be rebuilt at any time
and covers drives of earlier runs.

* ``fleet.csv``: per drive: driver / vehicle / start time, complete, duration, frames, processing
  fps, share of frames with the driver visible, PERCLOS p95 (and why it is missing), longest
  eyes-off-road glance, longest eyes-closed stretch, events by type (and by level for the alerts)
  as counts, and per hour where the drive is long enough for a rate (``RATE_MIN_S``);
* ``fleet_drivers.csv``: the same per driver id;
* ``fleet.html``: drivers and drives ranked by alerts, then every alert at warning or above with
  its time, duration, level and picture (``events/NNN.jpg``, embedded), per driver, with filters by
  type and level; one self-contained file (inline SVG, CSS and a little script; nothing fetched).
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import json
import math
import re
from urllib.parse import quote
from pathlib import Path
from typing import Any, Sequence

# event types counted; the alerts also by level
EVENT_TYPES = ("drowsiness", "distraction", "phone_use", "microsleep", "eyes_closed", "yawn", "glance",
               "time_sharing", "driver_absent", "eyes_not_visible", "camera_lost")
LEVELED = ("drowsiness", "distraction", "phone_use", "microsleep")
LEVELS = ("warning", "critical")
# what a drive or driver is ranked by, in this order, with the words the page uses
RANKED = {"drowsiness": "Drowsiness", "distraction": "Distraction", "phone_use": "Phone use", "yawn": "Yawns"}
# a rate per hour only over this much driving: below it one event makes a rate of hundreds per hour
RATE_MIN_S = 600.0
UNKNOWN_DRIVER = "(unknown)"
ROW_VERSION = 2  # metrics.json written before this version are recomputed from the frames


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


def per_hour(count: float, seconds: float) -> float:
    """Events per hour, or NaN where the driving time is too short for a rate to mean anything."""
    return round(count * 3600.0 / seconds, 2) if seconds >= RATE_MIN_S else math.nan


def read_events(folder: Path) -> list[dict[str, Any]]:
    """events.jsonl of a drive folder, each with its ``line`` (from 1)."""
    path = folder / "events.jsonl"
    if not path.is_file():
        return []
    out = []
    for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text.strip():
            try:
                out.append({**json.loads(text), "line": i})
            except ValueError:
                continue  # a line cut off by a crash: the lines before it still count
    return out


def perclos_reason(rows: Sequence[dict[str, str]], summary: dict[str, Any]) -> str:
    """Why a drive has no PERCLOS: it needs ``perclos_min_coverage`` of ``perclos_window_s`` of
    readable eyes (the eyelids judged) before it counts."""
    cfg = (summary.get("config") or {}).get("drowsiness") or {}
    need_s = float(cfg.get("perclos_window_s", 60.0)) * float(cfg.get("perclos_min_coverage", 0.8))
    times = [_num(r.get("time_s")) for r in rows]
    steps = [b - a for a, b in zip(times, times[1:]) if math.isfinite(a) and math.isfinite(b) and b > a]
    dt = sorted(steps)[len(steps) // 2] if steps else 0.0
    read_s = dt * sum(1 for r in rows if r.get("eyes_closed", "") != "")
    if not any(r.get("face_detected") == "1" for r in rows):
        return "driver never seen"
    return f"needs {need_s:.0f} s of readable eyes, had {read_s:.0f} s"


def _counts(events: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in EVENT_TYPES:
        of_type = [e for e in events if e.get("type") == t]
        out[f"{t}_count"] = len(of_type)
        out[f"{t}_per_h"] = per_hour(len(of_type), seconds)
        if t in LEVELED:
            for lvl in LEVELS:
                n = sum(e.get("level") == lvl for e in of_type)
                out[f"{t}_{lvl}_count"] = n
                out[f"{t}_{lvl}_per_h"] = per_hour(n, seconds)
    return out


def drive_row(folder: Path) -> dict[str, Any]:
    """The fleet.csv row of one drive folder."""
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    meta = json.loads((folder / "drive.json").read_text(encoding="utf-8")) if (folder / "drive.json").is_file() else {}
    with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    duration = float(summary.get("duration_s") or 0.0)
    seen = [r for r in rows if r.get("camera_ok") == "1"]
    perclos = _p95([_num(r.get("perclos")) for r in rows])
    out: dict[str, Any] = {
        "drive": folder.name, "driver_id": meta.get("driver_id", ""), "vehicle_id": meta.get("vehicle_id", ""),
        "start_time": meta.get("start_time", ""), "path": meta.get("path", ""),
        "complete": bool(summary.get("complete", False)), "reason": summary.get("reason", ""),
        "duration_s": round(duration, 3), "frames": int(summary.get("frames") or 0),
        "processing_fps": summary.get("processing_fps"),
        "driver_visible": round(sum(r.get("face_detected") == "1" for r in seen) / len(seen), 4) if seen else math.nan,
        "perclos_p95": perclos,
        "perclos_missing": "" if math.isfinite(perclos) else perclos_reason(rows, summary),
        "longest_off_road_s": max((_num(r.get("off_road_s")) for r in rows), default=0.0),
        "longest_eyes_closed_s": max((_num(r.get("eyes_closed_s")) for r in rows), default=0.0),
    }
    out.update(_counts(read_events(folder), duration))
    out["row_version"] = ROW_VERSION
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
    if row.get("row_version") != ROW_VERSION:
        return drive_row(folder)
    row["drive"] = folder.name
    return {k: (math.nan if v is None else v) for k, v in row.items()}


def driver_rows(drive_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per driver id: drives, hours, events (counts, and per hour over all their driving when it is
    long enough), worst drive values."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in drive_rows:
        groups.setdefault(r["driver_id"] or UNKNOWN_DRIVER, []).append(r)
    out = []
    for driver, rs in sorted(groups.items()):
        seconds = sum(r["duration_s"] for r in rs)
        row: dict[str, Any] = {"driver_id": driver, "drives": len(rs), "hours": round(seconds / 3600.0, 4),
                               "duration_s": round(seconds, 3)}
        for key in [k for k in rs[0] if k.endswith("_count")]:
            n = sum(int(r.get(key) or 0) for r in rs)
            row[key] = n
            row[key[:-len("_count")] + "_per_h"] = per_hour(n, seconds)
        for key in ("perclos_p95", "longest_off_road_s", "longest_eyes_closed_s"):
            vals = [r[key] for r in rs if math.isfinite(r[key])]
            row[f"worst_{key}"] = max(vals) if vals else math.nan
        out.append(row)
    return out


def alert_count(r: dict[str, Any]) -> int:
    """Drowsiness, distraction and phone-use alerts and yawns of a drive or driver row."""
    return sum(int(r.get(f"{t}_count") or 0) for t in RANKED)


def critical_count(r: dict[str, Any]) -> int:
    """Alerts of a drive or driver row that reached critical."""
    return sum(int(r.get(f"{t}_critical_count") or 0) for t in LEVELED)


def rank_key(r: dict[str, Any]) -> tuple[int, float, int]:
    """Worst first: rows with enough driving for a rate, by alerts per hour; then the others, by
    count; ties by critical alerts."""
    seconds = r["duration_s"]
    if seconds >= RATE_MIN_S:
        return 1, alert_count(r) * 3600.0 / seconds, critical_count(r)
    return 0, float(alert_count(r)), critical_count(r)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    cols = list(rows[0]) if rows else ["drive"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})


# ---------------------------------------------------------------------------------------- the page

LEVEL_WORDS = {"none": "Below warning", "warning": "Warning", "critical": "Critical"}
REVIEW_ALWAYS = ("phone_use",)  # shown at any level: phone use is a violation in itself
TYPE_WORDS = {**RANKED, "microsleep": "Microsleep", "eyes_closed": "Eyes closed", "glance": "Glance",
              "time_sharing": "Time-sharing", "driver_absent": "Driver absent",
              "eyes_not_visible": "Eyes not visible", "camera_lost": "Camera lost"}
PERCLOS_EDGES = (0.0, 0.05, 0.10, 0.15, 0.20, 0.30, 1.0)
GLANCE_EDGES = (0.0, 1.0, 2.0, 3.0, 3.5, 6.0, math.inf)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 drive``, ``3 drives``: counts are whole numbers."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def fmt_duration(seconds: float) -> str:
    """Driving time in the unit a reader expects: ``42 s``, ``12.5 min``, ``3.2 h``."""
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_clock(seconds: float) -> str:
    """A time into the drive as ``m:ss`` (``h:mm:ss`` past an hour)."""
    s = int(max(0.0, seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def rate_or_count(count: int, seconds: float) -> str:
    """``2.4 /h`` over at least ``RATE_MIN_S`` of driving, the bare count below it."""
    rate = per_hour(count, seconds)
    return f"{rate:.1f} /h" if math.isfinite(rate) else str(int(count))


def bin_labels(edges: Sequence[float], unit: str, factor: float = 1.0) -> list[str]:
    """Readable bin names: ``1–2 s``, the last ``6 s or more`` when it has no upper edge."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        a = f"{lo * factor:g}"
        out.append(f"{a} {unit} or more" if math.isinf(hi) else f"{a}–{hi * factor:g} {unit}")
    return out


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Values per bin ``[lo, hi)``, the last bin also holding its upper edge; NaN is left out."""
    vals = [v for v in values if math.isfinite(v)]
    n = len(edges) - 1
    return [sum(lo <= v < hi or (i == n - 1 and v == hi) for v in vals)
            for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]


def _bars(items: Sequence[tuple[str, int]], noun: str) -> str:
    """A horizontal bar chart of whole counts as inline SVG that scales with the page."""
    top = max([n for _, n in items] + [1])
    bar_h, label_w, width = 22, 120, 560
    parts = [f'<svg viewBox="0 0 {width} {bar_h * len(items) + 4}" class="chart" role="img" '
             f'xmlns="http://www.w3.org/2000/svg" font-size="13" font-family="sans-serif">']
    for i, (label, n) in enumerate(items):
        y, w = 2 + i * bar_h, (width - label_w - 90) * n / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="#5c6bc0"/>'
                     f'<text x="{label_w + w + 5:.1f}" y="{y + 15}">{plural(n, noun)}</text>')
    return "".join(parts) + "</svg>"


def histogram(values: Sequence[float], edges: Sequence[float], unit: str, factor: float = 1.0) -> str:
    """Drives per bin, with how many had no value."""
    missing = sum(1 for v in values if not math.isfinite(v))
    chart = _bars(list(zip(bin_labels(edges, unit, factor), bin_counts(values, edges))), "drive")
    note = f'<p class="note">Not measured on {plural(missing, "drive")} (see the table of drives).</p>' \
        if missing else ""
    return chart + note


def read_pictures(folder: Path) -> dict[int, dict[str, Any]]:
    """events/pictures.jsonl of a drive: the picture entries by events.jsonl line."""
    path = folder / "events" / "pictures.jsonl"
    out: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(text)
                out[int(entry["line"])] = entry
            except (ValueError, KeyError, TypeError):
                continue
    return out


def _picture(folder: Path, event: dict[str, Any], entry: dict[str, Any] | None) -> tuple[str, str]:
    """(base64 JPEG, "") or ("", why there is none) for one event."""
    try:
        same = entry is not None and entry.get("type") == event.get("type") \
            and abs(float(entry.get("start_s")) - float(event.get("start_s") or 0.0)) <= 1e-3
    except (TypeError, ValueError):
        same = False
    if not same:
        return "", "no picture: the drive was analysed without event pictures; analyse it again to get them"
    try:
        data = (folder / "events" / str(entry["file"])).read_bytes()
    except OSError:
        return "", f"no picture: events/{entry['file']} is missing from the drive folder"
    return base64.b64encode(data).decode("ascii"), ""


def event_rows(folder: Path, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The drive's events at warning or above (and its phone use at any level), each with its drive,
    driver, time, and picture."""
    pictures = read_pictures(folder)
    out = []
    for e in read_events(folder):
        if e.get("level") not in LEVELS and not (e.get("type") in REVIEW_ALWAYS and e.get("level") in LEVEL_WORDS):
            continue
        b64, why = _picture(folder, e, pictures.get(e["line"]))
        entry = pictures.get(e["line"]) or {}
        out.append({"drive": row["drive"], "driver_id": row["driver_id"] or UNKNOWN_DRIVER,
                    "start_time": row.get("start_time", ""), "type": str(e.get("type")), "level": e["level"],
                    "start_s": float(e.get("start_s") or 0.0), "duration_s": e.get("duration_s"),
                    "line": e["line"], "peak_s": entry.get("peak_s") if b64 else None,
                    "picture": b64, "picture_missing": why, "file": entry.get("file", "")})
    return out


def wall_clock(start_time: str, offset_s: float) -> str:
    """The clock time of a moment of the drive when the manifest gave its start, else ""."""
    try:
        t0 = _dt.datetime.fromisoformat(start_time)
    except (TypeError, ValueError):
        return ""
    return (t0 + _dt.timedelta(seconds=offset_s)).strftime("%Y-%m-%d %H:%M:%S")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def _driver_name(driver_id: str) -> str:
    return "Unknown driver" if driver_id == UNKNOWN_DRIVER else f"Driver {driver_id}"


def _type_cells(r: dict[str, Any]) -> str:
    return "".join(f'<td class="n">{rate_or_count(int(r.get(f"{t}_count") or 0), r["duration_s"])}</td>'
                   for t in RANKED)


def _drivers_table(drivers: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{w}</th>" for w in RANKED.values())
    body = "".join(
        f'<tr><td><a href="#driver-{_slug(d["driver_id"])}">{html.escape(_driver_name(d["driver_id"]))}</a></td>'
        f'<td class="n">{d["drives"]}</td><td class="n">{fmt_duration(d["duration_s"])}</td>{_type_cells(d)}'
        f'<td class="n">{critical_count(d)}</td></tr>' for d in sorted(drivers, key=rank_key, reverse=True))
    return (f'<div class="scroll"><table><tr><th>driver</th><th>drives</th><th>driving</th>{head}'
            f"<th>critical alerts</th></tr>{body}</table></div>")


def _perclos_cell(r: dict[str, Any]) -> str:
    v = r.get("perclos_p95", math.nan)
    if isinstance(v, (int, float)) and math.isfinite(v):
        return f'<td class="n">{v:.0%}</td>'
    why = html.escape(str(r.get("perclos_missing") or "not measured"))
    return f'<td class="why">not measured: <small>{why}</small></td>'


def _drive_cells(r: dict[str, Any]) -> str:
    vis = r.get("driver_visible", math.nan)
    visible = f"{vis:.0%}" if isinstance(vis, (int, float)) and math.isfinite(vis) else "no camera frames"
    done = "yes" if r["complete"] else f'no<br><small>{html.escape(str(r.get("reason") or ""))}</small>'
    return (f'<td class="n">{r["longest_off_road_s"]:.1f} s</td><td class="n">{r["longest_eyes_closed_s"]:.1f} s</td>'
            f'{_perclos_cell(r)}<td class="n">{visible}</td><td>{done}</td>')


def _drives_table(rows: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{w}</th>" for w in RANKED.values())
    body = "".join(
        f'<tr><td><a href="{_folder_href(r["drive"])}">{html.escape(r["drive"])}</a></td>'
        f'<td>{html.escape(r["driver_id"] or "unknown")}</td>'
        f'<td class="n">{fmt_duration(r["duration_s"])}</td>{_type_cells(r)}{_drive_cells(r)}</tr>'
        for r in sorted(rows, key=rank_key, reverse=True))
    return (f'<div class="scroll"><table><tr><th>drive (folder)</th><th>driver</th><th>driving</th>{head}'
            f"<th>longest glance off road</th><th>longest eyes closed</th><th>PERCLOS p95</th>"
            f"<th>driver visible</th><th>complete</th></tr>{body}</table></div>")


def _folder_href(drive: str) -> str:
    """The link to a drive's folder, relative to fleet.html (which sits beside ``drives/``)."""
    return html.escape(f"drives/{quote(drive)}/")


def _event_card(e: dict[str, Any]) -> str:
    drive, folder = html.escape(e["drive"]), _folder_href(e["drive"])
    when = f'at {fmt_clock(e["start_s"])} into the drive ({e["start_s"]:.1f} s)'
    clock = wall_clock(e["start_time"], e["start_s"])
    dur = e.get("duration_s")
    lasted = f"lasted {float(dur):.1f} s" if isinstance(dur, (int, float)) else "still going on when the drive ended"
    if e["picture"]:
        href = f'{folder}events/{html.escape(quote(e["file"]))}'
        pic = (f'<a href="{href}"><img src="data:image/jpeg;base64,{e["picture"]}" width="320" '
               f'alt="{html.escape(TYPE_WORDS.get(e["type"], e["type"]))} at its peak, {e["peak_s"]:.1f} s"></a>'
               f'<small>frame at its peak, {e["peak_s"]:.1f} s</small>')
    else:
        pic = f'<p class="nopic">{html.escape(e["picture_missing"])}</p>'
    return (f'<div class="ev" data-type="{html.escape(e["type"])}" data-level="{e["level"]}">{pic}'
            f'<p><b>{html.escape(TYPE_WORDS.get(e["type"], e["type"]))}</b> '
            f'<span class="lvl {e["level"]}">{LEVEL_WORDS[e["level"]]}</span><br>'
            f'{when}{"<br>" + clock if clock else ""}<br>{lasted}<br>'
            f'drive <a href="{folder}">{drive}</a> · '
            f'<a href="{folder}events.jsonl">events.jsonl</a> line {e["line"]}</p></div>')


def _filters(events: Sequence[dict[str, Any]]) -> str:
    types = [t for t in TYPE_WORDS if any(e["type"] == t for e in events)]
    types += sorted({e["type"] for e in events} - set(types))
    boxes = "".join(f'<label><input type="checkbox" data-f="type" value="{html.escape(t)}" checked> '
                    f'{html.escape(TYPE_WORDS.get(t, t))}</label>' for t in types)
    levels = "".join(f'<label><input type="checkbox" data-f="level" value="{lv}" checked> {LEVEL_WORDS[lv]}</label>'
                     for lv in LEVEL_WORDS if lv in LEVELS or any(e["level"] == lv for e in events))
    return f'<div class="filters"><div><span>Type:</span>{boxes}</div><div><span>Level:</span>{levels}</div></div>'


_SCRIPT = """<script>
function applyFilters(){
  var on={type:{},level:{}};
  document.querySelectorAll('.filters input').forEach(function(b){on[b.dataset.f][b.value]=b.checked;});
  document.querySelectorAll('section.driver').forEach(function(s){
    var n=0;
    s.querySelectorAll('.ev').forEach(function(c){
      var show=on.type[c.dataset.type]!==false&&on.level[c.dataset.level]!==false;
      c.style.display=show?'':'none'; if(show){n++;}
    });
    s.querySelector('.shown').textContent=n;
  });
}
document.querySelectorAll('.filters input').forEach(function(b){b.addEventListener('change',applyFilters);});
</script>"""


def _driver_section(driver: dict[str, Any], rows: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]) -> str:
    did = driver["driver_id"]
    mine = [e for e in events if e["driver_id"] == did]
    drives = [r for r in rows if (r["driver_id"] or UNKNOWN_DRIVER) == did]
    order = {r["drive"]: i for i, r in enumerate(sorted(drives, key=rank_key, reverse=True))}
    mine.sort(key=lambda e: (order.get(e["drive"], 0), e["start_s"], e["line"]))
    note = " (no manifest named a driver for these drives)" if did == UNKNOWN_DRIVER else ""
    cards = "".join(_event_card(e) for e in mine) or '<p class="note">Nothing to review.</p>'
    return (f'<section class="driver" id="driver-{_slug(did)}"><h3>{html.escape(_driver_name(did))}{note}</h3>'
            f'<p>{plural(len(drives), "drive")}, {fmt_duration(driver["duration_s"])} of driving; '
            f'<span class="shown">{len(mine)}</span> of {plural(len(mine), "event")} shown.</p>'
            f'<div class="cards">{cards}</div></section>')


_CSS = """body{font-family:system-ui,sans-serif;margin:16px auto;max-width:1400px;padding:0 12px;color:#222}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:2px solid #ddd}.note,small{color:#555}
table{border-collapse:collapse;font-size:14px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f3f3f3;white-space:normal;min-width:4em}td.n{text-align:right}
td.why{white-space:normal;min-width:17em}nav a{margin-right:14px}
.scroll{overflow-x:auto}.chart{width:100%;max-width:640px;height:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.ev{border:1px solid #ccc;border-radius:6px;padding:6px;width:300px;max-width:100%;box-sizing:border-box;font-size:14px}
.ev img{display:block;width:100%;height:auto;max-height:260px;object-fit:contain;background:#111}
.ev p{margin:4px 0}.nopic{color:#8a6d00}
.warn{border:1px solid #c77700;background:#fff4e0;padding:4px 10px;border-radius:4px}
.lvl{padding:1px 6px;border-radius:3px;color:#fff}
.lvl.none{background:#666}.lvl.warning{background:#b06a00}.lvl.critical{background:#c62828}
.filters{position:sticky;top:0;background:#fff;padding:6px 0;z-index:1}
.filters label{margin-right:12px;white-space:nowrap}.filters span{font-weight:bold;margin-right:6px}
@media (max-width:600px){.filters{position:static}.ev{width:100%}h1{font-size:1.6em}
td:first-child{white-space:normal;overflow-wrap:anywhere;min-width:6em}}"""


def _intro(rows: Sequence[dict[str, Any]], drivers: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]) -> str:
    seconds = sum(r["duration_s"] for r in rows)
    totals = ", ".join(f"{rate_or_count(sum(int(r.get(f'{t}_count') or 0) for r in rows), seconds)} "
                       f"{w.lower()}" for t, w in RANKED.items())
    return (f"<p>{plural(len(rows), 'drive')}, {plural(len(drivers), 'driver')}, {fmt_duration(seconds)} of "
            f"driving: {totals}; {plural(len(events), 'event')} to review (alerts at warning or above, and "
            f"phone use at any level).</p>"
            f'<p class="note">Rates are per hour of driving and shown only where a driver or drive has at least '
            f"{RATE_MIN_S / 60:.0f} minutes of it; below that the cells are counts (one event in a 20-second "
            f"drive would read as 180 per hour). Ranked worst first: rates, then counts.</p>")


def _left_out(missing: Sequence[tuple[str, str]]) -> str:
    if not missing:
        return ""
    items = "".join(f"<li>{html.escape(d)}: {html.escape(why)}</li>" for d, why in missing)
    return (f'<div class="warn"><b>{plural(len(missing), "drive")} not in this report</b> (see fleet.jsonl):'
            f"<ul>{items}</ul></div>")


def write_html(path: Path, rows: Sequence[dict[str, Any]], folders: Sequence[Path] = (),
               missing: Sequence[tuple[str, str]] = ()) -> None:
    """fleet.html: one self-contained file (pictures embedded, links relative to it); ``missing``:
    (drive, why) of the drives it lacks."""
    drivers = driver_rows(rows)
    events = [e for f, r in zip(folders, rows) for e in event_rows(f, r)]
    sections = "".join(_driver_section(d, rows, events) for d in sorted(drivers, key=rank_key, reverse=True))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Fleet report</title>
<style>{_CSS}</style></head><body>
<h1>Fleet report</h1>
{_intro(rows, drivers, events)}
{_left_out(missing)}
<nav><a href="#drivers">Drivers</a><a href="#drives">Drives</a><a href="#review">Alerts to review ({len(events)})</a>
<a href="#fleet">Across the fleet</a></nav>
<h2 id="drivers">Needs attention: drivers</h2>
{_drivers_table(drivers)}
<h2 id="drives">Needs attention: drives</h2>
{_drives_table(rows)}
<h2 id="review">Alerts to review, by driver</h2>
{_filters(events)}
{sections}
<h2 id="fleet">Across the fleet</h2>
<h3>PERCLOS p95 per drive (share of time with the eyes closed)</h3>
{histogram([r['perclos_p95'] for r in rows], PERCLOS_EDGES, "%", 100.0)}
<h3>Longest glance off the road per drive</h3>
{histogram([r['longest_off_road_s'] for r in rows], GLANCE_EDGES, "s")}
{_SCRIPT}
</body></html>
"""
    path.write_text(page, encoding="utf-8")


def not_in_report(out: Path) -> list[tuple[str, str]]:
    """(drive, why) for the drives of the last batch (fleet.jsonl) that have no results: failed,
    or not run because the batch was stopped."""
    try:
        lines = (out / "fleet.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    missing = []
    for text in lines:
        try:
            o = json.loads(text)
        except ValueError:
            continue
        if isinstance(o, dict) and o.get("status") in ("failed", "not run"):
            missing.append((str(o.get("drive", "?")), f'{o["status"]}: {o.get("reason") or "no reason given"}'))
    return missing


def _rows(folders: Sequence[Path]) -> tuple[list[Path], list[dict[str, Any]], list[tuple[str, str]]]:
    """The drives' rows; a folder whose results cannot be read is left out, with the reason."""
    kept, rows, bad = [], [], []
    for f in folders:
        try:
            rows.append(read_row(f))
            kept.append(f)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            bad.append((f.name, f"its results cannot be read ({type(exc).__name__}: {exc}); "
                                 f"analyse it again with --force"))
    return kept, rows, bad


def write_report(out: str | Path, drives: Sequence[Any] | None = None) -> dict[str, Any]:
    """fleet.csv, fleet_drivers.csv and fleet.html from every complete drive folder in ``out``
    (in the order of ``drives`` when given); returns their paths and the number of drives."""
    out = Path(out)
    root = out / "drives"
    order = [root / d.id for d in drives] if drives is not None else sorted(root.iterdir())
    folders = [f for f in order if f.is_dir() and not f.name.startswith(".") and (f / "summary.json").is_file()
               and (f / "frames.csv").is_file()]
    folders, rows, unreadable = _rows(folders)
    _write_csv(out / "fleet.csv", rows)
    _write_csv(out / "fleet_drivers.csv", driver_rows(rows))
    write_html(out / "fleet.html", rows, folders, not_in_report(out) + unreadable)
    return {"report_drives": len(rows), "fleet_csv": str(out / "fleet.csv"), "fleet_html": str(out / "fleet.html")}
