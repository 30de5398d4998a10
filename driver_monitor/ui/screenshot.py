"""A screenshot of the dashboard replaying a real video (``tools/screenshot_dashboard.py``).

The video is analysed frame by frame (every frame, as fast as possible, so the plots and the state
are those of a normal replay) up to the frame asked for (default: the last frame), then paused and
the window is grabbed: from the X server when the platform is ``xcb`` (what the user would see),
else by rendering the widget (``offscreen``). The QApplication must be made by the caller, with
the platform chosen before PyQt6 is imported.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Shot:
    """The outcome: the exit code, and the line to print (to stderr when ``error``)."""

    code: int
    text: str
    error: bool = False


def image_stats(img: Any) -> tuple[int, float]:
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


def _waiter(app: Any, win: Any, deadline: float) -> Callable[[Callable[[], bool]], bool]:
    """wait(cond): process events until ``cond()`` holds (True), the deadline passes or the window
    reports a fatal error (False)."""
    def wait(cond: Callable[[], bool]) -> bool:
        while not cond():
            if time.monotonic() > deadline or (win.errors and win.errors[-1].fatal):
                return False
            app.processEvents()
            time.sleep(0.005)
        return True

    return wait


def _replay_to(win: Any, wait: Callable[[Callable[[], bool]], bool], frame: int | None) -> bool:
    """Step (or play) the replay to ``frame`` (None: the last frame) and wait until it is shown."""
    ok = wait(lambda: win.info is not None)
    if ok and frame is not None:
        last = (win.info.frame_count or frame + 1) - 1
        target = min(frame, last)
        if target > 0:
            win.worker.step(target)  # frames 1..target after the first
        ok = wait(lambda: win.latest is not None and win.latest.index == target
                  and not win.playback_state.at_end)
    elif ok:
        ok = wait(lambda: win.latest is not None and win.playback_state.at_end)
    return ok and wait(lambda: win.displayed is win.latest)


def _show_tab(win: Any, tab: str) -> Shot | None:
    titles = [win.tabs.tabText(i).replace("&&", "&") for i in range(win.tabs.count())]
    if tab not in titles:
        return Shot(2, f"error: no tab {tab!r}; the tabs are: {', '.join(titles)}", error=True)
    win.tabs.setCurrentIndex(titles.index(tab))
    return None


def _grab(app: Any, win: Any, out: Path) -> Shot:
    """Grab the window into ``out``; exit code 1 when the picture is blank (a single colour)."""
    from .app import finish_workers

    for _ in range(20):  # let the layout settle and the last redraw land
        app.processEvents()
        time.sleep(0.01)
    if app.platformName() == "xcb":
        img = win.screen().grabWindow(int(win.winId())).toImage()
    else:
        img = win.grab().toImage()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not img.save(str(out)):
        win.close()
        return Shot(1, f"error: cannot write {out}", error=True)
    distinct, std = image_stats(img)
    r = win.displayed
    text = (f"wrote {out} ({img.width()}x{img.height()}, platform {app.platformName()}, frame {r.index}, "
            f"{distinct} colours, grey std {std:.1f}; backend {win.info.backend}; banner: {win.banner.text()})")
    win.close()
    code = 0 if distinct > 50 and std > 5.0 else 1
    finish_workers(code)  # as the dashboard does before it exits: no QThread left running
    return Shot(code, text)


def screenshot(app: Any, cfg: Any, video: str, out: Path, *, frame: int | None = None,
               size: tuple[int, ...] | None = None, tab: str | None = None, timeout: float = 120.0) -> Shot:
    """Replay ``video`` in the dashboard up to ``frame``, show ``tab`` and write the window to ``out``."""
    from .main_window import MainWindow

    # frame: start paused (the first frame is shown) and step frame by frame up to it (every frame
    # analysed in order, so the state and plots are those of a normal replay; a seek would restart
    # the analysis there)
    win = MainWindow(cfg, video, speed=None, start_paused=frame is not None)
    if size:
        win.resize(*size)
    win.show()
    if not _replay_to(win, _waiter(app, win, time.monotonic() + timeout), frame):
        why = win.errors[-1].message if win.errors else f"no frame {frame} within {timeout:.0f} s"
        win.close()
        return Shot(1, f"error: {why}", error=True)
    if tab:
        problem = _show_tab(win, tab)
        if problem is not None:
            win.close()
            return problem
    return _grab(app, win, out)
