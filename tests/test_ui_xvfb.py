"""One real window: the dashboard on an Xvfb X server (platform xcb), grabbed from the screen.

Needs the Xvfb binary and Qt's xcb libraries (Debian/Ubuntu: xvfb xauth libegl1 libgl1
libfontconfig1 libdbus-1-3 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
libxcb-render-util0 libxcb-cursor0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxcb-xfixes0; .ci/run
installs them). Skips where Xvfb is missing, fails there when DM_REQUIRE_DATA=1 (CI).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT, need_data

pytestmark = [pytest.mark.ui, pytest.mark.xvfb, pytest.mark.data]


@contextlib.contextmanager
def xvfb(screen: str = "1600x1000x24"):
    """An Xvfb server with one screen of ``screen`` (WxHxDEPTH); yields its DISPLAY."""
    exe = shutil.which("Xvfb")
    if exe is None:
        msg = "Xvfb is not installed (apt-get install xvfb and the xcb libraries listed in this module)"
        if os.environ.get("DM_REQUIRE_DATA", "") not in ("", "0"):
            pytest.fail(msg + "; CI (DM_REQUIRE_DATA=1) must run the real-window test")
        pytest.skip(msg)
    # -displayfd: Xvfb picks a free display and writes its number on the pipe when it is ready
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        if not number:
            err = proc.stderr.read().decode(errors="replace")[-500:] if proc.poll() is not None else ""
            pytest.fail(f"Xvfb did not start: {err}")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def xvfb_display():
    with xvfb() as display:
        yield display


def test_real_window_screenshot_is_not_blank(xvfb_display, tmp_path):
    video = need_data("videos/single_face.mp4")
    out = tmp_path / "dashboard_xvfb.png"
    env = dict(os.environ, DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(PROJECT_ROOT))
    proc = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "screenshot_dashboard.py"), "--platform", "xcb",
         "--video", str(video), "--frame", "60", "--out", str(out), "--size", "1280x860"],
        env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "platform xcb" in proc.stdout and "frame 60" in proc.stdout
    from PyQt6.QtGui import QImage

    from driver_monitor.ui.screenshot import image_stats

    img = QImage(str(out))
    assert not img.isNull() and img.width() >= 1200 and img.height() >= 800
    distinct, std = image_stats(img)
    assert distinct > 500 and std > 20.0  # a real frame, panels and plots, not one flat colour
    assert Path(out).stat().st_size > 50_000


# ---------------------------------------------------------------- the window fits the screen

def visible_part(widget, window):
    """The part of ``widget`` (in ``window``'s coordinates) that its ancestors do not clip."""
    from PyQt6.QtCore import QPoint, QRect

    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    w = widget.parentWidget()
    while w is not None and w is not window:
        rect = rect.intersected(QRect(w.mapTo(window, QPoint(0, 0)), w.size()))
        w = w.parentWidget()
    return rect.intersected(window.rect()), QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())


def fit_report(win, app) -> dict:
    """Where the window and its key widgets are, and which of them are not wholly visible."""
    def settle() -> None:  # a tab just shown lays itself out over a few event-loop turns
        for _ in range(20):
            app.processEvents()
            time.sleep(0.005)

    def cut(widgets) -> list[str]:
        settle()
        out = []
        for name, w in widgets:
            seen, whole = visible_part(w, win)
            if not w.isVisible() or seen != whole or whole.isEmpty():
                out.append(f"{name}: {whole.getRect()} shows {seen.getRect()}")
                continue
            need = (w.heightForWidth(w.width()) if w.hasHeightForWidth()  # a wrapped label inside
                    else min(w.sizeHint().height(), w.maximumHeight()))
            if w.height() < need:
                out.append(f"{name}: squeezed to {w.height()} px of {need}")
        return out

    sb = win.statusBar()
    base = [("status bar", sb), ("banner", win.banner), ("video", win.video), ("slider", win.slider),
            ("speed", win.speed_box), ("state panel", win.state_panel), ("calibrate", win.state_panel.calibrate_button),
            ("plots", win.plots.view)] + [(f"status {w.text()!r}", w) for w in sb.findChildren(type(win.status_fps))
                                          if w.isVisible()]
    clipped = cut(base)
    win.tabs.setCurrentIndex(0)
    clipped += cut([("emotion panel", win.emotion_panel)]
                   + [(f"emotion bar {n}", b) for n, b in win.emotion_panel.bars.items()]
                   + [(f"emotion label {n}", b) for n, b in win.emotion_panel.labels.items()])
    win.tabs.setCurrentIndex(1)
    clipped += cut([("AU panel", win.au_panel)]
                   + [(f"AU bar {n}", b) for n, b in win.au_panel.bars.items()]
                   + [(f"AU label {n}", b) for n, b in win.au_panel.labels.items()])
    win.tabs.setCurrentIndex(0)
    view = win.plots.view
    for key in win.plots.visible_plots():  # each plot's whole item inside the plots' view
        r = view.mapFromScene(win.plots.plots[key].sceneBoundingRect()).boundingRect()
        if not view.rect().contains(r):
            clipped.append(f"plot {key}: {r.getRect()} outside the view {view.rect().getRect()}")
    avail, frame = win.screen().availableGeometry(), win.frameGeometry()
    return {"available": avail.getRect(), "frame": frame.getRect(), "frame_fits": avail.contains(frame),
            "clipped": clipped, "emotion_bars": len(win.emotion_panel.bars), "au_bars": len(win.au_panel.bars),
            "plots": win.plots.visible_plots()}


def fit_child(video: str, frame: int, out: str) -> int:
    """Run in a child process on the X server: open the dashboard as a user would (its own size),
    replay ``video`` to ``frame``, print the fit report as JSON and save a screenshot to ``out``."""
    from PyQt6.QtWidgets import QApplication

    from driver_monitor.config import load_config
    from driver_monitor.ui.app import finish_workers
    from driver_monitor.ui.main_window import MainWindow

    app = QApplication(["driver-monitor"])
    win = MainWindow(load_config(), video, speed=None, start_paused=True)
    win.show()
    deadline = time.monotonic() + 90

    def wait(cond) -> None:
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError("the dashboard did not reach the frame in 90 s")
            app.processEvents()
            time.sleep(0.005)

    wait(lambda: win.info is not None and win.latest is not None)
    win.worker.step(frame)
    wait(lambda: win.latest.index == frame and win.displayed is win.latest)
    for _ in range(30):  # let the layout settle and the last redraw land
        app.processEvents()
        time.sleep(0.01)
    report = fit_report(win, app)
    win.screen().grabWindow(int(win.winId())).save(out)
    print("FIT " + json.dumps(report))
    win.close()
    finish_workers(0)
    return 0


# a 1366x768 laptop's whole screen, the same less a 30 px title bar and a 29 px desktop panel, a full-HD screen
@pytest.mark.parametrize("screen", ["1366x768", "1366x709", "1920x1080"])
def test_dashboard_fits_the_screen_it_opens_on(screen, tmp_path):
    """A real X window on a laptop's 1366x768 and on a 1920x1080 screen: the window's frame is
    inside the available area and the right panel's bars, the plots and the status bar are whole."""
    video = need_data("videos/head_turns.mp4")
    out = tmp_path / f"dashboard_{screen}.png"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.test_ui_xvfb import fit_child; "
            "sys.exit(fit_child(sys.argv[2], int(sys.argv[3]), sys.argv[4]))")
    with xvfb(screen + "x24") as display:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(PROJECT_ROOT))
        proc = subprocess.run([sys.executable, "-c", code, str(PROJECT_ROOT), str(video), "120", str(out)],
                              env=env, capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("FIT "))
    report = json.loads(line[4:])
    w, h = (int(v) for v in screen.split("x"))
    assert report["available"] == [0, 0, w, h]
    assert report["frame_fits"], report
    fx, fy, fw, fh = report["frame"]
    assert fw == min(1400, w) and fh == min(900, h)  # the preferred size where it fits, the screen where not
    assert report["clipped"] == [], report["clipped"]
    assert report["emotion_bars"] >= 7 and report["au_bars"] >= 12 and len(report["plots"]) == 3
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (fw, fh)
