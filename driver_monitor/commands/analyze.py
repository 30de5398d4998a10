"""``driver-monitor analyze SOURCE --out DIR``: one drive (or a live feed), headless, into CSV / JSONL."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import Config
from . import argtypes


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    from ..analyze import analyze

    summary = analyze(args.source, args.out, cfg, progress=None if args.progress is None else args.progress,
                      max_frames=args.max_frames, overwrite=args.overwrite, verbose=getattr(args, "verbose", False))
    frames = summary.get("frames", 0)
    events = summary.get("events", {})
    ev = ", ".join(f"{k}: {v}" for k, v in events.items()) or "none"
    print(f"analysed {frames} frames ({summary.get('duration_s', 0)} s of video), {_rate(summary)} -> {args.out}; "
          f"events: {ev}")
    if summary.get("engine_missing"):
        print("warning: analysed without the emotion/AU engine, so no emotion or AU columns (why: engine_missing "
              "in summary.json); driver state was analysed", file=sys.stderr)
    if not summary.get("complete", True):
        print(f"error: {summary.get('reason')}; the results for the {frames} frames analysed are in {args.out}",
              file=sys.stderr)
        return 3
    return 0


def _rate(summary: dict[str, Any]) -> str:
    """The speed figure, named as in summary.json: ``loop_fps`` (frames per second of the frame
    loop, start-up excluded), or ``processing_fps`` (per-frame work alone) when the loop has none."""
    for key, what in (("loop_fps", "the frame loop's frames/s, start-up excluded"),
                      ("processing_fps", "frames/s of the per-frame work")):
        if summary.get(key) is not None:
            return f"{key} {summary[key]} ({what})"
    return "no frame rate (no frame analysed)"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("analyze", help="analyse a recorded drive (or a live feed) headless into CSV/JSONL")
    p.add_argument("source", type=argtypes.source, help="video file, camera index (0) or stream URL")
    p.add_argument("--out", required=True, type=argtypes.out_dir, metavar="DIR",
                   help="folder for frames.csv, events.jsonl, summary.json (refused when it holds results)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.add_argument("--max-frames", type=argtypes.positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--fps", type=argtypes.fps, metavar="N",
                   help="time a file at N frames per second (when the file's own rate is missing or wrong)")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show a progress bar (default: when stderr is a terminal)")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=cmd_analyze)
    return p
