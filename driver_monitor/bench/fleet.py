"""``driver-monitor bench --fleet VIDEOS``: fleet throughput on this machine, a folder of drives with
`driver-monitor batch` (1 and N workers) against `driver-monitor analyze` run one drive after another,
in one sitting.

    driver-monitor bench --fleet ../shared/data/videos --drives 20 --out docs/bench

The folder holds ``--drives`` links to the videos, taken in turn. Every run is a whole command as a
user types it (process start, model loading and writing included); the batch runs also report,
from their batch.json, how long Ray took to start with its workers and the time it added per drive
(the run's wall time minus that start minus the drives' own analysis time, spread over the
workers' drives). Writes fleet.json and fleet.md to ``--out``.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from ..config import PROJECT_ROOT
from ..errors import DriverMonitorError
from .common import Log, write_report

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")


def make_drives(videos: Path, n: int, into: Path) -> list[Path]:
    if not videos.is_dir():
        raise DriverMonitorError(f"bench --fleet {str(videos)!r} is not a folder; pass the folder of videos the "
                                 f"drives link to, e.g. ../shared/data/videos")
    src = sorted(v for v in videos.iterdir() if v.suffix.lower() in VIDEO_EXTS)
    if not src:
        raise DriverMonitorError(f"bench --fleet: {videos} holds no videos ({', '.join(VIDEO_EXTS)}); pass a "
                                 f"folder of recorded drives")
    into.mkdir(parents=True)
    out = []
    for i in range(n):
        v = src[i % len(src)]
        link = into / f"drive{i:02d}_{v.name}"
        os.symlink(v.resolve(), link)
        out.append(link)
    return out


def timed(cmd: list[str], log: Path) -> float:
    """Run one command as a user would (this package first on the path), its output to ``log``;
    its wall time in seconds. A batch with failed drives (exit 9) still counts."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    t0 = time.perf_counter()
    with open(log, "a", encoding="utf-8") as fh:
        rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc not in (0, 9):
        lines = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
        raise DriverMonitorError(f"bench --fleet: `driver-monitor {' '.join(cmd[3:])}` exited {rc}"
                                 + (f" ({lines[-1].strip()})" if lines else "") + "; run it alone to see why")
    return time.perf_counter() - t0


def frames_in(folder: Path) -> int:
    return sum(json.loads((d / "summary.json").read_text())["frames"] for d in folder.iterdir()
               if (d / "summary.json").is_file())


def _one_after_another(dm: list[str], drives: list[Path], work: Path, log_file: Path) -> dict[str, Any]:
    """``analyze``, one drive after another, as a user would in a shell loop."""
    t = 0.0
    for d in drives:
        t += timed([*dm, "analyze", str(d), "--out", str(work / "seq" / d.stem), "--no-progress"], log_file)
    frames = frames_in(work / "seq")
    return {"run": "analyze, one drive after another", "workers": 1, "wall_s": round(t, 1),
            "frames": frames, "fps": round(frames / t, 1)}


def _batch(dm: list[str], drives: list[Path], w: int, work: Path, log_file: Path) -> dict[str, Any]:
    out = work / f"batch{w}"
    wall = timed([*dm, "batch", str(work / "drives"), "--out", str(out), "--workers", str(w), "--no-progress"],
                 log_file)
    stats = json.loads((out / "batch.json").read_text())
    outcomes = [json.loads(x) for x in (out / "fleet.jsonl").read_text().splitlines()]
    analysis_s = sum(o.get("seconds", 0.0) for o in outcomes)
    added = (stats["seconds"] - stats["ray_start_s"]) * w - analysis_s
    return {"run": f"batch --workers {w}", "workers": w, "wall_s": round(wall, 1),
            "frames": stats["frames"], "fps": round(stats["frames"] / wall, 1),
            "ray_start_s": stats["ray_start_s"], "ray_per_drive_s": round(added / len(drives), 3)}


def bench_fleet(videos: str | Path, *, drives: int = 20, workers: Sequence[int] = (1, 2), out_dir: str | Path,
                command: str = "", options: Sequence[str] = (), log: Log = print) -> dict[str, Any]:
    """Run the sitting; write ``fleet.json`` and ``fleet.md`` to ``out_dir``. ``options``: the
    common options (``--config``, ``--set``, ``--backend``) every run is given."""
    dm = [sys.executable, "-m", "driver_monitor.cli", *options]
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    log_file = work / "commands.log"
    try:
        links = make_drives(Path(videos), drives, work / "drives")
        names = sorted({d.resolve().name for d in links})
        rows = [_one_after_another(dm, links, work, log_file)]
        log(f"bench: fleet: {rows[-1]['run']}: {rows[-1]['wall_s']} s, {rows[-1]['fps']} frames/s")
        for w in workers:
            rows.append(_batch(dm, links, w, work, log_file))
            log(f"bench: fleet: {rows[-1]['run']}: {rows[-1]['wall_s']} s, {rows[-1]['fps']} frames/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup"] = round(base / r["wall_s"], 2)
    report = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                          "python": platform.python_version()},
              "drives": len(links), "videos": names, "command": command or "driver-monitor bench --fleet",
              "date": time.strftime("%Y-%m-%d %H:%MZ", time.gmtime()), "rows": rows}
    return write_report(report, out_dir, "fleet", markdown)


def markdown(report: dict[str, Any]) -> str:
    rows = report["rows"]
    lines = [f"Fleet throughput (`{report['command']}`), {report['date']}; {report['machine']['cpus']} CPUs; "
             f"{report['drives']} drives linking to {len(report['videos'])} videos, {rows[0]['frames']} frames.", "",
             "| run | wall s | frames/s | speed-up | Ray start s | Ray per drive s |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {r['wall_s']} | {r['fps']} | {r['speedup']}x | {r.get('ray_start_s', '-')} | "
                     f"{r.get('ray_per_drive_s', '-')} |")
    return "\n".join(lines) + "\n"
