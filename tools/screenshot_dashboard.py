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
import time
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


def image_stats(img) -> tuple[int, float]:
    """(distinct colours in a sample, grey-level standard deviation) of a QImage."""
    import numpy as np
    from PyQt6.QtGui import QImage

    img = img.convertToFormat(QImage.Format.Format_RGB888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3]
    arr = arr.reshape(img.height(), img.width(), 3)
    sample = arr[::4, ::4].reshape(-1, 3)
    distinct = len(np.unique(sample[:, 0].astype(np.int32) << 16 | sample[:, 1].astype(np.int32) << 8 | sample[:, 2]))
    return distinct, float(arr.mean(axis=2).std())


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.platform:
        os.environ["QT_QPA_PLATFORM"] = args.platform
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from driver_monitor.config import load_config
    from driver_monitor.errors import DriverMonitorError
    from driver_monitor.ui.app import finish_workers
    from driver_monitor.ui.main_window import MainWindow

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
    # --frame: start paused (the first frame is shown) and step frame by frame up to it (every frame
    # analysed in order, so the state and plots are those of a normal replay; a seek would restart
    # the analysis there)
    win = MainWindow(cfg, args.video, speed=None, start_paused=args.frame is not None)
    if size:
        win.resize(*size)
    win.show()
    deadline = time.monotonic() + args.timeout

    def wait(cond) -> bool:
        while not cond():
            if time.monotonic() > deadline or (win.errors and win.errors[-1].fatal):
                return False
            app.processEvents()
            time.sleep(0.005)
        return True

    ok = wait(lambda: win.info is not None)
    if ok and args.frame is not None:
        last = (win.info.frame_count or args.frame + 1) - 1
        target = min(args.frame, last)
        if target > 0:
            win.worker.step(target)  # frames 1..target after the first
        ok = wait(lambda: win.latest is not None and win.latest.index == target
                  and not win.playback_state.at_end)
    elif ok:
        ok = wait(lambda: win.latest is not None and win.playback_state.at_end)
    ok = ok and wait(lambda: win.displayed is win.latest)
    if not ok:
        why = win.errors[-1].message if win.errors else f"no frame {args.frame} within {args.timeout:.0f} s"
        print(f"error: {why}", file=sys.stderr)
        win.close()
        return 1
    if args.tab:
        titles = [win.tabs.tabText(i).replace("&&", "&") for i in range(win.tabs.count())]
        if args.tab not in titles:
            print(f"error: no tab {args.tab!r}; the tabs are: {', '.join(titles)}", file=sys.stderr)
            win.close()
            return 2
        win.tabs.setCurrentIndex(titles.index(args.tab))
    for _ in range(20):  # let the layout settle and the last redraw land
        app.processEvents()
        time.sleep(0.01)
    if app.platformName() == "xcb":
        img = win.screen().grabWindow(int(win.winId())).toImage()
    else:
        img = win.grab().toImage()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not img.save(str(out)):
        print(f"error: cannot write {out}", file=sys.stderr)
        win.close()
        return 1
    distinct, std = image_stats(img)
    r = win.displayed
    print(f"wrote {out} ({img.width()}x{img.height()}, platform {app.platformName()}, frame {r.index}, "
          f"{distinct} colours, grey std {std:.1f}; backend {win.info.backend}; banner: {win.banner.text()})")
    win.close()
    code = 0 if distinct > 50 and std > 5.0 else 1
    finish_workers(code)  # as the dashboard does before it exits: no QThread left running
    return code


if __name__ == "__main__":
    rc = main()
    # The picture is written and the workers have stopped; leave without the interpreter's teardown
    # of Qt and MediaPipe objects, whose destruction order has crashed this process once after its
    # work was done (exit -11 under a CI load, not reproduced in 32 runs here).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
