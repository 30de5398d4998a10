"""``driver-monitor bench``: the command line of every benchmark (the ``driver_monitor.bench`` package).

Modes: engines and end to end (the default: ``bench.engines``, ``bench.pipeline``),
``--side-by-side`` (``bench.side_by_side``), ``--fleet`` (``bench.fleet``), ``--training``
(``bench.training``: needs torch) and ``--dashboard`` (``ui.bench_ui``, imported only for that
mode: it needs Qt). The handler is
``handler(args, cfg) -> exit code`` and raises DriverMonitorError for user errors.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT, Config
from ..engine import BACKENDS
from ..engine.precision import PRECISIONS
from ..errors import DriverMonitorError
from .argtypes import positive_int, unwritable

#: exit code when every engine and run was skipped: nothing could be measured on this machine
NOTHING_MEASURED = 8


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def _check_out(out_arg: str) -> None:
    """A folder that cannot take the report fails now, not after minutes of measuring."""
    why = unwritable(Path(out_arg))
    if why is not None:
        raise DriverMonitorError(f"bench --out {out_arg!r} is not a writable folder ({why}); "
                                 f"pass --out with a folder you can write to")


def cmd_side_by_side(args: argparse.Namespace, cfg: Config, command: str) -> int:
    from ..bench.side_by_side import side_by_side

    report = side_by_side(cfg, args.side_by_side, repeats=args.repeats, out_dir=args.out, command=command, log=_err)
    for clip in report["clips"]:
        runs = (f"{r['run']} {r['fps_median']:.0f} fps ({r['ratio_to_mesh_median']:.2f}x)" for r in clip["runs"])
        print(f"{clip['video']}: " + ", ".join(runs))
    for k, v in report["files"].items():
        print(f"{k}: {v}")
    return 0


def cmd_fleet(args: argparse.Namespace, cfg: Config, command: str) -> int:
    from ..bench.fleet import bench_fleet, markdown

    options = ["--config", str(Path(args.config).resolve())] if args.config else []
    options += [a for o in args.overrides or [] for a in ("--set", o)]
    options += ["--backend", args.backend] if args.backend else []
    report = bench_fleet(args.fleet, drives=args.drives, workers=args.workers, out_dir=args.out, command=command,
                         options=options, log=_err)
    print(markdown(report), end="")
    for k, v in report["files"].items():
        print(f"{k}: {v}")
    return 0


def cmd_training(args: argparse.Namespace, command: str) -> int:
    from ..bench.training import DEFAULT_PRESETS, bench_training

    report = bench_training(args.training or DEFAULT_PRESETS, args.amp, batch=args.train_batch, steps=args.steps,
                            threads=args.threads, out_dir=args.out, command=command,
                            log=lambda line: print(line, flush=True))
    for k, v in report["files"].items():
        print(f"{k}: {v}")
    return 0


def cmd_dashboard(args: argparse.Namespace, cfg: Config) -> int:
    """The dashboard's drawing cost and latency, in the real window (offscreen by default)."""
    videos = list(args.dashboard or [])
    missing = [v for v in [*videos, *args.live] if not Path(v).is_file()]
    if missing:
        raise DriverMonitorError(f"bench --dashboard: {', '.join(missing)} not found; pass video files")
    try:
        from ..ui.bench_ui import bench_dashboard
    except ImportError as exc:  # PyQt6 / pyqtgraph missing
        raise DriverMonitorError(f"bench --dashboard needs the dashboard's libraries: {exc}; install them "
                                 f"(pip install -e .)") from None
    bench_dashboard(cfg, videos=videos, live=args.live, speed=None if args.speed == 0 else args.speed,
                    log=lambda line: print(line, flush=True))
    return 0


def cmd_bench(args: argparse.Namespace, cfg: Config) -> int:
    from ..bench.engines import run_bench

    if args.live and (args.side_by_side or args.fleet or args.training is not None):
        raise DriverMonitorError("bench --live belongs to --dashboard; run it without --side-by-side / --fleet / "
                                 "--training")
    if args.dashboard is not None or args.live:  # prints its figures, writes no file
        return cmd_dashboard(args, cfg)
    if args.video is not None and not Path(args.video).is_file():
        raise DriverMonitorError(f"bench --video {args.video!r} does not exist; pass a video file, e.g. "
                                 f"../shared/data/videos/driver_eyes_closed_glasses.mp4")
    _check_out(args.out)
    command = ("driver-monitor " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:]
               else "driver-monitor bench")
    if args.side_by_side:
        return cmd_side_by_side(args, cfg, command)
    if args.fleet:
        return cmd_fleet(args, cfg, command)
    if args.training is not None:
        return cmd_training(args, command)
    report = run_bench(cfg, video=args.video, backends=args.backends, precisions=args.precisions,
                       out_dir=args.out, iters=args.iters, batches=args.batches, max_frames=args.frames,
                       e2e_backends=args.e2e_backends, skip_engines=args.no_engines,
                       command=command,
                       project_root=PROJECT_ROOT, log=_err)
    for k, v in report["files"].items():
        print(f"{k}: {v}")
    sp = report.get("speedup_vs_torch_cpu_b1")
    if sp:
        print("speed-up over torch CPU at batch 1: " + ", ".join(f"{k} {v}x" for k, v in sp.items()))
    measured = [r for part in ("engines", "pipeline") for r in report.get(part, [])
                if r.get("status") != "skipped"]
    if not measured:
        print(f"error: nothing could be measured here: every engine and run was skipped (the reasons are in "
              f"{report['files'].get('markdown', args.out)}); install a runtime (pip install onnxruntime) or pick "
              f"--backends that are available", file=sys.stderr)
        return NOTHING_MEASURED
    return 0


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench", help="benchmark engines (latency p50/p95 at batch 1 and 8) and end-to-end FPS; also analyze "
                      "side by side with the bare face mesh, fleet throughput, the dashboard's drawing cost",
        description="For every backend / precision that can run here: engine latency p50 / p95 at each "
                    "batch size and throughput; with --video, end-to-end pipeline FPS and the per-stage "
                    "breakdown. Writes bench.json, bench.md and bench.png to --out. (The FERPlus accuracy of "
                    "the fp16 / int8 copies: python tools/evaluate.py --onnx MODEL --ferplus DIR "
                    "--precision-copies fp16 int8.) Instead of that: --side-by-side, --fleet, --training or "
                    "--dashboard.")
    p.add_argument("--video", metavar="FILE", help="video for the end-to-end run (skipped without it)")
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), metavar="NAME",
                   help=f"engine backends to measure (default: all: {' '.join(BACKENDS)})")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS), metavar="P",
                   help="precisions to measure (fp16/int8 need `driver-monitor engines build` first)")
    p.add_argument("--batches", nargs="+", type=positive_int, default=[1, 8], metavar="N")
    p.add_argument("--iters", type=positive_int, default=300, help="timed runs per batch size (default 300)")
    p.add_argument("--frames", type=positive_int, default=None, metavar="N", help="end-to-end: stop after N frames")
    p.add_argument("--e2e-backends", nargs="+", choices=("auto", *BACKENDS), default=["auto"], metavar="NAME",
                   help="engines for the end-to-end runs, besides the run without engine (default: auto)")
    p.add_argument("--no-engines", action="store_true", help="skip the engine latency part")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--side-by-side", nargs="+", metavar="VIDEO",
                      help="instead: analyze against the bare decode + face mesh loop on these clips, interleaved "
                           "and repeated; ratios and per-stage ms to throughput.json / throughput.md in --out")
    p.add_argument("--repeats", type=positive_int, default=3, help="--side-by-side: repeats per clip (default 3)")
    mode.add_argument("--fleet", metavar="DIR",
                      help="instead: a folder of --drives links to the videos in DIR, `driver-monitor batch` with "
                           "each of --workers against `driver-monitor analyze` one drive after another, each run a "
                           "whole command; fleet.json / fleet.md in --out")
    p.add_argument("--drives", type=positive_int, default=20, metavar="N", help="--fleet: drives (default 20)")
    p.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2], metavar="N",
                   help="--fleet: the batch worker counts to run (default 1 2)")
    mode.add_argument("--training", nargs="*", metavar="PRESET",
                      help="instead: seconds per training step of these network presets (default: fast wide small "
                           "base) on random data, under each --amp; train_speed.json / train_speed.md in --out "
                           "(needs torch: the training extra)")
    p.add_argument("--amp", nargs="+", default=["off", "auto"], choices=["off", "auto", "bf16"],
                   help="--training: the autocast choices to time (default off auto)")
    p.add_argument("--steps", type=positive_int, default=5, help="--training: timed steps (default 5)")
    p.add_argument("--train-batch", type=positive_int, default=128, metavar="N",
                   help="--training: images per step (default 128)")
    p.add_argument("--threads", type=positive_int, default=2, help="--training: torch threads (default 2)")
    mode.add_argument("--dashboard", nargs="*", metavar="VIDEO",
                      help="instead: the dashboard's drawing cost (plots), and for each VIDEO a replay in the real "
                           "window (redraw ms, frame read -> drawn latency, seek -> shown); offscreen unless "
                           "QT_QPA_PLATFORM says otherwise; prints its figures, writes no file")
    p.add_argument("--live", nargs="+", default=[], metavar="VIDEO",
                   help="--dashboard: play these files as a camera and measure frame captured -> drawn")
    p.add_argument("--speed", type=float, default=1.0, help="--dashboard: replay speed, 0 = as fast as possible "
                                                            "(default 1)")
    p.add_argument("--out", default="results/bench", metavar="DIR",
                   help="output folder (default results/bench in the current folder)")
    p.set_defaults(func=cmd_bench)
    return p
