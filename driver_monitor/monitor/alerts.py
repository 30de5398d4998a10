"""Alert levels with hysteresis and a cooldown, and the bookkeeping of interval events.

Pure: the clock is passed in.

:class:`AlertFilter` turns a raw per-frame level (what the rules say right now) into the alert
level the driver sees:

* raise: the raw level must stay at or above a higher level for ``raise_after_s`` before the
  alert goes up to it (one noisy frame raises nothing);
* clear: the raw level must stay below the current level for ``clear_after_s`` before the alert
  steps down (one noisy frame clears nothing);
* cooldown: for ``cooldown_s`` after an alert has cleared to none, it is not raised again to the
  level it had (or lower); a HIGHER level still goes through, so a worse situation is never
  muted by an earlier, milder alert.

:class:`EventTracker` opens and closes :class:`~driver_monitor.types.Event` s by type and keeps
each open event's peak level, as the monitor's contract asks: the start copy (``end_s`` None) is
returned on the frame the event is recognised, the ended copy (``end_s`` set, level = peak) on the
frame it ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from ..config import AlertsConfig
from ..types import Event, Level

_EPS = 1e-9  # float slack when comparing a held duration with a configured one


class AlertFilter:
    """Hysteresis + cooldown on one alert (e.g. drowsiness). ``update(raw, t_s) -> Level``."""

    def __init__(self, cfg: AlertsConfig) -> None:
        self.raise_after_s = cfg.raise_after_s
        self.clear_after_s = cfg.clear_after_s
        self.cooldown_s = cfg.cooldown_s
        self.reset()

    def reset(self) -> None:
        self.level = Level.NONE
        # per level L > NONE: since when the raw level has been >= L / < L without a break
        self._at_or_above_since: dict[Level, float | None] = {Level.WARNING: None, Level.CRITICAL: None}
        self._below_since: dict[Level, float | None] = {Level.WARNING: None, Level.CRITICAL: None}
        self._peak = Level.NONE
        self._cleared_at: float | None = None
        self._cleared_level = Level.NONE

    def in_cooldown(self, t_s: float) -> bool:
        return self._cleared_at is not None and t_s - self._cleared_at < self.cooldown_s - _EPS

    def update(self, raw: Level, t_s: float) -> Level:
        raw = Level(raw)
        for lvl in (Level.WARNING, Level.CRITICAL):
            if raw >= lvl:
                self._below_since[lvl] = None
                if self._at_or_above_since[lvl] is None:
                    self._at_or_above_since[lvl] = t_s
            else:
                self._at_or_above_since[lvl] = None
                if self._below_since[lvl] is None:
                    self._below_since[lvl] = t_s

        # raise to the highest level held long enough (and not muted by the cooldown)
        cooling = self.in_cooldown(t_s)
        for lvl in (Level.CRITICAL, Level.WARNING):
            if lvl <= self.level:
                break
            since = self._at_or_above_since[lvl]
            if since is None or t_s - since < self.raise_after_s - _EPS:
                continue
            if cooling and lvl <= self._cleared_level:
                continue
            self.level = lvl
            break

        # step down while the raw level has stayed below the current one long enough
        while self.level > Level.NONE:
            since = self._below_since[self.level]
            if since is None or t_s - since < self.clear_after_s - _EPS:
                break
            self.level = Level(self.level - 1)
            if self.level == Level.NONE:
                self._cleared_at = t_s
                self._cleared_level = self._peak

        self._peak = Level.NONE if self.level == Level.NONE else max(self._peak, self.level)
        return self.level


@dataclass
class _Open:
    event: Event
    peak: Level
    details: dict[str, Any] = field(default_factory=dict)


class EventTracker:
    """Open / escalate / close interval events by type; at most one open event per type."""

    def __init__(self) -> None:
        self._open: dict[str, _Open] = {}

    def is_open(self, type_: str) -> bool:
        return type_ in self._open

    def open_types(self) -> tuple[str, ...]:
        return tuple(self._open)

    def start(self, type_: str, level: Level, start_s: float, start_frame: int | None = None,
              details: Mapping[str, Any] | None = None) -> Event | None:
        """Open an event (None if one of this type is already open). Returns the start copy."""
        if type_ in self._open:
            return None
        ev = Event(type=type_, level=Level(level), start_s=start_s, start_frame=start_frame,
                   details=dict(details or {}))
        self._open[type_] = _Open(ev, Level(level), dict(details or {}))
        return ev

    def escalate(self, type_: str, level: Level, details: Mapping[str, Any] | None = None) -> None:
        """Record a (possibly higher) level for the open event, and details to merge into it; its
        ended copy carries the peak and the merged details."""
        o = self._open.get(type_)
        if o is not None:
            o.peak = max(o.peak, Level(level))
            if details:
                o.details.update(details)

    def end(self, type_: str, end_s: float, end_frame: int | None = None,
            details: Mapping[str, Any] | None = None) -> Event | None:
        """Close the open event of this type (None if none). Returns the ended copy."""
        o = self._open.pop(type_, None)
        if o is None:
            return None
        merged = {**o.details, **(details or {})}
        return replace(o.event, level=o.peak, end_s=max(end_s, o.event.start_s), end_frame=end_frame,
                       details=merged)

    def end_all(self, end_s: float, end_frame: int | None = None,
                details: Mapping[str, Any] | None = None) -> list[Event]:
        out = []
        for type_ in list(self._open):
            ev = self.end(type_, end_s, end_frame, details)
            if ev is not None:
                out.append(ev)
        return out

    def step(self, type_: str, active: bool, level: Level, t_s: float, frame: int | None = None,
             start_s: float | None = None, start_frame: int | None = None) -> list[Event]:
        """Follow a condition: open when it becomes active (start_s defaults to t_s), escalate
        while it lasts, close when it stops. Returns the events that started / ended now."""
        out: list[Event] = []
        if active:
            if not self.is_open(type_):
                ev = self.start(type_, level, t_s if start_s is None else start_s,
                                frame if start_frame is None else start_frame)
                if ev is not None:
                    out.append(ev)
            else:
                self.escalate(type_, level)
        elif self.is_open(type_):
            ev = self.end(type_, t_s, frame)
            if ev is not None:
                out.append(ev)
        return out
