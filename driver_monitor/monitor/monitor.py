"""DriverMonitor: calibration + drowsiness + distraction + degraded states + alerts, per frame.

Pure and single-threaded: the caller passes the time of each frame (replay: index / fps).

``update(t_s, signals, camera_ok=True, frame_index=None, aus=None) -> (DriverState, events)``:
``signals`` None means no face this frame; ``camera_ok`` False means the source gave no frame
(camera lost: nothing about the driver is known, so no absence, closure or glance is inferred);
``aus`` the engine's (smoothed) action-unit intensities by name, when it runs. Events returned are
those that start on this frame (``end_s`` None) and those that end on it (``end_s`` set, level =
peak). An event's ``start_s`` is when its condition began: an eyes_closed, microsleep, yawn, glance
or driver_absent event is reported on the frame it is recognised but starts at the condition's
onset (``start_frame`` likewise); a blink is reported once, when it ends.

Head pose before eyelids (openpilot's order): the distraction rules judge the pose on every frame,
against the mount's pose until the driver's own is learned (see calibration.py). The eyelids are
read only while the head is within the down-pitch limit of the driver's usual pitch (either way):
a head pitched down covers open eyes with the lids from the camera's view (EAR 0.05-0.13 looking
at a phone in the lap), and one tilted back with the eyes on the road lowers them too. Then the
frame is a look away, never a closure. The one exception is a nod-off: eyes that closed with the
head in its pose and stayed closed for ``drowsiness.blink_max_s`` before the head dropped stay a
closure until they open, and the dropped head does not count as a glance.

Event types: blink, eyes_closed, microsleep, yawn (drowsiness rules), glance, time_sharing
(distraction rules), drowsiness and distraction (while the hysteresis-filtered alert level is above
none; level = peak; details: the rules behind it), driver_absent (no face for
``alerts.driver_absent_s``), eyes_not_visible (a face whose eyes cannot be measured for
``alerts.eyes_not_visible_s``), camera_lost (from the first frame with ``camera_ok`` False).
driver_absent and eyes_not_visible end only once the face / eyes have been back for
``alerts.clear_after_s``, so a few frames of flicker do not split one absence into several; the end
is stamped at the moment they came back.

Status (what can be seen now, undebounced): camera_lost > driver_absent (no face this frame) >
eyes_not_visible > calibrating (the mount's pose in use) > ok.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from ..config import Config, EyesConfig
from ..types import DriverState, Event, Level, Signals, Status
from .alerts import AlertFilter, EventTracker
from .calibration import Calibration, Calibrator
from .distraction import DistractionDetector, DistractionReading, PoseLimits, may_teach_pose, pose_limits
from .drowsiness import DrowsinessDetector, DrowsinessReading
from .phone import PhoneVote

_EPS = 1e-9
_DEGRADED_LEVELS = {"camera_lost": Level.WARNING, "driver_absent": Level.WARNING, "eyes_not_visible": Level.NONE}


@dataclass(frozen=True, slots=True)
class _Lids:
    """How the eyelids are read on one frame.

    threshold: the closed-eye EAR; in_pose: the head is within the lid-reading pitch range of its
    usual pitch; closed_now: the eyes are visible and closed (read or not): the eye-state model's
    P(closed) at ``eyes.closed_p`` or above when it runs, else the EAR below the threshold; read:
    the lids are read (in pose, or a nod-off); lowered: the model reads the eyes open while the EAR
    is below ``eyes.lowered_lid_ratio`` of the open-eye EAR (lids lowered over eyes looking down);
    squeezed: a closure in an expression (the cheeks raised: AU6) rather than lids falling."""

    threshold: float
    in_pose: bool
    closed_now: bool
    read: bool
    lowered: bool = False
    squeezed: bool = False


class DriverMonitor:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._reset()

    def _reset(self) -> None:
        cfg = self.cfg
        self.calibrator = Calibrator(cfg.calibration)
        self.drowsiness = DrowsinessDetector(cfg.drowsiness)
        self.distraction = DistractionDetector(cfg.distraction)
        self._phone = PhoneVote(cfg.phone)
        self._drowsy_alert = AlertFilter(cfg.alerts)
        self._distraction_alert = AlertFilter(cfg.alerts)
        self._events = EventTracker()  # drowsiness, distraction and degraded-state events
        self._reasons: dict[str, set[str]] = {"drowsiness": set(), "distraction": set()}
        self._t_last: float | None = None
        self._frame_last: int | None = None
        self._nod_off = False  # a closure that began in pose continues with the head dropped
        # degraded-state type -> [onset (t, frame) of the condition, onset of its clearing]
        self._degraded: dict[str, list[tuple[float, int | None] | None]] = {}

    # ------------------------------------------------------------------ public API

    def calibrate_now(self, t_s: float) -> None:
        """Forget the learned pose and open-eye EAR (a new driver). Judging goes on meanwhile,
        against the mount's pose with the wider limits."""
        self.calibrator.restart(t_s)

    def finish(self, t_s: float, frame_index: int | None = None) -> list[Event]:
        """Close every open event at t_s (end of the drive). The monitor can be used again after."""
        out = self.drowsiness.finish(t_s, frame_index)
        out += self.distraction.finish(t_s, frame_index)
        self._phone.reset()
        out += self._events.end_all(t_s, frame_index, {"ended_by": "end_of_drive"})
        self._degraded.clear()
        self._nod_off = False
        return out

    def update(self, t_s: float, signals: Signals | None, *, camera_ok: bool = True,
               frame_index: int | None = None, aus: Mapping[str, float] | None = None,
               person: bool | None = None, phone: float | None = None) -> tuple[DriverState, list[Event]]:
        """One frame: ``signals`` of the driver's face (None: no face), the engine's ``aus``, whether
        a ``person`` is in view with no face, and the phone detector's ``phone`` score when it ran
        on this frame (:class:`~driver_monitor.monitor.phone.PhoneVote`)."""
        t_s = float(t_s)
        events = self._restart_if_rewound(t_s)
        self._t_last, self._frame_last = t_s, frame_index
        if not camera_ok:
            signals = None
        face = signals is not None
        turned_away = bool(not face and camera_ok and person)  # a person in view, no face: in profile
        eyes_visible = bool(face and signals.eyes_visible and math.isfinite(signals.ear))
        events += self._degraded_events(t_s, frame_index, camera_ok, face or turned_away, eyes_visible)

        # the reference pose, then the eyelids: read only with the head in its usual pitch
        cal = self.calibrator.result
        lim = pose_limits(self.cfg.distraction, self.cfg.calibration, cal)
        au6 = _finite(aus.get("AU6")) if aus else None
        lids = self._read_lids(t_s, signals, eyes_visible, cal.open_ear, lim, au6)
        au26 = _finite(aus.get("AU26")) if aus else None
        jaw_drop = au26 - cal.jaw_baseline if au26 is not None and math.isfinite(cal.jaw_baseline) else None
        mar = signals.mar if face and math.isfinite(signals.mar) else None
        drowsy, ev = self.drowsiness.update(t_s, signals.ear if lids.read else None, mar,
                                            lids.threshold, frame_index, jaw_drop=jaw_drop,
                                            unread="eyes_not_measurable" if not eyes_visible else "head_pose",
                                            closed=lids.closed_now, squeezed=lids.squeezed)
        events += ev
        asleep = self._nod_off and drowsy.eyes_closed
        phone_use = camera_ok and self._phone.update(phone)
        distr, ev = self.distraction.update(t_s, signals, lim, eyes_open=not lids.closed_now, asleep=asleep,
                                            camera_ok=camera_ok, frame=frame_index, lids_lowered=lids.lowered,
                                            turned_away=turned_away, phone=phone_use)
        events += ev
        events += self._events.step("phone_use", phone_use, distr.level, t_s, frame_index)
        self._learn(t_s, signals, cal, lids, asleep, drowsy, distr, au26)

        # alerts (hysteresis + cooldown) and their events
        drowsy_level = self._drowsy_alert.update(drowsy.level, t_s)
        distr_level = self._distraction_alert.update(distr.level, t_s)
        events += self._alert_event("drowsiness", drowsy_level, t_s, frame_index, drowsy.reasons)
        events += self._alert_event("distraction", distr_level, t_s, frame_index, distr.reasons)
        status = _status(camera_ok, face or turned_away, eyes_visible, cal.calibrated)
        return self._state(t_s, status, cal, lim, lids, drowsy, distr, drowsy_level, distr_level, phone_use), events

    # ------------------------------------------------------------------ steps of update

    def _restart_if_rewound(self, t_s: float) -> list[Event]:
        """Time went backwards (replay seek): close what was open and start a fresh drive."""
        if self._t_last is not None and t_s < self._t_last - _EPS:
            events = self.finish(self._t_last, self._frame_last)
            self._reset()
            return events
        return []

    def _degraded_events(self, t_s: float, frame: int | None, camera_ok: bool, face: bool,
                         eyes_visible: bool) -> list[Event]:
        acfg = self.cfg.alerts
        events = self._events.step("camera_lost", not camera_ok, Level.WARNING, t_s, frame)
        events += self._held_event("driver_absent", camera_ok and not face, acfg.driver_absent_s,
                                   Level.WARNING, t_s, frame)
        events += self._held_event("eyes_not_visible", face and not eyes_visible, acfg.eyes_not_visible_s,
                                   Level.NONE, t_s, frame)
        return events

    def _read_lids(self, t_s: float, signals: Signals | None, eyes_visible: bool, open_ear: float,
                   lim: PoseLimits, au6: float | None) -> _Lids:
        """Whether the eyelids are read this frame and what they show.

        With the eye-state model the lids are read at any pitch above the down limit: the model
        sees closed lids whatever the head does, so a driver asleep with the head tilted back is
        read (the EAR of a raised chin is not). Without it, only with the head within the
        lid-reading pitch of its usual pitch, either way (a raised chin lowers the lids over open
        eyes). Either way a head pitched down past the limit is a look away, unless it is a nod-off
        (eyes that closed in pose and stayed closed for ``blink_max_s`` before the head dropped
        stay a closure until they open)."""
        dcfg, ecfg = self.cfg.drowsiness, self.cfg.eyes
        threshold = min(dcfg.closed_ratio * open_ear, dcfg.closed_ear_max)
        p = signals.eye_closed_p if eyes_visible else math.nan
        model = math.isfinite(p)
        in_pose = False
        if signals is not None and math.isfinite(signals.pitch_deg):
            d = signals.pitch_deg - lim.ref_pitch_deg
            in_pose = -lim.lids_pitch_deg <= d and (model or d <= lim.lids_pitch_deg)
        closed_now = eyes_visible and (p >= eye_threshold(ecfg, self.calibrator.result.eye_open_logit) if model
                                       else signals.ear < threshold)
        lowered = model and not closed_now and signals.ear < ecfg.lowered_lid_ratio * open_ear
        squeezed = closed_now and au6 is not None and au6 >= ecfg.squeeze_au6
        if in_pose or not closed_now:
            self._nod_off = False
        elif not self._nod_off:
            held = self.drowsiness.closure_s(t_s)
            self._nod_off = held is not None and held >= dcfg.blink_max_s - _EPS
        return _Lids(threshold=threshold, in_pose=in_pose, closed_now=closed_now,
                     read=eyes_visible and (in_pose or self._nod_off), lowered=lowered, squeezed=squeezed)

    def _learn(self, t_s: float, signals: Signals | None, cal: Calibration, lids: _Lids, asleep: bool,
               drowsy: DrowsinessReading, distr: DistractionReading, au26: float | None) -> None:
        """Teach the calibration: the pose from road-plausible frames with open eyes, the open EAR
        from frames with the lids read and the head on the road, while no drowsiness alert is up.
        A driver who holds a pose off the road before it is learned may be an off-axis camera: the
        gate is every pose the mount's clamp range allows; once learned, glances never teach."""
        learn_pose = False
        if (signals is not None and not lids.closed_now and not lids.lowered and not asleep
                and "eyes_down" not in distr.reason and not (cal.calibrated and distr.off_road)):
            learn_pose = may_teach_pose(self.cfg.distraction, self.cfg.calibration, cal, signals.yaw_deg,
                                        signals.pitch_deg)
        learn_ear = (lids.read and lids.in_pose and not lids.lowered and not distr.off_road
                     and self._drowsy_alert.level == Level.NONE
                     and drowsy.eyes_closed_s <= self.cfg.drowsiness.blink_max_s + _EPS)  # blinks yes, long closures no
        # the eye-state model's reading of this driver's open eyes: frames whose lids the EAR reads open
        learn_eye = lids.read and lids.in_pose and signals is not None and signals.ear >= lids.threshold
        self.calibrator.update(t_s, signals, learn_pose=learn_pose, learn_ear=learn_ear, au26=au26,
                               learn_eye=learn_eye)

    def _state(self, t_s: float, status: Status, cal: Calibration, lim: PoseLimits, lids: _Lids,
               drowsy: DrowsinessReading, distr: DistractionReading, drowsy_level: Level,
               distr_level: Level, phone_use: bool = False) -> DriverState:
        """The frame's DriverState; ``cal`` is the calibration the frame was judged with."""
        degraded = max((lvl for t, lvl in _DEGRADED_LEVELS.items() if self._events.is_open(t)), default=Level.NONE)
        return DriverState(
            t_s=t_s, status=status,
            eyes_closed=drowsy.eyes_closed, eyes_closed_s=drowsy.eyes_closed_s, perclos=drowsy.perclos,
            blink_count=drowsy.blink_count, blink_rate_per_min=drowsy.blink_rate_per_min,
            yawning=drowsy.yawning, yawn_count=drowsy.yawn_count,
            off_road=distr.off_road, off_road_s=distr.off_road_s, off_road_reason=distr.reason,
            time_sharing_s=distr.time_sharing_s, lids_read=lids.read, phone_use=phone_use,
            drowsiness=drowsy_level, distraction=distr_level, degraded=degraded,
            calibrated=cal.calibrated, calibration_progress=self.calibrator.progress,
            open_ear=cal.open_ear, closed_ear_threshold=lids.threshold,
            neutral_yaw_deg=lim.ref_yaw_deg, neutral_pitch_deg=lim.ref_pitch_deg,
            yaw_limit_deg=lim.yaw_deg, pitch_limit_deg=lim.pitch_down_deg,
        )

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

    def _alert_event(self, type_: str, level: Level, t_s: float, frame: int | None,
                     reasons: tuple[str, ...]) -> list[Event]:
        """Open / escalate / close the alert event; its details list every rule that drove it."""
        seen = self._reasons[type_]
        if level > Level.NONE and not self._events.is_open(type_):
            seen.clear()
            seen.update(reasons)
            ev = self._events.start(type_, level, t_s, frame, {"reasons": list(reasons)})
            return [ev] if ev is not None else []
        if level > Level.NONE:
            seen.update(reasons)
            self._events.escalate(type_, level, {"reasons": sorted(seen)})
            return []
        return self._events.step(type_, False, level, t_s, frame)


def eye_threshold(ecfg: EyesConfig, open_logit: float) -> float:
    """The P(closed) at which the eye-state model's reading is a closed eye for this driver:
    ``eyes.closed_p``, raised for a driver whose open eyes the model reads as half closed (glasses,
    an unusual eye shape) to ``eyes.adapt_margin`` logits above the model's reading of their open
    eyes (``open_logit``: frames the EAR reads open), at most ``eyes.adapt_max_p``."""
    lo = math.log(ecfg.closed_p / (1.0 - ecfg.closed_p))
    if not math.isfinite(open_logit):
        return ecfg.closed_p
    hi = math.log(ecfg.adapt_max_p / (1.0 - ecfg.adapt_max_p))
    z = min(max(open_logit + ecfg.adapt_margin, lo), max(lo, hi))
    return 1.0 / (1.0 + math.exp(-z))


def _status(camera_ok: bool, face: bool, eyes_visible: bool, calibrated: bool) -> Status:
    """What can be seen now, undebounced: camera_lost > driver_absent > eyes_not_visible >
    calibrating (the mount's pose in use) > ok."""
    if not camera_ok:
        return Status.CAMERA_LOST
    if not face:
        return Status.DRIVER_ABSENT
    if not eyes_visible:
        return Status.EYES_NOT_VISIBLE
    if not calibrated:
        return Status.CALIBRATING
    return Status.OK


def _finite(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None
