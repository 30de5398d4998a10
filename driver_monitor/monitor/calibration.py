"""Per-driver calibration: the neutral head pose, neutral gaze and open-eye EAR (pure, clock passed in).

The first ``duration_s`` of *usable* frames after the start (or after :meth:`Calibrator.restart`)
are collected: a frame is usable when a face is seen and its head pose is within ``max_pose_deg``
of the camera axis. From them:

* neutral yaw / pitch and gaze: the median (robust to glances away);
* open-eye EAR: the ``open_ear_percentile`` (default 80th) of the EARs of frames with visible
  eyes, not the mean, so blinks (about 5 % of the time) do not drag it down.

Calibration ends when ``duration_s`` of usable frames were seen, or after ``max_wait_s`` of waiting
(a driver absent or turned away). It is rejected, and the absolute defaults kept
(``default_open_ear``, neutral pose 0 / 0), when there are fewer than ``min_samples`` frames; the
open-eye EAR alone is rejected when it is below ``min_open_ear``: such an "open" EAR means the eyes
were closed (or nearly) during calibration - a driver asleep from the first frame - and taking it
would hide exactly the closure we must detect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..config import CalibrationConfig
from ..types import Signals

_MAX_SAMPLE_DT_S = 0.5  # a single frame never counts for more than this (dropped frames, gaps)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The calibration in use.

    open_ear: open-eye EAR (unitless); neutral_*: the driver's straight-ahead pose (deg) and gaze
    (eye half-widths); calibrated: values measured on this driver (False: absolute defaults);
    open_ear_source / pose_source: "calibrated" | "default" | "rejected (...)" for reports.
    """

    open_ear: float
    neutral_yaw_deg: float = 0.0
    neutral_pitch_deg: float = 0.0
    neutral_gaze_x: float = 0.0
    neutral_gaze_y: float = 0.0
    calibrated: bool = False
    open_ear_source: str = "default"
    pose_source: str = "default"


class Calibrator:
    """Collects calibration frames. ``update(t_s, signals)``; read ``.done``, ``.progress``,
    ``.result`` (the :class:`Calibration` in use: defaults until done)."""

    def __init__(self, cfg: CalibrationConfig) -> None:
        self.cfg = cfg
        self.defaults = Calibration(open_ear=cfg.default_open_ear)
        self.result = self.defaults
        self.restart(None)

    def restart(self, t_s: float | None) -> None:
        """Forget the samples and the result; calibration starts again at t_s (or the next update)."""
        self.result = self.defaults
        self.done = self.cfg.duration_s <= 0
        self._t0 = t_s
        self._t_prev: float | None = None
        self._usable_s = 0.0
        self._pose: list[tuple[float, float, float, float]] = []
        self._ears: list[float] = []

    @property
    def progress(self) -> float:
        if self.done:
            return 1.0
        return min(1.0, self._usable_s / self.cfg.duration_s)

    def update(self, t_s: float, signals: Signals | None) -> bool:
        """Add one frame. Returns True on the frame calibration finishes."""
        if self.done:
            return False
        if self._t0 is None:
            self._t0 = t_s
        dt = 0.0 if self._t_prev is None else min(max(t_s - self._t_prev, 0.0), _MAX_SAMPLE_DT_S)
        self._t_prev = t_s
        if signals is not None and _usable(signals, self.cfg.max_pose_deg):
            self._usable_s += dt
            self._pose.append((signals.yaw_deg, signals.pitch_deg, signals.gaze_x, signals.gaze_y))
            if signals.eyes_visible and math.isfinite(signals.ear):
                self._ears.append(signals.ear)
        if self._usable_s >= self.cfg.duration_s - 1e-9 or t_s - self._t0 >= self.cfg.max_wait_s - 1e-9:
            self.result = self._finish()
            self.done = True
            return True
        return False

    def _finish(self) -> Calibration:
        cfg = self.cfg
        out = self.defaults
        if len(self._pose) >= cfg.min_samples:
            yaw, pitch, gx, gy = (float(np.median([p[i] for p in self._pose])) for i in range(4))
            out = Calibration(open_ear=out.open_ear, neutral_yaw_deg=yaw, neutral_pitch_deg=pitch,
                              neutral_gaze_x=gx if math.isfinite(gx) else 0.0,
                              neutral_gaze_y=gy if math.isfinite(gy) else 0.0,
                              calibrated=True, pose_source="calibrated", open_ear_source="default")
        else:
            out = Calibration(open_ear=out.open_ear,
                              pose_source=f"default ({len(self._pose)} usable frames < {cfg.min_samples})")
        if len(self._ears) >= cfg.min_samples:
            ear = float(np.percentile(self._ears, cfg.open_ear_percentile))
            if ear >= cfg.min_open_ear:
                return replace(out, open_ear=ear, calibrated=True, open_ear_source="calibrated")
            return replace(out, open_ear_source=(f"default (calibrated {ear:.3f} < min_open_ear "
                                                 f"{cfg.min_open_ear}: eyes closed?)"))
        return replace(out, open_ear_source=(f"default ({len(self._ears)} frames with visible eyes "
                                             f"< {cfg.min_samples})"))


def _usable(s: Signals, max_pose_deg: float) -> bool:
    return (math.isfinite(s.yaw_deg) and math.isfinite(s.pitch_deg)
            and abs(s.yaw_deg) <= max_pose_deg and abs(s.pitch_deg) <= max_pose_deg)
