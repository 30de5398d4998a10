"""Rolling time plots (pyqtgraph): eye openness, mouth, PERCLOS, yaw / pitch, emotion timeline.

Samples go into fixed-size numpy ring buffers as results arrive (cheap, every result); the curves
are redrawn only on the window's redraw timer (``refresh``), with ``setDownsampling`` and
``setClipToView`` so a long window stays smooth at 30 FPS. Alert thresholds from the config are
drawn as horizontal lines, named beside the plot on its right axis (never over the traces); the
calibrated ones (closed-eye EAR, neutral pose +- limits) follow the driver's calibration.

Three plots show at start (``DEFAULT_PLOTS``: EAR, PERCLOS, yaw / pitch), so each is tall enough
to read; a row of toggles above them shows or hides any of the five. The time axis spans the
samples from the first one until ``ui.plot_window_s`` is filled (at least ``MIN_SPAN_S``), then
scrolls, so a short clip fills the width.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QFontMetricsF, QPainter
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ..config import Config
from ..types import FrameResult

EMOTION_COLOURS = ("#9e9e9e", "#ffd54f", "#4fc3f7", "#5c6bc0", "#e53935", "#8bc34a", "#ab47bc", "#ff8a65")


FIXED_COLUMNS = 10  # columns before the emotions: ear, mar, perclos, yaw, pitch, closed EAR, neutral yaw /
#             pitch, yaw limit, pitch-down limit


class RollingBuffer:
    """``(capacity, width)`` float64 ring buffer of timestamped samples (NaN = missing).

    ``append(t, values)``; ``view()`` returns ``(t, values)`` in time order (copies of at most
    ``capacity`` rows). A timestamp earlier than the last one (replay seek) clears the buffer.
    """

    def __init__(self, capacity: int, width: int) -> None:
        if capacity < 2 or width < 1:
            raise ValueError(f"RollingBuffer needs capacity >= 2 and width >= 1, got {capacity}, {width}")
        self.capacity = capacity
        self.width = width
        self._t = np.full(capacity, np.nan)
        self._v = np.full((capacity, width), np.nan)
        self._n = 0  # samples ever appended since the last clear
        self.last_t = -math.inf

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    def clear(self) -> None:
        self._n = 0
        self.last_t = -math.inf

    def append(self, t: float, values: Sequence[float]) -> None:
        if t < self.last_t:
            self.clear()
        i = self._n % self.capacity
        self._t[i] = t
        self._v[i] = values
        self._n += 1
        self.last_t = t

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        if self._n <= self.capacity:
            return self._t[:n].copy(), self._v[:n].copy()
        i = self._n % self.capacity
        return np.concatenate([self._t[i:], self._t[:i]]), np.concatenate([self._v[i:], self._v[:i]])


def _nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)


PLOT_KEYS: tuple[str, ...] = ("ear", "mar", "perclos", "pose", "emotion")
PLOT_NAMES: dict[str, str] = {"ear": "EAR", "mar": "MAR", "perclos": "PERCLOS", "pose": "yaw / pitch",
                              "emotion": "emotion"}
# shown at start: the eye signal, its slow summary and the head pose (the signals behind the two
# alerts); MAR and the emotion timeline are one click away in the selector above the plots
DEFAULT_PLOTS: tuple[str, ...] = ("ear", "perclos", "pose")
MIN_SPAN_S = 2.0          # the x axis spans at least this until the samples fill it
MIN_TICK_PX = 22          # left-axis tick labels at least this far apart (8 pt text is ~12 px high)
PLOT_MIN_PX = 80          # a plot is never squeezed below this (its title and three ticks fit)
TIME_AXIS_PX = 46         # the time axis row: tick labels and "time (s)"
RIGHT_AXIS_PX = 124       # room for the threshold labels ("pitch limit -25.7°"), the same in every plot
_TOGGLE_STYLE = ("QToolButton { padding: 1px 8px; } QToolButton:checked { background: palette(highlight); "
                 "color: palette(highlighted-text); border: 1px solid palette(highlight); border-radius: 3px; }")


def _coloured(*parts: tuple[str, str]) -> str:
    """An axis title in its curves' colours: ``_coloured(("yaw", "#81c784"), ("pitch", "#f06292"))``."""
    return ", ".join(f"<span style='color:{c}'>{t}</span>" for t, c in parts)


def x_range(t_first: float, t_last: float, window_s: float, min_span_s: float = MIN_SPAN_S) -> tuple[float, float]:
    """The time range shown: from the first sample until ``window_s`` is filled, then the last ``window_s``.

    A short clip spreads over the whole width instead of a corner of the window (at least
    ``min_span_s``, so one sample is not stretched across it).
    """
    span = t_last - t_first
    if span >= window_s:
        return t_last - window_s, t_last
    return t_first, t_first + max(span, min(min_span_s, window_s))


def tick_values(lo: float, hi: float, px: float, steps: Sequence[float], min_px: float = MIN_TICK_PX) -> list[float]:
    """Multiples of the finest step in ``steps`` whose labels are ``min_px`` apart on a ``px`` tall axis."""
    span = hi - lo
    step = steps[-1]
    if span > 0 and px > 0:
        for s in steps:
            if s / span * px >= min_px:
                step = s
                break
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [round(k * step, 6) for k in range(first, last + 1)]


@dataclass(frozen=True, slots=True)
class Mark:
    """A threshold line's label on the right axis: its value, its text (with the number) and colour."""

    value: float
    text: str
    colour: str


def degrees(v: float) -> str:
    """'-28.9°', '+23°', '-25.7°': the sign always, one decimal when it has one."""
    v = round(v, 1) + 0.0  # no '-0'
    return f"{v:+g}°"


def spread(centres: Sequence[float], height: float, lo: float, hi: float) -> list[float]:
    """Label centres (pixels, top down, in the given order) moved apart so that labels ``height``
    tall do not overlap and stay within ``lo..hi``; each moves as little as it can.

    Labels are kept in their order; when they cannot all fit they are packed from ``lo``.
    """
    order = sorted(range(len(centres)), key=lambda i: centres[i])
    half = height / 2.0
    ys = [min(max(centres[i], lo + half), hi - half) for i in order]
    for k in range(1, len(ys)):  # push down the ones that overlap the label above
        ys[k] = max(ys[k], ys[k - 1] + height)
    if ys and ys[-1] > hi - half:  # the bottom one ran out of room: push back up
        ys[-1] = hi - half
        for k in range(len(ys) - 2, -1, -1):
            ys[k] = min(ys[k], ys[k + 1] - height)
        if ys[0] < lo + half:  # more labels than room: packed from the top
            ys = [lo + half + k * height for k in range(len(ys))]
    out = [0.0] * len(centres)
    for k, i in enumerate(order):
        out[i] = ys[k]
    return out


class ThresholdAxis(pg.AxisItem):
    """A right axis whose labels name the threshold lines with their values, each in its line's colour.

    The labels sit beside the plot, never over the traces. Each tick is at its line's value; labels
    whose lines are too close to each other are moved apart (``spread``) so every one stays readable,
    a short leader joining a moved label to its tick. ``label_rects`` holds what was laid out last.
    """

    def __init__(self, **kw) -> None:
        super().__init__("right", **kw)
        self.marks: list[Mark] = []
        self.label_rects: list[tuple[str, QRectF]] = []
        self._tick_y: dict[str, float] = {}
        self.setWidth(RIGHT_AXIS_PX)
        self.setStyle(tickLength=4)

    def set_marks(self, marks: list[Mark]) -> None:
        marks = sorted((m for m in marks if math.isfinite(m.value)), key=lambda m: -m.value)
        if marks == self.marks:
            return
        self.marks = marks
        self.setTicks([[(m.value, m.text) for m in marks], []])

    def labels(self) -> list[str]:
        return [m.text for m in self.marks]

    def layout_labels(self, p: QPainter) -> list[tuple[Mark, float, QRectF]]:
        """(mark, tick y, label rect) for the marks inside the axis' range, in pixels of this item."""
        bounds = self.mapRectFromParent(self.geometry())
        lo, hi = self.range
        if hi <= lo or bounds.height() <= 0:
            return []
        if self.style["tickFont"] is not None:
            p.setFont(self.style["tickFont"])
        inside = [m for m in self.marks if lo <= m.value <= hi]
        ticks = [bounds.top() + (hi - m.value) / (hi - lo) * bounds.height() for m in inside]
        text_h = QFontMetricsF(p.font()).height()
        ys = spread(ticks, text_h, bounds.top(), bounds.bottom())
        x = bounds.left() + max(0, self.style["tickLength"]) + self.style["tickTextOffset"][0] + 4
        return [(m, t, QRectF(x, y - text_h / 2, bounds.right() - x, text_h)) for m, t, y in zip(inside, ticks, ys)]

    def generateDrawSpecs(self, p):
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis_spec, tick_specs, _ = specs
        laid = self.layout_labels(p)
        self.label_rects = [(m.text, rect) for m, _, rect in laid]
        self._tick_y = {m.text: t for m, t, _ in laid}
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | Qt.TextFlag.TextDontClip
        return axis_spec, tick_specs, [(rect, flags, m.text) for m, _, rect in laid]

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs) -> None:
        super().drawPicture(p, axisSpec, tickSpecs, [])
        colours = {m.text: m.colour for m in self.marks}
        ticks = self._tick_y
        x0 = self.mapRectFromParent(self.geometry()).left() + max(0, self.style["tickLength"])
        for rect, flags, text in textSpecs:
            pen = pg.mkPen(colours.get(text, "#d0d0d0"))
            p.setPen(pen)
            t = ticks.get(text)
            if t is not None and abs(t - rect.center().y()) > 1:  # moved apart: a leader to its tick
                p.drawLine(QPointF(x0, t), QPointF(rect.left() - 1, rect.center().y()))
            p.drawText(rect, int(flags), text)


class SignalPlots(QWidget):
    """Rolling, x-linked plots over the last ``ui.plot_window_s`` seconds, chosen in a selector.

    ``plots`` / ``curves`` / ``lines`` hold the pyqtgraph items by key; ``set_plot_visible(key, on)``
    (or the selector's buttons) shows or hides one plot; hidden plots keep their samples.
    """

    def __init__(self, cfg: Config, emotion_names: Sequence[str] = (), parent=None,
                 visible: Sequence[str] = DEFAULT_PLOTS) -> None:
        super().__init__(parent)
        self.cfg = cfg
        self.window_s = cfg.ui.plot_window_s
        self.emotion_names: tuple[str, ...] = tuple(emotion_names)  # the loaded model's (none: no engine)
        self.buffer = self._new_buffer()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("#1b1b1b")
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.lines: dict[str, pg.InfiniteLine] = {}
        self.right_axes: dict[str, ThresholdAxis] = {}
        self._yranges: dict[str, tuple[float, float]] = {}
        self._tick_steps: dict[str, tuple[float, ...]] = {}
        self.buttons: dict[str, QToolButton] = {}
        self.curve_plot: dict[str, str] = {}  # curve key -> the plot it is in
        self._shown: set[str] = set()
        self._rows: list = []  # the layout's rows, top down
        d = cfg.drowsiness
        # closed-eye EAR, neutral yaw, neutral pitch, yaw limit, pitch-down limit (the mount's until a result says)
        self._thresholds = (d.closed_ear_max, 0.0, 0.0, cfg.distraction.uncalibrated_yaw_limit_deg,
                            cfg.distraction.uncalibrated_pitch_down_limit_deg)
        self._build_signal_plots()
        self._build_emotion_plot()
        self._build_time_axis()
        self._build_layout()
        self._dirty = False
        self.refreshes = 0
        self.time_range: tuple[float, float] | None = None  # the x range shown
        for key in PLOT_KEYS:
            on = key in visible
            self.buttons[key].setChecked(on)
            self.set_plot_visible(key, on)
        self._set_thresholds(*self._thresholds)

    def _new_buffer(self) -> RollingBuffer:
        # up to 60 samples/s for the window (a 30 fps source uses half)
        return RollingBuffer(int(self.window_s * 60) + 2, FIXED_COLUMNS + len(self.emotion_names))

    # -------------------------------------------------------------- building

    def _add_row(self, item) -> None:
        self.view.ci.addItem(item, row=len(self._rows), col=0)
        self._rows.append(item)

    def _add_plot(self, key: str, title: str, yrange: tuple[float, float], steps: tuple[float, ...]) -> pg.PlotItem:
        """A plot in the next row, x-linked to the first, with its threshold axis on the right."""
        axis = ThresholdAxis()
        p = pg.PlotItem(axisItems={"right": axis})
        self._add_row(p)
        p.showAxis("right")
        p.getAxis("left").enableAutoSIPrefix(False)
        p.setLabel("left", title, color="#cfcfcf", **{"font-size": "8pt"})
        p.getAxis("left").setWidth(58)
        p.hideAxis("bottom")
        p.setMinimumHeight(PLOT_MIN_PX)
        p.setDownsampling(auto=True, mode="peak")
        p.setClipToView(True)
        p.setYRange(*yrange, padding=0.03)
        p.setMouseEnabled(x=False, y=False)
        p.hideButtons()
        # no grid: in Qt's raster painter a translucent grid costs more than all curves together
        # (full 30 s window, 1000x380 px: ~30 -> ~13 ms per repaint); the threshold lines guide the eye
        if self.plots:
            p.setXLink(next(iter(self.plots.values())))
        self.plots[key] = p
        self.right_axes[key] = axis
        self._yranges[key] = yrange
        self._tick_steps[key] = steps
        p.getViewBox().sigResized.connect(lambda *_, k=key: self._update_ticks(k))
        return p

    def _add_curve(self, plot_key: str, key: str, colour: str, width: float = 2) -> None:
        self.curves[key] = self.plots[plot_key].plot(pen=pg.mkPen(colour, width=width), connect="finite")
        self.curve_plot[key] = plot_key

    def _add_line(self, plot_key: str, key: str, y: float, colour: str) -> None:
        line = pg.InfiniteLine(pos=y, angle=0, pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine))
        self.plots[plot_key].addItem(line, ignoreBounds=True)
        self.lines[key] = line

    def _build_signal_plots(self) -> None:
        """EAR, MAR, PERCLOS and yaw / pitch, with their threshold lines."""
        d = self.cfg.drowsiness
        self._add_plot("ear", _coloured(("EAR", "#4fc3f7")), (0.0, 0.45), (0.1, 0.2))
        self._add_curve("ear", "ear", "#4fc3f7")
        self._add_line("ear", "ear_closed", d.closed_ear_max, "#ff7043")
        self._add_line("ear", "ear_max", d.closed_ear_max, "#9e9e9e")

        self._add_plot("mar", _coloured(("MAR", "#ffb74d")), (0.0, 1.0), (0.25, 0.5, 1.0))
        self._add_curve("mar", "mar", "#ffb74d")
        self._add_line("mar", "yawn", d.yawn_mar, "#ff7043")

        self._add_plot("perclos", _coloured(("PERCLOS", "#ce93d8")), (0.0, max(0.5, d.perclos_critical * 1.5)),
                       (0.1, 0.25, 0.5))
        self._add_curve("perclos", "perclos", "#ce93d8")
        self._add_line("perclos", "perclos_warning", d.perclos_warning, "#ffc107")
        self._add_line("perclos", "perclos_critical", d.perclos_critical, "#ff3b30")

        self._add_plot("pose", _coloured(("yaw", "#81c784"), ("pitch", "#f06292")) + " (°)", (-60.0, 60.0),
                       (15.0, 30.0, 60.0))
        self._add_curve("pose", "yaw", "#81c784")
        self._add_curve("pose", "pitch", "#f06292")
        self._add_line("pose", "yaw_hi", 0.0, "#81c784")
        self._add_line("pose", "yaw_lo", 0.0, "#81c784")
        self._add_line("pose", "pitch_lo", 0.0, "#f06292")

    def _build_emotion_plot(self) -> None:
        """The emotion probabilities, their names in their colours in a row of their own above the
        plot (not over it)."""
        self.emotion_legend = pg.LabelItem("", size="8pt", justify="left")
        self._add_row(self.emotion_legend)
        self._add_plot("emotion", "emotion", (0.0, 1.0), (0.5, 1.0))
        self.right_axes["emotion"].setStyle(showValues=False)
        self.right_axes["emotion"].setTicks([[], []])
        self._add_emotion_curves()

    def _add_emotion_curves(self) -> None:
        for i, name in enumerate(self.emotion_names):
            self._add_curve("emotion", f"emo_{name}", EMOTION_COLOURS[i % len(EMOTION_COLOURS)], width=1)
        self.emotion_legend.setText(
            "&nbsp;&nbsp;".join(f"<span style='color:{EMOTION_COLOURS[i % len(EMOTION_COLOURS)]}'>━ {n}</span>"
                                for i, n in enumerate(self.emotion_names)))

    def _build_time_axis(self) -> None:
        """The time axis in a row of its own, under whichever plots are shown, so every plot's data
        area is as tall as the others'; an empty plot whose side axes keep it aligned with them."""
        self.time_axis = pg.PlotItem()
        self.time_axis.setXLink(self.plots["ear"])
        self.time_axis.setMouseEnabled(x=False, y=False)
        self.time_axis.hideButtons()
        self.time_axis.setLabel("bottom", "time (s)", color="#cfcfcf", **{"font-size": "8pt"})
        for side, width in (("left", 58), ("right", RIGHT_AXIS_PX)):
            self.time_axis.showAxis(side)
            ax = self.time_axis.getAxis(side)
            ax.setWidth(width)
            ax.setStyle(showValues=False, tickLength=0)
            ax.setPen(pg.mkPen(0, 0, 0, 0))
            ax.setTicks([[], []])
        self.time_axis.setFixedHeight(TIME_AXIS_PX)
        self._add_row(self.time_axis)
        self.view.ci.layout.setSpacing(2)
        self.view.ci.layout.setVerticalSpacing(10)  # one plot's bottom tick label clear of the next one's top
        self.view.ci.setContentsMargins(2, 4, 2, 4)

    def _build_layout(self) -> None:
        """The selector (one toggle per plot) above the plots."""
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.setSpacing(4)
        bar.addWidget(QLabel("Plots:"))
        for key in PLOT_KEYS:
            b = QToolButton()
            b.setStyleSheet(_TOGGLE_STYLE)
            b.setText(PLOT_NAMES[key])
            b.setCheckable(True)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.setToolTip(f"Show or hide the {PLOT_NAMES[key]} plot")
            b.toggled.connect(lambda on, k=key: self.set_plot_visible(k, on))
            bar.addWidget(b)
            self.buttons[key] = b
        bar.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(bar)
        lay.addWidget(self.view, 1)

    def set_emotion_names(self, names: Sequence[str]) -> None:
        """Plot the emotions the loaded model names (none: no engine); forgets the samples."""
        names = tuple(names)
        if names == self.emotion_names:
            return
        for name in self.emotion_names:
            self.plots["emotion"].removeItem(self.curves.pop(f"emo_{name}"))
            del self.curve_plot[f"emo_{name}"]
        self.emotion_names = names
        self.buffer = self._new_buffer()
        self._add_emotion_curves()
        self._dirty = True

    # -------------------------------------------------------------- which plots

    def visible_plots(self) -> list[str]:
        return [k for k in PLOT_KEYS if k in self._shown]

    def set_plot_visible(self, key: str, on: bool) -> None:
        """Show or hide one plot (``PLOT_KEYS``); hidden plots keep their samples."""
        if key not in self.plots:
            raise KeyError(f"unknown plot {key!r}; known: {', '.join(PLOT_KEYS)}")
        if self.buttons[key].isChecked() != bool(on):
            self.buttons[key].setChecked(bool(on))  # comes back here through toggled
            return
        self.plots[key].setVisible(bool(on))
        (self._shown.add if on else self._shown.discard)(key)
        if key == "emotion":
            self.emotion_legend.setVisible(bool(on))
        shown = self.visible_plots()
        # the view asks for room for every plot shown (the splitter above gives it), never squeezes them
        self.view.setMinimumHeight(len(shown) * (PLOT_MIN_PX + 10) + TIME_AXIS_PX + 20
                                   + (22 if "emotion" in shown else 0))
        self.view.ci.layout.invalidate()
        self._dirty = True  # a plot shown again gets its curves at the next refresh
        self.refresh()

    def _update_ticks(self, key: str) -> None:
        lo, hi = self._yranges[key]
        px = self.plots[key].getViewBox().height()
        values = tick_values(lo, hi, px, self._tick_steps[key])
        self.plots[key].getAxis("left").setTicks([[(v, f"{v:g}") for v in values], []])
        self._place_marks(key)

    # -------------------------------------------------------------- data

    def reset(self) -> None:
        """Forget all samples (the curves clear at the next refresh)."""
        self.buffer.clear()
        self._dirty = True

    def append(self, r: FrameResult) -> None:
        s, st = r.smoothed, r.state
        eyes = s is not None and s.eyes_visible
        row = [
            s.ear if eyes else math.nan,
            s.mar if s is not None else math.nan,
            st.perclos,
            s.yaw_deg if s is not None else math.nan,
            s.pitch_deg if s is not None else math.nan,
            st.closed_ear_threshold,
            st.neutral_yaw_deg,
            st.neutral_pitch_deg,
            st.yaw_limit_deg,
            st.pitch_limit_deg,
        ]
        probs = r.emotion_probs or {}
        row += [_nan(probs.get(n)) for n in self.emotion_names]
        self.buffer.append(r.time_s, row)
        self._dirty = True

    # -------------------------------------------------------------- drawing

    def _marks(self, key: str) -> list[Mark]:
        d = self.cfg.drowsiness
        ear_thr, y0, p0, yl, pl = self._thresholds
        if key == "ear":
            marks = [Mark(ear_thr, f"closed {ear_thr:.2f}", "#ff7043")]
            if abs(ear_thr - d.closed_ear_max) >= 0.005:  # the calibrated threshold is below the cap
                marks.append(Mark(d.closed_ear_max, f"closed max {d.closed_ear_max:g}", "#9e9e9e"))
            return marks
        if key == "mar":
            return [Mark(d.yawn_mar, f"yawn {d.yawn_mar:g}", "#ff7043")]
        if key == "perclos":
            return [Mark(d.perclos_warning, f"warning {d.perclos_warning:g}", "#ffc107"),
                    Mark(d.perclos_critical, f"critical {d.perclos_critical:g}", "#ff3b30")]
        if key == "pose":
            return [Mark(y0 + yl, f"yaw limit {degrees(y0 + yl)}", "#81c784"),
                    Mark(y0 - yl, f"yaw limit {degrees(y0 - yl)}", "#81c784"),
                    Mark(p0 - pl, f"pitch limit {degrees(p0 - pl)}", "#f06292")]
        return []

    def _place_marks(self, key: str) -> None:
        self.right_axes[key].set_marks(self._marks(key))

    def _set_thresholds(self, ear_thr: float, y0: float, p0: float, yl: float, pl: float) -> None:
        self._thresholds = (ear_thr, y0, p0, yl, pl)
        self.lines["ear_closed"].setValue(ear_thr)
        self.lines["yaw_hi"].setValue(y0 + yl)
        self.lines["yaw_lo"].setValue(y0 - yl)
        self.lines["pitch_lo"].setValue(p0 - pl)
        for key in ("ear", "mar", "perclos", "pose"):
            self._place_marks(key)

    def refresh(self) -> bool:
        """Redraw the shown curves if new samples came; returns True when it drew."""
        if not self._dirty:
            return False
        self._dirty = False
        t, v = self.buffer.view()
        if len(t) == 0:
            for c in self.curves.values():
                c.setData([], [])
            return True
        t_first, t_end = float(t[0]), float(t[-1])
        keep = t >= t_end - self.window_s
        t, v = t[keep], v[keep]
        shown = set(self.visible_plots())
        cols = {"ear": 0, "mar": 1, "perclos": 2, "yaw": 3, "pitch": 4}
        cols.update({f"emo_{name}": FIXED_COLUMNS + i for i, name in enumerate(self.emotion_names)})
        for key, col in cols.items():
            if self.curve_plot[key] in shown:  # hidden plots are filled when shown again
                self.curves[key].setData(t, v[:, col])
        last = v[-1]
        # the limits in use follow the monitor: around the mount's pose (wider) until the driver's
        # own pose is learned, around the learned pose after
        dist = self.cfg.distraction
        thresholds = (float(last[5]) if math.isfinite(last[5]) else self._thresholds[0],
                      float(np.nan_to_num(last[6])), float(np.nan_to_num(last[7])),
                      float(last[8]) if math.isfinite(last[8]) else dist.yaw_limit_deg,
                      float(last[9]) if math.isfinite(last[9]) else dist.pitch_down_limit_deg)
        if thresholds != self._thresholds:
            self._set_thresholds(*thresholds)
        x0, x1 = x_range(t_first, t_end, self.window_s)
        if (x0, x1) != self.time_range:
            self.time_range = (x0, x1)
            self.plots["ear"].setXRange(x0, x1, padding=0)
        self.refreshes += 1
        return True
