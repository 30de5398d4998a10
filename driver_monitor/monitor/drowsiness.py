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
from dataclasses import dataclass

from ..config import DrowsinessConfig
from ..types import Event, Level
from .alerts import EventTracker
from .window import TimeWindow

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


def mouth_wide(cfg: DrowsinessConfig, mar: float | None, jaw_drop: float | None) -> bool:
    """The mouth is yawning-wide: MAR above ``yawn_mar``, or, with the engine's jaw drop, MAR above
    ``yawn_mar_with_jaw_drop`` while the jaw has dropped at least ``yawn_jaw_drop``."""
    return mar is not None and math.isfinite(mar) and (
        mar > cfg.yawn_mar or (jaw_drop is not None and math.isfinite(jaw_drop)
                               and mar > cfg.yawn_mar_with_jaw_drop and jaw_drop >= cfg.yawn_jaw_drop - _EPS))


class ClosureTracker:
    """Eye closures, one at a time: blink, ``eyes_closed`` and ``microsleep`` events.

    ``update(t_s, closed, frame, ...)`` with ``closed`` None when the lids cannot be read. A closure
    runs from its first closed frame to its first open frame, once the eyes have stayed open longer
    than ``reopen_min_s`` (until then it is held, not growing). Its events go to the shared
    ``events`` tracker; a blink comes back as one ``blink`` event, when it ends."""

    def __init__(self, cfg: DrowsinessConfig, events: EventTracker) -> None:
        self.cfg = cfg
        self.events = events
        # current closure: (onset time, onset frame, onset seen: the frame before showed open eyes)
        self._closure: tuple[float, int | None, bool] | None = None
        self._prev_open = False
        self._in_yawn = False  # the mouth was yawning-wide during the current closure
        self._reopen: tuple[float, int | None] | None = None  # eyes open again since (t, frame), unconfirmed

    def closure_s(self, t_s: float) -> float | None:
        """How long the current closure has lasted at t_s (None when the eyes are not closed)."""
        if self._closure is None or self._reopen is not None:
            return None
        return t_s - self._closure[0]

    def held_s(self, t_s: float) -> float:
        """Length of the current closure (up to the unconfirmed reopening, if any); 0 without one."""
        if self._closure is None:
            return 0.0
        return (t_s if self._reopen is None else self._reopen[0]) - self._closure[0]

    def update(self, t_s: float, closed: bool | None, frame: int | None = None, *, yawning: bool = False,
               unread: str = "eyes_not_measurable") -> tuple[Level, list[Event]]:
        """One frame: ``closed`` True / False, or None when the lids are not read (``unread`` says
        why, in the details of the events it ends). ``yawning``: the mouth is yawning-wide now.
        Returns the closure's level (microsleep rule) and the events that started / ended."""
        level = Level.NONE
        out: list[Event] = []
        if closed is None:
            out += self._drop(t_s, frame, unread)
        elif closed:
            if self._closure is None:
                # onset known only when the previous frame showed open eyes (not at the start of
                # the drive, not right after the eyes were hidden): only then can it be a blink
                self._closure = (t_s, frame, self._prev_open)
                self._in_yawn = False
            # eyes are often squeezed shut in a yawn: the closure still counts (the driver cannot
            # see the road), but its events say so, for whoever reviews the drive
            self._in_yawn |= yawning
            self._reopen = None  # a reopening shorter than reopen_min_s was noise
            level, out = self._escalate(t_s, frame)
        elif self._closure is not None:
            if self._reopen is None:
                self._reopen = (t_s, frame)
            if t_s - self._reopen[0] > self.cfg.reopen_min_s + _EPS:
                out += self._end(*self._reopen)
            else:  # maybe a noisy open frame: hold the closure (not growing) until it is confirmed
                level = self._level(self._reopen[0] - self._closure[0])
        self._prev_open = closed is False
        return level, out

    def finish(self) -> list[Event]:
        """End of the drive: a closure whose reopening awaited confirmation ends where the eyes
        opened; one still going on is forgotten here (its open events are the caller's to end)."""
        out = self._end(*self._reopen) if self._closure is not None and self._reopen is not None else []
        self._closure = None
        self._reopen = None
        self._prev_open = False
        return out

    def _level(self, duration_s: float) -> Level:
        if duration_s >= self.cfg.long_closure_critical_s - _EPS:
            return Level.CRITICAL
        if duration_s >= self.cfg.microsleep_s - _EPS:
            return Level.WARNING
        return Level.NONE

    def _escalate(self, t_s: float, frame: int | None) -> tuple[Level, list[Event]]:
        """Open / escalate eyes_closed and microsleep for the current closure lasting until t_s."""
        onset, onset_frame, _ = self._closure
        duration = t_s - onset
        level = self._level(duration)
        out: list[Event] = []
        if duration > self.cfg.blink_max_s + _EPS:
            out += self.events.step("eyes_closed", True, level, t_s, frame, onset, onset_frame)
        if level > Level.NONE:
            out += self.events.step("microsleep", True, level, t_s, frame, onset, onset_frame)
        return level, out

    def _end(self, t_s: float, frame: int | None) -> list[Event]:
        """The eyes opened at t_s: the closure lasted from its first closed frame to this frame."""
        onset, onset_frame, onset_seen = self._closure
        duration = t_s - onset
        out: list[Event] = []
        if duration <= self.cfg.blink_max_s + _EPS:
            if onset_seen:
                out.append(Event(type="blink", level=Level.NONE, start_s=onset, end_s=t_s, start_frame=onset_frame,
                                 end_frame=frame, details={"duration_s": round(duration, 4)}))
        else:
            _, ev = self._escalate(t_s, frame)  # catch up with what the full length shows
            out += ev
        self._closure = None
        self._reopen = None
        out += self._end_events(t_s, frame, {"during_yawn": True} if self._in_yawn else None)
        return out

    def _drop(self, t_s: float, frame: int | None, why: str) -> list[Event]:
        """The lids cannot be read: a closure in progress is dropped (no blink, no closed time)."""
        if self._closure is not None and self._reopen is not None:
            return self._end(*self._reopen)  # it had ended, only unconfirmed
        self._closure = None
        return self._end_events(t_s, frame, {"ended_by": why})

    def _end_events(self, t_s: float, frame: int | None, details: dict | None) -> list[Event]:
        out: list[Event] = []
        for type_ in ("eyes_closed", "microsleep"):
            ev = self.events.end(type_, t_s, frame, details)
            if ev is not None:
                out.append(ev)
        return out


class PerclosTracker:
    """PERCLOS and the blink rate over the last ``perclos_window_s`` of read-eye time.

    ``update(t_s, closed)`` once per frame (``closed`` None: the lids are not read, the frame
    counts neither way; a frame counts for its time since the previous one, at most
    ``_MAX_SAMPLE_DT_S``); ``add_blink(end_s)`` for each blink. Both are NaN until the read time
    covers ``perclos_min_coverage`` of the window.

    The PERCLOS alarm reflects the recent window: it needs that coverage (80 % by default: a
    fraction of a quarter minute says little about a minute), and it is not raised, or is
    dropped, once the eyes have stayed open for ``perclos_clear_open_s`` (the driver is awake now;
    the next closure raises it again while the window still holds the old ones)."""

    def __init__(self, cfg: DrowsinessConfig) -> None:
        self.cfg = cfg
        self._t_prev: float | None = None
        # (frame duration, closed duration) of the frames with the lids read
        self._frames = TimeWindow(cfg.perclos_window_s, sums=2)
        self._blinks = TimeWindow(cfg.perclos_window_s)  # blink end times
        self._open_since: float | None = None  # eyes read open continuously since

    def add_blink(self, end_s: float) -> None:
        self._blinks.add(end_s)

    def update(self, t_s: float, closed: bool | None) -> tuple[float, float, Level]:
        """Returns (PERCLOS 0..1 or NaN, blinks per minute or NaN, PERCLOS level)."""
        cfg = self.cfg
        dt = 0.0 if self._t_prev is None else min(max(t_s - self._t_prev, 0.0), _MAX_SAMPLE_DT_S)
        self._t_prev = t_s
        if closed is not None:
            self._frames.add(t_s, dt, dt if closed else 0.0)
        if closed is False:
            if self._open_since is None:
                self._open_since = t_s
        elif closed:
            self._open_since = None
        self._frames.drain(t_s)
        self._blinks.drain(t_s)
        read_s, closed_s = self._frames.totals
        covered = read_s >= cfg.perclos_min_coverage * cfg.perclos_window_s - _EPS and read_s > 0
        perclos = max(0.0, closed_s) / read_s if covered else math.nan
        blink_rate = 60.0 * len(self._blinks) / read_s if covered else math.nan
        awake = self._open_since is not None and t_s - self._open_since >= cfg.perclos_clear_open_s - _EPS
        level = Level.NONE
        if covered and not awake and perclos >= cfg.perclos_critical - _EPS:
            level = Level.CRITICAL
        elif covered and not awake and perclos >= cfg.perclos_warning - _EPS:
            level = Level.WARNING
        return perclos, blink_rate, level


class YawnTracker:
    """Yawns: the mouth yawning-wide for ``yawn_min_s`` (a ``yawn`` event from when it opened
    wide), and ``yawns_warning`` yawns within ``yawn_window_s`` raise a warning."""

    def __init__(self, cfg: DrowsinessConfig, events: EventTracker) -> None:
        self.cfg = cfg
        self.events = events
        self.count = 0
        self._wide: tuple[float, int | None] | None = None  # mouth wide since (t, frame)
        self._recent = TimeWindow(cfg.yawn_window_s)        # yawn start times

    @property
    def yawning(self) -> bool:
        return self.events.is_open("yawn")

    def update(self, t_s: float, wide: bool, frame: int | None = None) -> tuple[Level, list[Event]]:
        """One frame with the mouth yawning-wide or not. Returns the yawn level and the events."""
        min_s = self.cfg.yawn_min_s - _EPS
        out: list[Event] = []
        if wide:
            if self._wide is None:
                self._wide = (t_s, frame)
            since, since_frame = self._wide
            if t_s - since >= min_s and not self.yawning:
                out += self.events.step("yawn", True, Level.NONE, t_s, frame, since, since_frame)
                self._count(since)
        else:
            if self._wide is not None and not self.yawning and t_s - self._wide[0] >= min_s:
                # wide from its first frame to this first narrow one long enough: a yawn that is
                # only recognisable now (e.g. exactly yawn_min_s at this frame rate)
                ev = self.events.start("yawn", Level.NONE, self._wide[0], self._wide[1])
                out += [ev] if ev is not None else []
                self._count(self._wide[0])
            self._wide = None
            out += self.events.step("yawn", False, Level.NONE, t_s, frame)
        self._recent.drain(t_s)
        return (Level.WARNING if len(self._recent) >= self.cfg.yawns_warning else Level.NONE), out

    def finish(self) -> None:
        self._wide = None

    def _count(self, start_s: float) -> None:
        self.count += 1
        self._recent.add(start_s)


class DrowsinessDetector:
    """The drowsiness rules of one drive: a :class:`ClosureTracker`, a :class:`PerclosTracker` and
    a :class:`YawnTracker` sharing one event tracker (``events``)."""

    def __init__(self, cfg: DrowsinessConfig) -> None:
        self.cfg = cfg
        self.events = EventTracker()
        self.reset()

    def reset(self) -> None:
        self.events = EventTracker()
        self._closures = ClosureTracker(self.cfg, self.events)
        self._perclos = PerclosTracker(self.cfg)
        self._yawns = YawnTracker(self.cfg, self.events)
        self.blink_count = 0

    @property
    def yawn_count(self) -> int:
        return self._yawns.count

    # ------------------------------------------------------------------ update

    def closure_s(self, t_s: float) -> float | None:
        """How long the current closure has lasted at t_s (None when the eyes are not closed)."""
        return self._closures.closure_s(t_s)

    def update(self, t_s: float, ear: float | None, mar: float | None, closed_threshold: float,
               frame: int | None = None, *, jaw_drop: float | None = None,
               unread: str = "eyes_not_measurable", closed: bool | None = None,
               squeezed: bool = False) -> tuple[DrowsinessReading, list[Event]]:
        """One frame. ``ear`` None: the lids cannot be read (``unread`` says why, in the details of
        the closure events it ends). ``jaw_drop``: AU26 above the driver's baseline, or None.
        ``closed``: the eye state when another judge (the eye-state model) decided it; else
        ``ear < closed_threshold``. ``squeezed``: the eyes are squeezed shut in an expression or a
        yawn, a closure that counts for the closure rules but not for PERCLOS."""
        wide = mouth_wide(self.cfg, mar, jaw_drop)
        measurable = ear is not None and math.isfinite(ear)
        if closed is None:
            closed = bool(measurable and ear < closed_threshold)
        closed = bool(measurable and closed)
        closure_level, out = self._closures.update(t_s, closed if measurable else None, frame,
                                                   yawning=wide, unread=unread)
        self._count_blinks(out)
        perclos_closed = None if not measurable or (closed and (squeezed or wide)) else closed
        perclos, blink_rate, perclos_level = self._perclos.update(t_s, perclos_closed)
        yawn_level, ev = self._yawns.update(t_s, wide, frame)
        out += ev

        level = max(closure_level, perclos_level, yawn_level)
        reasons = tuple(name for name, lvl in (("microsleep", closure_level), ("perclos", perclos_level),
                                               ("yawns", yawn_level)) if lvl > Level.NONE)
        reading = DrowsinessReading(
            eyes_closed=closed, eyes_closed_s=self._closures.held_s(t_s), perclos=perclos,
            blink_count=self.blink_count, blink_rate_per_min=blink_rate, yawning=self._yawns.yawning,
            yawn_count=self.yawn_count, level=level, reasons=reasons)
        return reading, out

    def finish(self, t_s: float, frame: int | None = None) -> list[Event]:
        """Close what is open (end of the drive); a closure still going on is not counted as a blink,
        one whose reopening was awaiting confirmation ends where the eyes opened."""
        out = self._closures.finish()
        self._count_blinks(out)
        self._yawns.finish()
        return out + self.events.end_all(t_s, frame, {"ended_by": "end_of_drive"})

    def _count_blinks(self, events: list[Event]) -> None:
        for ev in events:
            if ev.type == "blink":
                self.blink_count += 1
                self._perclos.add_blink(ev.end_s)
