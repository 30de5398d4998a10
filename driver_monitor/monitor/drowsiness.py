"""Drowsiness rules: eye closures, blinks, microsleep, PERCLOS, yawns (pure, clock passed in).

Per frame the monitor passes the EAR when the eyelids can be read (None when they cannot: no
face, sunglasses, extreme yaw, or the head pitched out of the driver's usual pose, where lowered
lids are a look down, not a closure), the MAR when a face is seen, the jaw drop (the engine's AU26
above the driver's baseline) when the engine runs, and the closed-eye threshold from the
calibration. Rules (defaults and their sources in docs/driver_state.md):

* eyes closed: ``ear < threshold`` with ``threshold = min(closed_ratio * open_ear, closed_ear_max)``;
* a closure is timed from its first closed frame to its first open frame, once the eyes have stayed
  open for more than ``reopen_min_s`` (shorter reopenings are noise inside one closure; the end is
  then reported that much later, with ``end_s`` at the first open frame);
  up to ``blink_max_s`` it is a **blink** (one ``blink`` event, reported when it ends); longer, an
  **eyes_closed** event (start_s = the closure's onset, reported once it passes ``blink_max_s``);
  from ``microsleep_s`` on a **microsleep** event of level warning, critical from
  ``long_closure_critical_s``;
* a closure interrupted by unmeasurable eyes is dropped: it counts neither as a blink nor as
  closed time, and its open events end there with ``details.ended_by``;
* PERCLOS: closed time / visible-eye time over the last ``perclos_window_s``; time without
  measurable eyes counts neither way; NaN until the visible time covers ``perclos_min_coverage``
  of the window. Blink rate: blinks per minute of visible-eye time over the same window;
* yawn: the mouth yawning-wide for ``yawn_min_s`` (event start_s = when it opened wide); wide is
  MAR above ``yawn_mar``, or, with the engine, MAR above ``yawn_mar_with_jaw_drop`` while the jaw
  drop is at least ``yawn_jaw_drop`` (a sleepy yawn opens less; talking drops no jaw);
  ``yawns_warning`` yawns within ``yawn_window_s`` raise a warning.

Raw drowsiness level = max(closure level, PERCLOS level, yawn level); the monitor passes it through
an :class:`~driver_monitor.monitor.alerts.AlertFilter`.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ..config import DrowsinessConfig
from ..types import Event, Level
from .alerts import EventTracker

_MAX_SAMPLE_DT_S = 0.5  # one frame never counts for more than this in PERCLOS (dropped frames)
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class DrowsinessReading:
    """The drowsiness rules after one frame.

    eyes_closed: this frame's eyes are closed (False when not measurable); eyes_closed_s: length of
    the current closure (s); perclos: 0..1 or NaN; blink_rate_per_min: NaN until PERCLOS coverage;
    level: raw level (before hysteresis); reasons: which rules gave it, e.g. ("microsleep",).
    """

    eyes_closed: bool
    eyes_closed_s: float
    perclos: float
    blink_count: int
    blink_rate_per_min: float
    yawning: bool
    yawn_count: int
    level: Level
    reasons: tuple[str, ...] = ()


class DrowsinessDetector:
    def __init__(self, cfg: DrowsinessConfig) -> None:
        self.cfg = cfg
        self.events = EventTracker()
        self.reset()

    def reset(self) -> None:
        self.events = EventTracker()
        self._t_prev: float | None = None
        # current closure: (onset time, onset frame, onset seen: the frame before showed open eyes)
        self._closure: tuple[float, int | None, bool] | None = None
        self._prev_open = False
        self._closure_in_yawn = False  # the mouth was yawning-wide during the current closure
        self._reopen: tuple[float, int | None] | None = None  # eyes open again since (t, frame), unconfirmed
        self._samples: deque[tuple[float, float, bool]] = deque()  # (t, dt, closed), visible eyes only
        self._visible_s = 0.0
        self._closed_s = 0.0
        self._blinks: deque[float] = deque()  # blink end times within the PERCLOS window
        self.blink_count = 0
        self._wide: tuple[float, int | None] | None = None  # mouth wide since (t, frame)
        self._yawns: deque[float] = deque()  # yawn start times within yawn_window_s
        self.yawn_count = 0

    # ------------------------------------------------------------------ update

    def closure_s(self, t_s: float) -> float | None:
        """How long the current closure has lasted at t_s (None when the eyes are not closed)."""
        if self._closure is None or self._reopen is not None:
            return None
        return t_s - self._closure[0]

    def update(self, t_s: float, ear: float | None, mar: float | None, closed_threshold: float,
               frame: int | None = None, *, jaw_drop: float | None = None,
               unread: str = "eyes_not_measurable") -> tuple[DrowsinessReading, list[Event]]:
        """One frame. ``ear`` None: the lids cannot be read (``unread`` says why, in the details of
        the closure events it ends). ``jaw_drop``: AU26 above the driver's baseline, or None."""
        cfg = self.cfg
        wide = mar is not None and math.isfinite(mar) and (
            mar > cfg.yawn_mar or (jaw_drop is not None and math.isfinite(jaw_drop)
                                   and mar > cfg.yawn_mar_with_jaw_drop and jaw_drop >= cfg.yawn_jaw_drop - _EPS))
        out: list[Event] = []
        dt = 0.0 if self._t_prev is None else min(max(t_s - self._t_prev, 0.0), _MAX_SAMPLE_DT_S)
        self._t_prev = t_s

        # ---- eyes
        measurable = ear is not None and math.isfinite(ear)
        closed = bool(measurable and ear < closed_threshold)  # type: ignore[operator]
        closure_level = Level.NONE
        if not measurable:
            out += self._drop_closure(t_s, frame, unread)
        elif closed:
            if self._closure is None:
                # onset known only when the previous frame showed open eyes (not at the start of
                # the drive, not right after the eyes were hidden): only then can it be a blink
                self._closure = (t_s, frame, self._prev_open)
                self._closure_in_yawn = False
            # eyes are often squeezed shut in a yawn: the closure still counts (the driver cannot
            # see the road), but its events say so, for whoever reviews the drive
            self._closure_in_yawn |= wide
            self._reopen = None  # a reopening shorter than reopen_min_s was noise
            closure_level, ev = self._closure_events(t_s, frame)
            out += ev
        elif self._closure is not None:
            if self._reopen is None:
                self._reopen = (t_s, frame)
            if t_s - self._reopen[0] > cfg.reopen_min_s + _EPS:
                out += self._end_closure(*self._reopen)
            else:  # maybe a noisy open frame: hold the closure (not growing) until it is confirmed
                closure_level = self._closure_level(self._reopen[0] - self._closure[0])
        self._prev_open = measurable and not closed
        closure_s = 0.0
        if self._closure is not None:
            closure_s = (t_s if self._reopen is None else self._reopen[0]) - self._closure[0]

        # ---- PERCLOS over visible-eye time
        if measurable:
            self._samples.append((t_s, dt, closed))
            self._visible_s += dt
            self._closed_s += dt if closed else 0.0
        while self._samples and self._samples[0][0] <= t_s - cfg.perclos_window_s + _EPS:
            _, odt, oc = self._samples.popleft()
            self._visible_s -= odt
            self._closed_s -= odt if oc else 0.0
        while self._blinks and self._blinks[0] <= t_s - cfg.perclos_window_s + _EPS:
            self._blinks.popleft()
        covered = self._visible_s >= cfg.perclos_min_coverage * cfg.perclos_window_s - _EPS and self._visible_s > 0
        perclos = max(0.0, self._closed_s) / self._visible_s if covered else math.nan
        blink_rate = 60.0 * len(self._blinks) / self._visible_s if covered else math.nan
        perclos_level = Level.NONE
        if covered and perclos >= cfg.perclos_critical - _EPS:
            perclos_level = Level.CRITICAL
        elif covered and perclos >= cfg.perclos_warning - _EPS:
            perclos_level = Level.WARNING

        # ---- yawns
        if wide:
            if self._wide is None:
                self._wide = (t_s, frame)
            since, since_frame = self._wide
            if t_s - since >= cfg.yawn_min_s - _EPS and not self.events.is_open("yawn"):
                out += self.events.step("yawn", True, Level.NONE, t_s, frame, since, since_frame)
                self.yawn_count += 1
                self._yawns.append(since)
        else:
            if self._wide is not None and not self.events.is_open("yawn") \
                    and t_s - self._wide[0] >= cfg.yawn_min_s - _EPS:
                # wide from its first frame to this first narrow one long enough: a yawn that is
                # only recognisable now (e.g. exactly yawn_min_s at this frame rate)
                ev = self.events.start("yawn", Level.NONE, self._wide[0], self._wide[1])
                out += [ev] if ev is not None else []
                self.yawn_count += 1
                self._yawns.append(self._wide[0])
            self._wide = None
            out += self.events.step("yawn", False, Level.NONE, t_s, frame)
        while self._yawns and self._yawns[0] <= t_s - cfg.yawn_window_s + _EPS:
            self._yawns.popleft()
        yawn_level = Level.WARNING if len(self._yawns) >= cfg.yawns_warning else Level.NONE

        level = max(closure_level, perclos_level, yawn_level)
        reasons = tuple(name for name, lvl in (("microsleep", closure_level), ("perclos", perclos_level),
                                               ("yawns", yawn_level)) if lvl > Level.NONE)
        reading = DrowsinessReading(
            eyes_closed=closed, eyes_closed_s=closure_s, perclos=perclos, blink_count=self.blink_count,
            blink_rate_per_min=blink_rate, yawning=self.events.is_open("yawn"), yawn_count=self.yawn_count,
            level=level, reasons=reasons)
        return reading, out

    def finish(self, t_s: float, frame: int | None = None) -> list[Event]:
        """Close what is open (end of the drive); a closure still going on is not counted as a blink,
        one whose reopening was awaiting confirmation ends where the eyes opened."""
        out = self._end_closure(*self._reopen) if self._closure is not None and self._reopen is not None else []
        self._closure = None
        self._reopen = None
        self._prev_open = False
        self._wide = None
        return out + self.events.end_all(t_s, frame, {"ended_by": "end_of_drive"})

    # ------------------------------------------------------------------ helpers

    def _closure_level(self, duration_s: float) -> Level:
        if duration_s >= self.cfg.long_closure_critical_s - _EPS:
            return Level.CRITICAL
        if duration_s >= self.cfg.microsleep_s - _EPS:
            return Level.WARNING
        return Level.NONE

    def _closure_events(self, t_s: float, frame: int | None) -> tuple[Level, list[Event]]:
        """Open / escalate eyes_closed and microsleep for the current closure lasting until t_s."""
        onset, onset_frame, _ = self._closure  # type: ignore[misc]
        duration = t_s - onset
        level = self._closure_level(duration)
        out: list[Event] = []
        if duration > self.cfg.blink_max_s + _EPS:
            out += self.events.step("eyes_closed", True, level, t_s, frame, onset, onset_frame)
        if level > Level.NONE:
            out += self.events.step("microsleep", True, level, t_s, frame, onset, onset_frame)
        return level, out

    def _end_closure(self, t_s: float, frame: int | None) -> list[Event]:
        """The eyes opened at t_s: the closure lasted from its first closed frame to this frame."""
        onset, onset_frame, onset_seen = self._closure  # type: ignore[misc]
        duration = t_s - onset
        out: list[Event] = []
        if duration <= self.cfg.blink_max_s + _EPS:
            if onset_seen:
                self.blink_count += 1
                self._blinks.append(t_s)
                out.append(Event(type="blink", level=Level.NONE, start_s=onset, end_s=t_s, start_frame=onset_frame,
                                 end_frame=frame, details={"duration_s": round(duration, 4)}))
        else:
            _, ev = self._closure_events(t_s, frame)  # catch up with what the full length shows
            out += ev
        self._closure = None
        self._reopen = None
        in_yawn = {"during_yawn": True} if self._closure_in_yawn else None
        for type_ in ("eyes_closed", "microsleep"):
            ev2 = self.events.end(type_, t_s, frame, in_yawn)
            if ev2 is not None:
                out.append(ev2)
        return out

    def _drop_closure(self, t_s: float, frame: int | None, why: str) -> list[Event]:
        if self._closure is not None and self._reopen is not None:
            return self._end_closure(*self._reopen)  # it had ended, only unconfirmed
        self._closure = None
        out: list[Event] = []
        for type_ in ("eyes_closed", "microsleep"):
            ev = self.events.end(type_, t_s, frame, {"ended_by": why})
            if ev is not None:
                out.append(ev)
        return out
