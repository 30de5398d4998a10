"""`analyze` output on every shared clip stays what it was: frames.csv (timing columns aside) and
events.jsonl are compared with tests/golden/outputs.json, so a refactor that changes a result fails.

An intended change of the results (a new rule, a new model) updates the file:

    python -m tests.test_outputs_unchanged RESULTS_DIR

where RESULTS_DIR holds one analyze folder per clip, e.g. from
`driver-monitor evaluate scenarios/shared_clips.yaml --out RESULTS_DIR`.
"""
from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden" / "outputs.json"


def fingerprint(folder: Path) -> dict:
    """Per column of frames.csv (ms_* timings and the machine-dependent ones left out) a sha256 of
    its values, the row count, and the events as written."""
    with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = [c for c in (rows[0] if rows else {}) if not c.startswith("ms_")]
    columns = {c: hashlib.sha256("\n".join(r[c] for r in rows).encode()).hexdigest()[:16] for c in cols}
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"rows": len(rows), "columns": columns, "events": events}


@pytest.mark.data
@pytest.mark.slow
def test_analyze_outputs_are_unchanged(shared_eval):
    _, out, summary = shared_eval
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == {c["name"] for c in summary["clips"]}
    problems = []
    for name, want in golden.items():
        got = fingerprint(out / name)
        if got["rows"] != want["rows"]:
            problems.append(f"{name}: {got['rows']} rows, was {want['rows']}")
        changed = sorted(c for c in set(want["columns"]) | set(got["columns"])
                         if want["columns"].get(c) != got["columns"].get(c))
        if changed:
            problems.append(f"{name}: frames.csv columns changed: {', '.join(changed)}")
        if got["events"] != want["events"]:
            gone = [e for e in want["events"] if e not in got["events"]]
            new = [e for e in got["events"] if e not in want["events"]]
            problems.append(f"{name}: events changed; gone {gone[:3]}, new {new[:3]}")
    assert not problems, "\n".join(problems)


if __name__ == "__main__":  # python -m tests.test_outputs_unchanged RESULTS_DIR
    results = Path(sys.argv[1])
    data = {d.name: fingerprint(d) for d in sorted(results.iterdir()) if (d / "frames.csv").is_file()}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"{GOLDEN}: {len(data)} clips")
