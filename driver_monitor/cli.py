"""``driver-monitor`` command line: gui (default), analyze, evaluate, batch, bench, engines.

Common options: ``--config FILE``, ``--set KEY=VALUE`` (repeatable), ``--backend NAME``.
User errors print one line (``error: ...``) and exit non-zero; no tracebacks.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from . import __version__
from .config import Config, load_config
from .errors import DriverMonitorError, Terminated, report, reset_stop_signals, stop_signal, stopping


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """The options every command takes, before or after the command name.

    Subcommands use SUPPRESS defaults so they never overwrite what was given before the command.
    """
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE", default=d(None),
                   help="config file (default: the project's config.yaml)")
    g.add_argument("--set", metavar="KEY=VALUE", action="append", default=d([]), dest="overrides",
                   help="override a config key, e.g. --set drowsiness.perclos_window_s=30 (repeatable)")
    g.add_argument("--backend", choices=("auto", "tensorrt", "onnxruntime", "torch"), default=d(None),
                   help="inference backend (overrides engine.backend)")
    g.add_argument("-v", "--verbose", action="store_true", default=d(False),
                   help="say why each choice was made (e.g. the engine's backend and device)")


def _source_arg(text: str):
    """'0' -> camera 0; anything else is a path or URL."""
    from .capture import source_arg

    return source_arg(text)


def _out_dir(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the folder for the results, e.g. --out results/drive1")
    return text


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {v}")
    return v


def _fps(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1.0 <= v <= 1000.0:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000 frames per second, got {v:g}")
    return v


def cmd_analyze(args: argparse.Namespace, cfg: Config) -> int:
    from .analyze import analyze

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


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from .scenarios import evaluate, markdown

    base = list(args.overrides or [])
    if args.backend:
        base.append(f"engine.backend={args.backend}")
    summary = evaluate(args.truth, args.out, lambda extra: load_config(args.config, [*base, *extra]),
                       video_dir=args.video_dir, reuse=args.reuse, only=args.clip or ())
    words = ["driver-monitor evaluate", args.truth, "--out", args.out]
    words += [a for o in base for a in ("--set", o)]
    words += ["--config", args.config] if args.config else []
    words += ["--video-dir", args.video_dir] if args.video_dir else []
    words += [a for c in args.clip or () for a in ("--clip", c)]
    words += ["--doc", args.doc] if args.doc else []
    text = markdown(summary, " ".join(words), args.truth, [
        "Each interval was marked by a person; its label sets what must happen (an alert within a "
        "latency, or no alert), as listed in docs/driver_state.md, section \"Scenario evaluation\". "
        "Latency runs from the marked start to the first frame that shows the outcome.", ""])
    from pathlib import Path

    (Path(args.out) / "dms_eval.md").write_text(text, encoding="utf-8")
    if args.doc:  # the Markdown there, and the JSON beside it
        doc = Path(args.doc)
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(text, encoding="utf-8")
        doc.with_suffix(".json").write_text((Path(args.out) / "dms_eval.json").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    fph = summary["false_alerts_per_hour"]
    print(f"{'all scenarios passed' if summary['passed'] else 'some scenarios FAILED'}; false alerts on "
          f"attentive driving: {summary['false_alerts_attentive']} in {summary['attentive_s']:.0f} s"
          + ("" if fph is None else f" ({fph:g} per hour)") + f"; report: {Path(args.out) / 'dms_eval.md'}")
    return 0 if summary["passed"] else 1


def _common_everywhere(p: argparse.ArgumentParser) -> None:
    """The common options on a command and on each of its actions (``engines list --set ...``)."""
    _common(p)
    for action in p._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _common_everywhere(child)


def _on_signal(signum: int, _frame: object) -> None:
    """The first SIGTERM / SIGHUP raises ``Terminated(signum, name)`` (exit 128 + signum), the first
    SIGINT KeyboardInterrupt (130); one that comes while the run is already stopping is ignored,
    and one that comes while summary.json is written waits for it (errors.stop_signal)."""
    stop_signal(signum)


def _handle_termination() -> dict[int, Any]:
    """SIGTERM and SIGHUP end a run like Ctrl-C: what was analysed is kept, summary.json written;
    a second signal (of any of the three) cannot cut the final write short. Returns the handlers
    replaced, for :func:`_restore_handlers`."""
    import signal
    import threading

    reset_stop_signals()
    before: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return before
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                before[sig] = signal.signal(sig, _on_signal)
            except (OSError, ValueError):  # not allowed here (embedded interpreter)
                pass
    return before


def _restore_handlers(before: dict[int, Any], ignore: bool = False) -> None:
    """The handlers :func:`_handle_termination` replaced; ``ignore``: none (the signals are ignored
    from now on, also while the interpreter shuts down: the run has stopped and is exiting)."""
    import signal

    for sig, handler in before.items():
        try:
            signal.signal(sig, signal.SIG_IGN if ignore else handler if handler is not None else signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def cmd_batch(args: argparse.Namespace, cfg: Config) -> int:
    from .fleet import BatchOptions, run_batch

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


def _add_batch(sub: Any) -> None:
    p = sub.add_parser("batch", help="analyse a folder or manifest of recorded drives on Ray (local or a cluster)")
    p.add_argument("drives", help="folder of videos, or a manifest (.csv / .jsonl: path, driver_id, vehicle_id, "
                                  "start_time)")
    p.add_argument("--out", required=True, type=_out_dir, metavar="DIR",
                   help="results: drives/<id>/ as analyze writes them, fleet.jsonl, fleet.csv, fleet.html")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to use: auto (a running local cluster) or ray://HOST:10001; "
                        "default: start Ray on this machine")
    p.add_argument("--workers", type=_positive_int, metavar="N",
                   help="workers (default, and at most: as many as the cluster's CPUs / GPUs hold)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="K", help="CPUs per worker (default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs per worker (default 0)")
    p.add_argument("--retries", type=int, default=2, metavar="R", help="times a drive is retried when its worker "
                                                                      "dies (default 2)")
    p.add_argument("--force", action="store_true", help="analyse again the drives already complete in --out")
    bprog = p.add_mutually_exclusive_group()
    bprog.add_argument("--progress", dest="progress", action="store_true", default=None)
    bprog.add_argument("--no-progress", dest="progress", action="store_false")
    _common(p)
    p.set_defaults(func=cmd_batch)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driver-monitor",
        description="Real-time driver monitoring: drowsiness, distraction, emotions and action units. "
                    "Without a subcommand, opens the dashboard on capture.source from the config.")
    parser.add_argument("--version", action="version", version=f"driver-monitor {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("analyze", help="analyse a recorded drive (or a live feed) headless into CSV/JSONL")
    p.add_argument("source", type=_source_arg, help="video file, camera index (0) or stream URL")
    p.add_argument("--out", required=True, type=_out_dir, metavar="DIR",
                   help="folder for frames.csv, events.jsonl, summary.json (refused when it holds results)")
    p.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    p.add_argument("--max-frames", type=_positive_int, metavar="N", help="stop after N frames")
    p.add_argument("--fps", type=_fps, metavar="N",
                   help="time a file at N frames per second (when the file's own rate is missing or wrong)")
    prog = p.add_mutually_exclusive_group()
    prog.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show a progress bar (default: when stderr is a terminal)")
    prog.add_argument("--no-progress", dest="progress", action="store_false")
    _common(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("evaluate", help="score the driver-state alerts on clips a person marked (a truth file)")
    p.add_argument("truth", help="YAML truth file listing the clips and their marked intervals "
                                 "(e.g. scenarios/shared_clips.yaml)")
    p.add_argument("--out", required=True, type=_out_dir, metavar="DIR",
                   help="folder for each clip's results and dms_eval.json/.md")
    p.add_argument("--video-dir", metavar="DIR", help="folder of the videos (default: the truth file's video_dir)")
    p.add_argument("--clip", action="append", metavar="NAME", help="only this clip (repeatable)")
    p.add_argument("--reuse", action="store_true", help="score the results already in --out instead of analysing")
    p.add_argument("--doc", metavar="FILE", help="also write the Markdown report here, and its JSON beside it "
                                                 "(e.g. docs/dms_eval.md)")
    _common(p)
    p.set_defaults(func=cmd_evaluate)

    _add_batch(sub)

    for module in ("driver_monitor.ui.commands", "driver_monitor.bench_cli", "driver_monitor.engine.commands"):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        before = set(sub.choices)
        mod.add_parsers(sub)
        for name in set(sub.choices) - before:
            _common_everywhere(sub.choices[name])
    parser.set_defaults(_commands=sub.choices)
    return parser


def _quiet_native_stderr() -> None:
    """Send native libraries' stderr (fd 2) to /dev/null; Python's sys.stderr keeps the terminal.

    MediaPipe's C++ graph threads and FFmpeg print start-up and decoder chatter straight to fd 2
    ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires ...", "non-existing PPS"),
    at times no Python code can bracket; to a user they read like errors, and our own messages
    say what matters. Only for the CLI process, only when sys.stderr really is fd 2.
    DM_NATIVE_LOGS=1 keeps them.
    """
    import os

    if os.environ.get("DM_NATIVE_LOGS"):
        return
    try:
        if sys.stderr is None or sys.stderr.fileno() != 2:
            return
        sys.stderr.flush()
        real = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (captured, embedded)
        return
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                           errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_native_stderr()
    before = _handle_termination()
    try:
        return _run(argv)
    finally:  # after a stop, a signal while the process exits cannot change its exit code
        _restore_handlers(before, ignore=stopping())


def _run(argv: Sequence[str] | None) -> int:
    try:  # a stop while the commands load (the first fraction of a second) is a stop too
        parser = build_parser()
        args = parser.parse_args(argv)
        overrides = list(args.overrides or [])
        if args.backend:
            overrides.append(f"engine.backend={args.backend}")
        if getattr(args, "fps", None):
            overrides.append(f"capture.fps={args.fps}")
        cfg = load_config(args.config, overrides)
        func = getattr(args, "func", None)
        if func is None:  # bare `driver-monitor`: the dashboard on the configured source
            if "gui" not in args._commands:
                raise DriverMonitorError("the dashboard is not available in this install (driver_monitor.ui "
                                         "could not be imported); use `driver-monitor analyze FILE --out DIR`")
            args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "gui"])
            func = args.func
        return int(func(args, cfg) or 0)
    except DriverMonitorError as exc:
        return report(exc)
    except OSError as exc:  # a file-system failure no command foresaw: still one line, no traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; check that the path exists, is writable and has free space",
              file=sys.stderr)
        return 1
    except Terminated as exc:
        print(f"stopped by {exc.name}: the results written so far are kept", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: results written so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
