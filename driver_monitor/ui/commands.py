"""``driver-monitor gui [--source FILE|INDEX|URL]``: the dashboard (the CLI's default command)."""
from __future__ import annotations

import argparse

from pathlib import Path

from ..config import Config
from ..errors import DriverMonitorError, SourceError


def _source(text: str):
    """'0' -> camera 0; anything else is a path or URL."""
    return int(text) if text.strip().isdigit() else text


def cmd_gui(args: argparse.Namespace, cfg: Config) -> int:
    try:
        from .app import run_gui
    except ImportError as exc:  # PyQt6 / pyqtgraph / a Qt system library missing
        raise DriverMonitorError(
            f"the dashboard cannot start: {exc}; install the GUI dependencies (pip install -e .) and the "
            f"Qt system libraries (e.g. apt-get install libegl1 libxkbcommon-x11-0 libxcb-cursor0), "
            f"or use `driver-monitor analyze FILE --out DIR` headless") from None
    source = cfg.capture.source if args.source is None else args.source
    if isinstance(source, str) and not source.strip().isdigit() and "://" not in source \
            and not Path(source).expanduser().is_file():
        # a missing file fails here, on one line, before a window opens; a camera that cannot be
        # opened is handled in the window, which offers to open a file instead
        raise SourceError(f"file {source!r} does not exist; give a video file (--source DRIVE.mp4), "
                          f"a camera index (--source 0) or a stream URL")
    return run_gui(cfg, source, start_paused=bool(getattr(args, "paused", False)))


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "gui", help="open the dashboard on a camera, stream or recorded drive (default command)",
        description="Open the dashboard. Without --source it uses capture.source from the config.")
    p.add_argument("--source", type=_source, default=None, metavar="FILE|INDEX|URL",
                   help="video file to replay, camera index (0) or stream URL (default: capture.source)")
    p.add_argument("--paused", action="store_true", help="open a recorded drive paused on its first frame")
    p.set_defaults(func=cmd_gui)
