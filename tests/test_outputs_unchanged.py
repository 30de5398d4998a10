"""`analyze` output on every shared clip stays what it was, within what another CPU's floating
point may move: a refactor that changes a result fails and says which clip, column or event.

Compared with tests/golden/outputs.json: per clip the row count; each discrete frames.csv column
(status, flags, levels, counters, the emotion) row by row, at most 1 % of rows may differ; each
numeric column by its mean and 5th / 50th / 95th percentiles (tolerance 0.002 + 0.2 %); the
events by type, level and order, their times within 0.1 s. Timing columns (ms_*) are left out.

An intended change of the results (a new rule, a new model) updates the file:

    python -m tests.test_outputs_unchanged RESULTS_DIR

where RESULTS_DIR holds one analyze folder per clip, e.g. from
`driver-monitor evaluate scenarios/shared_clips.yaml --out RESULTS_DIR`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = Path(__file__).resolve().parent / "golden" / "outputs.json"
DISCRETE = ("camera_ok", "face_detected", "faces", "status", "eyes_visible", "eyes_closed", "blinks", "yawning",
            "yawns", "off_road", "off_road_reason", "drowsiness", "distraction", "alert", "calibrated", "emotion",
            "aus_hidden")
MAX_DISCRETE_DIFF = 0.01
NUM_ABS, NUM_REL = 0.002, 0.002
EVENT_TIME_TOL_S = 0.1


def _runs(values: list[str]) -> list:
    """Run-length form [[value, count], ...] (the discrete columns hold long runs)."""
    out: list = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def _expand(runs: list) -> list[str]:
    return [v for v, n in runs for _ in range(n)]


def _read(folder: Path) -> tuple[list[dict[str, str]], list[dict]]:
    with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    return rows, events


def fingerprint(folder: Path) -> dict:
    rows, events = _read(folder)
    cols = [c for c in (rows[0] if rows else {}) if not c.startswith("ms_")]
    discrete = {c: _runs([r[c] for r in rows]) for c in cols if c in DISCRETE}
    numeric = {}
    for c in cols:
        if c in DISCRETE or c in ("frame", "time_s"):
            continue
        v = np.array([float(r[c]) for r in rows if r[c] != ""], np.float64)
        numeric[c] = ([len(v)] + [round(float(x), 5) for x in (v.mean(), *np.percentile(v, (5, 50, 95)))]
                      if len(v) else [0])
    frame_times = hashlib.sha256("\n".join(r["frame"] + "," + r["time_s"] for r in rows).encode()).hexdigest()[:16]
    return {"rows": len(rows), "frame_times": frame_times, "discrete": discrete, "numeric": numeric,
            "events": [{k: e.get(k) for k in ("type", "level", "start_s", "end_s")} for e in events]}


def compare(name: str, want: dict, got: dict) -> list[str]:
    out = []
    if (got["rows"], got["frame_times"]) != (want["rows"], want["frame_times"]):
        return [f"{name}: {got['rows']} rows / frame times differ (was {want['rows']} rows)"]
    for c in sorted(set(want["discrete"]) | set(got["discrete"])):
        a, b = want["discrete"].get(c), got["discrete"].get(c)
        if a is None or b is None:
            out.append(f"{name}: column {c} {'gone' if b is None else 'new'}")
            continue
        a, b = _expand(a), _expand(b)
        diff = sum(x != y for x, y in zip(a, b))
        if diff > MAX_DISCRETE_DIFF * len(a):
            first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
            out.append(f"{name}: {c} differs on {diff} rows, first at row {first} ({a[first]!r} -> {b[first]!r})")
    for c in sorted(set(want["numeric"]) | set(got["numeric"])):
        a, b = want["numeric"].get(c), got["numeric"].get(c)
        if a is None or b is None:
            out.append(f"{name}: column {c} {'gone' if b is None else 'new'}")
        elif a[0] != b[0] or any(abs(x - y) > NUM_ABS + NUM_REL * abs(x) for x, y in zip(a[1:], b[1:])):
            out.append(f"{name}: {c} was n/mean/p5/p50/p95 {a}, now {b}")
    we, ge = want["events"], got["events"]
    same = len(we) == len(ge) and all(
        x["type"] == y["type"] and x["level"] == y["level"]
        and all(abs((x[k] or math.inf) - (y[k] or math.inf)) <= EVENT_TIME_TOL_S or x[k] == y[k]
                for k in ("start_s", "end_s"))
        for x, y in zip(we, ge))
    if not same:
        gone = [e for e in we if e not in ge][:3]
        new = [e for e in ge if e not in we][:3]
        out.append(f"{name}: events changed ({len(we)} -> {len(ge)}); gone {gone}, new {new}")
    return out


@pytest.mark.data
@pytest.mark.slow
def test_analyze_outputs_are_unchanged(shared_eval):
    _, out, summary = shared_eval
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == {c["name"] for c in summary["clips"]}
    problems = [p for name, want in golden.items() for p in compare(name, want, fingerprint(out / name))]
    assert not problems, "\n".join(problems)


if __name__ == "__main__":  # python -m tests.test_outputs_unchanged RESULTS_DIR
    results = Path(sys.argv[1])
    data = {d.name: fingerprint(d) for d in sorted(results.iterdir()) if (d / "frames.csv").is_file()}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{GOLDEN}: {len(data)} clips, {GOLDEN.stat().st_size} bytes")
