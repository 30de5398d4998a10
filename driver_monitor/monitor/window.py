"""A sliding time window of stamped values with running sums (pure, clock passed in).

PERCLOS (read-eye time and closed time), the blink rate, the yawn count and the distraction
time-sharing account all keep "what happened within the last W seconds". :class:`TimeWindow` is
that one bookkeeping: ``add(t_s, *values)`` stamps an entry, ``drain(t_s)`` drops the entries from
the front of the window while they are stamped at or before ``t_s - window_s`` (with a 1e-9 s float
slack), keeping one running sum per value; ``len()`` counts the entries inside.
"""
from __future__ import annotations

from collections import deque

_EPS = 1e-9


class TimeWindow:
    """Entries stamped with a time over the last ``window_s``: their count and ``sums`` running
    sums (``totals``; ``total`` is the first). ``sums=0`` only counts stamps.

    ``nonnegative``: after each drain the sums are floored at 0 (an account that also books
    negative corrections must not drift below zero by float rounding)."""

    def __init__(self, window_s: float, *, sums: int = 0, nonnegative: bool = False) -> None:
        self.window_s = window_s
        self.nonnegative = nonnegative
        self._items: deque[tuple[float, tuple[float, ...]]] = deque()
        self.totals = [0.0] * sums

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total(self) -> float:
        return self.totals[0]

    def add(self, t_s: float, *values: float) -> None:
        """Stamp an entry at ``t_s`` with one value per running sum (entries go in time order)."""
        if len(values) != len(self.totals):
            raise ValueError(f"expected {len(self.totals)} values, got {len(values)}")
        self._items.append((t_s, values))
        totals = self.totals
        for i, v in enumerate(values):
            totals[i] += v

    def drain(self, t_s: float) -> None:
        """Drop the entries that have left the window at ``t_s``."""
        items, totals = self._items, self.totals
        while items and items[0][0] <= t_s - self.window_s + _EPS:
            for i, v in enumerate(items.popleft()[1]):
                totals[i] -= v
        if self.nonnegative:
            for i, v in enumerate(totals):
                totals[i] = max(0.0, v)

    def clear(self) -> None:
        self._items.clear()
        self.totals = [0.0] * len(self.totals)
