"""Rolling time plots (pyqtgraph): eye openness, mouth, PERCLOS, yaw / pitch, emotion timeline.

Samples go into fixed-size numpy ring buffers as results arrive (cheap, every result); the curves
are redrawn only on the window's redraw timer (``refresh``), with ``setDownsampling`` and
``setClipToView`` so a long window stays smooth at 30 FPS. Alert thresholds from the config are
drawn as horizontal lines; the calibrated ones (closed-eye EAR, neutral pose +- limits) follow the
driver's calibration.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg

from ..config import Config
from ..preprocess import EMOTIONS
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


class SignalPlots(pg.GraphicsLayoutWidget):
    """Five stacked, x-linked rolling plots over the last ``ui.plot_window_s`` seconds."""

    # columns of the one buffer: ear, mar, perclos, yaw, pitch, ear_thr, yaw0, pitch0, emotions...
    def __init__(self, cfg: Config, emotion_names: Sequence[str] = EMOTIONS, parent=None) -> None:
        super().__init__(parent=parent)
        self.cfg = cfg
        self.window_s = cfg.ui.plot_window_s
        self.emotion_names = tuple(emotion_names)
        # up to 60 samples/s for the window (a 30 fps source uses half)
        self.buffer = RollingBuffer(int(self.window_s * 60) + 2, FIXED_COLUMNS + len(self.emotion_names))
        self.setBackground("#1b1b1b")
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.lines: dict[str, pg.InfiniteLine] = {}
        d, dist = cfg.drowsiness, cfg.distraction

        def plot(key: str, title: str, yrange: tuple[float, float]) -> pg.PlotItem:
            p = self.addPlot(row=len(self.plots), col=0)
            p.getAxis("left").enableAutoSIPrefix(False)
            p.setLabel("left", title, **{"font-size": "8pt"})
            p.hideAxis("bottom")
            p.setMinimumHeight(50)
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            p.setYRange(*yrange, padding=0.02)
            p.setMouseEnabled(x=False, y=False)
            p.hideButtons()
            # no grid: in Qt's raster painter a translucent grid costs more than all curves together
            # (full 30 s window, 1000x380 px: ~30 -> ~13 ms per repaint); the threshold lines guide the eye
            p.getAxis("left").setWidth(58)
            if self.plots:
                p.setXLink(next(iter(self.plots.values())))
            self.plots[key] = p
            return p

        def curve(p: pg.PlotItem, key: str, colour: str, name: str | None = None, width: float = 2) -> None:
            self.curves[key] = p.plot(pen=pg.mkPen(colour, width=width), name=name, connect="finite")

        def hline(p: pg.PlotItem, key: str, y: float, colour: str, label: str, at: float = 0.02) -> None:
            line = pg.InfiniteLine(pos=y, angle=0, pen=pg.mkPen(colour, width=1, style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=label, labelOpts={"position": at, "color": colour, "anchors": [(0, 1), (0, 1)]})
            p.addItem(line, ignoreBounds=True)
            self.lines[key] = line

        p = plot("ear", "EAR", (0.0, 0.45))
        curve(p, "ear", "#4fc3f7")
        hline(p, "ear_closed", d.closed_ear_max, "#ff7043", "closed")
        hline(p, "ear_max", d.closed_ear_max, "#777777", f"max {d.closed_ear_max:g}", at=0.12)

        p = plot("mar", "MAR", (0.0, 1.0))
        curve(p, "mar", "#ffb74d")
        hline(p, "yawn", d.yawn_mar, "#ff7043", f"yawn {d.yawn_mar:g}")

        p = plot("perclos", "PERCLOS", (0.0, max(0.5, d.perclos_critical * 1.5)))
        curve(p, "perclos", "#ce93d8")
        hline(p, "perclos_warning", d.perclos_warning, "#ffc107", f"warning {d.perclos_warning:g}")
        hline(p, "perclos_critical", d.perclos_critical, "#ff3b30", f"critical {d.perclos_critical:g}")

        p = plot("pose", "yaw/pitch °", (-60.0, 60.0))
        p.addLegend(offset=(-5, 5), labelTextSize="8pt")
        curve(p, "yaw", "#81c784", "yaw")
        curve(p, "pitch", "#f06292", "pitch")
        hline(p, "yaw_hi", dist.yaw_limit_deg, "#81c784", "yaw limits")
        hline(p, "yaw_lo", -dist.yaw_limit_deg, "#81c784", "")
        hline(p, "pitch_lo", -dist.pitch_down_limit_deg, "#f06292", "pitch down limit", at=0.14)

        p = plot("emotion", "emotion", (0.0, 1.0))
        p.addLegend(offset=(-5, 5), labelTextSize="7pt", colCount=4)
        for i, name in enumerate(self.emotion_names):
            curve(p, f"emo_{name}", EMOTION_COLOURS[i % len(EMOTION_COLOURS)], name, width=1)
        self.plots["emotion"].showAxis("bottom")
        self.plots["emotion"].setLabel("bottom", "time (s)")
        self.ci.layout.setSpacing(2)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.setMinimumHeight(320)
        self._dirty = False
        self.refreshes = 0

    # -------------------------------------------------------------- data

    def reset(self) -> None:
        """Forget all samples (not ``clear``: GraphicsLayoutWidget binds that to removing the plots)."""
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

    def refresh(self) -> bool:
        """Redraw the curves if new samples came; returns True when it drew."""
        if not self._dirty:
            return False
        self._dirty = False
        t, v = self.buffer.view()
        if len(t) == 0:
            for c in self.curves.values():
                c.setData([], [])
            return True
        t_end = t[-1]
        keep = t >= t_end - self.window_s
        t, v = t[keep], v[keep]
        cols = {"ear": 0, "mar": 1, "perclos": 2, "yaw": 3, "pitch": 4}
        for key, col in cols.items():
            self.curves[key].setData(t, v[:, col])
        for i, name in enumerate(self.emotion_names):
            self.curves[f"emo_{name}"].setData(t, v[:, FIXED_COLUMNS + i])
        last = v[-1]
        if not math.isnan(last[5]):
            self.lines["ear_closed"].setValue(float(last[5]))
        # the limits in use follow the monitor: around the mount's pose (wider) until the driver's
        # own pose is learned, around the learned pose after
        dist = self.cfg.distraction
        y0, p0 = float(np.nan_to_num(last[6])), float(np.nan_to_num(last[7]))
        yl = float(last[8]) if math.isfinite(last[8]) else dist.yaw_limit_deg
        pl = float(last[9]) if math.isfinite(last[9]) else dist.pitch_down_limit_deg
        self.lines["yaw_hi"].setValue(y0 + yl)
        self.lines["yaw_lo"].setValue(y0 - yl)
        self.lines["pitch_lo"].setValue(p0 - pl)
        self.plots["ear"].setXRange(t_end - self.window_s, t_end, padding=0)
        self.refreshes += 1
        return True
