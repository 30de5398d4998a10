"""Phone use from the phone detector's readings: a vote over its last few runs (pure).

The detector runs a few times a second, not on every frame, and one call misses a phone the hand
hides on many frames (docs/phone_eval.md), so no single reading decides: the phone is in use once
``phone.votes`` of the last ``phone.runs`` readings score ``phone.min_score`` or more, and over
once none of them does (hysteresis: a phone half hidden for a run or two stays in use). Frames
without a reading change nothing.

When the detector runs is :class:`PhoneSchedule`'s: ``phone.rate_hz`` runs a second of video while
none of the last ``phone.runs`` readings reached ``phone.wake_score``, ``phone.busy_rate_hz`` once one
has, so a drive without a phone pays for one run a second and a phone coming into view is voted on
at the busy rate.
"""
from __future__ import annotations

import math
from collections import deque

from ..config import PhoneConfig


class PhoneVote:
    """``update(score) -> bool``: whether the driver is using a phone, from this frame's detector
    reading (None: the detector did not run on this frame)."""

    def __init__(self, cfg: PhoneConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        self._seen: deque[bool] = deque(maxlen=max(1, self.cfg.runs))
        self.active = False

    def update(self, score: float | None) -> bool:
        if score is None or not math.isfinite(score):
            return self.active
        self._seen.append(score >= self.cfg.min_score)
        hits = sum(self._seen)
        if not self.active and hits >= self.cfg.votes:
            self.active = True
        elif self.active and hits == 0:
            self.active = False
        return self.active


class PhoneSchedule:
    """When the detector runs (pure; the pipeline and the evaluation both follow it).

    ``due(t, index)``: a run starts on frame ``index`` at video time ``t`` (then ``start(t)``);
    ``done(index, score)`` records a run's reading; ``ran(t, index, score)`` both at once. The
    interval is 1 / ``phone.busy_rate_hz`` while one of the last ``phone.runs`` readings reached
    ``phone.wake_score``, else 1 / ``phone.rate_hz``; the first frame and a rewind (``t`` before the
    last run) are due at once. Only readings of frames ``delay`` frames or more before ``index``
    count for the rate: the pipeline starts a run while later frames are still being read (two
    stages), and the same frames must get the same runs however fast the machine is."""

    def __init__(self, cfg: PhoneConfig, delay: int = 0) -> None:
        self.cfg = cfg
        self.delay = int(delay)
        self.reset()

    def reset(self) -> None:
        self._last_t: float | None = None
        self._readings: deque[tuple[int, float]] = deque(maxlen=max(1, self.cfg.runs) + self.delay + 8)

    def busy(self, index: int | None = None) -> bool:
        """Whether one of the last ``phone.runs`` readings old enough for frame ``index`` (all of
        them when None) reached the wake score."""
        seen = [s for i, s in list(self._readings) if index is None or i <= index - self.delay]
        return any(s >= self.cfg.wake_score for s in seen[-max(1, self.cfg.runs):])

    @property
    def last_t(self) -> float | None:
        """The video time of the last run started (None before the first)."""
        return self._last_t

    def needs_readings(self, t: float) -> bool:
        """Whether :meth:`due` at ``t`` depends on the readings (between the busy and the idle
        interval since the last run); otherwise the time alone decides."""
        last = self._last_t
        if last is None or t < last:
            return False
        lo, hi = sorted((1.0 / self.cfg.busy_rate_hz, 1.0 / self.cfg.rate_hz))
        return lo - 1e-6 <= t - last < hi - 1e-6

    def due(self, t: float, index: int | None = None) -> bool:
        last = self._last_t
        if last is None or t < last:
            return True
        rate = self.cfg.busy_rate_hz if self.busy(index) else self.cfg.rate_hz
        return t - last >= 1.0 / rate - 1e-6

    def start(self, t: float) -> None:
        if self._last_t is not None and t < self._last_t:  # a rewind: what was read no longer applies
            self._readings.clear()
        self._last_t = t

    def done(self, index: int, score: float) -> None:
        self._readings.append((int(index), score if math.isfinite(score) else 0.0))

    def ran(self, t: float, index: int, score: float) -> None:
        self.start(t)
        self.done(index, score)
