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
    """When the detector runs and when its reading counts (pure; the pipeline and the evaluation
    both follow it). ``due(t)``: a run starts on the frame at video time ``t`` (then ``start(t)``);
    ``ready(t)``: the run in flight gives its reading on this frame (then ``done(score)``), at
    least ``lag_s`` of video after its own frame, so the detector works beside the frames in
    between; ``ran(t, score)``: a run read at once. One run at a time. The interval is
    1 / ``phone.busy_rate_hz`` while one of the last ``phone.runs`` readings reached
    ``phone.wake_score``, else 1 / ``phone.rate_hz``; the first frame and a rewind (``t`` before
    the last run) are due at once."""

    def __init__(self, cfg: PhoneConfig, lag_s: float = 0.0) -> None:
        self.cfg = cfg
        self.lag_s = float(lag_s)
        self.reset()

    def reset(self) -> None:
        self._last_t: float | None = None
        self._pending_t: float | None = None
        self._scores: deque[float] = deque(maxlen=max(1, self.cfg.runs))

    @property
    def busy(self) -> bool:
        return any(s >= self.cfg.wake_score for s in self._scores)

    @property
    def pending(self) -> bool:
        return self._pending_t is not None

    def due(self, t: float) -> bool:
        last = self._last_t
        if self._pending_t is not None:
            return False
        if last is None or t < last:
            return True
        rate = self.cfg.busy_rate_hz if self.busy else self.cfg.rate_hz
        return t - last >= 1.0 / rate - 1e-6

    def ready(self, t: float) -> bool:
        pend = self._pending_t
        return pend is not None and t >= pend + self.lag_s - 1e-6

    def start(self, t: float) -> None:
        self._last_t = self._pending_t = t

    def done(self, score: float) -> None:
        self._pending_t = None
        self._scores.append(score if math.isfinite(score) else 0.0)

    def ran(self, t: float, score: float) -> None:
        self.start(t)
        self.done(score)
