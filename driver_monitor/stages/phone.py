"""The phone stage: the phone detector on the whole frame, on its schedule, on a thread of its own.

A file's run starts when its frame is decoded, ahead of the frame loop (:meth:`Pipeline.prepare
<driver_monitor.pipeline.Pipeline.prepare>` on the decoding thread); a live source's with the face
stage of its frame. Its reading is taken with the rest of the frame (the loop's second stage), so
the detector works beside the decoder and both stages, and a run that takes longer than a frame
holds the loop up for less of it.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..config import PhoneConfig
from ..cores import allowed_cores, pin
from ..monitor.phone import PhoneSchedule
from ..types import Frame

# Whether a run is due follows the readings of frames at least this many frames back (the stage
# waits for their runs when the rate decides it), so the runs fall on the same frames however fast
# each thread is; the evaluation's schedule (evaluation/phone.py) follows the same delay
PHONE_SCHEDULE_DELAY = 4


@dataclass(frozen=True, slots=True)
class PhoneRun:
    """A run started on a frame: its Future of (phones, ms); ``nobody``: the face stage before the
    frame saw nobody in view, so the reading is no phone (no driver to hold one)."""

    future: "Future[tuple[list[Any], float]]"
    nobody: bool = False


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
        self._pending: deque[tuple[int, Future[tuple[list[Any], float]]]] = deque()  # runs not yet in the schedule
        self._off_core: int | None = None  # the mesh core the detector's thread keeps off

    def start(self, frame: Frame) -> "Future[tuple[list[Any], float]] | None":
        """Start the detector on its own thread when a run is due on this frame
        (:class:`PhoneSchedule`: ``phone.rate_hz``, ``phone.busy_rate_hz`` after a phone-like score;
        a rewind runs it at once): its Future, else None. One thread calls it for a stream (the
        decoder's for a file, the face stage's for a live source): it keeps the schedule, taking
        the readings of earlier runs from their Futures."""
        t, index = frame.time_s, frame.index
        last = self.schedule.last_t
        if last is not None and t < last:  # a rewind: the runs before it no longer count
            self._pending.clear()
        self._record(index, wait=self.schedule.needs_readings(t))
        if not self.schedule.due(t, index):
            return None
        self.schedule.start(t)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="phone")
        run = self._pool.submit(self._detect, frame.image)
        self._pending.append((index, run))
        return run

    def _record(self, index: int, wait: bool) -> None:
        """Hand the schedule the readings of runs ``PHONE_SCHEDULE_DELAY`` frames or more before
        ``index``, in order: those finished, or (``wait``: the rate decides the next run) all."""
        while self._pending and self._pending[0][0] <= index - self.schedule.delay:
            i, run = self._pending[0]
            if not (wait or run.done()):
                return
            self._pending.popleft()
            try:
                found, _ = run.result()
            except Exception:  # the reading side raises it; the schedule counts no phone
                found = []
            self.schedule.done(i, found[0].score if found else 0.0)

    def read(self, frame: Frame, run: PhoneRun | None, timings: dict[str, float]) -> tuple[float | None, float | None]:
        """(best score, the monitor's reading) of the run started on this frame (waiting for it):
        0.0 when it found none; nobody in view reads (None, 0.0); no run, (None, None). The box
        is kept."""
        if run is None:
            return None, None
        found, ms = run.future.result()
        timings["phone"] = ms
        if run.nobody:
            self.box = None
            return None, 0.0
        score = found[0].score if found else 0.0
        self.box = found[0].box if found and score >= self.cfg.min_score else None
        return score, score

    def _keep_off_the_mesh(self) -> None:
        """Keep the detector's thread (the caller) off the mesh's core, once it is known."""
        core = self.mesh_core
        if core == self._off_core:
            return
        self._off_core = core
        others = allowed_cores() - {core} if core is not None else allowed_cores()
        if others:
            pin((0,), others)

    def _detect(self, image: Any) -> tuple[list[Any], float]:
        self._keep_off_the_mesh()
        t0 = time.perf_counter()
        found = self.detector.detect(image)
        return found, (time.perf_counter() - t0) * 1e3

    def close(self) -> None:
        """Stop the detector's thread (the detector stays open: its owner closes it)."""
        pool, self._pool = self._pool, None
        self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
