#!/usr/bin/env python3
"""Fleet throughput on this machine: a folder of drives with `driver-monitor batch` (1 and N
workers) against `driver-monitor analyze` run one drive after another, in one sitting.

    python tools/bench_fleet.py --videos ../shared/data/videos --drives 20 --out docs/bench

The folder holds ``--drives`` links to the videos, taken in turn. Every run is a whole command as a
user types it (process start, model loading and writing included); the batch runs also report,
from their batch.json, how long Ray took to start with its workers and the time it added per drive
(the run's wall time minus that start minus the drives' own analysis time, spread over the
workers' drives). Writes fleet.json and fleet.md to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")


def make_drives(videos: Path, n: int, into: Path) -> list[Path]:
    src = sorted(v for v in videos.iterdir() if v.suffix.lower() in VIDEO_EXTS)
    if not src:
        raise SystemExit(f"error: {videos} holds no videos")
    into.mkdir(parents=True)
    out = []
    for i in range(n):
        v = src[i % len(src)]
        link = into / f"drive{i:02d}_{v.name}"
        os.symlink(v.resolve(), link)
        out.append(link)
    return out


def timed(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc not in (0, 9):
        raise SystemExit(f"error: {' '.join(cmd)} exited {rc}; see {log}")
    return time.perf_counter() - t0


def frames_in(folder: Path) -> int:
    return sum(json.loads((d / "summary.json").read_text())["frames"] for d in folder.iterdir()
               if (d / "summary.json").is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", required=True, help="folder of videos the drives link to")
    ap.add_argument("--drives", type=int, default=20)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="batch worker counts to run")
    ap.add_argument("--out", default="results/bench", help="folder for fleet.json / fleet.md")
    args = ap.parse_args(argv)
    dm = [sys.executable, "-m", "driver_monitor.cli"]
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    log = work / "commands.log"
    try:
        drives = make_drives(Path(args.videos), args.drives, work / "drives")
        rows = []
        t = 0.0
        for d in drives:  # analyze, one drive after another, as a user would in a shell loop
            t += timed([*dm, "analyze", str(d), "--out", str(work / "seq" / d.stem), "--no-progress"], log)
        frames = frames_in(work / "seq")
        rows.append({"run": "analyze, one drive after another", "workers": 1, "wall_s": round(t, 1),
                     "frames": frames, "fps": round(frames / t, 1)})
        for w in args.workers:
            out = work / f"batch{w}"
            wall = timed([*dm, "batch", str(work / "drives"), "--out", str(out), "--workers", str(w),
                          "--no-progress"], log)
            stats = json.loads((out / "batch.json").read_text())
            outcomes = [json.loads(x) for x in (out / "fleet.jsonl").read_text().splitlines()]
            analysis_s = sum(o.get("seconds", 0.0) for o in outcomes)
            in_run = stats["seconds"]
            added = (in_run - stats["ray_start_s"]) * w - analysis_s
            rows.append({"run": f"batch --workers {w}", "workers": w, "wall_s": round(wall, 1),
                         "frames": stats["frames"], "fps": round(stats["frames"] / wall, 1),
                         "ray_start_s": stats["ray_start_s"],
                         "ray_per_drive_s": round(added / len(drives), 3)})
        base = rows[0]["wall_s"]
        for r in rows:
            r["speedup"] = round(base / r["wall_s"], 2)
        report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                              "python": platform.python_version()},
                  "drives": len(drives), "videos": sorted({d.resolve().name for d in drives}),
                  "command": "python tools/bench_fleet.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  "date": time.strftime("%Y-%m-%d %H:%MZ", time.gmtime()), "rows": rows}
        dest = Path(args.out)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "fleet.json").write_text(json.dumps(report, indent=2) + "\n")
        lines = [f"Fleet throughput (`{report['command']}`), {report['date']}; {report['machine']['cpus']} CPUs; "
                 f"{len(drives)} drives linking to {len(report['videos'])} videos, {rows[0]['frames']} frames.", "",
                 "| run | wall s | frames/s | speed-up | Ray start s | Ray per drive s |", "|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['run']} | {r['wall_s']} | {r['fps']} | {r['speedup']}x | {r.get('ray_start_s', '-')} | "
                         f"{r.get('ray_per_drive_s', '-')} |")
        (dest / "fleet.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
