"""``driver-monitor batch DRIVES --out DIR``: a folder or manifest of recorded drives on Ray."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import Config
from ..errors import Terminated
from . import argtypes


def cmd_batch(args: argparse.Namespace, cfg: Config) -> int:
    from ..fleet import BatchOptions, run_batch

    base = list(args.overrides or [])
    if args.backend:
        base.append(f"engine.backend={args.backend}")
    opts = BatchOptions(config=args.config, overrides=tuple(base), address=args.address, workers=args.workers,
                        cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker,
                        retries=args.retries, force=args.force, progress=args.progress,
                        verbose=bool(getattr(args, "verbose", False)))
    try:
        stats = run_batch(args.drives, args.out, opts)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the report is written for what completed
        stats = getattr(exc, "batch", None)
        if stats is None:
            raise
        how = f"stopped by {exc.name}" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
        print(f"{how}: {stats['ok'] + stats['incomplete']} drives analysed and kept, {stats['interrupted']} "
              f"interrupted while running, {stats['not_run']} not started, {stats['skipped']} already complete; "
              f"report for what completed: {args.out}/fleet.csv, fleet.html", file=sys.stderr)
        return exc.exit_code if isinstance(exc, Terminated) else 130
    print(_batch_line(stats, args.out))
    return 0 if stats["failed"] == 0 else 9


def _batch_line(stats: dict[str, Any], out: str) -> str:
    """The batch's closing line; a run with nothing left to analyse says so instead of a speed."""
    report = f"report: {out}/fleet.csv, fleet.html"
    drives = f"{stats['drives']} drive{'s' if stats['drives'] != 1 else ''}"
    if stats["skipped"] == stats["drives"]:
        return (f"{drives}, all already complete from an earlier run: nothing analysed (--force redoes them); "
                f"{report}")
    speed = f"{stats['fps']:g} frames/s" if stats.get("fps") is not None else "no frames analysed"
    return (f"{drives}: {stats['ok']} analysed, {stats['incomplete']} incomplete, {stats['failed']} "
            f"failed, {stats['skipped']} already complete; {stats['frames']} frames in {stats['seconds']:.1f} s "
            f"({speed}, {stats['workers']} worker{'s' if stats['workers'] != 1 else ''}); {report}")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("batch", help="analyse a folder or manifest of recorded drives on Ray (local or a cluster)")
    p.add_argument("drives", help="folder of videos, or a manifest (.csv / .jsonl: path, driver_id, vehicle_id, "
                                  "start_time)")
    p.add_argument("--out", required=True, type=argtypes.out_dir, metavar="DIR",
                   help="results: drives/<id>/ as analyze writes them, fleet.jsonl, fleet.csv, fleet.html")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to use: auto (a running local cluster) or ray://HOST:10001; "
                        "default: start Ray on this machine")
    p.add_argument("--workers", type=argtypes.positive_int, metavar="N",
                   help="workers (default, and at most: as many as the cluster's CPUs / GPUs hold)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="K", help="CPUs per worker (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs per worker (default 0)")
    p.add_argument("--retries", type=int, default=2, metavar="R", help="times a drive is retried when its worker "
                                                                      "dies (default 2)")
    p.add_argument("--force", action="store_true", help="analyse again the drives already complete in --out")
    bprog = p.add_mutually_exclusive_group()
    bprog.add_argument("--progress", dest="progress", action="store_true", default=None)
    bprog.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_batch)
    return p
