"""``driver-monitor`` command line: the entry point, the common options, signals and error reporting.

The subcommands (gui, the default; analyze, evaluate, batch, bench, engines) are the modules of
``driver_monitor/commands/``, listed in ``commands.COMMANDS``; this module builds the parser from
that list. Common options: ``--config FILE``, ``--set KEY=VALUE`` (repeatable), ``--backend NAME``,
``-v``. User errors print one line (``error: ...``) and exit non-zero; no tracebacks.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from . import __version__
from .config import load_config
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driver-monitor",
        description="Real-time driver monitoring: drowsiness, distraction, emotions and action units. "
                    "Without a subcommand, opens the dashboard on capture.source from the config.")
    parser.add_argument("--version", action="version", version=f"driver-monitor {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from .commands import COMMANDS  # here, not at the top: a stop signal while they load is handled

    for command in COMMANDS:
        _common_everywhere(command.add_parser(sub))
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
