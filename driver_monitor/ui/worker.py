"""The dashboard's worker: one session's frames read and analysed on a QThread, results by signal.

The worker owns the source, the pipeline and a recording; the window never calls them. The window
talks to the worker only through thread-safe requests (``play``, ``pause``, ``seek``, ``step``,
``set_speed``, ``calibrate_now``, ``start_recording`` / ``stop_recording``, ``request_stop``),
which go into a queue the worker drains between frames, and gets back immutable
:class:`~driver_monitor.types.FrameResult` objects through ``result``. Errors never escape the
thread: they come back as a :class:`WorkerError` through ``failed``.

The worker keeps the thread, the queue and the signals; what to do next is decided by the pure
:class:`~driver_monitor.ui.playback.Playback` controller; the drive is a
:class:`~driver_monitor.runtime.DriveSession` of the run's :class:`~driver_monitor.runtime.Runtime`
(the models ``analyze`` and ``batch`` use, opened the same way), stepped one frame at a time, and a
recording is a :class:`driver_monitor.session.Recorder`.

Replay (files): paced to the file's timestamps at ``speed`` (0.25x..4x), or as fast as possible
(``speed=None``); a seek restarts the analysis at the new frame with a fresh pipeline (face
tracking, filters and the driver-state machines; the models are kept), because the state of the
drive before a jump says nothing about the frames after it. At the end of a file the worker
stays alive and paused, so the user can seek back. Started paused (``start_paused``), a file
shows its first frame, analysed, and waits. Live sources: every newest frame; no frame
within ``capture.read_timeout_s`` is a "camera lost" tick while the source reconnects (decided
where ``analyze`` decides it: session.LostClock). The results come from the drive's frame loop,
the one ``analyze`` writes from (for a file two stages: the next frame's face mesh runs while this
one is finished; for a live source one thread, so a frame waits for no other); the worker takes a
result when its controller wants one, so the loop waits while paused.
Live sources are opened with reads of at most ``LIVE_POLL_S`` and the loop says when nothing came
within it, so a stop request is seen within 0.2 s even while the camera is gone (closing
within 2 s). A live source's counts (frames dropped for a newer one, reconnects) come through
``stats`` when they change.
"""
from __future__ import annotations

import dataclasses
import math
import queue
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterator

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from .. import session
from ..config import Config
from ..errors import DriverMonitorError, SourceError
from ..runtime import DriveSession, Runtime
from ..types import FrameResult
from .playback import (SPEEDS, Commands, FramePlan, Plan, Playback, PlaybackState, RecordTarget, Seek,
                       merge_requests)

__all__ = ["SPEEDS", "LIVE_POLL_S", "PlaybackState", "SessionInfo", "SessionWorker",
           "WorkerError", "start_worker"]

# A live read waits at most this long, so a stop request is seen within it even while the camera
# is lost; "camera lost" is still declared after capture.read_timeout_s without a frame.
LIVE_POLL_S = 0.2
STATS_INTERVAL_S = 0.5  # a live source's counts (dropped frames, reconnects) are looked at this often
_ENDED = object()  # the frame loop has no more results


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What the worker opened: shown in the status bar and used by export."""

    source: str
    is_live: bool
    fps: float
    frame_count: int | None
    backend: str
    emotion_names: tuple[str, ...] = ()
    au_names: tuple[str, ...] = ()
    selection: Any = None
    region_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerError:
    """An error from the worker thread. ``stage``: open | run | source | record."""

    stage: str
    message: str
    error_type: str
    is_source_error: bool = False
    fatal: bool = True
    details: str = ""


class SessionWorker(QObject):
    """Runs one session (one source) on a QThread. Construct, then :func:`start_worker`."""

    opened = pyqtSignal(object)           # SessionInfo
    result = pyqtSignal(object, float)    # FrameResult, perf_counter() when its frame was read
    events = pyqtSignal(object)           # list[Event] closed by pipeline.finish() at the end
    failed = pyqtSignal(object)           # WorkerError
    playback = pyqtSignal(object)         # PlaybackState
    stats = pyqtSignal(object)            # dict, session.source_stats() of a live source, when it changes
    ended = pyqtSignal(str)               # why the session ended

    def __init__(self, cfg: Config, source: Any, *, runtime: Runtime | None = None, start_paused: bool = False,
                 speed: float | None = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.source_spec = source
        # the run's models, opened on this worker's thread when the session starts, kept across seeks
        self.runtime = runtime if runtime is not None else Runtime(cfg, log=lambda m: None)
        self._start_paused = start_paused
        self._speed = speed
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.running = False
        self.stopped = threading.Event()  # set when run() has returned and the source is closed
        self.frames_processed = 0
        self.source = None
        # the session's state, owned by the worker thread
        self.drive: DriveSession | None = None
        self._results: Iterator[FrameResult | None] | None = None  # the drive's frame loop, taken from
        self._recorder: session.Recorder | None = None
        self._playback: Playback | None = None
        self._stats_at = -math.inf
        self._last_stats: dict | None = None

    # -------------------------------------------------------------- requests (any thread)

    def _put(self, cmd: tuple) -> None:
        self._cmds.put(cmd)
        self._wake.set()

    def play(self) -> None:
        self._put(("paused", False))

    def pause(self) -> None:
        self._put(("paused", True))

    def toggle_pause(self) -> None:
        self._put(("toggle",))

    def set_speed(self, speed: float | None) -> None:
        if speed is not None and not (0.0 < speed <= 16.0):
            raise ValueError(f"replay speed {speed} is out of range; use 0.25..4 or None (as fast as possible)")
        self._put(("speed", speed))

    def seek(self, index: int) -> None:
        self._put(("seek", int(index)))

    def step(self, n: int = 1) -> None:
        self._put(("step", int(n)))

    def calibrate_now(self) -> None:
        self._put(("calibrate",))

    def start_recording(self, out_dir: str, video: bool = True) -> None:
        """Stream results (frames.csv, events.jsonl, summary.json) and optionally annotated.mp4 to ``out_dir``."""
        self._put(("record", RecordTarget(str(out_dir), bool(video))))

    def stop_recording(self) -> None:
        self._put(("record", None))

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # -------------------------------------------------------------- the session (worker thread)

    def run(self) -> None:
        """Open the source and the pipeline, run the playback loop until a stop request or the end
        of a live source, then close everything. Every exception reaches the window (``failed``)."""
        self.running = True
        reason = "stopped"
        try:
            failure = self._open()
            reason = failure if failure is not None else self._loop()
        except BaseException as exc:
            self.failed.emit(self._error("run", exc))
            reason = f"stopped by an error: {exc}"
        finally:
            self._close()
            self.running = False
            self.stopped.set()
            self.ended.emit(reason)

    def _open(self) -> str | None:
        """Open the source (live reads of at most LIVE_POLL_S) and the first pipeline, and say what
        was opened; returns why the session could not start, or None."""
        try:
            capture_cfg = self.cfg.capture
            if capture_cfg.read_timeout_s > LIVE_POLL_S:
                capture_cfg = dataclasses.replace(capture_cfg, read_timeout_s=LIVE_POLL_S)
            self.source = self.runtime.open_source(self.source_spec, capture_cfg)
            self.drive = self.runtime.session(self.source)
        except BaseException as exc:
            self.failed.emit(self._error("open", exc))
            return f"could not start: {exc}"
        src, pipeline = self.source, self.drive.pipeline
        self.opened.emit(SessionInfo(
            source=src.description, is_live=bool(src.is_live), fps=float(src.fps), frame_count=src.frame_count,
            backend=pipeline.backend_description, emotion_names=tuple(pipeline.emotion_names),
            au_names=tuple(pipeline.au_names), selection=self.runtime.selection,
            region_names=tuple(pipeline.region_names)))
        self._playback = Playback(live=bool(src.is_live), frame_count=src.frame_count,
                                  start_paused=self._start_paused, speed=self._speed)
        return None

    def _loop(self) -> str:
        """Carry out the queued requests, then read, analyse and show one frame; again until a stop
        request (or a live source is gone: returns why)."""
        self._announce()
        self._emit_stats(force=True)
        while not self._stop.is_set():
            self._carry_out(self._playback.apply(self._drain()))
            if not self._playback.wants_frame:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            ended = self._advance()
            if ended is not None:
                return ended
            self._emit_stats()
        return "stopped"

    def _drain(self) -> Commands:
        requests = []
        while True:
            try:
                requests.append(self._cmds.get_nowait())
            except queue.Empty:
                return merge_requests(requests)

    def _carry_out(self, plan: Plan) -> None:
        if plan.calibrate:
            self.drive.calibrate_now()
        if plan.stop_recording:
            self._stop_recording()
        if plan.start_recording is not None:
            self._start_recording(plan.start_recording)
        if plan.seek is not None:
            self._seek(plan.seek)
        if plan.announce:
            self._announce()

    def _seek(self, seek: Seek) -> None:
        """Move the source and restart the analysis there with a fresh pipeline (the models are kept)."""
        try:
            if seek.renew:
                self._stop_loop()  # its first stage reads ahead: stopped before the source moves
                self.drive.seek(seek.index)
            self._playback.seeked(seek.index)
        except SourceError as exc:
            self.failed.emit(self._error("source", exc, fatal=False))

    def _advance(self) -> str | None:
        """Take the next result of the drive's frame loop and show it (paced at the replay speed):
        a frame, a "camera lost" tick (session.LostClock decides), nothing within LIVE_POLL_S (the
        requests are looked at again), or the end. Returns why the session ends, else None."""
        if self._results is None:  # a live frame waits for no other: one thread; a file's replay: two stages
            self._results = self.drive.results(overlap=not self.source.is_live, idle_s=LIVE_POLL_S,
                                               should_stop=self._stop.is_set)
        r = next(self._results, _ENDED)
        got_at = time.perf_counter()
        if r is None:
            return None
        if r is _ENDED:
            self._results = None
            return None if self._stop.is_set() else self._end()
        plan = FramePlan()
        if r.camera_ok:
            plan = self._playback.on_frame(r.index, r.time_s, now=got_at)
        if plan.delay_s > 0:
            self._stop.wait(plan.delay_s)
        # the latency runs from the frame's capture (live), or from when its analysis began (a file)
        captured = r.frame.captured_at
        self._emit(r, captured if captured is not None else got_at - float(r.timings_ms.get("total", 0.0)) / 1e3)
        if plan.announce:
            self._announce()
        return None

    def _stop_loop(self) -> None:
        """End the frame loop (its first stage stops and is waited for)."""
        results, self._results = self._results, None
        if results is not None:
            results.close()

    def _end(self) -> str | None:
        """The source has no more frames: close the open events; a file waits at its end, paused."""
        if self.source.error:
            self.failed.emit(WorkerError("source", self.source.error, "SourceError", True, fatal=False))
        plan = self._playback.on_end()
        if plan.finish:
            ended = list(self.drive.finish())
            if self._recorder is not None:  # a recording keeps the events the end of the drive closed
                self._recorder.drive_ended(ended)
            self.events.emit(ended)
        if plan.announce:
            self._announce()
        return "the live source was lost and did not come back" if plan.stop else None

    def _emit(self, r: FrameResult, read_at: float) -> None:
        self.frames_processed += 1
        if self._recorder is not None:
            self._recorder.write(r)
        self.result.emit(r, read_at)

    def _announce(self) -> None:
        self.playback.emit(self._playback.state)

    def _emit_stats(self, force: bool = False) -> None:
        """A live source's counts (frames dropped for a newer one, reconnects) when they changed,
        looked at every STATS_INTERVAL_S."""
        if not self.source.is_live:
            return
        now = time.perf_counter()
        if not force and now - self._stats_at < STATS_INTERVAL_S:
            return
        self._stats_at = now
        stats = session.source_stats(self.source)
        if stats != self._last_stats:
            self._last_stats = stats
            self.stats.emit(stats)

    # -------------------------------------------------------------- recording (worker thread)

    def _start_recording(self, target: RecordTarget) -> None:
        try:
            pipeline = self.drive.pipeline
            self._recorder = session.Recorder(
                target.out_dir, self.cfg, emotion_names=tuple(pipeline.emotion_names),
                au_names=tuple(pipeline.au_names), region_names=tuple(pipeline.region_names),
                video_fps=self.source.fps if target.video else None)
        except BaseException as exc:
            self.failed.emit(self._error("record", exc, fatal=False))
            return
        self._playback.recording_started(str(self._recorder.out_dir))

    def _stop_recording(self) -> None:
        """Close the recording: the rows written, summary.json with the source's counts."""
        recorder, self._recorder = self._recorder, None
        if self._playback is not None:
            self._playback.recording_stopped()
        if recorder is None:
            return
        summary: dict[str, Any] = {"recorded_from": "dashboard", "complete": True}
        try:
            summary.update(session.source_stats(self.source), backend=self.drive.pipeline.backend_description)
        finally:
            recorder.close(summary)  # written even when the source could not say more

    def _close(self) -> None:
        """Close the recording, the drive (its source and pipeline) and the models; each one is tried."""
        for closer in (self._stop_recording, self._stop_loop,
                       lambda: self.drive.close() if self.drive is not None else None,
                       lambda: self.source.close() if self.source is not None else None,
                       self.runtime.close):
            try:
                closer()
            except BaseException:
                pass

    def _error(self, stage: str, exc: BaseException, fatal: bool = True) -> WorkerError:
        user = isinstance(exc, DriverMonitorError)
        msg = str(exc) if user else f"{type(exc).__name__}: {exc}"
        return WorkerError(stage=stage, message=msg, error_type=type(exc).__name__,
                           is_source_error=isinstance(exc, SourceError), fatal=fatal,
                           details="" if user else traceback.format_exc())

def start_worker(worker: SessionWorker) -> QThread:
    """Move ``worker`` to a new QThread, run it there and return the (started) thread."""
    thread = QThread()
    thread.setObjectName("driver-monitor-worker")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.ended.connect(thread.quit)
    thread.start()
    return thread
