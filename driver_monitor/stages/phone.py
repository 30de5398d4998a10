"""The phone stage: the phone detector on the whole frame, on its schedule, on a thread of its own.

A run starts with the face stage of its frame (the frame loop's first stage) and its reading is
taken with the rest of the frame (the second), so the detector works beside both.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from ..config import PhoneConfig
from ..cores import allowed_cores, pin
from ..monitor.phone import PhoneSchedule
from ..types import Frame

# Whether a run is due follows the readings of frames at least this many frames back: with two
# frames in the hand-off (session._HANDOFF) and one being analysed, those are always in when a
# frame's mesh starts, so the runs fall on the same frames however fast each stage is
PHONE_SCHEDULE_DELAY = 4
NOBODY = "nobody"  # a phone run due while nobody is in view: read as no phone, the detector rests


class PhoneDetector(Protocol):
    """What the phone stage asks of a detector (engine.phone.PhoneDetector): the phones on a frame,
    best first, each with ``score`` and ``box`` (x0, y0, x1, y1) in frame pixels."""

    def detect(self, image: np.ndarray) -> list[Any]: ...
    def close(self) -> None: ...


class PhoneStage:
    """``start(frame, nobody)`` when a frame's face stage runs; ``read(frame, run)`` with the rest
    of it: (the detector's best score, the reading the monitor gets). ``box``: the phone of the
    latest run at ``phone.min_score`` or more, kept until a run finds none. ``mesh_core``: the core
    the face stage keeps to (the frame loop's bottleneck), which the detector's thread keeps off."""

    def __init__(self, cfg: PhoneConfig, detector: PhoneDetector) -> None:
        self.cfg = cfg
        self.detector = detector
        self.schedule = PhoneSchedule(cfg, PHONE_SCHEDULE_DELAY)
        self.box: tuple[float, float, float, float] | None = None
        self.mesh_core: int | None = None
        self._pool: ThreadPoolExecutor | None = None  # the detector's own thread (made on its first run)

    def start(self, frame: Frame, nobody: bool) -> Any:
        """Start the detector on its own thread when a run is due on this frame
        (:class:`PhoneSchedule`: ``phone.rate_hz``, ``phone.busy_rate_hz`` after a phone-like score;
        a rewind runs it at once): its Future; NOBODY when the last face stage saw nobody in view
        (no driver to hold a phone, no run); else None."""
        if not self.schedule.due(frame.time_s, frame.index):
            return None
        self.schedule.start(frame.time_s)
        if nobody:
            return NOBODY
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="phone", initializer=self._keep_off_the_mesh)
        return self._pool.submit(self._detect, frame.image)

    def read(self, frame: Frame, run: Any, timings: dict[str, float]) -> tuple[float | None, float | None]:
        """(best score, the monitor's reading) of the run started on this frame (waiting for it):
        0.0 when it found none; nobody in view reads (None, 0.0); no run, (None, None). The reading
        is recorded for the schedule and the box kept."""
        if run is None:
            return None, None
        if run is NOBODY:
            self.schedule.done(frame.index, 0.0)
            self.box = None
            return None, 0.0
        found, ms = run.result()
        timings["phone"] = ms
        score = found[0].score if found else 0.0
        self.schedule.done(frame.index, score)
        self.box = found[0].box if found and score >= self.cfg.min_score else None
        return score, score

    def _keep_off_the_mesh(self) -> None:
        core = self.mesh_core
        others = allowed_cores() - {core} if core is not None else set()
        if others:
            pin((0,), others)

    def _detect(self, image: Any) -> tuple[list[Any], float]:
        t0 = time.perf_counter()
        found = self.detector.detect(image)
        return found, (time.perf_counter() - t0) * 1e3

    def close(self) -> None:
        """Stop the detector's thread (the detector stays open: its owner closes it)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
