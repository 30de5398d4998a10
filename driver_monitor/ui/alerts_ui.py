"""Alert banner, audible alert with mute, and the event list.

:func:`banner_for` is pure (no Qt): it turns one :class:`FrameResult` plus the backend text into
what the banner shows, so the table of states is tested without a window. The widgets below only
render it.

Sound: :class:`AlertSound` decides *when* to sound (rising alert level, critical repeated every
``repeat_critical_s``) and counts every request (``requests``, ``soundRequested``) whether or not
audio exists; playback goes through QtMultimedia (``QAudioSink`` with a generated tone, no sound
file) and fails soft where there is no audio device or no libpulse: ``available`` is False and
``unavailable_reason`` says why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from PyQt6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QFrame, QLabel, QListWidget, QListWidgetItem, QSizePolicy

from ..types import Event, FrameResult, Level, Status

# Banner / level colours: background, text.
LEVEL_COLOURS: dict[str, tuple[str, str]] = {
    "ok": ("#1f7a3a", "#ffffff"),
    "info": ("#2d5f8b", "#ffffff"),
    "degraded": ("#6b6b6b", "#ffffff"),
    "warning": ("#e0a100", "#000000"),
    "critical": ("#c62828", "#ffffff"),
}


def level_colour(level: Level) -> tuple[str, str]:
    return LEVEL_COLOURS[{Level.NONE: "ok", Level.WARNING: "warning", Level.CRITICAL: "critical"}[Level(level)]]


def backend_note(backend_description: str) -> str | None:
    """The banner's note for the pipeline's backend text: only a real problem, None otherwise.

    ``"none"`` (or nothing) -> no engine. Running on the CPU is not a problem (it is how a machine
    without an NVIDIA GPU works): it is a status, see :func:`backend_status`.
    """
    desc = (backend_description or "").strip().lower()
    if not desc or desc == "none":
        return "no engine: emotions and action units off"
    return None


def backend_status(backend_description: str, reason: str | None = None) -> tuple[str, str]:
    """The status bar's (text, tooltip) for the backend: ``("backend: onnxruntime cpu fp32", ...)``.

    The tooltip says why this backend was chosen and, on the CPU, what would run faster.
    """
    desc = (backend_description or "").strip()
    if not desc or desc.lower() == "none":
        return "backend: none", "No emotion / action-unit engine is loaded; the driver-state alerts still run."
    tips = [f"why this backend: {reason}"] if reason else []
    if "cpu" in desc.lower().split() and "tensorrt" not in desc.lower():
        tips.append("Runs on the CPU. With an NVIDIA GPU, TensorRT or CUDA runs the engine faster.")
    return f"backend: {desc}", "\n".join(tips)


@dataclass(frozen=True, slots=True)
class BannerSpec:
    """What the banner shows: text, colour key (LEVEL_COLOURS) and the alert level behind it."""

    text: str
    colour: str
    level: Level = Level.NONE


def banner_for(result: FrameResult | None, backend_description: str = "", *,
               ended: str | None = None) -> BannerSpec:
    """The banner for one result. Alerts outrank degraded states, degraded states outrank 'ok'."""
    note = backend_note(backend_description)
    suffix = f"  ·  {note}" if note else ""
    if result is None:
        if ended:
            return BannerSpec(ended + suffix, "info")
        return BannerSpec("waiting for the first frame" + suffix, "info")
    st = result.state
    level = st.level
    if level > Level.NONE:
        parts = []
        if st.drowsiness > Level.NONE:
            why = []
            if st.eyes_closed and st.eyes_closed_s > 0:
                why.append(f"eyes closed {st.eyes_closed_s:.1f} s")
            if not math.isnan(st.perclos):
                why.append(f"PERCLOS {st.perclos:.0%}")
            if st.yawning:
                why.append("yawning")
            parts.append(f"DROWSINESS {str(st.drowsiness).upper()}" + (f" ({', '.join(why)})" if why else ""))
        if st.distraction > Level.NONE:
            why = ""
            if st.off_road_s > 0:
                reason = st.off_road_reason
                lost = (", face lost" if "face_lost" in reason else ", face turned away" if "face_away" in reason
                        else ", looking down" if "eyes_down" in reason else "")
                if "phone" in reason:
                    why = f" (phone in use {st.off_road_s:.1f} s{lost})"
                else:
                    why = f" (eyes off road {st.off_road_s:.1f} s{lost})"
            elif st.time_sharing_s > 0:
                why = f" (glances away {st.time_sharing_s:.0f} s with no 2 s back on the road)"
            parts.append(f"DISTRACTION {str(st.distraction).upper()}{why}")
        return BannerSpec("  ·  ".join(parts) + suffix, "critical" if level == Level.CRITICAL else "warning", level)
    # degraded states follow the monitor's status (it applies the configured hold times), so one
    # missed detection does not flash "driver not visible"
    if not result.camera_ok or st.status == Status.CAMERA_LOST:
        return BannerSpec("camera lost: retrying" + suffix, "degraded")
    if st.status == Status.DRIVER_ABSENT:
        return BannerSpec("driver not visible" + suffix, "degraded")
    if st.status == Status.EYES_NOT_VISIBLE:
        return BannerSpec("eyes not visible: eye-based alerts paused" + suffix, "degraded")
    if result.face is None:
        return BannerSpec("looking for the driver's face" + suffix, "info")
    if st.status == Status.CALIBRATING:
        # the alerts are live meanwhile, judged against the camera mount's road pose
        return BannerSpec(f"learning the driver's road pose ({st.calibration_progress:.0%}); alerts active"
                          + suffix, "info")
    return BannerSpec("driver attentive" + suffix, "ok")


class AlertBanner(QLabel):
    """A full-width coloured one-line label showing a :class:`BannerSpec`.

    ``text()`` is the whole text; what is painted is elided to the banner's width (the whole text
    in the tooltip), and the size hints do not grow with the text, so a long message (an error at
    open, several alerts and a backend note) never widens the window.
    """

    MIN_WIDTH = 160   # minimumSizeHint width: the layout may shrink the banner this far
    MAX_HINT = 640    # sizeHint width never above this, whatever the text

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(44)
        font = self.font()
        font.setPointSize(font.pointSize() + 4)
        font.setBold(True)
        self.setFont(font)
        self.spec: BannerSpec | None = None
        self.show_spec(BannerSpec("starting", "info"))

    def show_spec(self, spec: BannerSpec) -> None:
        if spec == self.spec:
            return
        self.spec = spec
        bg, fg = LEVEL_COLOURS[spec.colour]
        self.setText(spec.text)
        self.setStyleSheet(f"QLabel {{ background: {bg}; color: {fg}; padding: 6px; border-radius: 4px; }}")
        self.setToolTip(spec.text if self.displayed_text() != spec.text else "")

    def minimumSizeHint(self) -> QSize:
        return QSize(self.MIN_WIDTH, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(min(hint.width(), self.MAX_HINT), hint.height())

    def displayed_text(self) -> str:
        """The text as painted: elided on the right to the width the banner has."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                             max(0, self.contentsRect().width()))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.setToolTip(self.text() if self.displayed_text() != self.text() else "")

    def paintEvent(self, event) -> None:
        shown = self.displayed_text()
        if shown == self.text():
            super().paintEvent(event)
            return
        QFrame.paintEvent(self, event)  # the style sheet's background, without QLabel's text
        p = QPainter(self)
        p.setFont(self.font())
        p.setPen(QColor(LEVEL_COLOURS[self.spec.colour][1]) if self.spec else self.palette().windowText().color())
        p.drawText(self.contentsRect(), int(self.alignment()), shown)
        p.end()


def _tone_pcm(freq_hz: float, duration_s: float, rate: int = 22050, volume: float = 0.4) -> bytes:
    """A short sine beep as 16-bit mono PCM, with 10 ms fades so it does not click."""
    n = int(rate * duration_s)
    t = np.arange(n, dtype=np.float32) / rate
    wave = np.sin(2 * np.pi * freq_hz * t) * volume
    ramp = min(n // 2, int(rate * 0.01))
    if ramp:
        env = np.ones(n, np.float32)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        wave *= env
    return (wave * 32767).astype("<i2").tobytes()


class AlertSound(QObject):
    """Decides when to sound and plays a tone through QtMultimedia when it can.

    ``on_level(level, t_s)`` per displayed result: sounds when the level rises above NONE, and
    every ``repeat_critical_s`` while it stays CRITICAL. Every decision counts in ``requests`` and
    emits ``soundRequested(level)``, also while muted (then ``played`` does not grow), so tests
    check the request without audio hardware.
    """

    soundRequested = pyqtSignal(int)
    mutedChanged = pyqtSignal(bool)

    def __init__(self, enabled: bool = True, repeat_critical_s: float = 2.0, parent=None) -> None:
        super().__init__(parent)
        self.enabled = enabled
        self.muted = False
        self.repeat_critical_s = repeat_critical_s
        self.requests = 0
        self.played = 0
        self.available: bool | None = None  # unknown until first use
        self.unavailable_reason = ""
        self._last_level = Level.NONE
        self._last_sound_t: float | None = None
        self._sink = None
        self._buffer: QBuffer | None = None
        self._data: QByteArray | None = None
        self._fmt = None

    # -------------------------------------------------------------- decisions

    def set_muted(self, muted: bool) -> None:
        if muted != self.muted:
            self.muted = muted
            if muted:
                self._stop()
            self.mutedChanged.emit(muted)

    def toggle_mute(self) -> None:
        self.set_muted(not self.muted)

    def reset(self) -> None:
        self._last_level = Level.NONE
        self._last_sound_t = None

    def on_level(self, level: Level, t_s: float) -> bool:
        """Feed the displayed level; returns True when this call requested a sound."""
        level = Level(level)
        want = False
        if level > self._last_level and level > Level.NONE:
            want = True
        elif (level == Level.CRITICAL and self._last_sound_t is not None
              and (t_s - self._last_sound_t >= self.repeat_critical_s or t_s < self._last_sound_t)):
            want = True
        self._last_level = level
        if want:
            self._last_sound_t = t_s
            self.requests += 1
            self.soundRequested.emit(int(level))
            if self.enabled and not self.muted:
                self._play(level)
        return want

    # -------------------------------------------------------------- playback (fails soft)

    def _ensure_sink(self) -> bool:
        if self.available is not None:
            return self.available
        try:
            from PyQt6.QtMultimedia import QAudioFormat, QAudioSink, QMediaDevices
        except ImportError as exc:  # libpulse0 missing, or a PyQt6 without QtMultimedia
            self.available, self.unavailable_reason = False, f"QtMultimedia unavailable: {exc}"
            return False
        device = QMediaDevices.defaultAudioOutput()
        if device.isNull():
            self.available, self.unavailable_reason = False, "no audio output device"
            return False
        fmt = QAudioFormat()
        fmt.setSampleRate(22050)
        fmt.setChannelCount(1)
        fmt.setSampleFormat(QAudioFormat.SampleFormat.Int16)
        if not device.isFormatSupported(fmt):
            self.available, self.unavailable_reason = False, "audio device does not take 16-bit mono 22.05 kHz"
            return False
        self._sink = QAudioSink(device, fmt, self)
        self.available = True
        return True

    def _play(self, level: Level) -> None:
        try:
            if not self._ensure_sink():
                return
            self._stop()
            freq, dur = (1320.0, 0.35) if level == Level.CRITICAL else (880.0, 0.25)
            self._data = QByteArray(_tone_pcm(freq, dur))
            self._buffer = QBuffer(self._data, self)
            self._buffer.open(QIODevice.OpenModeFlag.ReadOnly)
            self._sink.start(self._buffer)
            self.played += 1
        except Exception as exc:  # audio must never take the dashboard down
            self.available, self.unavailable_reason = False, f"audio failed: {exc}"

    def _stop(self) -> None:
        if self._sink is not None:
            try:
                self._sink.stop()
            except Exception:
                pass


def event_label(event: Event) -> str:
    end = f"{event.end_s:7.2f}" if event.end_s is not None else "  (now)"
    dur = f" {event.duration_s:.1f} s" if event.duration_s is not None else ""
    return f"{event.start_s:7.2f} – {end}  {event.type.replace('_', ' ')}  [{event.level}]{dur}"


def event_key(event: Event) -> tuple[str, float]:
    """Identity of an event across its start and end copies."""
    return (event.type, round(event.start_s, 3))


class EventList(QListWidget):
    """Events of the session, newest last; an event's start copy is replaced by its end copy.

    Blinks are counted by the state panel, not listed (a minute of driving has ~15 of them).
    ``eventActivated(event)`` on click: the window seeks replay to the event's start.
    """

    eventActivated = pyqtSignal(object)
    HIDDEN = frozenset({"blink"})

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._items: dict[tuple[str, float], QListWidgetItem] = {}
        self.events: dict[tuple[str, float], Event] = {}
        self.itemClicked.connect(self._clicked)
        self.itemActivated.connect(self._clicked)

    def add_events(self, events: Iterable[Event]) -> bool:
        changed = False
        for ev in events:
            if ev.type in self.HIDDEN:
                continue
            key = event_key(ev)
            old = self.events.get(key)
            if old is not None and old.end_s is not None and ev.end_s is None:
                continue  # a replayed start after the end was already seen
            self.events[key] = ev
            item = self._items.get(key)
            if item is None:
                item = QListWidgetItem()
                self._items[key] = item
                self.addItem(item)
                self.scrollToBottom()
            item.setText(event_label(ev))
            bg, fg = level_colour(ev.level) if ev.level > Level.NONE else LEVEL_COLOURS["degraded"]
            item.setBackground(QColor(bg))
            item.setForeground(QColor(fg))
            item.setData(Qt.ItemDataRole.UserRole, key)
            changed = True
        return changed

    def clear_events(self) -> None:
        self.clear()
        self._items.clear()
        self.events.clear()

    def _clicked(self, item: QListWidgetItem) -> None:
        ev = self.events.get(item.data(Qt.ItemDataRole.UserRole))
        if ev is not None:
            self.eventActivated.emit(ev)
