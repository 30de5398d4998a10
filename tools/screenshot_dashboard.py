#!/usr/bin/env python3
"""Write a screenshot of the dashboard replaying a real video (docs/img/dashboard.png).

    python tools/screenshot_dashboard.py                       # single_face.mp4 -> docs/img/dashboard.png
    python tools/screenshot_dashboard.py --video ../shared/data/videos/head_turns.mp4 --frame 200 --out /tmp/x.png
    xvfb-run -a python tools/screenshot_dashboard.py --platform xcb   # a real X window, grabbed from the screen

The video is analysed frame by frame (as fast as possible, every frame, so the plots and the
state are those of a normal replay) up to ``--frame`` (default: the last frame), then paused and
the window is grabbed: from the X server when the platform is ``xcb`` (what the user would see),
else by rendering the widget (``offscreen``). Exits non-zero when the video cannot be opened or
the picture is blank (a single colour).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "videos" / "single_face.mp4"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=str(DEFAULT_VIDEO), help="video file to replay (default: %(default)s)")
    p.add_argument("--out", default=str(ROOT / "docs" / "img" / "dashboard.png"), help="PNG to write")
    p.add_argument("--frame", type=int, default=None, help="frame to stop on (default: the last one)")
    p.add_argument("--size", default=None,
                   help="window size WxH (default: the dashboard's own, fitted to the screen it opens on)")
    p.add_argument("--tab", default=None, help="the side panel's tab to show, by its title (e.g. 'Action units')")
    p.add_argument("--platform", default=None,
                   help="Qt platform (xcb under Xvfb for a real window; default: QT_QPA_PLATFORM or offscreen)")
    p.add_argument("--config", default=None, help="config file (default: the project's config.yaml)")
    p.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                   help="config override, e.g. --set ui.plot_window_s=5 (repeatable)")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.platform:
        os.environ["QT_QPA_PLATFORM"] = args.platform
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from driver_monitor.config import load_config
    from driver_monitor.errors import DriverMonitorError
    from driver_monitor.ui.screenshot import screenshot

    try:
        cfg = load_config(args.config, args.overrides)
    except DriverMonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not Path(args.video).is_file():
        print(f"error: video {args.video!r} does not exist; pass --video FILE", file=sys.stderr)
        return 3
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    app = QApplication.instance() or QApplication(["driver-monitor"])
    shot = screenshot(app, cfg, args.video, Path(args.out), frame=args.frame, size=size, tab=args.tab,
                      timeout=args.timeout)
    print(shot.text, file=sys.stderr if shot.error else sys.stdout)
    return shot.code


if __name__ == "__main__":
    rc = main()
    # The picture is written and the workers have stopped; leave without the interpreter's teardown
    # of Qt and MediaPipe objects, whose destruction order has crashed this process once after its
    # work was done (exit -11 under a CI load, not reproduced in 32 runs here).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
