"""The dashboard's worker thread and replay controls, against a fake source and pipeline.

Fast and exact: frame i of the fake file is a (24, 32, 3) image filled with i, at i / 30 s. The
real-video tests are in test_ui_video.py.
"""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")

from PyQt6.QtCore import Qt

from driver_monitor.config import CaptureConfig, Config
from driver_monitor.errors import SourceError
from driver_monitor.recording import frame_columns
from driver_monitor.runtime import Runtime
from driver_monitor.types import DriverState, Event, Frame, FrameResult, Level, Status
from driver_monitor.ui.main_window import MainWindow
from tests.pipelines import FakeDetector

pytestmark = pytest.mark.ui


class FakeSource:
    fps_source = "file"  # as VideoSource

    def __init__(self, n: int = 90, fps: float = 30.0, live: bool = False, lost_after: int | None = None,
                 read_delay: float = 0.0) -> None:
        self.description = "camera 0" if live else "file fake.mp4"
        self.is_live, self.fps, self.n = live, fps, n
        self.frame_count = None if live else n
        self.lost = self.ended = False
        self.error = None
        self.closed = False
        self.seeks: list[int] = []
        self._next = 0
        self.lost_after = lost_after
        self.read_delay = read_delay

    def read(self):
        if self.closed:
            return None
        if self.read_delay:
            time.sleep(self.read_delay)
        if self.lost_after is not None and self._next >= self.lost_after:
            self.lost = True  # a live feed that dropped: no frame, not ended (reconnecting)
            time.sleep(0.01)  # a live read waits for a frame (its read timeout) before saying none came
            return None
        if self._next >= self.n:
            self.ended = True
            return None
        i = self._next
        self._next += 1
        return Frame(np.full((24, 32, 3), i % 256, np.uint8), i, i / self.fps)

    def lost_tick(self) -> int | None:
        """As a live VideoSource: a frame number of its own for a tick that brought nothing."""
        if not self.is_live:
            return None
        self._next += 1
        return self._next - 1

    def seek(self, index: int) -> None:
        if self.is_live:
            raise SourceError("live")
        self.seeks.append(index)
        self._next, self.ended = index, False

    def close(self) -> None:
        self.closed = self.ended = True


class FakePipeline:
    """Results with a microsleep event from frame 30 to 45 (critical in between)."""

    backend_description = "onnxruntime cpu fp32"
    emotion_names: tuple[str, ...] = ()
    au_names: tuple[str, ...] = ()
    region_names: tuple[str, ...] = ()
    cfg = Config()
    detector = None  # no face detector of its own (nothing for the frame loop to pin)

    def prepare(self, frame) -> None:
        return None

    def detect(self, frame, prepared=None) -> None:
        return None

    def __init__(self, fail_at: int | None = None, end_absent: bool = False) -> None:
        self.fail_at = fail_at
        self.end_absent = end_absent
        self.calibrations = 0
        self.closed = False
        self.processed: list[int] = []
        self.last_t = 0.0
        self.lost_indices: list[int | None] = []  # the frame numbers of the camera-lost ticks

    def process(self, frame, *, decode_ms=None, index=None, t_s=None, detected=None) -> FrameResult:
        if frame is None:
            self.last_t += 0.1
            self.lost_indices.append(index)
            return FrameResult(frame=Frame(np.zeros((1, 1), np.uint8), -1 if index is None else index, self.last_t),
                               camera_ok=False,
                               state=DriverState(self.last_t, status=Status.CAMERA_LOST))
        if frame.index == self.fail_at:
            raise RuntimeError(f"boom at frame {frame.index}")
        self.processed.append(frame.index)
        self.last_t = frame.time_s
        crit = 30 <= frame.index < 45
        events: tuple[Event, ...] = ()
        if frame.index == 30:
            events = (Event("microsleep", Level.CRITICAL, 1.0, None, 30),)
        elif frame.index == 45:
            events = (Event("microsleep", Level.CRITICAL, 1.0, 1.5, 30, 45),)
        return FrameResult(frame=frame, camera_ok=True, events=events,
                           state=DriverState(frame.time_s, drowsiness=Level.CRITICAL if crit else Level.NONE,
                                             eyes_closed=crit), timings_ms={"total": 1.0})

    def calibrate_now(self) -> None:
        self.calibrations += 1

    def finish(self) -> list[Event]:
        if not self.end_absent:
            return []
        # what the monitor closes at the end of a drive (an absence still open, say)
        return [Event("driver_absent", Level.WARNING, self.last_t - 0.5, self.last_t, None, None,
                      {"ended_by": "end_of_drive"})]

    def close(self) -> None:
        self.closed = True


class FakeRuntime(Runtime):
    """The run's assembly over scripted parts: sources from ``open_source``, and a FakePipeline
    for every drive and every seek (``made``); ``closed`` once the worker has closed it."""

    def __init__(self, open_source=None, **kw) -> None:
        super().__init__(Config(), open_source=open_source, log=lambda m: None)
        self.kw = kw
        self.made: list[FakePipeline] = []
        self.closed = False

    def open(self) -> "FakeRuntime":
        return self

    def pipeline(self, cfg=None) -> FakePipeline:
        self.made.append(FakePipeline(**self.kw))
        return self.made[-1]

    def close(self) -> None:
        self.closed = True


def make_window(qtbot, source: FakeSource | None = None, *, paused: bool = True, speed=None, cfg=None, **kw):
    src = source or FakeSource()
    opened: list = []

    def open_source(spec, capture_cfg):
        opened.append(spec)
        return src

    runtime = FakeRuntime(open_source, **kw)
    w = MainWindow(cfg or Config(), "fake.mp4", runtime_maker=lambda cfg: runtime, start_paused=paused, speed=speed)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.info is not None or bool(w.errors), timeout=5000)
    return w, src, runtime


def wait_index(qtbot, w, index: int, timeout: int = 5000) -> None:
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index == index, timeout=timeout)


def test_seek_step_and_end_of_file(qtbot):
    w, src, factory = make_window(qtbot)
    assert w.info.frame_count == 90 and w.slider.maximum() == 89
    w.seek(40)
    wait_index(qtbot, w, 40)
    assert int(w.latest.frame.image[0, 0, 0]) == 40  # the frame shown is the frame asked for
    w.step(1)
    wait_index(qtbot, w, 41)
    w.step(-1)
    wait_index(qtbot, w, 40)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)  # the timer redraws it
    assert w.slider.value() == 40 and "#40" in w.time_label.text()
    assert len(factory.made) >= 2  # a jump restarts the analysis with a fresh pipeline
    w.seek(10_000)  # past the end: clamped to the last frame
    wait_index(qtbot, w, 89)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=5000)
    assert len(w.session_results) == 4  # frames 0 (the paused start), 40, 41, 89
    w.toggle_pause()  # at the end: play restarts from the beginning
    qtbot.waitUntil(lambda: w.playback_state.at_end and len(w.session_results) == 90, timeout=5000)
    assert src.seeks[-1] == 0


def test_paused_start_shows_the_first_frame_and_holds(qtbot):
    w, src, factory = make_window(qtbot, paused=True)
    wait_index(qtbot, w, 0)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)  # drawn: frame, panels, plots
    time.sleep(0.3)
    qtbot.wait(50)
    assert factory.made[0].processed == [0] and w.latest.index == 0  # analysed, and no further
    assert w.playback_state.paused and w.play_button.text() == "Play"
    assert w.video.frames_drawn >= 1 and w.state_panel.updates >= 1 and len(w.plots.buffer) == 1
    assert "#0" in w.time_label.text()
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=5000)
    assert factory.made[-1].processed == list(range(90))  # play goes on from frame 1, same pipeline
    assert len(factory.made) == 1


def test_paused_start_then_steps_go_on_from_the_first_frame(qtbot):
    w, src, factory = make_window(qtbot, paused=True)
    w.worker.step(5)  # may arrive before or after the first frame: frames 1..5 after it either way
    wait_index(qtbot, w, 5)
    qtbot.wait(100)
    assert factory.made[0].processed == list(range(6)) and w.playback_state.paused


@pytest.mark.parametrize("speed, frames, min_s, max_s", [
    (1.0, 15, 0.4, 3.0),     # 0.5 s of video in about 0.5 s
    (4.0, 30, 0.2, 2.0),     # 1 s of video in about 0.25 s
])
def test_replay_speed_paces_frames(qtbot, speed, frames, min_s, max_s):
    w, src, factory = make_window(qtbot, FakeSource(n=frames + 1), paused=True, speed=speed)
    t0 = time.perf_counter()
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index == frames, timeout=5000)
    elapsed = time.perf_counter() - t0
    assert min_s <= elapsed <= max_s


def test_events_are_marked_and_clicking_one_jumps_to_it(qtbot, tmp_path):
    w, src, factory = make_window(qtbot, paused=False)
    qtbot.waitUntil(lambda: w.playback_state.at_end and len(w.session_results) == 90, timeout=5000)
    qtbot.waitUntil(lambda: bool(w.slider.marks), timeout=2000)
    assert w.slider.marks == [(30, 45, "#c62828")]
    assert w.event_list.count() == 1
    w.event_list.itemClicked.emit(w.event_list.item(0))
    wait_index(qtbot, w, 30)
    assert src.seeks[-1] == 30
    # export in analyze's format
    summary = w.export_results(tmp_path / "out")
    rows = list(csv.DictReader(open(tmp_path / "out" / "frames.csv", encoding="utf-8")))
    assert [int(r["frame"]) for r in rows] == list(range(90))
    with open(tmp_path / "out" / "frames.csv", encoding="utf-8") as fh:
        assert fh.readline().strip().split(",") == frame_columns()
    events = [json.loads(line) for line in open(tmp_path / "out" / "events.jsonl", encoding="utf-8")]
    assert [(e["type"], e["start_frame"], e["end_frame"]) for e in events] == [("microsleep", 30, 45)]
    assert summary["frames"] == 90 and summary["complete"] is True
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["events"] == {"microsleep": 1}


def test_drowsiness_banner_and_sound_request(qtbot):
    w, src, factory = make_window(qtbot, paused=True)
    w.seek(35)
    wait_index(qtbot, w, 35)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)
    assert w.banner.spec.colour == "critical" and "DROWSINESS CRITICAL" in w.banner.text()
    assert w.sound.requests == 1
    assert w.state_panel.drowsiness.text() == "CRITICAL"


def test_worker_exception_reaches_the_ui_as_a_message(qtbot):
    w, src, factory = make_window(qtbot, paused=False, fail_at=20)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=5000)
    err = w.errors[0]
    assert err.stage == "run" and "boom at frame 20" in err.message and err.details
    qtbot.waitUntil(lambda: w.ended_reason is not None, timeout=2000)
    assert w.error_box.isVisible() and "boom" in w.error_box.text()
    assert src.closed and factory.closed  # the worker cleaned up
    qtbot.wait(100)  # the window still runs its event loop: the timer keeps redrawing
    assert w.displayed is not None and w.displayed.index == 19


def test_camera_that_cannot_open_offers_a_file(qtbot):
    def open_source(spec, capture_cfg):
        raise SourceError("camera 3 could not be opened; use --source FILE")

    w = MainWindow(Config(), 3, runtime_maker=lambda c: FakeRuntime(open_source))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=5000)
    assert w.errors[0].is_source_error and w.errors[0].stage == "open"
    assert w.offer_file_box.isVisible() and "Open a recorded video file instead?" in w.offer_file_box.text()
    asked: list[bool] = []
    w.open_file_dialog = lambda: asked.append(True)  # the file dialog itself is modal: not opened here
    from PyQt6.QtWidgets import QMessageBox

    w.offer_file_box.button(QMessageBox.StandardButton.Open).click()
    qtbot.waitUntil(lambda: asked == [True], timeout=2000)


@pytest.mark.parametrize("source", [7, "notes.txt"])  # a camera that does not exist; a text file as a video
def test_an_error_at_open_does_not_widen_the_window(qtbot, source):
    message = f"{source} could not be opened; " + "check that it is connected, not used by another program, " * 8

    def open_source(spec, capture_cfg):
        raise SourceError(message)

    w = MainWindow(Config(), source, runtime_maker=lambda c: FakeRuntime(open_source))
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitUntil(lambda: w.ended_reason is not None, timeout=5000)
    qtbot.waitUntil(lambda: w.banner.text().startswith("could not start"), timeout=2000)
    qtbot.wait(50)  # the layout settles
    assert w.banner.fontMetrics().horizontalAdvance(w.banner.text()) > 2000  # the text alone is that wide
    assert w.minimumSizeHint().width() <= 1200 and w.width() <= 1400  # fits a 1,600 px screen
    assert w.banner.width() <= w.width() and w.banner.displayed_text().endswith("…")
    assert message in w.banner.toolTip()


def test_live_feed_that_drops_shows_camera_lost(qtbot):
    cfg = Config(capture=CaptureConfig(read_timeout_s=0.5))
    src = FakeSource(live=True, lost_after=20, read_delay=0.03)  # 0.6 s of frames: time to connect below
    w, src, factory = make_window(qtbot, src, paused=False, cfg=cfg)
    seen: list[tuple[bool, float]] = []
    w.worker.result.connect(lambda r, t_read: seen.append((r.camera_ok, t_read)))
    assert not w.slider.isEnabled()  # no seeking on a live feed
    qtbot.waitUntil(lambda: w.displayed is not None and not w.displayed.camera_ok, timeout=5000)
    assert "camera lost" in w.banner.text()
    assert w.worker.running  # still trying, not ended
    last_ok = max(t for ok, t in seen if ok)
    first_lost = min(t for ok, t in seen if not ok)
    assert first_lost - last_ok >= 0.45  # lost only after read_timeout_s without a frame
    qtbot.waitUntil(lambda: len(factory.made[-1].lost_indices) >= 2, timeout=5000)
    lost = factory.made[-1].lost_indices[:2]
    assert lost[0] >= 20 and lost[1] > lost[0]  # each lost tick a frame number of its own, after the frames


class FakeCamera:
    """An OpenCV-like capture: 30 fps frames, then (after ``drop_after`` reads) nothing."""

    def __init__(self, drop_after: int | None = None, opens: bool = True) -> None:
        self.drop_after, self.opens = drop_after, opens
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:
        return self.opens

    def read(self):
        time.sleep(1 / 30)
        self.reads += 1
        if self.drop_after is not None and self.reads > self.drop_after:
            return False, None
        return True, np.full((24, 32, 3), 100, np.uint8)

    def get(self, prop) -> float:
        return 30.0

    def set(self, prop, value) -> bool:
        return True

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize("drop_after", [None, 15])  # a working camera; one lost and reconnecting
def test_closing_a_real_live_source_releases_the_camera_within_2_s(qtbot, drop_after):
    from driver_monitor.capture import open_source

    cams: list[FakeCamera] = []

    def factory(target):
        cams.append(FakeCamera(drop_after) if not cams else FakeCamera(opens=False))
        return cams[-1]

    cfg = Config(capture=CaptureConfig(read_timeout_s=2.0, reconnect_interval_s=0.5, reconnect_attempts=100))
    w = MainWindow(cfg, 0, runtime_maker=lambda c: FakeRuntime(
        lambda spec, ccfg: open_source(spec, ccfg, capture_factory=factory)))
    qtbot.addWidget(w)
    w.show()
    if drop_after is None:
        qtbot.waitUntil(lambda: w.latest is not None and w.latest.index >= 5, timeout=5000)
    else:
        qtbot.waitUntil(lambda: w.displayed is not None and not w.displayed.camera_ok, timeout=8000)
        assert "camera lost" in w.banner.text() and len(cams) >= 2  # it is trying to reconnect
    worker, thread = w.worker, w.thread
    t0 = time.perf_counter()
    w.close()
    assert time.perf_counter() - t0 < 2.0
    assert cams[0].released and worker.stopped.is_set() and thread.isFinished()
    assert not worker.source.alive  # the capture thread is joined


def test_closing_stops_the_worker_and_releases_the_camera_within_2_s(qtbot):
    src = FakeSource(live=True, n=10**9, read_delay=0.03)  # a 30 fps camera
    w, src, factory = make_window(qtbot, src, paused=False)
    qtbot.waitUntil(lambda: w.latest is not None, timeout=5000)
    worker, thread = w.worker, w.thread
    t0 = time.perf_counter()
    w.close()
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0
    assert src.closed and factory.closed and worker.stopped.is_set() and thread.isFinished()


@pytest.mark.parametrize("key, check", [
    (Qt.Key.Key_M, lambda w, f: w.sound.muted),
    (Qt.Key.Key_C, lambda w, f: f.made[-1].calibrations == 1),
    (Qt.Key.Key_Space, lambda w, f: not w.playback_state.paused),
    (Qt.Key.Key_Right, lambda w, f: w.latest is not None and w.latest.index == 1),  # after the first frame
    (Qt.Key.Key_F, lambda w, f: w.isFullScreen()),
])
def test_keyboard_shortcuts(qtbot, key, check):
    w, src, factory = make_window(qtbot, paused=True, speed=1.0)
    w.activateWindow()
    qtbot.waitExposed(w)
    qtbot.keyClick(w, key)
    qtbot.waitUntil(lambda: check(w, factory), timeout=3000)


def test_live_recording_starts_and_stops(qtbot, tmp_path):
    src = FakeSource(live=True, n=10**9, read_delay=0.01)
    w, src, factory = make_window(qtbot, src, paused=False)
    out = tmp_path / "rec"
    w.worker.start_recording(str(out))
    qtbot.waitUntil(lambda: w.playback_state.recording == str(out), timeout=3000)
    assert "recording" in w.status_record.text()
    first = w.latest.index if w.latest else -1
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index >= first + 20, timeout=5000)
    w.worker.stop_recording()
    qtbot.waitUntil(lambda: w.playback_state.recording is None, timeout=3000)
    rows = list(csv.DictReader(open(out / "frames.csv", encoding="utf-8")))
    assert len(rows) >= 20
    frames = [int(r["frame"]) for r in rows]
    assert frames == list(range(frames[0], frames[0] + len(frames)))  # every frame while recording, in order
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == len(rows) and summary["recorded_from"] == "dashboard"


@pytest.mark.parametrize("argv, source", [
    (["gui"], None),
    (["gui", "--source", "0"], 0),
    (["gui", "--source", "{tmp}/drive.mp4"], "{tmp}/drive.mp4"),
    (["gui", "--source", "rtsp://cam/1"], "rtsp://cam/1"),
])
def test_gui_command_parses_the_source(argv, source, monkeypatch, tmp_path):
    from driver_monitor import cli
    from driver_monitor.ui import app

    (tmp_path / "drive.mp4").write_bytes(b"")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if isinstance(source, str):
        source = source.replace("{tmp}", str(tmp_path))
    seen = {}

    def fake_run_gui(cfg, src, start_paused=False) -> int:
        seen["src"] = src
        return 0

    monkeypatch.setattr(app, "run_gui", fake_run_gui)
    args = cli.build_parser().parse_args(argv)
    assert args.source == source
    assert args.func(args, Config()) == 0
    assert seen["src"] == (Config().capture.source if source is None else source)


def test_gui_command_refuses_a_missing_file_before_opening_a_window(monkeypatch, capsys):
    from driver_monitor import cli
    from driver_monitor.ui import app

    monkeypatch.setattr(app, "run_gui", lambda *a, **k: pytest.fail("no window for a missing file"))
    assert cli.main(["gui", "--source", "/no/such/drive.mp4"]) == SourceError.exit_code
    err = capsys.readouterr().err
    assert "'/no/such/drive.mp4' does not exist" in err and "--source" in err


def test_live_recording_writes_an_annotated_video(qtbot, tmp_path):
    import cv2

    src = FakeSource(live=True, n=10**9, read_delay=0.01, lost_after=40)
    w, src, factory = make_window(qtbot, src, paused=False)
    w.worker.start_recording(str(tmp_path), video=True)
    qtbot.waitUntil(lambda: w.displayed is not None and not w.displayed.camera_ok, timeout=5000)
    w.worker.stop_recording()
    qtbot.waitUntil(lambda: w.playback_state.recording is None, timeout=3000)
    cap = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    size = (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    rows = list(csv.DictReader(open(tmp_path / "frames.csv", encoding="utf-8")))
    assert n == len(rows) > 0 and size == (32, 24)  # lost ticks are black frames of the same size
    assert any(r["camera_ok"] == "0" for r in rows)


def test_a_new_session_drops_the_old_sessions_late_results(qtbot):
    sources = {"a.mp4": FakeSource(n=100_000, fps=30.0), "b.mp4": FakeSource(n=10, fps=10.0)}
    w = MainWindow(Config(), "a.mp4", runtime_maker=lambda c: FakeRuntime(lambda spec, ccfg: sources[spec]), speed=None)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.latest is not None and w.latest.index > 50, timeout=5000)
    w.start_session("b.mp4")  # while "a" is flooding results at full speed
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=5000)
    qtbot.wait(100)
    assert sorted(w.session_results) == list(range(10))
    assert all(r.time_s == pytest.approx(r.index / 10.0) for r in w.session_results.values())
    assert len(w.plots.buffer) == 10 and w.info.source == "file fake.mp4" and w.info.fps == 10.0
    assert sources["a.mp4"].closed


# -------------------------------------------------------------------------- the model's names


class LargeFakeSource(FakeSource):
    """A file of (240, 320) frames, room for the stand-in face of test_ui_alerts.make_face."""

    def read(self):
        f = super().read()
        return None if f is None else Frame(np.full((240, 320, 3), 90, np.uint8), f.index, f.time_s)


class OneFace(FakeDetector):
    """A face detector that finds the same face in every frame."""

    def faces(self, image):
        from .test_ui_alerts import make_face

        return [make_face()]

    def close(self) -> None:
        pass


def named_engine_runtime(cfg, emotion_names, au_names, open_source):
    """The real pipeline with a stand-in engine carrying these names (None: no engine): the first
    name the most likely emotion, the last AU the strongest."""
    from driver_monitor.engine.base import Engine
    from driver_monitor.preprocess import DEFAULT_INPUT

    class NamedEngine(Engine):
        name = "stub"

        def _run(self, x):
            probs = np.full(len(self.emotion_names), 0.1 / max(1, len(self.emotion_names) - 1), np.float32)
            probs[0] = 0.9
            aus = np.linspace(0.1, 0.8, len(self.au_names)).astype(np.float32)
            return np.tile(probs, (x.shape[0], 1)), np.tile(aus, (x.shape[0], 1))

    if emotion_names is None:
        engine, selection = None, {"backend": "none", "reason": "test"}
    else:
        engine, selection = NamedEngine(DEFAULT_INPUT, emotion_names, au_names), {"backend": "stub", "reason": "test"}
    return Runtime(cfg, engine=engine, selection=selection, detector=OneFace(), open_source=open_source,
                   log=lambda m: None)


def test_panels_and_plots_show_the_names_the_loaded_model_carries(qtbot, tmp_path):
    from driver_monitor.preprocess import AUS, EMOTIONS
    from driver_monitor.ui.plots import FIXED_COLUMNS

    emotions, aus = ("calm", "drowsy", "irritated"), ("AU6", "AU43")  # not the shipped model's
    models = iter([(emotions, aus), (None, None)])
    w = MainWindow(Config(), "a.mp4", speed=None, runtime_maker=lambda c: named_engine_runtime(
        c, *next(models), open_source=lambda spec, ccfg: LargeFakeSource(n=6)))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.playback_state.at_end and len(w.session_results) == 6, timeout=10000)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)
    assert w.info.emotion_names == emotions and w.info.au_names == aus
    assert tuple(w.emotion_panel.bars) == emotions and not set(w.emotion_panel.bars) & set(EMOTIONS)
    assert [w.emotion_panel.labels[n].text() for n in emotions] == list(emotions)
    assert w.emotion_panel.dominant == "calm" and w.emotion_panel.bars["calm"].value() == pytest.approx(900, abs=2)
    assert tuple(w.au_panel.bars) == aus and not set(w.au_panel.bars) - set(aus) and "AU12" not in w.au_panel.bars
    assert [w.au_panel.labels[n].text() for n in aus] == ["AU6 cheek raiser", "AU43"]
    assert w.au_panel.headline.text().startswith("strongest: AU43") and set(AUS) & set(aus) == {"AU6"}
    assert sorted(k for k in w.plots.curves if k.startswith("emo_")) == sorted(f"emo_{n}" for n in emotions)
    assert "irritated" in w.plots.emotion_legend.text and "happiness" not in w.plots.emotion_legend.text
    t, v = w.plots.buffer.view()
    assert v.shape[1] == FIXED_COLUMNS + 3 and np.allclose(v[:, FIXED_COLUMNS], 0.9, atol=1e-3)
    w.export_results(tmp_path / "out")
    with open(tmp_path / "out" / "frames.csv", encoding="utf-8") as fh:
        assert fh.readline().strip().split(",") == frame_columns(emotions, aus)

    w.start_session("b.mp4")  # a session without an engine: no bars, no emotion curves
    qtbot.waitUntil(lambda: w.playback_state.at_end and len(w.session_results) == 6, timeout=10000)
    qtbot.waitUntil(lambda: w.displayed is w.latest, timeout=2000)
    assert w.info.emotion_names == () and w.info.backend == "none"
    assert w.emotion_panel.bars == {} and w.au_panel.bars == {}
    assert w.emotion_panel.headline.text() == "no engine" and w.au_panel.headline.text() == "no engine"
    assert not any(k.startswith("emo_") for k in w.plots.curves) and w.plots.buffer.width == FIXED_COLUMNS
    w.close()


# -------------------------------------------------------------------------- a live source's counts


class CountingLiveSource(FakeSource):
    """A live fake whose capture thread would have dropped frames and reconnected: 3 dropped and
    1 reconnect at first, 7 and 2 from frame 30 on."""

    def __init__(self, **kw) -> None:
        super().__init__(live=True, n=10**9, read_delay=0.01, **kw)
        self.dropped, self.reconnects = 3, 1

    def read(self):
        f = super().read()
        if f is not None and f.index >= 30:
            self.dropped, self.reconnects = 7, 2
        return f


def test_a_live_sources_dropped_frames_and_reconnects_are_in_the_status_bar_and_the_recording(qtbot, tmp_path):
    from driver_monitor.ui.main_window import live_stats_text

    src = CountingLiveSource()
    w, src, factory = make_window(qtbot, src, paused=False)
    assert w.status_live.isVisible()
    qtbot.waitUntil(lambda: w.status_live.text() == "3 frames dropped, 1 reconnect", timeout=3000)
    w.worker.start_recording(str(tmp_path), video=False)
    qtbot.waitUntil(lambda: w.playback_state.recording == str(tmp_path), timeout=3000)
    qtbot.waitUntil(lambda: w.status_live.text() == "7 frames dropped, 2 reconnects", timeout=5000)
    w.worker.stop_recording()
    qtbot.waitUntil(lambda: w.playback_state.recording is None, timeout=3000)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["source_dropped"] == 7 and summary["source_reconnects"] == 2
    assert summary["source"] == "camera 0" and summary["recorded_from"] == "dashboard"
    assert w.source_stats["source_dropped"] == 7
    assert live_stats_text({"source_dropped": 1, "source_reconnects": 0}) == "1 frame dropped, 0 reconnects"


def test_a_file_has_no_live_counts(qtbot, tmp_path):
    w, src, factory = make_window(qtbot, paused=True)
    w.worker.start_recording(str(tmp_path), video=False)
    qtbot.waitUntil(lambda: w.playback_state.recording == str(tmp_path), timeout=3000)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=5000)
    w.worker.stop_recording()
    qtbot.waitUntil(lambda: w.playback_state.recording is None, timeout=3000)
    assert not w.status_live.isVisible() and w.status_live.text() == "" and w.source_stats is None
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "source_dropped" not in summary and summary["source"] == "file fake.mp4"


def test_a_recording_to_the_end_of_a_file_keeps_the_events_the_end_closed(qtbot, tmp_path):
    w, src, factory = make_window(qtbot, FakeSource(n=60), paused=True, end_absent=True)
    out = tmp_path / "rec"
    w.worker.start_recording(str(out))
    qtbot.waitUntil(lambda: w.playback_state.recording == str(out), timeout=3000)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.playback_state.at_end, timeout=5000)
    w.worker.stop_recording()
    qtbot.waitUntil(lambda: w.playback_state.recording is None, timeout=3000)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["microsleep", "driver_absent"]
    assert events[-1]["details"]["ended_by"] == "end_of_drive"
    # the alert the end of the drive closed has its picture too, as analyze gives it (session.Recorder)
    pictured = [json.loads(line)["line"] for line in (out / "events" / "pictures.jsonl").read_text().splitlines()]
    assert pictured == [1, 2]


def test_registered_widgets_are_held_until_the_teardown_closes_them(qtbot):
    """tests/conftest.py holds what a test registers with qtbot, so a dashboard whose test has
    returned is closed (its session stopped) before it can be freed: a garbage collection that freed
    it with its session thread running would abort the process (Qt destroys a running QThread)."""
    import gc
    import weakref

    from PyQt6.QtWidgets import QWidget

    w = QWidget()
    ref = weakref.ref(w)
    qtbot.addWidget(w)
    del w
    gc.collect()
    assert ref() is not None
