"""DriverMonitor: calibration + drowsiness + distraction + degraded states + alerts, per frame.

Pure and single-threaded: the caller passes the time of each frame (replay: index / fps).

``update(t_s, signals, camera_ok=True, frame_index=None) -> (DriverState, events)``:
``signals`` None means no face this frame; ``camera_ok`` False means the source gave no frame
(camera lost: nothing about the driver is known, so no absence and no closure is inferred).
Events returned are those that start on this frame (``end_s`` None) and those that end on it
(``end_s`` set, level = peak). An event's ``start_s`` is when its condition began: an eyes_closed,
microsleep, yawn or driver_absent event is reported on the frame it is recognised (e.g. 1 s into a
closure) but starts at the condition's onset (``start_frame`` likewise); a blink is reported once,
when it ends.

Event types: blink, eyes_closed, microsleep, yawn (from the drowsiness rules), drowsiness and
distraction (while the hysteresis-filtered alert level is above none; level = peak),
driver_absent (no face for ``alerts.driver_absent_s``), eyes_not_visible (a face whose eyes cannot
be measured for ``alerts.eyes_not_visible_s``), camera_lost (from the first frame with
``camera_ok`` False). driver_absent and eyes_not_visible end only once the face / eyes have been
back for ``alerts.clear_after_s`` (the alerts' own hysteresis), so a few frames of flicker do not
split one absence into several; the end is stamped at the moment they came back.

Status (what can be seen now, undebounced): camera_lost > driver_absent (no face this frame) >
eyes_not_visible > calibrating > ok.
"""
from __future__ import annotations

import math

from ..config import Config
from ..types import DriverState, Event, Level, Signals, Status
from .alerts import AlertFilter, EventTracker
from .calibration import Calibrator
from .distraction import DistractionDetector
from .drowsiness import DrowsinessDetector

_EPS = 1e-9


class DriverMonitor:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._reset()

    def _reset(self) -> None:
        cfg = self.cfg
        self.calibrator = Calibrator(cfg.calibration)
        self.drowsiness = DrowsinessDetector(cfg.drowsiness)
        self.distraction = DistractionDetector(cfg.distraction)
        self._drowsy_alert = AlertFilter(cfg.alerts)
        self._distraction_alert = AlertFilter(cfg.alerts)
        self._events = EventTracker()  # drowsiness, distraction and degraded-state events
        self._t_last: float | None = None
        self._frame_last: int | None = None
        # degraded-state type -> [onset (t, frame) of the condition, onset of its clearing]
        self._degraded: dict[str, list[tuple[float, int | None] | None]] = {}

    # ------------------------------------------------------------------ public API

    def calibrate_now(self, t_s: float) -> None:
        """Restart per-driver calibration at t_s (back to the defaults until it completes)."""
        self.calibrator.restart(t_s)
        self.distraction.reset()

    def finish(self, t_s: float, frame_index: int | None = None) -> list[Event]:
        """Close every open event at t_s (end of the drive). The monitor can be used again after."""
        out = self.drowsiness.finish(t_s, frame_index)
        out += self._events.end_all(t_s, frame_index, {"ended_by": "end_of_drive"})
        self._degraded.clear()
        return out

    def update(self, t_s: float, signals: Signals | None, *, camera_ok: bool = True,
               frame_index: int | None = None) -> tuple[DriverState, list[Event]]:
        t_s = float(t_s)
        events: list[Event] = []
        if self._t_last is not None and t_s < self._t_last - _EPS:
            # time went backwards (replay seek): close what was open and start a fresh drive
            events += self.finish(self._t_last, self._frame_last)
            self._reset()
        self._t_last, self._frame_last = t_s, frame_index
        if not camera_ok:
            signals = None
        face = signals is not None
        eyes_visible = bool(face and signals.eyes_visible and math.isfinite(signals.ear))  # type: ignore[union-attr]
        acfg = self.cfg.alerts

        # ---- degraded states
        events += self._events.step("camera_lost", not camera_ok, Level.WARNING, t_s, frame_index)
        events += self._held_event("driver_absent", camera_ok and not face, acfg.driver_absent_s,
                                   Level.WARNING, t_s, frame_index)
        events += self._held_event("eyes_not_visible", face and not eyes_visible, acfg.eyes_not_visible_s,
                                   Level.NONE, t_s, frame_index)

        # ---- calibration, then the rules
        self.calibrator.update(t_s, signals)  # None while the camera is lost: that time is not usable
        cal = self.calibrator.result
        dcfg = self.cfg.drowsiness
        threshold = min(dcfg.closed_ratio * cal.open_ear, dcfg.closed_ear_max)
        ear = signals.ear if eyes_visible else None  # type: ignore[union-attr]
        mar = signals.mar if face and math.isfinite(signals.mar) else None  # type: ignore[union-attr]
        drowsy, ev = self.drowsiness.update(t_s, ear, mar, threshold, frame_index)
        events += ev
        distr = self.distraction.update(t_s, signals, cal, active=self.calibrator.done)

        # ---- alerts (hysteresis + cooldown) and their events
        drowsy_level = self._drowsy_alert.update(drowsy.level, t_s)
        distr_level = self._distraction_alert.update(distr.level, t_s)
        events += self._alert_event("drowsiness", drowsy_level, t_s, frame_index, {"reasons": list(drowsy.reasons)})
        events += self._alert_event("distraction", distr_level, t_s, frame_index, {"reason": distr.reason})

        if not camera_ok:
            status = Status.CAMERA_LOST
        elif not face:
            status = Status.DRIVER_ABSENT
        elif not eyes_visible:
            status = Status.EYES_NOT_VISIBLE
        elif not self.calibrator.done:
            status = Status.CALIBRATING
        else:
            status = Status.OK
        state = DriverState(
            t_s=t_s, status=status,
            eyes_closed=drowsy.eyes_closed, eyes_closed_s=drowsy.eyes_closed_s, perclos=drowsy.perclos,
            blink_count=drowsy.blink_count, blink_rate_per_min=drowsy.blink_rate_per_min,
            yawning=drowsy.yawning, yawn_count=drowsy.yawn_count,
            off_road=distr.off_road, off_road_s=distr.off_road_s,
            drowsiness=drowsy_level, distraction=distr_level,
            calibrated=self.calibrator.done and cal.calibrated,
            calibration_progress=self.calibrator.progress,
            open_ear=cal.open_ear, closed_ear_threshold=threshold,
            neutral_yaw_deg=cal.neutral_yaw_deg, neutral_pitch_deg=cal.neutral_pitch_deg,
        )
        return state, events

    # ------------------------------------------------------------------ helpers

    def _held_event(self, type_: str, cond: bool, hold_s: float, level: Level, t_s: float,
                    frame: int | None) -> list[Event]:
        """Open ``type_`` once ``cond`` has held ``hold_s`` (starting at its onset); close it once
        ``cond`` has been false ``alerts.clear_after_s`` (ending when it became false)."""
        st = self._degraded.setdefault(type_, [None, None])
        is_open = self._events.is_open(type_)
        if cond:
            st[1] = None
            if st[0] is None:
                st[0] = (t_s, frame)
            if is_open:
                self._events.escalate(type_, level)
                return []
            if t_s - st[0][0] >= hold_s - _EPS:
                return self._events.step(type_, True, level, t_s, frame, st[0][0], st[0][1])
            return []
        if not is_open:
            st[0] = None
            return []
        if st[1] is None:
            st[1] = (t_s, frame)
        if t_s - st[1][0] >= self.cfg.alerts.clear_after_s - _EPS:
            ev = self._events.end(type_, st[1][0], st[1][1])
            st[0] = st[1] = None
            return [ev] if ev is not None else []
        return []

    def _alert_event(self, type_: str, level: Level, t_s: float, frame: int | None, details: dict) -> list[Event]:
        if level > Level.NONE and not self._events.is_open(type_):
            ev = self._events.start(type_, level, t_s, frame, details)
            return [ev] if ev is not None else []
        return self._events.step(type_, level > Level.NONE, level, t_s, frame)

