"""The dashboard window: live view, banner, panels, plots, events, replay controls, status bar.

Results arrive from the worker thread through a queued signal and are only *stored* in the slot
(latest result, plot samples, events, the session's rows for export); everything visible is
redrawn by a QTimer at ``ui.redraw_fps`` from the latest result, so a slow redraw never holds up
inference and a fast source never floods the painter.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PyQt6.QtCore import QEvent, QRect, QSize, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QGuiApplication, QKeySequence, QPainter, QPen
from PyQt6.QtWidgets import (QComboBox, QFileDialog, QFrame, QHBoxLayout, QInputDialog, QLabel, QMainWindow,
                             QMessageBox, QPushButton, QScrollArea, QSizePolicy, QSlider, QSplitter, QStyle,
                             QStyleOptionSlider, QTabWidget, QVBoxLayout, QWidget)

from ..capture import parse_source, source_arg
from ..config import Config
from ..errors import DriverMonitorError
from ..types import NUM_LANDMARKS, Event, Face, Frame, FrameResult, Level
from .alerts_ui import (AlertBanner, AlertSound, EventList, backend_status, banner_for, event_key,
                        level_colour)
from .panels import AUPanel, DriverStatePanel, EmotionPanel
from .plots import SignalPlots
from .video_view import OVERLAY_LABELS, OVERLAYS, VideoView
from .worker import SPEEDS, PlaybackState, SessionInfo, SessionWorker, WorkerError, start_worker

MAX_STORED_RESULTS = 200_000  # rows kept for export (about 1 h 50 min at 30 fps, ~3 kB each)
_NO_LANDMARKS = np.zeros((NUM_LANDMARKS, 3), np.float32)
_NO_LANDMARKS.flags.writeable = False
_PIXEL = np.zeros((1, 1, 3), np.uint8)
_STRAGGLERS: list = []  # (worker, thread) pairs that did not stop in time; kept until they do


def strip_for_export(r: FrameResult) -> FrameResult:
    """The result without its pixels, mesh and crop (what frames.csv needs, ~3 kB instead of ~1 MB).

    The frame keeps its shape (a zero-stride view of one pixel), the face its box.
    """
    img = r.frame.image
    shape = img.shape if img.ndim == 3 else img.shape + (3,)
    frame = Frame(np.broadcast_to(_PIXEL, shape), r.frame.index, r.frame.time_s)
    face = Face(r.face.bbox, _NO_LANDMARKS, r.face.score) if r.face is not None else None
    return dataclasses.replace(r, frame=frame, face=face, aligned=None)


def fps_text(fps: float, target: float | None, cap: str = "") -> str:
    """The frame rate held against the one the source asks for: ``29.8 of 30 fps``."""
    if math.isnan(fps):
        return "– fps"
    of = f" of {target:.0f}" if target else ""
    return f"{fps:.1f}{of} fps{cap}"


def speed_label(speed: float | None) -> str:
    return "max" if speed is None else f"{speed:g}x"


LIVE_COUNTS = ("source_dropped", "source_reconnects")  # what session.source_stats counts for a live source
LIVE_STATS_TIP = ("Frames the live source delivered that a newer frame replaced before the pipeline took them "
                  "(the pipeline is slower than the camera), and times the source was reopened after it dropped")


def live_stats_text(stats: dict) -> str:
    """The status bar's text for a live source's counts: '12 frames dropped, 1 reconnect'."""
    dropped, reconnects = int(stats.get("source_dropped", 0)), int(stats.get("source_reconnects", 0))
    return (f"{dropped} frame{'' if dropped == 1 else 's'} dropped, "
            f"{reconnects} reconnect{'' if reconnects == 1 else 's'}")


PREFERRED_SIZE = (1400, 900)  # the window's size where the screen has room for it


def fitted_geometry(available: QRect, margins: tuple[int, int, int, int] = (0, 0, 0, 0),
                    preferred: tuple[int, int] = PREFERRED_SIZE) -> QRect:
    """The window's inner rect on a screen's ``available`` area: ``preferred``, or smaller where the
    area less the window frame (``margins``: left, top, right, bottom) is smaller; centred in it."""
    left, top, right, bottom = margins
    w = max(1, min(preferred[0], available.width() - left - right))
    h = max(1, min(preferred[1], available.height() - top - bottom))
    x = available.x() + left + (available.width() - left - right - w) // 2
    y = available.y() + top + (available.height() - top - bottom - h) // 2
    return QRect(x, y, w, h)


class VScrollArea(QScrollArea):
    """A frameless vertical scroll area as wide as its widget needs (plus the scroll bar), so the
    splitter never cuts the widget on the right; as short as ``MIN_HEIGHT``."""

    MIN_HEIGHT = 60

    def __init__(self, widget: QWidget) -> None:
        super().__init__()
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        widget.installEventFilter(self)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget().minimumSizeHint().width() if self.widget() is not None else 0
        return QSize(inner + self.verticalScrollBar().sizeHint().width(), self.MIN_HEIGHT)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the widget's needs changed (bars added): so may this area's
        return super().eventFilter(obj, event)


def scroll_area(widget: QWidget, fill: bool = False) -> QScrollArea:
    """``widget`` in a :class:`VScrollArea`: it keeps its own minimum height and scrolls when the
    window gives it less, instead of holding the window taller than the screen.

    ``fill``: the widget grows to the area's height; else it keeps its own, blank below it."""
    if not fill:  # at its own height (never squeezed below it: the area scrolls instead)
        widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(widget)
        lay.addStretch(1)
        widget = inner
    return VScrollArea(widget)


class ElidedLabel(QLabel):
    """A status-bar label that may shrink: the text is elided in the middle to the width it gets,
    and then the whole text leads its tooltip (before any tooltip of its own)."""

    _own_tip = ""

    def minimumSizeHint(self) -> QSize:
        return QSize(min(60, super().minimumSizeHint().width()), super().minimumSizeHint().height())

    def displayed_text(self) -> str:
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideMiddle,
                                             max(0, self.contentsRect().width()))

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tip()

    def setToolTip(self, tip: str) -> None:
        self._own_tip = tip
        self._update_tip()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_tip()

    def _update_tip(self) -> None:
        elided = self.displayed_text() != self.text()
        tip = "\n".join(t for t in (self.text() if elided else "", self._own_tip) if t)
        if tip != super().toolTip():
            super().setToolTip(tip)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(self.palette().windowText().color())
        p.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                   self.displayed_text())
        p.end()


class EventSlider(QSlider):
    """Seek slider with the session's events marked as coloured ticks above the groove."""

    def __init__(self, parent=None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.marks: list[tuple[int, int, str]] = []  # (start_frame, end_frame, colour)
        self.setMinimumHeight(28)

    def set_marks(self, marks: list[tuple[int, int, str]]) -> None:
        self.marks = marks
        self.update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self.marks or self.maximum() <= self.minimum():
            return
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderGroove, self)
        span = max(1, self.maximum() - self.minimum())
        p = QPainter(self)
        for start, end, colour in self.marks:
            x0 = groove.left() + groove.width() * (start - self.minimum()) / span
            x1 = groove.left() + groove.width() * (end - self.minimum()) / span
            p.setPen(QPen(QColor(colour), 1))
            p.setBrush(QColor(colour))
            p.drawRect(QRect(int(x0), 1, max(2, int(x1 - x0)), 6))
        p.end()


class MainWindow(QMainWindow):
    """The dashboard. ``source``: camera index, file path or URL (None: open nothing yet).

    ``runtime_maker(cfg)`` makes each session's :class:`~driver_monitor.runtime.Runtime` (tests
    inject fakes; the default opens the configured models and sources).
    """

    sessionEnded = pyqtSignal(str)

    def __init__(self, cfg: Config, source: Any = None, *, runtime_maker: Callable[[Config], Any] | None = None,
                 start_paused: bool = False, speed: float | None = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self._runtime_maker = runtime_maker
        self._start_paused = start_paused
        self.setWindowTitle("driver-monitor")
        self._fitted_after_show = False

        self.worker: SessionWorker | None = None
        self.thread = None
        self.info: SessionInfo | None = None
        self.source_spec: Any = None
        self.playback_state = PlaybackState(paused=start_paused, at_end=False, speed=speed)
        self.speed = speed
        self.latest: FrameResult | None = None
        self.latest_t_read = 0.0
        self.displayed: FrameResult | None = None
        self.session_results: dict[int, FrameResult] = {}
        self.session_events: dict[tuple[str, float], Event] = {}
        self.errors: list[WorkerError] = []
        self.source_stats: dict | None = None  # a live source's counts (session.source_stats), latest
        self.ended_reason: str | None = None
        self._arrivals: deque[float] = deque(maxlen=60)
        self._old_workers: list[SessionWorker] = []
        self.redraw_ms: deque[float] = deque(maxlen=1000)  # cost of each redraw (widgets + plots)
        self.latencies_ms: deque[float] = deque(maxlen=1000)  # frame read -> drawn, per redraw
        self.latency_ms = math.nan
        self.processing_fps = math.nan
        self._marks_dirty = False
        self._slider_dragging = False

        self._build_ui()
        self._build_actions()
        self.fit_to_screen()
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(round(1000.0 / cfg.ui.redraw_fps))))
        self.timer.timeout.connect(self.redraw)
        self.timer.start()
        if source is not None:
            self.start_session(source)

    # ================================================================== layout

    def _build_ui(self) -> None:
        cfg = self.cfg
        self.banner = AlertBanner()
        self.video = VideoView()
        self.state_panel = DriverStatePanel()
        self.state_panel.calibrateRequested.connect(self.calibrate_now)
        self.emotion_panel = EmotionPanel()  # names and bars come with the session's model
        self.au_panel = AUPanel()
        self.event_list = EventList()
        self.event_list.eventActivated.connect(self.jump_to_event)
        self.plots = SignalPlots(cfg)
        self.sound = AlertSound(enabled=cfg.ui.sound)
        self.plots_scroll = scroll_area(self.plots, fill=True)
        left_split = QSplitter(Qt.Orientation.Vertical)
        left_split.addWidget(self._build_view_column())
        left_split.addWidget(self.plots_scroll)
        left_split.setStretchFactor(0, 1)
        left_split.setCollapsible(0, False)
        left_split.setCollapsible(1, False)
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left_split)
        main.addWidget(self._build_side_column())
        main.setStretchFactor(0, 1)
        main.setCollapsible(0, False)
        main.setCollapsible(1, False)
        self.left_split, self.main_split = left_split, main
        self.setCentralWidget(main)
        self._build_status_bar()
        self._set_replay_enabled(False)

    # ================================================================== fitting the screen

    def fit_to_screen(self, screen=None) -> QRect:
        """Size and place the window on the available area of ``screen`` (default: the one it is on):
        the preferred size, or less where the screen is smaller, so nothing is cut off (a
        1366x768 laptop included); the splitters then share the height between the view and the
        plots, and the width between the left column and the panels."""
        screen = screen or self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(*PREFERRED_SIZE)
            return self.geometry()
        frame, inner = self.frameGeometry(), self.geometry()
        margins = ((inner.left() - frame.left(), inner.top() - frame.top(), frame.right() - inner.right(),
                    frame.bottom() - inner.bottom()) if self.isVisible() else (0, 0, 0, 0))
        rect = fitted_geometry(screen.availableGeometry(), margins)
        self.setGeometry(rect)
        self._share_splitters(rect.width(), rect.height())
        return rect

    def _share_splitters(self, width: int, height: int) -> None:
        """The plots get the height they ask for (their three default plots) as long as the video
        column keeps its minimum, the video the rest; the side panels about 30 % of the width, at
        least their own minimum."""
        side = max(self.main_split.widget(1).minimumSizeHint().width(), int(0.3 * width))
        self.main_split.setSizes([max(1, width - side), side])
        avail_h = max(1, height - self.menuBar().sizeHint().height() - self.statusBar().sizeHint().height()
                      - self.left_split.handleWidth())
        view_min = self.left_split.widget(0).minimumSizeHint().height()
        plots_h = max(min(self.plots.minimumSizeHint().height() + 4, avail_h - view_min), avail_h // 3)
        self.left_split.setSizes([max(1, avail_h - plots_h), plots_h])

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._fitted_after_show:  # the window manager's frame is known once the window is shown
            self._fitted_after_show = True
            QTimer.singleShot(0, self._refit_frame)

    def _refit_frame(self) -> None:
        screen = self.screen()
        if screen is not None and not self.isFullScreen() and not self.isMaximized() \
                and not screen.availableGeometry().contains(self.frameGeometry()):
            self.fit_to_screen(screen)

    def _build_replay_bar(self) -> QHBoxLayout:
        """Play / pause, previous / next frame, the seek slider, time and speed."""
        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_pause)
        self.back_button = QPushButton("◀|")
        self.back_button.setToolTip("Previous frame (Left)")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.fwd_button = QPushButton("|▶")
        self.fwd_button.setToolTip("Next frame (Right)")
        self.fwd_button.clicked.connect(lambda: self.step(1))
        self.slider = EventSlider()
        self.slider.setRange(0, 0)
        self.slider.sliderPressed.connect(self._slider_pressed)
        self.slider.sliderReleased.connect(self._slider_released)
        self.slider.actionTriggered.connect(self._slider_action)
        self.time_label = QLabel("0.00 s")
        self.time_label.setMinimumWidth(150)
        self.speed_box = QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(speed_label(s), s)
        self.speed_box.setCurrentIndex(SPEEDS.index(self.speed) if self.speed in SPEEDS else 2)
        self.speed_box.currentIndexChanged.connect(lambda i: self.set_speed(self.speed_box.itemData(i)))
        for w in (self.play_button, self.back_button, self.fwd_button, self.slider, self.speed_box):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        controls = QHBoxLayout()
        for w in (self.play_button, self.back_button, self.fwd_button):
            controls.addWidget(w)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        controls.addWidget(QLabel("speed"))
        controls.addWidget(self.speed_box)
        return controls

    def _build_view_column(self) -> QWidget:
        """The banner, the live view and the replay bar."""
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.banner)
        lv.addWidget(self.video, 1)
        lv.addLayout(self._build_replay_bar())
        return left

    def _build_side_column(self) -> QWidget:
        """The driver state panel over the tabs: emotion, action units, events (each scrolls when the
        screen is too small for it)."""
        tabs = QTabWidget()
        tabs.addTab(scroll_area(self.emotion_panel), "Emotion")
        tabs.addTab(scroll_area(self.au_panel), "Action units")
        tabs.addTab(self.event_list, "Events")
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.state_panel)
        rv.addWidget(tabs, 1)
        self.tabs = tabs
        return right

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        # elided (the whole text in the tooltip) so a long path never widens the window past the screen
        self.status_source = ElidedLabel("no source")
        self.status_live = QLabel("")  # a live source's dropped frames and reconnects
        self.status_live.setToolTip(LIVE_STATS_TIP)
        self.status_live.setVisible(False)
        self.status_backend = ElidedLabel("backend: –")
        self.status_fps = ElidedLabel("– fps")
        self.status_latency = QLabel("latency – ms")
        self.status_sound = QLabel("")
        self.status_record = ElidedLabel("")
        for w in (self.status_source, self.status_live, self.status_backend, self.status_fps, self.status_latency,
                  self.status_sound, self.status_record):
            sb.addPermanentWidget(w)

    def _build_actions(self) -> None:
        def act(menu, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None,
                checkable: bool = False, checked: bool = False) -> QAction:
            a = QAction(text, self)
            if shortcut is not None:
                a.setShortcut(QKeySequence(shortcut))
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setCheckable(checkable)
            if checkable:
                a.setChecked(checked)
                a.toggled.connect(slot)
            else:
                a.triggered.connect(slot)
            menu.addAction(a)
            self.addAction(a)
            return a

        mb = self.menuBar()
        f = mb.addMenu("&File")
        act(f, "Open video file…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        act(f, "Open camera or stream…", self.open_camera_dialog)
        f.addSeparator()
        self.record_action = act(f, "Record results to folder…", self.toggle_recording_dialog, "Ctrl+R")
        self.record_video_action = act(f, "Record an annotated video too", lambda on: None, checkable=True,
                                       checked=True)
        act(f, "Export session results…", self.export_dialog, "Ctrl+E")
        f.addSeparator()
        act(f, "Quit", self.close, QKeySequence.StandardKey.Quit)

        pb = mb.addMenu("&Playback")
        self.play_action = act(pb, "Play / pause", self.toggle_pause, "Space")
        act(pb, "Next frame", lambda: self.step(1), "Right")
        act(pb, "Previous frame", lambda: self.step(-1), "Left")
        act(pb, "Forward 5 s", lambda: self.seek_seconds(5.0), "Shift+Right")
        act(pb, "Back 5 s", lambda: self.seek_seconds(-5.0), "Shift+Left")
        act(pb, "Forward 30 s", lambda: self.seek_seconds(30.0), "Up")
        act(pb, "Back 30 s", lambda: self.seek_seconds(-30.0), "Down")

        v = mb.addMenu("&View")
        self.overlay_actions: dict[str, QAction] = {}
        for name in OVERLAYS:
            self.overlay_actions[name] = act(v, OVERLAY_LABELS[name], lambda on, n=name: self.video.set_overlay(n, on),
                                             checkable=True, checked=True)
        v.addSeparator()
        act(v, "Full screen", self.toggle_full_screen, "F")

        d = mb.addMenu("&Driver")
        act(d, "Calibrate now", self.calibrate_now, "C")
        self.mute_action = act(d, "Mute alerts", lambda on: self.sound.set_muted(on), "M", checkable=True)
        self.sound.mutedChanged.connect(self._muted_changed)
        self._muted_changed(False)

    # ================================================================== session

    def start_session(self, source: Any, *, start_paused: bool | None = None) -> None:
        """Stop the current session (if any) and start one on ``source``."""
        self.stop_session()
        self.source_spec = source
        self.info = None
        self.latest = self.displayed = None
        self.session_results.clear()
        self.session_events.clear()
        self.event_list.clear_events()
        self.slider.set_marks([])
        self.plots.reset()
        self.sound.reset()
        self.ended_reason = None
        self.source_stats = None
        self._arrivals.clear()
        self.emotion_panel.set_names(())
        self.au_panel.set_names(())
        self.plots.set_emotion_names(())
        self.status_live.setText("")
        self.status_live.setVisible(False)
        self.status_source.setText(f"opening {source}")
        runtime = self._runtime_maker(self.cfg) if self._runtime_maker else None
        paused = self._start_paused if start_paused is None else start_paused
        self.worker = SessionWorker(self.cfg, source, runtime=runtime,
                                    start_paused=paused, speed=self.speed)
        self.worker.opened.connect(self._on_opened)
        self.worker.result.connect(self._on_result)
        self.worker.events.connect(self._on_events)
        self.worker.failed.connect(self._on_failed)
        self.worker.playback.connect(self._on_playback)
        self.worker.stats.connect(self._on_stats)
        self.worker.ended.connect(self._on_ended)
        self.thread = start_worker(self.worker)

    def stop_session(self, timeout_s: float = 2.0) -> bool:
        """Stop the worker and wait (at most ``timeout_s``) until it has closed the source."""
        worker, thread = self.worker, self.thread
        if worker is None:
            return True
        worker.request_stop()
        deadline = time.monotonic() + timeout_s
        ok = worker.stopped.wait(timeout_s)
        if thread is not None:
            thread.quit()
            ok = thread.wait(max(1, int(1000 * (deadline - time.monotonic())))) and ok
        self._old_workers.append(worker)  # its queued signals may still arrive: _current() drops them
        del self._old_workers[:-4]
        if not ok:  # still blocked (e.g. in a camera read): keep the QThread alive until it returns,
            _STRAGGLERS.append((worker, thread))  # destroying a running QThread aborts the process
            worker.ended.connect(lambda *_: _STRAGGLERS.remove((worker, thread))
                                 if (worker, thread) in _STRAGGLERS else None)
        self.worker = self.thread = None
        return ok

    def closeEvent(self, event) -> None:
        self.timer.stop()
        self.stop_session(2.0)
        super().closeEvent(event)

    # ================================================================== worker signals

    def _current(self) -> bool:
        """True in a slot called by the current session's worker (or directly, not by a signal)."""
        sender = self.sender()
        return sender is None or sender is self.worker

    def _on_opened(self, info: SessionInfo) -> None:
        if not self._current():
            return
        self.info = info
        self.setWindowTitle(f"driver-monitor: {info.source}")
        self.status_source.setText(info.source)
        sel = info.selection
        reason = sel.get("reason") if isinstance(sel, dict) else getattr(sel, "reason", None)
        text, tip = backend_status(info.backend, reason)
        self.status_backend.setText(text)
        self.status_backend.setToolTip(tip)
        self._set_replay_enabled(not info.is_live)
        self.status_live.setVisible(info.is_live)
        self.emotion_panel.set_names(info.emotion_names)
        self.au_panel.set_names(info.au_names)
        self.plots.set_emotion_names(info.emotion_names)
        if info.frame_count:
            self.slider.setRange(0, max(0, info.frame_count - 1))
        self.record_action.setEnabled(True)

    def _on_result(self, r: FrameResult, t_read: float) -> None:
        if not self._current():
            return
        self.latest = r
        self.latest_t_read = t_read
        self._arrivals.append(time.perf_counter())
        self.plots.append(r)
        if r.camera_ok and len(self.session_results) < MAX_STORED_RESULTS:
            self.session_results[r.index] = strip_for_export(r)
        if r.events:
            self._on_events(r.events)

    def _on_events(self, events) -> None:
        if not self._current():
            return
        for ev in events:
            key = event_key(ev)
            old = self.session_events.get(key)
            if old is not None and old.end_s is not None and ev.end_s is None:
                continue
            self.session_events[key] = ev
        if self.event_list.add_events(events):
            self._marks_dirty = True

    def _on_failed(self, err: WorkerError) -> None:
        if not self._current():
            return
        self.errors.append(err)
        try:
            live_spec = parse_source(self.source_spec).is_live
        except DriverMonitorError:
            live_spec = False
        if err.stage == "open" and err.is_source_error and live_spec:
            box = QMessageBox(QMessageBox.Icon.Warning, "Camera not available",
                              f"{err.message}\n\nOpen a recorded video file instead?",
                              QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel, self)
            box.finished.connect(
                lambda code: self.open_file_dialog() if code == QMessageBox.StandardButton.Open else None)
            box.open()
            self.offer_file_box = box
            return
        title = {"open": "Cannot start", "run": "Processing stopped", "source": "Video source",
                 "record": "Recording"}.get(err.stage, "Error")
        box = QMessageBox(QMessageBox.Icon.Critical if err.fatal else QMessageBox.Icon.Warning, title,
                          err.message, QMessageBox.StandardButton.Ok, self)
        if err.details:
            box.setDetailedText(err.details)
        box.open()  # not exec(): the window keeps running
        self.error_box = box

    def _on_playback(self, st: PlaybackState) -> None:
        if not self._current():
            return
        self.playback_state = st
        self.play_button.setText("Play" if (st.paused or st.at_end) else "Pause")
        self.status_record.setText(f"● recording to {st.recording}" if st.recording else "")
        self.record_action.setText("Stop recording" if st.recording else "Record results to folder…")

    def _on_stats(self, stats: dict) -> None:
        if not self._current():
            return
        self.source_stats = stats
        self.status_live.setText(live_stats_text(stats))

    def _on_ended(self, reason: str) -> None:
        if not self._current():
            return
        self.ended_reason = reason
        if self.info is not None and self.info.is_live:
            self.status_source.setText(f"{self.info.source} (ended: {reason})")
        self.sessionEnded.emit(reason)

    # ================================================================== drawing

    def redraw(self) -> None:
        """Timer tick: draw the latest result if it is new."""
        if self._marks_dirty:
            self._update_marks()
        r = self.latest
        if r is None or r is self.displayed:
            if r is None:
                self.banner.show_spec(banner_for(None, self.info.backend if self.info else "",
                                                 ended=self.ended_reason))
            return
        self.displayed = r
        t0 = time.perf_counter()
        backend = self.info.backend if self.info else ""
        engine_running = backend not in ("", "none")
        self.video.show_result(r)
        self.banner.show_spec(banner_for(r, backend))
        self.state_panel.show_result(r)
        self.emotion_panel.show_result(r, engine_running)
        self.au_panel.show_result(r, engine_running)
        self.plots.refresh()
        self.sound.on_level(r.state.level, r.time_s)
        if not self._slider_dragging and self.slider.maximum() > 0:
            self.slider.blockSignals(True)
            self.slider.setValue(max(0, r.index))
            self.slider.blockSignals(False)
        total = f" / {self.info.frame_count / self.info.fps:.2f}" if self.info and self.info.frame_count else ""
        self.time_label.setText(f"{r.time_s:.2f}{total} s  #{r.index}")
        self.latency_ms = (time.perf_counter() - self.latest_t_read) * 1e3
        self.latencies_ms.append(self.latency_ms)
        a = self._arrivals
        self.processing_fps = (len(a) - 1) / (a[-1] - a[0]) if len(a) > 1 and a[-1] > a[0] else math.nan
        pipe = r.timings_ms.get("total")
        cap = f" (pipeline {pipe:.0f} ms = {1000.0 / pipe:.0f} fps max)" if pipe else ""
        self.status_fps.setText(fps_text(self.processing_fps, self.source_rate(), cap))
        self.status_latency.setText(f"latency {self.latency_ms:.0f} ms")
        self.redraw_ms.append((time.perf_counter() - t0) * 1e3)

    def source_rate(self) -> float | None:
        """Frames per second the source asks for: a camera's rate, a replay's at its speed (None: as
        fast as it goes)."""
        if self.info is None:
            return None
        if self.info.is_live:
            return self.info.fps
        return self.info.fps * self.speed if self.speed else None

    def _update_marks(self) -> None:
        self._marks_dirty = False
        fps = self.info.fps if self.info else 30.0
        marks = []
        for ev in self.session_events.values():
            if ev.type == "blink":
                continue
            start = ev.start_frame if ev.start_frame is not None else int(ev.start_s * fps)
            end = ev.end_frame if ev.end_frame is not None else (
                int(ev.end_s * fps) if ev.end_s is not None else (self.latest.index if self.latest else start))
            colour = level_colour(ev.level)[0] if ev.level > Level.NONE else "#9e9e9e"
            marks.append((start, max(start, end), colour))
        self.slider.set_marks(marks)

    def _muted_changed(self, muted: bool) -> None:
        if self.mute_action.isChecked() != muted:
            self.mute_action.setChecked(muted)
        if not self.cfg.ui.sound:
            self.status_sound.setText("sound off (ui.sound)")
        else:
            self.status_sound.setText("sound muted (M)" if muted else "sound on (M)")

    def _set_replay_enabled(self, on: bool) -> None:
        for w in (self.back_button, self.fwd_button, self.slider, self.speed_box):
            w.setEnabled(on)
        self.play_button.setEnabled(on)

    # ================================================================== controls

    def toggle_pause(self) -> None:
        if self.worker is not None and self.info is not None and not self.info.is_live:
            if self.playback_state.at_end:
                self.worker.seek(0)
                self.worker.play()
            else:
                self.worker.toggle_pause()

    def step(self, n: int) -> None:
        if self.worker is not None and self.info is not None and not self.info.is_live:
            self.worker.step(n)

    def seek(self, index: int) -> None:
        if self.worker is not None and self.info is not None and not self.info.is_live:
            self.worker.seek(index)

    def seek_seconds(self, delta_s: float) -> None:
        if self.info is None or self.latest is None:
            return
        self.seek(max(0, int(round(self.latest.index + delta_s * self.info.fps))))

    def set_speed(self, speed: float | None) -> None:
        self.speed = speed
        if self.worker is not None:
            self.worker.set_speed(speed)

    def jump_to_event(self, ev: Event) -> None:
        fps = self.info.fps if self.info else 30.0
        self.seek(ev.start_frame if ev.start_frame is not None else int(round(ev.start_s * fps)))

    def calibrate_now(self) -> None:
        if self.worker is not None:
            self.worker.calibrate_now()

    def toggle_full_screen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _slider_pressed(self) -> None:
        self._slider_dragging = True

    def _slider_released(self) -> None:
        self._slider_dragging = False
        self.seek(self.slider.value())

    def _slider_action(self, action: int) -> None:
        if not self._slider_dragging and action != QSlider.SliderAction.SliderMove.value:
            QTimer.singleShot(0, lambda: self.seek(self.slider.value()))

    # ================================================================== files, recording, export

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a recorded drive", "",
                                              "Videos (*.mp4 *.avi *.mov *.mkv *.m4v *.webm);;All files (*)")
        if path:
            self.start_session(path)

    def open_camera_dialog(self) -> None:
        text, ok = QInputDialog.getText(self, "Open camera or stream", "Camera index (0, 1, …) or stream URL:",
                                        text=str(self.cfg.capture.source))
        if ok and text.strip():
            t = text.strip()
            self.start_session(source_arg(t))

    def toggle_recording_dialog(self) -> None:
        if self.worker is None:
            return
        if self.playback_state.recording:
            self.worker.stop_recording()
            return
        path = QFileDialog.getExistingDirectory(self, "Record results into folder")
        if path:
            self.worker.start_recording(path, video=self.record_video_action.isChecked())

    def export_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Export session results into folder")
        if path:
            try:
                summary = self.export_results(path)
            except Exception as exc:
                QMessageBox.warning(self, "Export failed", str(exc))
                return
            self.statusBar().showMessage(f"exported {summary.get('frames', 0)} frames to {path}", 8000)

    def export_results(self, out_dir: str | Path) -> dict:
        """Write the session's results as ``analyze`` does (its session.Recorder): frames.csv,
        events.jsonl, summary.json; no alert pictures (the results are kept without their pixels).

        Rows are the frames analysed in this session (every replayed frame once, the latest pass
        wins), in frame order; events are the session's ended events, in start order.
        """
        from ..session import Recorder

        info = self.info
        recorder = Recorder(out_dir, self.cfg, emotion_names=info.emotion_names if info else (),
                            au_names=info.au_names if info else (),
                            region_names=info.region_names if info else (), pictures=False)
        for idx in sorted(self.session_results):
            recorder.write(dataclasses.replace(self.session_results[idx], events=()))
        ended = sorted((e for e in self.session_events.values() if e.end_s is not None), key=lambda e: e.start_s)
        n = len(self.session_results)
        complete = bool(info and info.frame_count and n >= info.frame_count)
        of = info.frame_count if info and info.frame_count else "unknown"
        return recorder.close(events=ended, summary={
            "source": info.source if info else str(self.source_spec),
            "source_fps": info.fps if info else None,
            "backend": info.backend if info else "none",
            "exported_from": "dashboard session",
            "complete": complete,
            **({} if complete else {"reason": f"the session analysed {n} of {of} frames"}),
            **{k: v for k, v in (self.source_stats or {}).items() if k in LIVE_COUNTS},
            "config": self.cfg.to_dict(),
        })
