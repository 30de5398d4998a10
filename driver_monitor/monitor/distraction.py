"""Distraction rules: glances off the road, long distraction and attention time-sharing (pure,
clock passed in).

A frame is **raw off road** when, relative to the reference pose (:func:`pose_limits`: the driver's
learned neutral pose, or the camera mount's until it is learned),

* the head is turned: ``|yaw - ref_yaw| > yaw limit`` or the head is pitched **down** more than
  the pitch limit (``ref_pitch - pitch > limit``; up only when ``pitch_up_limit_deg`` is set)
  ("owl" glances; openpilot's limits yaw 23 deg / pitch 18 deg, downwards only), or
* ``use_gaze``, the driver's neutral gaze is learned, the eyes are visible and open, and the iris
  offset from the neutral gaze exceeds ``gaze_limit``: eyes-only ("lizard") glances, or
* no face is seen right after the driver was looking away (turned out of the mesh's reach, or
  dodging the camera): "maybe distracted", as openpilot treats a lost face, so an alert that was
  raised is not cleared by not seeing anything. A face lost while the driver was on the road is
  ``driver_absent``, not distraction; or
* no face is seen but a person is in view (``turned_away``: the head in profile, or turned away,
  beyond the mesh's reach): a look away (``face_away``), from the first frame.

Before the pose is learned the reference is the camera mount's pose and the limits are the wider
``uncalibrated_*`` ones (openpilot: a looser pitch limit, 25.7 deg, before its calibration; 28.9 deg
is its relaxed yaw limit). Distraction is judged from the first frame.

The raw flag goes through a first-order filter (time constant ``filter_time_constant_s``) with
hysteresis: the driver becomes distracted when the filtered value exceeds ``distracted_above`` and
attentive again below ``attentive_below`` (openpilot: 0.25 s, 0.63 / 0.37), so one on-road frame
does not end a glance and one off-road frame does not start one. A glance is timed from its first
raw off-road frame to its first raw on-road frame.

* long distraction: one glance of ``warning_s`` (EU ADDW 3.5 s above 50 km/h, inside Euro NCAP's
  3 s + 1 s) raises a warning, ``critical_s`` (6 s: ADDW's 20-50 km/h limit, Euro NCAP's
  unresponsive driver) critical;
* visual attention time-sharing (Euro NCAP): off-road time accumulated within the last
  ``time_sharing_window_s`` reaching ``time_sharing_s`` raises a warning; the account is reset
  after ``time_sharing_reset_s`` continuously on the road.

Events: ``glance`` (each confirmed glance, level = the long-distraction level it reached, details:
reason) and ``time_sharing`` (while the accumulated time is over the limit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config import CalibrationConfig, DistractionConfig
from ..types import Event, Level, Signals
from .alerts import EventTracker
from .calibration import Calibration
from .window import TimeWindow

_EPS = 1e-9
_MAX_SAMPLE_DT_S = 0.5
_REASONS = ("head", "gaze", "eyes_down", "face_lost", "face_away")  # the order reasons are joined in


@dataclass(frozen=True, slots=True)
class PoseLimits:
    """The road-facing reference and the off-road limits in use (degrees; gaze in half-widths).

    pitch_up_deg is inf when looking up is never off road; lids_pitch_deg: the pitch range around
    the reference in which the eyelids can be read (both directions)."""

    ref_yaw_deg: float
    ref_pitch_deg: float
    ref_gaze_x: float
    ref_gaze_y: float
    yaw_deg: float
    pitch_down_deg: float
    pitch_up_deg: float
    lids_pitch_deg: float
    learned: bool


def pose_limits(dcfg: DistractionConfig, ccfg: CalibrationConfig, cal: Calibration) -> PoseLimits:
    """The reference pose and limits for this calibration: the learned pose with the configured
    limits, or the mount's pose with the ``uncalibrated_*`` limits. The ``auto`` mount before any
    pose is held: the camera's axis with the auto range as the limits (every mount's road pose
    lies inside it, a look down at the lap below it)."""
    yaw = dcfg.yaw_limit_deg if cal.calibrated else dcfg.uncalibrated_yaw_limit_deg
    down = dcfg.pitch_down_limit_deg if cal.calibrated else dcfg.uncalibrated_pitch_down_limit_deg
    if ccfg.mount == "auto" and not cal.calibrated and not cal.provisional:
        yaw, down = ccfg.auto_yaw_deg, ccfg.auto_pitch_down_deg
    up = dcfg.pitch_up_limit_deg + (down - dcfg.pitch_down_limit_deg) if dcfg.pitch_up_limit_deg > 0 else math.inf
    return PoseLimits(ref_yaw_deg=cal.neutral_yaw_deg, ref_pitch_deg=cal.neutral_pitch_deg,
                      ref_gaze_x=cal.neutral_gaze_x, ref_gaze_y=cal.neutral_gaze_y,
                      yaw_deg=yaw, pitch_down_deg=down, pitch_up_deg=up,
                      lids_pitch_deg=dcfg.pitch_down_limit_deg, learned=cal.calibrated)


def learning_gate(dcfg: DistractionConfig, ccfg: CalibrationConfig) -> tuple[float, float]:
    """(yaw, pitch) half-widths around the mount's pose of the poses a driver may hold as the road:
    the calibrated limits plus the clamp range. Frames outside never teach the neutral pose."""
    return (dcfg.yaw_limit_deg + ccfg.max_yaw_offset_deg, dcfg.pitch_down_limit_deg + ccfg.max_pitch_offset_deg)


def may_teach_pose(dcfg: DistractionConfig, ccfg: CalibrationConfig, cal: Calibration, yaw: float,
                   pitch: float) -> bool:
    """A pose that may be the road: within :func:`learning_gate` of the mount's pose, or, with the
    ``auto`` mount, within the auto range of the camera's axis (a look down at a phone or the lap
    lies below it, so it never becomes the road)."""
    if ccfg.mount == "auto":
        return (abs(yaw) <= ccfg.auto_yaw_deg and -ccfg.auto_pitch_down_deg <= pitch <= ccfg.auto_pitch_up_deg)
    gy, gp = learning_gate(dcfg, ccfg)
    return abs(yaw - cal.mount_yaw_deg) <= gy and abs(pitch - cal.mount_pitch_deg) <= gp


@dataclass(frozen=True, slots=True)
class DistractionReading:
    """off_road: the driver is in a glance away (after the hysteresis); off_road_s: how long the
    current glance has lasted (s); level: raw level (before the alert filter); reason: why this
    frame is off road ("head", "gaze", "head+gaze", "face_lost" or ""); time_sharing_s: off-road
    time in the time-sharing account; reasons: the rules behind the level ("long_glance",
    "time_sharing")."""

    off_road: bool
    off_road_s: float
    level: Level
    reason: str = ""
    time_sharing_s: float = 0.0
    reasons: tuple[str, ...] = ()


class GlanceTracker:
    """Glances off the road, one at a time.

    The raw off-road flag goes through a first-order filter with hysteresis (distracted above
    ``distracted_above``, attentive below ``attentive_below``; with no time constant the raw flag
    itself). A confirmed glance is timed from its first raw off-road frame to its first raw on-road
    frame and gives one ``glance`` event in the shared ``events`` tracker; its long-distraction
    level comes from :meth:`long_glance`."""

    def __init__(self, cfg: DistractionConfig, events: EventTracker) -> None:
        self.cfg = cfg
        self.events = events
        self.off = False                  # hysteresis state: in a glance
        self.reason = ""                  # the current glance's reasons, joined in _REASONS order
        self._x = 0.0                     # filtered raw flag, 0..1
        self._onset: tuple[float, int | None] | None = None  # first raw off-road frame of this glance
        self._back: tuple[float, int | None] | None = None   # first raw on-road frame since
        self._start: float | None = None

    def update(self, t_s: float, dt: float, reason: str, frame: int | None = None) -> tuple[float, list[Event]]:
        """One frame; ``reason``: why it is raw off road ("" when on the road), ``dt`` its duration.
        Returns the off-road seconds to book into the time-sharing account besides this frame's (a
        glance confirmed now: its time before confirmation; one ended now: minus the filter's tail
        after it ended; else 0) and the events that started / ended."""
        cfg = self.cfg
        raw = bool(reason)
        instant = self._filter(raw, dt)
        if raw:
            self._back = None
            if self._onset is None:
                self._onset = (t_s, frame)
        elif self._back is None:
            self._back = (t_s, frame)
        booked, out = 0.0, []
        if not self.off and (self._x > cfg.distracted_above + _EPS or (instant and raw)):
            booked, out = self._confirm(t_s, dt, reason, frame)
        elif self.off and (self._x < cfg.attentive_below - _EPS or (instant and not raw)):
            booked, out = self._end(t_s, frame)
        if not self.off and not raw and self._x < cfg.attentive_below:
            self._onset = None  # a blip that never became a glance
        if self.off and reason:
            seen = set(self.reason.split("+")) | set(reason.split("+"))
            self.reason = "+".join(r for r in _REASONS if r in seen)
        return booked, out

    def long_glance(self, t_s: float) -> tuple[float, Level]:
        """How long the current glance has lasted at t_s (0 outside one) and its long-distraction
        level, which the glance event keeps as its peak."""
        cfg = self.cfg
        off_s = t_s - self._start if self.off and self._start is not None else 0.0
        level = Level.NONE
        if self.off and off_s >= cfg.critical_s - _EPS:
            level = Level.CRITICAL
        elif self.off and off_s >= cfg.warning_s - _EPS:
            level = Level.WARNING
        if self.off:
            self.events.escalate("glance", level)
        return off_s, level

    def _filter(self, raw: bool, dt: float) -> bool:
        """Step the first-order filter; True when it has no time constant (the raw flag decides)."""
        tau = self.cfg.filter_time_constant_s
        if tau <= 0:
            self._x = 1.0 if raw else 0.0
        elif dt > 0:
            a = 1.0 - math.exp(-dt / tau)
            self._x += a * ((1.0 if raw else 0.0) - self._x)
        return tau <= 0

    def _confirm(self, t_s: float, dt: float, reason: str, frame: int | None) -> tuple[float, list[Event]]:
        self.off = True
        start, start_frame = self._onset if self._onset is not None else (t_s, frame)
        self._start = start
        self.reason = reason
        ev = self.events.start("glance", Level.NONE, start, start_frame, {"reason": reason})
        return t_s - start - dt, [ev] if ev is not None else []  # the glance's time before it was confirmed

    def _end(self, t_s: float, frame: int | None) -> tuple[float, list[Event]]:
        self.off = False
        end, end_frame = self._back if self._back is not None else (t_s, frame)
        ev = self.events.end("glance", end, end_frame, {"reason": self.reason})
        self._start = None
        return -(t_s - end), [ev] if ev is not None else []  # ... and not the filter's tail after it ended


class TimeSharingAccount:
    """Visual attention time-sharing: off-road time booked within the last
    ``time_sharing_window_s``; reaching ``time_sharing_s`` raises a warning (and a
    ``time_sharing`` event) that holds until the driver has been on the road for
    ``time_sharing_reset_s``, which also empties the account."""

    def __init__(self, cfg: DistractionConfig, events: EventTracker) -> None:
        self.cfg = cfg
        self.events = events
        self._booked = TimeWindow(cfg.time_sharing_window_s, sums=1, nonnegative=True)
        self._on_since: float | None = None
        self.sharing = False

    @property
    def seconds(self) -> float:
        """Off-road time in the account."""
        return self._booked.total

    def book(self, t_s: float, seconds: float) -> None:
        if seconds != 0.0:
            self._booked.add(t_s, seconds)

    def update(self, t_s: float, dt: float, off: bool, frame: int | None = None) -> tuple[Level, list[Event]]:
        """One frame of ``dt`` seconds, in a glance (``off``) or on the road. Returns the
        time-sharing level and the events that started / ended."""
        cfg = self.cfg
        if off:
            self._on_since = None
            self.book(t_s, dt)
        else:
            if self._on_since is None:
                self._on_since = t_s
            if t_s - self._on_since >= cfg.time_sharing_reset_s - _EPS:
                self._booked.clear()
                self.sharing = False
        self._booked.drain(t_s)
        # once reached, the warning holds until the driver is back on the road for the reset time
        self.sharing |= cfg.time_sharing_s > 0 and self.seconds >= cfg.time_sharing_s - _EPS
        out = self.events.step("time_sharing", self.sharing, Level.WARNING, t_s, frame)
        return (Level.WARNING if self.sharing else Level.NONE), out


class DistractionDetector:
    """The distraction rules of one drive: a :class:`GlanceTracker` and a
    :class:`TimeSharingAccount` sharing one event tracker (``events``)."""

    def __init__(self, cfg: DistractionConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self.events = EventTracker()
        self._t_prev: float | None = None
        self._last_raw = False            # the last frame with a face was raw off road
        self._glance = GlanceTracker(self.cfg, self.events)
        self._account = TimeSharingAccount(self.cfg, self.events)

    # ------------------------------------------------------------------ rules

    def off_road_reason(self, s: Signals, lim: PoseLimits, eyes_open: bool = True, lids_lowered: bool = False) -> str:
        cfg = self.cfg
        head = down = False
        if math.isfinite(s.yaw_deg) and abs(s.yaw_deg - lim.ref_yaw_deg) > lim.yaw_deg:
            head = True
        if math.isfinite(s.pitch_deg):
            d = s.pitch_deg - lim.ref_pitch_deg
            head |= -d > lim.pitch_down_deg or d > lim.pitch_up_deg  # pose first, whatever the eyes do
            sight = self.sight_pitch(s, lim, eyes_open)
            down = not head and sight is not None and -sight > lim.pitch_down_deg
            # lids lowered over open eyes with the head tipped down a little: the eyes look down
            down |= cfg.use_gaze and lids_lowered and -d >= cfg.lowered_lid_min_pitch_deg
        gaze = False
        # eyes-only glances need this driver's neutral gaze: the iris offset of a driver looking at
        # the road depends on the camera's angle and the eye's shape (0.6-0.7 half-widths on the
        # off-axis infrared clip), so before the pose is learned only the head counts
        if (cfg.use_gaze and lim.learned and s.eyes_visible and eyes_open and math.isfinite(s.gaze_x)
                and math.isfinite(s.gaze_y)):
            gaze = math.hypot(s.gaze_x - lim.ref_gaze_x, s.gaze_y - lim.ref_gaze_y) > cfg.gaze_limit
        return "+".join(name for name, on in (("head", head), ("gaze", gaze), ("eyes_down", down)) if on)

    def sight_pitch(self, s: Signals, lim: PoseLimits, eyes_open: bool) -> float | None:
        """The line of sight's pitch from the reference (deg, up > 0): the head's pitch less the
        eyes' turn down in the head, ``gaze_pitch_gain_deg`` per unit of the iris's vertical offset
        below the driver's neutral (the mount's: 0 until learned); eyes turned up add nothing (a
        head pitched down is off the road whatever the eyes do: pose first). None when the eyes
        cannot say (not visible, closed, no iris, or ``use_gaze`` off)."""
        cfg = self.cfg
        if not (cfg.use_gaze and s.eyes_visible and eyes_open and math.isfinite(s.gaze_y)
                and math.isfinite(s.pitch_deg)):
            return None
        return s.pitch_deg - lim.ref_pitch_deg - cfg.gaze_pitch_gain_deg * max(0.0, s.gaze_y - lim.ref_gaze_y)

    def update(self, t_s: float, signals: Signals | None, lim: PoseLimits, *, eyes_open: bool = True,
               asleep: bool = False, camera_ok: bool = True, frame: int | None = None,
               lids_lowered: bool = False, turned_away: bool = False,
               phone: bool = False) -> tuple[DistractionReading, list[Event]]:
        """One frame. ``signals`` None: no face. ``asleep``: the eyes closed before the head left its
        pose (a nod-off, judged by the drowsiness rules), so the pose says nothing about where
        the driver looks. ``camera_ok`` False: nothing is known, nothing is counted. ``phone``: the
        driver is using a phone (:class:`~driver_monitor.monitor.phone.PhoneVote`): off the road
        whatever the head does."""
        dt = 0.0 if self._t_prev is None else min(max(t_s - self._t_prev, 0.0), _MAX_SAMPLE_DT_S)
        self._t_prev = t_s
        reason = "face_away" if turned_away else self._raw_reason(signals, lim, eyes_open, asleep, camera_ok,
                                                                    lids_lowered)
        if phone and camera_ok:
            reason = "+".join(r for r in (reason, "phone") if r)
        booked, out = self._glance.update(t_s, dt, reason, frame)
        self._account.book(t_s, booked)
        off_s, glance_level = self._glance.long_glance(t_s)
        ts_level, ev = self._account.update(t_s, dt, self._glance.off, frame)
        out += ev

        off = self._glance.off
        level = max(glance_level, ts_level)
        reasons = tuple(n for n, lv in (("long_glance", glance_level), ("time_sharing", ts_level)) if lv > Level.NONE)
        shown = reason if reason else (self._glance.reason if off else "")
        return DistractionReading(off_road=off, off_road_s=off_s, level=level, reason=shown,
                                  time_sharing_s=self._account.seconds, reasons=reasons), out

    def _raw_reason(self, signals: Signals | None, lim: PoseLimits, eyes_open: bool, asleep: bool,
                    camera_ok: bool, lids_lowered: bool = False) -> str:
        """Why this frame is raw off road ("" when it is not)."""
        if signals is None:
            # a face lost while the driver was looking away (or turning away): maybe distracted
            return "face_lost" if camera_ok and (self._glance.off or self._last_raw) else ""
        if asleep:
            return ""
        reason = self.off_road_reason(signals, lim, eyes_open, lids_lowered)
        self._last_raw = bool(reason)
        return reason

    def finish(self, t_s: float, frame: int | None = None) -> list[Event]:
        """Close what is open (end of the drive) and start afresh."""
        out = self.events.end_all(t_s, frame, {"ended_by": "end_of_drive"})
        self.reset()
        return out
