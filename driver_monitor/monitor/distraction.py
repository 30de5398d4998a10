"""Distraction rules: eyes off the road for too long (pure, clock passed in).

A frame is **off road** when, relative to the driver's calibrated neutral pose,

* the head is turned: ``|yaw - neutral_yaw| > yaw_limit_deg`` or ``|pitch - neutral_pitch| >
  pitch_limit_deg`` ("owl" glances; openpilot's limits yaw 23 deg / pitch 18 deg), or
* ``use_gaze`` and the eyes are visible and the iris offset from the neutral gaze exceeds
  ``gaze_limit`` (``hypot(gaze_x - neutral_x, gaze_y - neutral_y)``): eyes-only ("lizard") glances.

An off-road glance is timed from its first off-road frame; from ``warning_s`` (EU ADDW: 3.5 s above
50 km/h) the raw level is warning, from ``critical_s`` (ADDW's 6 s limit at 20-50 km/h) critical.
No face, or the monitor still calibrating (no neutral pose yet), ends the glance and counts nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import DistractionConfig
from ..types import Level, Signals
from .calibration import Calibration

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class DistractionReading:
    """off_road: this frame is off road; off_road_s: how long the current glance has lasted (s);
    level: raw level (before hysteresis); reason: "head", "gaze", "head+gaze" or ""."""

    off_road: bool
    off_road_s: float
    level: Level
    reason: str = ""


class DistractionDetector:
    def __init__(self, cfg: DistractionConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self._since: float | None = None

    def off_road_reason(self, s: Signals, cal: Calibration) -> str:
        cfg = self.cfg
        head = False
        if math.isfinite(s.yaw_deg) and abs(s.yaw_deg - cal.neutral_yaw_deg) > cfg.yaw_limit_deg:
            head = True
        if math.isfinite(s.pitch_deg) and abs(s.pitch_deg - cal.neutral_pitch_deg) > cfg.pitch_limit_deg:
            head = True
        gaze = False
        if cfg.use_gaze and s.eyes_visible and math.isfinite(s.gaze_x) and math.isfinite(s.gaze_y):
            gaze = math.hypot(s.gaze_x - cal.neutral_gaze_x, s.gaze_y - cal.neutral_gaze_y) > cfg.gaze_limit
        return "+".join(name for name, on in (("head", head), ("gaze", gaze)) if on)

    def update(self, t_s: float, signals: Signals | None, cal: Calibration, active: bool = True) -> DistractionReading:
        reason = self.off_road_reason(signals, cal) if (active and signals is not None) else ""
        if not reason:
            self._since = None
            return DistractionReading(False, 0.0, Level.NONE)
        if self._since is None:
            self._since = t_s
        off_s = t_s - self._since
        level = Level.NONE
        if off_s >= self.cfg.critical_s - _EPS:
            level = Level.CRITICAL
        elif off_s >= self.cfg.warning_s - _EPS:
            level = Level.WARNING
        return DistractionReading(True, off_s, level, reason)
