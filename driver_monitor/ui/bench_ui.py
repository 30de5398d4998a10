"""Measure the dashboard's drawing cost: ``driver-monitor bench --dashboard [VIDEO ...] [--live VIDEO]``.

It drives the real window (``MainWindow``) and reads what the window measures of itself, so it sits
beside it in ``ui``; ``commands/bench.py`` imports it only when ``--dashboard`` is asked for.

1. plots: refresh + repaint with a full ``ui.plot_window_s`` window of synthetic samples, the
   default plots and all five;
2. with VIDEOs: a replay at ``--speed`` in the real window: the cost of each ``redraw()``
   (widgets + plots), the end-to-end latency (frame read -> drawn) and the frames shown; then
   the time from a seek to the target frame on screen;
3. with ``--live``: the file played as a camera (a live source whose capture thread gets the
   file's frames at its frame rate): the latency from a frame's capture to its result drawn, the
   frames drawn and those the source dropped for a newer one.

Prints one line per measurement (figures for docs/ui.md), with the machine's load average, since
on a shared machine the load moves these numbers more than the code does.
"""
from __future__ import annotations

import math
import os
import time


def _stats(values) -> str:
    import numpy as np

    a = np.asarray(list(values), float)
    if a.size == 0:
        return "no samples"
    return f"mean {a.mean():.1f} ms, median {np.median(a):.1f} ms, p95 {np.percentile(a, 95):.1f} ms (n={a.size})"


def model_emotion_names(cfg) -> tuple[str, ...]:
    """The emotion names the configured model carries (none when it cannot be read: no engine)."""
    from ..config import PROJECT_ROOT
    from ..engine.base import resolve_model_path
    from ..model_contract import read_model_info
    from ..errors import DriverMonitorError

    try:
        return read_model_info(resolve_model_path(cfg.engine, PROJECT_ROOT)).emotion_names
    except DriverMonitorError:
        return ()


def bench_plots(cfg, app, redraws: int = 300, plots=None, emotion_names=None) -> str:
    """``plots``: the plots shown (default: the dashboard's default ones); ``emotion_names``: the
    emotion curves (default: the configured model's)."""
    import numpy as np

    from ..types import DriverState, EngineReading, Frame, FrameResult, Signals
    from .plots import DEFAULT_PLOTS, SignalPlots

    names = model_emotion_names(cfg) if emotion_names is None else tuple(emotion_names)
    p = SignalPlots(cfg, names, visible=DEFAULT_PLOTS if plots is None else plots)
    p.resize(1000, 380)
    p.show()
    probs = {n: 1.0 / len(names) for n in names}
    img = np.zeros((2, 2), np.uint8)

    def result(i: int) -> FrameResult:
        t = i / 30.0
        s = Signals(0.3, 0.3, 0.3 + 0.05 * math.sin(t), 0.1, 10 * math.sin(t / 3), 5 * math.cos(t / 2), 0, 0, 0)
        return FrameResult(frame=Frame(img, i, t), camera_ok=True, state=DriverState(t_s=t, perclos=0.1),
                           smoothed=s, signals=s, engine=EngineReading(probs))

    full = int(cfg.ui.plot_window_s * 30)
    for i in range(full):
        p.append(result(i))
    ms = []
    for i in range(full, full + redraws):
        p.append(result(i))
        t0 = time.perf_counter()
        p.refresh()
        p.repaint()
        app.processEvents()
        ms.append((time.perf_counter() - t0) * 1e3)
    p.close()
    shown = p.visible_plots()
    curves = sum(1 for plot in p.curve_plot.values() if plot in shown)
    return (f"plots {'+'.join(shown)}: refresh+repaint, full {cfg.ui.plot_window_s:g} s window at 30 Hz "
            f"({full} samples x {curves} curves, 1000x380 px): {_stats(ms)}")


def bench_replay(cfg, app, video: str, speed: float | None) -> list[str]:
    from .main_window import MainWindow

    w = MainWindow(cfg, video, speed=speed)
    w.resize(1400, 900)
    w.show()
    t0 = time.monotonic()
    while not w.playback_state.at_end and not w.errors and time.monotonic() - t0 < 600:
        app.processEvents()
        time.sleep(0.002)
    elapsed = time.monotonic() - t0
    name = os.path.basename(video)
    if w.errors:
        w.close()
        return [f"{name}: error: {w.errors[-1].message}"]
    out = [
        f"{name} at {'max' if speed is None else f'{speed:g}x'}: {len(w.session_results)} frames in {elapsed:.1f} s, "
        f"{w.video.frames_drawn} drawn; backend {w.info.backend}",
        f"  redraw() (widgets + plots): {_stats(w.redraw_ms)}",
        f"  latency frame read -> drawn: {_stats(w.latencies_ms)}",
    ]
    w.close()
    return out


class _PacedFile:
    """A camera stand-in: the frames of a video file, each delivered when it is due at the file's
    frame rate, once (then reads fail, as an unplugged camera's do)."""

    def __init__(self, path: str) -> None:
        import cv2

        self._cap = cv2.VideoCapture(path)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 30.0)
        self._start: float | None = None
        self._n = 0

    def isOpened(self) -> bool:  # the cv2.VideoCapture interface
        return self._cap.isOpened()

    def get(self, prop: int) -> float:
        return self._cap.get(prop)

    def set(self, prop: int, value: float) -> bool:
        return False

    def read(self):
        if self._start is None:
            self._start = time.perf_counter()
        wait = self._start + self._n / self.fps - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        self._n += 1
        return self._cap.read()

    def release(self) -> None:
        pass


def bench_live(cfg, app, video: str) -> list[str]:
    """``video`` played as a camera: capture -> drawn latency (the status bar's, for a live source)."""
    from ..capture import LiveSource
    from ..runtime import Runtime
    from .main_window import MainWindow

    camera = _PacedFile(video)
    name = os.path.basename(video)
    duration = (camera.get(7) or 0) / camera.fps  # 7: CAP_PROP_FRAME_COUNT

    def open_camera(spec, capture_cfg):
        return LiveSource(video, f"camera (simulated from {name})", capture_cfg, lambda target: camera)

    w = MainWindow(cfg, video, runtime_maker=lambda c: Runtime(c, log=lambda m: None, open_source=open_camera),
                   speed=1.0)
    w.resize(1400, 900)
    w.show()
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration + 0.5 and not w.errors:
        app.processEvents()
        time.sleep(0.002)
    out = [f"{name} as a camera at {camera.fps:g} fps: {len(w.session_results)} frames analysed, "
           f"{w.video.frames_drawn} drawn; backend {w.info.backend if w.info else '?'}",
           f"  latency frame captured -> drawn: {_stats(w.latencies_ms)}"]
    w.close()
    return out


def bench_seek(cfg, app, video: str, targets=(300, 100, 500, 20, 400, 200)) -> str:
    """Paused replay: time from a seek request to the target frame's result in the window."""
    from .main_window import MainWindow

    w = MainWindow(cfg, video, start_paused=True)
    w.show()
    t_end = time.monotonic() + 60
    while w.info is None and not w.errors and time.monotonic() < t_end:
        app.processEvents()
        time.sleep(0.002)
    n = w.info.frame_count if w.info and w.info.frame_count else 0
    ms = []
    for target in (t for t in targets if t < n):
        t0 = time.perf_counter()
        w.seek(target)
        while not (w.latest is not None and w.latest.index == target) and time.monotonic() < t_end:
            app.processEvents()
            time.sleep(0.001)
        ms.append((time.perf_counter() - t0) * 1e3)
    w.close()
    return f"{os.path.basename(video)}: seek -> frame shown (fresh pipeline each time): {_stats(ms)}"


def bench_dashboard(cfg, *, videos=(), live=(), speed: float | None = 1.0, log=print) -> None:
    """Every measurement, one ``log`` line each: the plots; for each of ``videos`` a replay at
    ``speed`` (None: as fast as possible) and the seeks; for each of ``live`` the file as a camera.
    Offscreen unless QT_QPA_PLATFORM says otherwise."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from .plots import PLOT_KEYS

    app = QApplication.instance() or QApplication(["driver-monitor-bench-ui"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log(f"platform {app.platformName()}, {os.cpu_count()} CPUs, load average {load:.1f}")
    log(bench_plots(cfg, app))
    log(bench_plots(cfg, app, plots=PLOT_KEYS))
    for video in videos:
        for line in bench_replay(cfg, app, video, speed):
            log(line)
        log(bench_seek(cfg, app, video))
    for video in live:
        for line in bench_live(cfg, app, video):
            log(line)
