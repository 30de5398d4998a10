"""The dashboard's worker: source.read() -> pipeline.process() on a QThread, results by signal.

The worker owns the source and the pipeline; the window never calls them. The window talks to
the worker only through thread-safe requests (``play``, ``pause``, ``seek``, ``step``,
``set_speed``, ``calibrate_now``, ``start_recording`` / ``stop_recording``, ``request_stop``),
which go into a queue the worker loop drains between frames, and gets back immutable
:class:`~driver_monitor.types.FrameResult` objects through ``result``. Errors never escape the
thread: they come back as a :class:`WorkerError` through ``failed``.

Replay (files): paced to the file's timestamps at ``speed`` (0.25x..4x), or as fast as possible
(``speed=None``); a seek restarts the analysis at the new frame with a fresh pipeline (face
tracker, filters and the driver-state machines; the engine is kept), because the state of the
drive before a jump says nothing about the frames after it. At the end of a file the worker
stays alive and paused, so the user can seek back. Started paused (``start_paused``), a file
shows its first frame, analysed, and waits. Live sources: every newest frame; no frame
within ``capture.read_timeout_s`` is processed as "camera lost" while the source reconnects. The
worker opens live sources with reads of at most ``LIVE_POLL_S`` and keeps the lost-camera clock
itself, so a stop request is seen within 0.2 s even while the camera is gone (closing within 2 s).
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from PyQt6.QtCore import QObject, QThread, pyqtSignal

from ..config import Config
from ..errors import DriverMonitorError, SourceError
from ..types import Event, Frame, FrameResult

SPEEDS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, None)  # None = as fast as possible
# A live read waits at most this long, so a stop request is seen within it even while the camera
# is lost; "camera lost" is still declared after capture.read_timeout_s without a frame.
LIVE_POLL_S = 0.2


class PipelineLike(Protocol):
    backend_description: str
    emotion_names: tuple[str, ...]
    au_names: tuple[str, ...]

    def process(self, frame: Frame | None, *, decode_ms: float | None = None) -> FrameResult: ...
    def calibrate_now(self) -> None: ...
    def finish(self) -> list[Event]: ...
    def close(self) -> None: ...


class PipelineFactory:
    """Makes the session's pipelines; the engine is made once and shared by all of them.

    ``create()`` the first pipeline; ``renew(old)`` a fresh one after a seek (closes the old one's
    face detector, keeps the engine); ``close(p)`` the last one, engine included.
    """

    def __init__(self, cfg: Config, *, make_engine: Callable[[Config], tuple[Any, Any]] | None = None,
                 detector_factory: Callable[[], Any] | None = None) -> None:
        self.cfg = cfg
        self._make_engine = make_engine
        self._detector_factory = detector_factory
        self.engine: Any = None
        self.selection: Any = None
        self._made_engine = False

    def _new(self):
        from ..pipeline import Pipeline

        detector = self._detector_factory() if self._detector_factory else None
        return Pipeline(self.cfg, self.engine, detector=detector)

    def create(self):
        if not self._made_engine:
            if self._make_engine is None:
                from ..config import PROJECT_ROOT
                from ..engine.select import open_engine_or_none

                self.engine, self.selection = open_engine_or_none(self.cfg.engine, PROJECT_ROOT)
            else:
                self.engine, self.selection = self._make_engine(self.cfg)
            self._made_engine = True
        return self._new()

    def renew(self, old):
        detector = getattr(old, "detector", None)
        if detector is not None:
            detector.close()
        return self._new()

    def close(self, pipeline) -> None:
        if pipeline is not None:
            pipeline.close()  # closes its detector and the shared engine
        elif self.engine is not None:
            self.engine.close()
        self.engine = None


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


@dataclass(frozen=True, slots=True)
class WorkerError:
    """An error from the worker thread. ``stage``: open | run | source | record."""

    stage: str
    message: str
    error_type: str
    is_source_error: bool = False
    fatal: bool = True
    details: str = ""


@dataclass(frozen=True, slots=True)
class PlaybackState:
    paused: bool
    at_end: bool
    speed: float | None
    position: int = -1
    recording: str | None = None


@dataclass
class _Pacer:
    """Sleeps so replayed frames come at ``time_s / speed`` of wall time (re-anchors when late)."""

    anchor_wall: float | None = None
    anchor_media: float = 0.0
    max_lag_s: float = 0.25

    def reset(self) -> None:
        self.anchor_wall = None

    def delay(self, media_t: float, speed: float | None) -> float:
        if speed is None:
            return 0.0
        now = time.perf_counter()
        if self.anchor_wall is None:
            self.anchor_wall, self.anchor_media = now, media_t
            return 0.0
        due = self.anchor_wall + (media_t - self.anchor_media) / speed
        if now - due > self.max_lag_s:  # processing slower than real time: do not try to catch up
            self.anchor_wall, self.anchor_media = now, media_t
            return 0.0
        return max(0.0, due - now)


@dataclass
class _Commands:
    paused: bool | None = None
    toggle: int = 0
    speed: list = field(default_factory=list)
    seek: int | None = None
    step: int = 0
    calibrate: bool = False
    record: list = field(default_factory=list)


class SessionWorker(QObject):
    """Runs one session (one source) on a QThread. Construct, then :func:`start_worker`."""

    opened = pyqtSignal(object)           # SessionInfo
    result = pyqtSignal(object, float)    # FrameResult, perf_counter() when its frame was read
    events = pyqtSignal(object)           # list[Event] closed by pipeline.finish() at the end
    failed = pyqtSignal(object)           # WorkerError
    playback = pyqtSignal(object)         # PlaybackState
    ended = pyqtSignal(str)               # why the session ended

    def __init__(self, cfg: Config, source: Any, *, factory: Any = None,
                 open_source: Callable[..., Any] | None = None, start_paused: bool = False,
                 speed: float | None = 1.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.source_spec = source
        self.factory = factory if factory is not None else PipelineFactory(cfg)
        if open_source is None:
            from ..capture import open_source as _open

            open_source = _open
        self._open_source = open_source
        self._start_paused = start_paused
        self._speed = speed
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.running = False
        self.stopped = threading.Event()  # set when run() has returned and the source is closed
        self.frames_processed = 0
        self.source = None

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
        self._put(("record", (str(out_dir), bool(video))))

    def stop_recording(self) -> None:
        self._put(("record", None))

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # -------------------------------------------------------------- the loop (worker thread)

    def _drain(self) -> _Commands:
        c = _Commands()
        while True:
            try:
                cmd = self._cmds.get_nowait()
            except queue.Empty:
                return c
            kind = cmd[0]
            if kind == "paused":
                c.paused, c.toggle = cmd[1], 0
            elif kind == "toggle":
                c.toggle += 1
            elif kind == "speed":
                c.speed.append(cmd[1])
            elif kind == "seek":
                c.seek, c.step = cmd[1], 0
            elif kind == "step":
                c.step += cmd[1]
            elif kind == "calibrate":
                c.calibrate = True
            elif kind == "record":
                c.record.append(cmd[1])

    def _error(self, stage: str, exc: BaseException, fatal: bool = True) -> WorkerError:
        user = isinstance(exc, DriverMonitorError)
        msg = str(exc) if user else f"{type(exc).__name__}: {exc}"
        return WorkerError(stage=stage, message=msg, error_type=type(exc).__name__,
                           is_source_error=isinstance(exc, SourceError), fatal=fatal,
                           details="" if user else traceback.format_exc())

    def run(self) -> None:  # noqa: C901 - one loop, kept readable by the comments
        self.running = True
        pipeline = None
        source = None
        writer = None
        video_writer = None
        reason = "stopped"
        try:
            try:
                capture_cfg = self.cfg.capture
                if capture_cfg.read_timeout_s > LIVE_POLL_S:
                    capture_cfg = dataclasses.replace(capture_cfg, read_timeout_s=LIVE_POLL_S)
                source = self._open_source(self.source_spec, capture_cfg)
                self.source = source
                pipeline = self.factory.create()
            except BaseException as exc:  # noqa: BLE001 - every failure reaches the UI
                self.failed.emit(self._error("open", exc))
                reason = f"could not start: {exc}"
                return
            live = bool(source.is_live)
            self.opened.emit(SessionInfo(
                source=source.description, is_live=live, fps=float(source.fps), frame_count=source.frame_count,
                backend=pipeline.backend_description, emotion_names=tuple(pipeline.emotion_names),
                au_names=tuple(pipeline.au_names), selection=getattr(self.factory, "selection", None)))
            paused = self._start_paused and not live
            speed = self._speed
            pacer = _Pacer()
            next_index = 0
            last_index = -1
            at_end = False
            finished = False
            # process one frame even while paused: after a seek, and at a paused start (the first
            # frame and its results are shown, then the replay waits for play / step)
            show_one = paused
            steps = 0
            last_frame_wall = time.monotonic()
            lost_after_s = self.cfg.capture.read_timeout_s

            def announce() -> None:
                rec = str(writer.out_dir) if writer is not None else None
                self.playback.emit(PlaybackState(paused, at_end, speed, last_index, rec))

            announce()
            while not self._stop.is_set():
                c = self._drain()
                changed = False
                if c.paused is not None and c.paused != paused:
                    paused, changed = c.paused, True
                if c.toggle % 2:
                    paused, changed = not paused, True
                if c.speed:
                    speed, changed = c.speed[-1], True
                if changed:
                    pacer.reset()
                if c.calibrate:
                    pipeline.calibrate_now()
                for target in c.record:
                    if writer is not None:
                        writer.close({"source": source.description, "backend": pipeline.backend_description,
                                      "complete": True, "recorded_from": "dashboard",
                                      "annotated_video": video_writer.path.name if video_writer else None})
                        writer = None
                    if video_writer is not None:
                        video_writer.close()
                        video_writer = None
                    if target is not None:
                        out_dir, with_video = target
                        try:
                            from ..recording import ResultWriter

                            writer = ResultWriter(out_dir, self.cfg, emotion_names=pipeline.emotion_names,
                                                  au_names=pipeline.au_names)
                            if with_video:
                                from ..annotate import AnnotatedVideoWriter

                                video_writer = AnnotatedVideoWriter(writer.out_dir / "annotated.mp4", source.fps)
                        except BaseException as exc:  # noqa: BLE001
                            self.failed.emit(self._error("record", exc, fatal=False))
                    changed = True
                if c.step < 0 and not live:
                    c.seek = max(0, last_index + c.step)
                elif c.step > 0:
                    steps += c.step
                    paused, changed = True, True
                if c.seek is not None and not live:
                    target = max(0, c.seek)
                    if source.frame_count:
                        target = min(target, source.frame_count - 1)
                    try:
                        if target != next_index or at_end:
                            source.seek(target)
                            pipeline = self.factory.renew(pipeline)
                            finished = False
                        next_index, at_end, show_one = target, False, True
                    except SourceError as exc:
                        self.failed.emit(self._error("source", exc, fatal=False))
                    pacer.reset()
                    changed = True
                if changed:
                    announce()
                if (paused or at_end) and not show_one and steps == 0:
                    self._wake.wait(0.05)
                    self._wake.clear()
                    continue

                t_read = time.perf_counter()
                frame = source.read()
                decode_ms = (time.perf_counter() - t_read) * 1e3
                if frame is None:
                    if live and not source.ended:  # camera lost: say so, the source reconnects
                        if time.monotonic() - last_frame_wall < lost_after_s:
                            continue  # a short poll, not yet read_timeout_s without a frame
                        r = pipeline.process(None)
                        self._emit(r, t_read, writer, video_writer)
                        continue
                    if source.error:
                        self.failed.emit(WorkerError("source", source.error, "SourceError", True, fatal=False))
                    if not finished:
                        self.events.emit(list(pipeline.finish()))
                        finished = True
                    if live:
                        reason = "the live source was lost and did not come back"
                        break
                    at_end, show_one, steps, paused = True, False, 0, True  # seeking back shows a frame, paused
                    announce()
                    continue
                last_frame_wall = time.monotonic()
                r = pipeline.process(frame, decode_ms=decode_ms)
                next_index = last_index = frame.index
                next_index += 1
                if not live and not show_one and steps == 0:
                    delay = pacer.delay(frame.time_s, speed)
                    if delay > 0:
                        self._stop.wait(delay)
                self._emit(r, t_read, writer, video_writer)
                if show_one or steps:
                    if show_one:  # the frame asked for by a seek / the paused start; steps go on from it
                        show_one = False
                    else:
                        steps -= 1
                    pacer.reset()
                    announce()
        except BaseException as exc:  # noqa: BLE001 - a worker exception must reach the UI
            self.failed.emit(self._error("run", exc))
            reason = f"stopped by an error: {exc}"
        finally:
            for closer in (lambda: writer.close({"source": getattr(source, "description", ""), "complete": True,
                                                 "recorded_from": "dashboard"}) if writer is not None else None,
                           lambda: video_writer.close() if video_writer is not None else None):
                try:
                    closer()
                except BaseException:  # noqa: BLE001 - closing must finish
                    pass
            for closer in (lambda: source.close() if source is not None else None,
                           lambda: self.factory.close(pipeline)):
                try:
                    closer()
                except BaseException:  # noqa: BLE001 - closing must finish
                    pass
            self.running = False
            self.stopped.set()
            self.ended.emit(reason)

    def _emit(self, r: FrameResult, t_read: float, writer: Any, video_writer: Any = None) -> None:
        self.frames_processed += 1
        if writer is not None:
            writer.write(r)
        if video_writer is not None:
            video_writer.write(r)
        self.result.emit(r, t_read)


def start_worker(worker: SessionWorker) -> QThread:
    """Move ``worker`` to a new QThread, run it there and return the (started) thread."""
    thread = QThread()
    thread.setObjectName("driver-monitor-worker")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.ended.connect(thread.quit)
    thread.start()
    return thread
