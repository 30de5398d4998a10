"""``driver-monitor gui [--source FILE|INDEX|URL]``: the dashboard (the CLI's default command).

Qt is imported only when the dashboard starts (``ui.app`` inside :func:`cmd_gui`), and whether a window
can open is tried in a child process first (:func:`display_problem`), so ``--help`` and the other
commands never load it."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import DriverMonitorError, SourceError
from . import argtypes


_QT_LIBS_HINT = ("install the system libraries the dashboard needs, e.g. on Debian / Ubuntu: sudo apt-get install "
                 "libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 "
                 "libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxcb-xfixes0 libpulse0 "
                 "(README: Install)")
_HEADLESS_HINT = "or use `driver-monitor analyze FILE --out DIR` headless"


def display_problem(env: dict | None = None) -> str | None:
    """Why the dashboard cannot open a window here, or None when it can.

    Qt aborts the process (exit 134) when there is no display or a platform library is missing,
    and its reason goes to native stderr, which the CLI silences; so a child process tries first
    and its stderr is read. Offscreen / minimal platforms need no probe."""
    import os
    import subprocess
    import sys

    env = dict(os.environ if env is None else env)
    if env.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc"):
        return None
    code = "import sys; from PyQt6.QtWidgets import QApplication; app = QApplication(sys.argv[:1]); print('window-ok')"
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None  # cannot tell here: let the dashboard try
    if r.returncode == 0 and "window-ok" in r.stdout:
        return None
    err = r.stderr
    if "could not connect to display" in err or not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        shown = env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")
        which = f"display {shown!r} cannot be reached" if shown else "there is no display (DISPLAY is not set)"
        return (f"the dashboard cannot open a window: {which}; run it on a desktop session, over ssh -X, or "
                f"under xvfb-run (apt-get install xvfb), {_HEADLESS_HINT}")
    if "platform plugin" in err or "xcb" in err:
        return (f"the dashboard cannot open a window: Qt could not load its xcb platform plugin; "
                f"{_QT_LIBS_HINT}, {_HEADLESS_HINT}")
    last = next((line.strip() for line in reversed(err.splitlines()) if line.strip()), f"exit code {r.returncode}")
    return f"the dashboard cannot open a window ({last[:200]}); {_QT_LIBS_HINT}, {_HEADLESS_HINT}"


def cmd_gui(args: argparse.Namespace, cfg: Config) -> int:
    from ..capture import parse_source

    try:
        from ..ui.app import run_gui
    except ImportError as exc:  # PyQt6 / pyqtgraph / a Qt system library missing
        raise DriverMonitorError(
            f"the dashboard cannot start: {exc}; install the GUI dependencies (pip install -e .) and the "
            f"Qt system libraries (e.g. apt-get install libegl1 libxkbcommon-x11-0 libxcb-cursor0), "
            f"or use `driver-monitor analyze FILE --out DIR` headless") from None
    source = cfg.capture.source if args.source is None else args.source
    spec = parse_source(source)
    if spec.kind == "file" and not Path(spec.target).expanduser().is_file():
        # a missing file fails here, on one line, before a window opens; a camera that cannot be
        # opened is handled in the window, which offers to open a file instead
        raise SourceError(f"file {source!r} does not exist; give a video file (--source DRIVE.mp4), "
                          f"a camera index (--source 0) or a stream URL")
    problem = display_problem()
    if problem:
        raise DriverMonitorError(problem)
    return run_gui(cfg, source, start_paused=bool(getattr(args, "paused", False)))


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "gui", help="open the dashboard on a camera, stream or recorded drive (default command)",
        description="Open the dashboard. Without --source it uses capture.source from the config.")
    p.add_argument("--source", type=argtypes.source, default=None, metavar="FILE|INDEX|URL",
                   help="video file to replay, camera index (0) or stream URL (default: capture.source)")
    p.add_argument("--paused", action="store_true", help="open a recorded drive paused on its first frame")
    p.set_defaults(func=cmd_gui)
    return p
