"""Phone use from the phone detector's readings: a vote over its last few runs (pure).

The detector runs a few times a second, not on every frame, and one call misses a phone the hand
hides on many frames (docs/phone_eval.md), so no single reading decides: the phone is in use once
``phone.votes`` of the last ``phone.runs`` readings score ``phone.min_score`` or more, and over
once none of them does (hysteresis: a phone half hidden for a run or two stays in use). Frames
without a reading change nothing.
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
