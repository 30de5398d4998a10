"""Side panels: driver state (levels, PERCLOS, blink rate, timers, calibration), emotions, AUs.

The emotion and AU panels show the names the loaded model carries (``set_names``, from
:class:`~driver_monitor.ui.worker.SessionInfo`), none without an engine.

Each panel has ``show_result(result)`` and keeps what it displays in plain attributes / widget
text, so tests read the panel rather than pixels.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QFormLayout, QGridLayout, QGroupBox, QLabel, QProgressBar, QPushButton,
                             QVBoxLayout)

from ..preprocess import AU_DESCRIPTIONS
from ..types import FrameResult, Level, Status
from .alerts_ui import LEVEL_COLOURS, level_colour


def _fmt(v: float, spec: str, none: str = "–") -> str:
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def plural(n: int, word: str) -> str:
    """'1 blink', '0 blinks', '3 blinks'."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def eyes_closed_text(r: FrameResult) -> str:
    """The 'Eyes closed' field: how long they have been closed, 'open', or 'not visible' when the
    eyes cannot be measured (no face, eyes hidden or turned away), never 'open' beside a status
    that says the eyes are not visible."""
    st = r.state
    if st.eyes_closed:
        return f"{st.eyes_closed_s:.1f} s"
    if (st.status in (Status.EYES_NOT_VISIBLE, Status.DRIVER_ABSENT, Status.CAMERA_LOST)
            or r.smoothed is None or not r.smoothed.eyes_visible):
        return "not visible"
    return "open"


def au_label(name: str) -> str:
    """'AU12' -> 'AU12 lip corner puller' (the name alone when it has no description)."""
    desc = AU_DESCRIPTIONS.get(name)
    return f"{name} {desc}" if desc else name


class LevelLabel(QLabel):
    """A label whose colour follows an alert level."""

    def __init__(self, parent=None) -> None:
        super().__init__("–", parent)
        self.level: Level | None = None
        self.set_level(Level.NONE)

    def set_level(self, level: Level, text: str | None = None) -> None:
        text = text if text is not None else str(level).upper()
        if level == self.level and text == self.text():
            return
        self.level = level
        bg, fg = level_colour(level)
        self.setText(text)
        self.setStyleSheet(f"QLabel {{ background: {bg}; color: {fg}; padding: 2px 8px; "
                           f"border-radius: 3px; font-weight: bold; }}")


class FittingProgressBar(QProgressBar):
    """A progress bar whose text is the longest of several candidates that fits its width.

    ``set_texts(["calibrated: open EAR 0.310, yaw +4°, pitch -2°", "calibrated"], detail)``: the
    first candidate that fits is shown (chosen again on every resize), the last one when none does;
    ``detail`` is the tooltip, so nothing is lost when the short form shows.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.candidates: tuple[str, ...] = ("%p%",)

    def set_texts(self, candidates: Sequence[str], detail: str = "") -> None:
        self.candidates = tuple(candidates)
        if detail != self.toolTip():
            self.setToolTip(detail)
        self._fit()

    def text_fits(self, fmt: str) -> bool:
        shown = fmt.replace("%p", str(round(100 * (self.value() - self.minimum())
                                            / max(1, self.maximum() - self.minimum()))))
        return self.fontMetrics().horizontalAdvance(shown) <= self.contentsRect().width() - 12

    def _fit(self) -> None:
        fmt = next((c for c in self.candidates if self.text_fits(c)), self.candidates[-1])
        if fmt != self.format():
            self.setFormat(fmt)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()


# what each row of the driver state means, in plain words (the row's tooltip)
STATE_TIPS = {
    "Drowsiness": "How drowsy the driver looks: eyes closing for long, often, or yawning.",
    "Distraction": "Whether the driver's eyes or head are off the road for too long.",
    "Status": "What the camera can see right now: the driver, the eyes, or why not.",
    "PERCLOS": ("Share of the recent time (the last minute by default) the eyes were closed; "
                "a rising share is a sign of drowsiness."),
    "Blink rate": "Blinks per minute, and how many so far.",
    "Eyes closed": "How long the eyes have been closed now; 'not visible' when they cannot be seen.",
    "Eyes off road": "How long the driver has been looking away from the road now.",
    "Yawns": "Yawns so far.",
    "Calibration": "The driver's own road-facing head pose and open eyes, learned from steady, eyes-open driving.",
}


class DriverStatePanel(QGroupBox):
    """Drowsiness / distraction levels, PERCLOS, blink rate, timers, calibration + 'calibrate now'."""

    calibrateRequested = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__("Driver state", parent)
        form = QFormLayout(self)
        self.drowsiness = LevelLabel()
        self.distraction = LevelLabel()
        self.status = QLabel("–")
        self.perclos = QLabel("–")
        self.blink_rate = QLabel("–")
        self.eyes_closed = QLabel("–")
        self.off_road = QLabel("–")
        self.yawns = QLabel("–")
        self.calibration = FittingProgressBar()
        self.calibration.setRange(0, 100)
        self.calibration.setTextVisible(True)
        self.calibrate_button = QPushButton("Calibrate now (C)")
        self.calibrate_button.setToolTip("Restart learning this driver's neutral head pose and open-eye EAR")
        self.calibrate_button.clicked.connect(self.calibrateRequested)
        form.addRow("Drowsiness", self.drowsiness)
        form.addRow("Distraction", self.distraction)
        form.addRow("Status", self.status)
        form.addRow("PERCLOS", self.perclos)
        form.addRow("Blink rate", self.blink_rate)
        form.addRow("Eyes closed", self.eyes_closed)
        form.addRow("Eyes off road", self.off_road)
        form.addRow("Yawns", self.yawns)
        form.addRow("Calibration", self.calibration)
        form.addRow(self.calibrate_button)
        for name, tip in STATE_TIPS.items():
            for i in range(form.rowCount()):
                label = form.itemAt(i, QFormLayout.ItemRole.LabelRole)
                if label is not None and label.widget().text() == name:
                    label.widget().setToolTip(tip)
        self.updates = 0

    def show_result(self, r: FrameResult | None) -> None:
        if r is None:
            return
        st = r.state
        self.drowsiness.set_level(st.drowsiness)
        self.distraction.set_level(st.distraction)
        self.status.setText(str(st.status).replace("_", " "))
        self.perclos.setText(_fmt(st.perclos, ".1%", "– (collecting)"))
        self.blink_rate.setText(f"{_fmt(st.blink_rate_per_min, '.1f')} /min ({plural(st.blink_count, 'blink')})")
        self.eyes_closed.setText(eyes_closed_text(r))
        self.off_road.setText(f"{st.off_road_s:.1f} s" if st.off_road else "on road")
        self.yawns.setText(f"{st.yawn_count}" + ("  (yawning)" if st.yawning else ""))
        # short enough for the panel (the longest form that fits), the detail in the tooltip
        if st.calibrated:
            self.calibration.setValue(100)
            ear, yaw, pitch = _fmt(st.open_ear, '.3f'), f"{st.neutral_yaw_deg:+.0f}°", f"{st.neutral_pitch_deg:+.0f}°"
            self.calibration.set_texts(
                [f"calibrated: EAR {ear}, yaw {yaw}, pitch {pitch}", f"calibrated: EAR {ear}", "calibrated"],
                f"The driver's own reference is in use: open-eye EAR {ear}, road pose yaw {yaw}, pitch {pitch}.")
        else:
            self.calibration.setValue(int(round(100 * max(0.0, min(1.0, st.calibration_progress)))))
            if st.status == Status.CALIBRATING:
                self.calibration.set_texts(
                    ["learning the pose %p%", "learning %p%", "%p%"],
                    "Learning the driver's road pose and open-eye EAR from steady, eyes-open frames; "
                    "meanwhile the camera mount's pose is the reference and the alerts are active.")
            else:
                self.calibration.set_texts(
                    ["mount's pose %p%", "%p%"],
                    "The camera mount's road pose is the reference until the driver's own is learned "
                    "(it needs a visible face, eyes open, head steady).")
        self.updates += 1


class _BarsPanel(QGroupBox):
    """A titled column of named 0..1 bars with a 'no engine' note when there are no values.

    The bars are the names the loaded model carries (``set_names``); none without an engine.
    """

    def __init__(self, title: str, names: Sequence[str] = (), parent=None) -> None:
        super().__init__(title, parent)
        lay = QVBoxLayout(self)
        self.headline = QLabel("no engine")
        self.headline.setStyleSheet("font-weight: bold;")
        lay.addWidget(self.headline)
        self._grid = QGridLayout()
        lay.addLayout(self._grid)
        self.names: tuple[str, ...] = ()
        self.bars: dict[str, QProgressBar] = {}
        self.labels: dict[str, QLabel] = {}
        self.values: dict[str, float] | None = None
        self.no_engine_text = "no engine"
        self.set_names(names)

    def label(self, name: str) -> str:
        """The text beside a bar."""
        return name

    def set_names(self, names: Sequence[str]) -> None:
        """Show one bar per name, in this order, in place of the bars shown (and their values)."""
        names = tuple(names)
        if names == self.names:
            return
        for widget in [*self.labels.values(), *self.bars.values()]:
            self._grid.removeWidget(widget)
            widget.deleteLater()
        self.labels, self.bars = {}, {}
        for i, name in enumerate(names):
            self.labels[name] = QLabel(self.label(name))
            self._grid.addWidget(self.labels[name], i, 0)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setTextVisible(True)
            bar.setFormat("–")
            bar.setMaximumHeight(16)
            self._grid.addWidget(bar, i, 1)
            self.bars[name] = bar
        self.names = names
        self.values = None
        self.headline.setText(self.no_engine_text)

    def _set_values(self, values: Mapping[str, float] | None) -> None:
        if not values:
            if self.values is not None or self.headline.text() != self.no_engine_text:
                for bar in self.bars.values():
                    bar.setValue(0)
                    bar.setFormat("–")
                self.headline.setText(self.no_engine_text)
            self.values = None
            return
        self.values = {k: float(v) for k, v in values.items()}
        for name, bar in self.bars.items():
            v = values.get(name)
            if v is None:
                bar.setValue(0)
                bar.setFormat("–")
            else:
                bar.setValue(int(round(1000 * max(0.0, min(1.0, float(v))))))
                bar.setFormat(f"{float(v):.2f}")


class EmotionPanel(_BarsPanel):
    """Smoothed emotion probabilities with the dominant emotion."""

    def __init__(self, names: Sequence[str] = (), parent=None) -> None:
        super().__init__("Emotion", names, parent)
        self.dominant: str | None = None

    def show_result(self, r: FrameResult | None, engine_running: bool = True) -> None:
        if r is None:
            return
        self.no_engine_text = "no face" if engine_running else "no engine"
        self._set_values(r.emotion_probs)
        self.dominant = r.emotion
        if r.emotion_probs:
            self.headline.setText(f"dominant: {r.emotion} ({r.emotion_probs[r.emotion]:.0%})")


REGION_NAMES = {"face": "whole face", "left_cheek": "left cheek", "right_cheek": "right cheek"}
REGIONS_TIP = ("How much the emotion and action-unit reading drew on each part of the face (100 % = fully). "
               "A hidden part is covered (a hand, a mask, sunglasses): the action units there are guesses.")


def region_text(attention: Mapping[str, float], hidden: Sequence[str] = ()) -> str:
    """'based mostly on: whole face 99 %, eyes 48 %, mouth 20 % · hidden: mouth' (the three face parts
    the reading drew on most, highest first, and the parts the pipeline calls hidden)."""
    order = sorted(attention.items(), key=lambda kv: -kv[1])
    text = "based mostly on: " + ", ".join(
        f"{REGION_NAMES.get(name, name.replace('_', ' '))} {100 * w:.0f} %" for name, w in order[:3])
    names = [REGION_NAMES.get(name, name.replace("_", " ")) for name in hidden]
    return text + (f" · hidden: {', '.join(names)}" if names else "")


class AUPanel(_BarsPanel):
    """Action-unit intensities named with their FACS descriptions ("AU12 lip corner puller").

    With a region-attention model, an AU whose face regions are hidden (``FrameResult.aus_hidden``:
    sunglasses over AU45, a mask over AU12) is greyed out and its value marked "hidden": it is a
    guess, and the strongest AU is chosen among the visible ones."""

    def __init__(self, names: Sequence[str] = (), parent=None) -> None:
        super().__init__("Action units", names, parent)
        self.hidden: frozenset[str] = frozenset()
        self.regions_label = QLabel("")  # which face parts the reading drew on; which are hidden
        self.regions_label.setWordWrap(True)
        self.regions_label.setToolTip(REGIONS_TIP)
        self.layout().insertWidget(1, self.regions_label)
        self.regions_label.hide()

    def label(self, name: str) -> str:
        return au_label(name)

    def show_result(self, r: FrameResult | None, engine_running: bool = True) -> None:
        if r is None:
            return
        self.no_engine_text = "no face" if engine_running else "no engine"
        self._set_values(r.aus)
        self._grey(frozenset(r.aus_hidden) if r.aus else frozenset())
        seen = {k: v for k, v in (r.aus or {}).items() if k not in self.hidden}
        if seen:
            top = max(seen.items(), key=lambda kv: kv[1])
            self.headline.setText(f"strongest: {au_label(top[0])} ({top[1]:.2f})")
        elif r.aus:
            self.headline.setText("every AU's face region is hidden")
        self.regions_label.setVisible(bool(r.region_attention))
        if r.region_attention:
            self.regions_label.setText(region_text(r.region_attention, r.regions_hidden))

    def _grey(self, hidden: frozenset[str]) -> None:
        """Grey out the hidden AUs' labels and bars (and mark their values); restore the others."""
        for name, bar in self.bars.items():
            off = name in hidden
            if off and self.values is not None and name in self.values:
                bar.setFormat(f"{self.values[name]:.2f} hidden")
            if off or name in self.hidden:  # hidden now or until now
                bar.setEnabled(not off)
                self.labels[name].setEnabled(not off)
                self.labels[name].setToolTip("its face region is hidden: the value is a guess" if off else "")
        self.hidden = hidden


__all__ = ["DriverStatePanel", "EmotionPanel", "AUPanel", "LevelLabel", "au_label", "eyes_closed_text", "plural",
           "region_text",
           "LEVEL_COLOURS"]
