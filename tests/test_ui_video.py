"""The dashboard on real drives from ../shared/data: real capture, MediaPipe, pipeline and engine.

Skips when ../shared/data is absent; fails under DM_REQUIRE_DATA=1.
"""
from __future__ import annotations

import csv
import math
import time

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")

from PyQt6.QtCore import Qt

from driver_monitor.config import Config, load_config
from driver_monitor.preprocess import EMOTIONS
from driver_monitor.recording import frame_columns
from driver_monitor.types import Level
from driver_monitor.ui.main_window import MainWindow
from driver_monitor.ui.plots import FIXED_COLUMNS

from .conftest import need_data

pytestmark = [pytest.mark.ui, pytest.mark.data]


def open_window(qtbot, video: str, *, paused: bool = False, speed=None, cfg: Config | None = None) -> MainWindow:
    path = need_data(f"videos/{video}")
    w = MainWindow(cfg or load_config(), str(path), start_paused=paused, speed=speed)
    qtbot.addWidget(w)
    w.resize(1280, 860)
    w.show()
    qtbot.waitUntil(lambda: w.info is not None or bool(w.errors), timeout=20000)
    assert not w.errors, w.errors
    return w


def play_to_end(qtbot, w: MainWindow, timeout_ms: int = 60000) -> None:
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=timeout_ms)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)


def test_panels_update_from_a_real_video(qtbot):
    w = open_window(qtbot, "single_face.mp4")
    play_to_end(qtbot, w)
    r = w.displayed
    assert w.info.frame_count == len(w.session_results) == 72
    assert r.face is not None and r.smoothed is not None
    assert w.video.frames_drawn > 0 and w.state_panel.updates > 0
    # the state panel shows this frame's state
    assert w.state_panel.drowsiness.text() == str(r.state.drowsiness).upper()
    assert w.state_panel.status.text() == str(r.state.status).replace("_", " ")
    assert w.state_panel.calibration.value() > 0
    # plots got every frame's EAR, with a real open-eye value
    t, v = w.plots.buffer.view()
    assert len(t) == 72 and 0.15 < np.nanmedian(v[:, 0]) < 0.45
    # emotion / AU panels: values when an engine runs, "no engine" when none does
    if w.info.backend == "none":
        assert w.emotion_panel.headline.text() == "no engine" and w.emotion_panel.values is None
    else:
        assert w.emotion_panel.dominant in w.info.emotion_names
        assert math.isclose(sum(w.emotion_panel.values.values()), 1, abs_tol=1e-3)
        assert set(w.au_panel.values) == set(w.info.au_names)
    assert w.status_source.text() == "file single_face.mp4"
    assert w.status_backend.text() == f"backend: {w.info.backend}"
    assert "fps" in w.status_fps.text() and "latency" in w.status_latency.text()


def test_eyes_closed_video_raises_the_drowsiness_banner(qtbot):
    w = open_window(qtbot, "driver_eyes_closed_glasses.mp4")
    levels: list[Level] = []
    orig = w.banner.show_spec

    def spy(spec):
        levels.append(spec.level)
        orig(spec)

    w.banner.show_spec = spy
    play_to_end(qtbot, w)
    assert max(levels) >= Level.WARNING
    assert w.displayed.state.drowsiness >= Level.WARNING
    assert "DROWSINESS" in w.banner.text() and w.banner.spec.colour in ("warning", "critical")
    assert w.sound.requests >= 1  # the audible alert was asked for (no audio device here)
    types = {e.type for e in w.session_events.values()}
    assert types & {"microsleep", "drowsiness", "eyes_closed"}
    assert w.slider.marks  # the events are marked on the seek slider


def _decode(path, index: int) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        for _ in range(index + 1):
            ok, img = cap.read()
            assert ok
        return img
    finally:
        cap.release()


def test_paused_start_shows_the_first_frame_and_its_results(qtbot):
    """`driver-monitor gui --source FILE --paused`: the first frame, analysed, and no further."""
    path = need_data("videos/single_face.mp4")
    w = open_window(qtbot, "single_face.mp4", paused=True)
    qtbot.waitUntil(lambda: w.displayed is not None and w.displayed is w.latest, timeout=20000)
    qtbot.wait(300)
    r = w.displayed
    assert r.index == 0 and len(w.session_results) == 1 and w.playback_state.paused
    assert np.abs(r.frame.image.astype(int) - _decode(path, 0).astype(int)).mean() < 1.0
    assert r.face is not None and w.video.frames_drawn >= 1 and len(w.plots.buffer) == 1
    assert w.state_panel.status.text() == str(r.state.status).replace("_", " ")
    assert w.banner.text() != "waiting for the first frame"


def test_seeking_moves_the_replay_to_the_right_frame(qtbot):
    path = need_data("videos/head_turns.mp4")
    w = open_window(qtbot, "head_turns.mp4", paused=True)
    for target in (300, 120):
        w.seek(target)
        qtbot.waitUntil(lambda t=target: w.latest is not None and w.latest.index == t, timeout=10000)
        want = _decode(path, target)
        got = w.latest.frame.image
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 1.0
        assert w.latest.time_s == pytest.approx(target / w.info.fps)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)
    assert w.slider.value() == 120


def test_closing_stops_the_worker_and_releases_the_source(qtbot):
    w = open_window(qtbot, "head_turns.mp4", speed=1.0)
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index > 5, timeout=10000)
    worker, thread = w.worker, w.thread
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 2.0
    assert worker.stopped.is_set() and thread.isFinished() and not worker.running
    assert worker.source.ended  # FileSource.close() released the capture


def test_export_matches_analyze(qtbot, tmp_path):
    from driver_monitor.analyze import analyze

    video = need_data("videos/single_face.mp4")
    cfg = load_config()
    w = open_window(qtbot, "single_face.mp4", cfg=cfg)
    play_to_end(qtbot, w)
    w.export_results(tmp_path / "ui")
    analyze(str(video), tmp_path / "cli", cfg, progress=False, log=lambda m: None)
    ui = list(csv.DictReader(open(tmp_path / "ui" / "frames.csv", encoding="utf-8")))
    cli = list(csv.DictReader(open(tmp_path / "cli" / "frames.csv", encoding="utf-8")))
    assert w.info.region_names  # the shipped model reports its face regions: they are exported too
    assert list(ui[0]) == list(cli[0]) == frame_columns(w.info.emotion_names, w.info.au_names, w.info.region_names)
    assert len(ui) == len(cli) == 72
    for a, b in zip(ui, cli):
        assert {k: v for k, v in a.items() if not k.startswith("ms_")} == \
               {k: v for k, v in b.items() if not k.startswith("ms_")}


def test_engine_outputs_reach_the_panels_and_plots(qtbot):
    """Real video, real pipeline, a stand-in engine with fixed outputs: what the UI does with them.

    (The model's own quality is tested by the model's tests; here the engine only has to be
    predictable: 'happiness' dominant, AU12 strongest.)
    """
    from driver_monitor.engine.base import Engine
    from driver_monitor.preprocess import AUS, DEFAULT_INPUT
    from driver_monitor.runtime import Runtime

    probs = np.full(len(EMOTIONS), 0.05, np.float32)
    probs[EMOTIONS.index("happiness")] = 1.0 - 0.05 * (len(EMOTIONS) - 1)
    aus = np.linspace(0.0, 0.5, len(AUS)).astype(np.float32)
    aus[AUS.index("AU12")] = 0.9

    class StubEngine(Engine):
        name = "stub"

        def _run(self, x):
            n = x.shape[0]
            return np.tile(probs, (n, 1)), np.tile(aus, (n, 1))

    engines: list[StubEngine] = []

    def make_runtime(cfg):
        engines.append(StubEngine(DEFAULT_INPUT, EMOTIONS, AUS))
        selection = {"backend": "stub", "device": "cpu", "precision": "fp32", "reason": "test"}
        return Runtime(cfg, engine=engines[-1], selection=selection, log=lambda m: None)

    path = need_data("videos/single_face.mp4")
    cfg = load_config()
    w = MainWindow(cfg, str(path), runtime_maker=make_runtime, speed=None)
    qtbot.addWidget(w)
    w.show()
    play_to_end(qtbot, w)
    assert w.info.backend == "stub cpu fp32" and w.info.emotion_names == EMOTIONS
    assert w.status_backend.text() == "backend: stub cpu fp32"
    assert w.status_backend.toolTip().startswith("why this backend: test\nRuns on the CPU")
    assert "CPU" not in w.banner.text() and "TensorRT" not in w.banner.text()  # a status, not a warning
    assert w.emotion_panel.dominant == "happiness" and "dominant: happiness" in w.emotion_panel.headline.text()
    assert w.emotion_panel.bars["happiness"].value() == pytest.approx(650, abs=2)
    assert "AU12 lip corner puller" in w.au_panel.headline.text()
    assert w.au_panel.bars["AU12"].value() == pytest.approx(900, abs=2)
    t, v = w.plots.buffer.view()
    assert np.nanmax(v[:, FIXED_COLUMNS + EMOTIONS.index("happiness")]) == pytest.approx(0.65, abs=1e-3)
    w.seek(10)  # a seek renews the pipeline but keeps the engine
    qtbot.waitUntil(lambda: w.latest.index == 10, timeout=10000)
    assert len(engines) == 1 and not engines[0]._closed
    w.close()
    assert len(engines) == 1 and engines[0]._closed  # one engine for the session, closed with it


def test_calibrate_now_restarts_the_drivers_calibration(qtbot):
    w = open_window(qtbot, "single_face.mp4", paused=True)
    w.worker.step(59)  # the paused start shows frame 0; then frames 1..59 in order, no pacing
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index == 59, timeout=20000)
    before = w.latest.state.calibration_progress
    assert before > 0.2
    qtbot.keyClick(w, Qt.Key.Key_C)  # the keyboard path; the panel button emits the same request
    w.worker.step(3)
    qtbot.waitUntil(lambda: w.latest.index == 62, timeout=10000)
    assert w.latest.state.calibration_progress < 0.1 and not w.latest.state.calibrated
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)
    assert w.state_panel.calibration.value() < 10
