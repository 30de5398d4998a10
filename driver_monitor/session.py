"""The one frame loop, and the recorder of one drive's results.

Every consumer of a drive runs the same loop, :func:`run_frames`: read the next frame from a
:class:`~driver_monitor.capture.VideoSource` (timing the decode), analyse it with a
:class:`~driver_monitor.pipeline.Pipeline`, and, for a live source that delivered nothing for
``capture.read_timeout_s``, analyse a camera-lost tick (:class:`LostClock`, never a black frame).
``analyze`` writes what the loop yields, ``bench`` times it, the dashboard's worker takes one
result at a time under its playback controls, and a fleet worker runs it per drive.

:class:`Recorder` owns what one drive writes: ``frames.csv`` / ``events.jsonl`` / ``summary.json``
(:class:`~driver_monitor.recording.ResultWriter`) and, optionally, ``annotated.mp4``.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .config import Config
from .cores import allowed_cores, pin, this_core, usable_cores
from .recording import ResultWriter
from .types import FrameResult

if TYPE_CHECKING:  # pragma: no cover
    from .capture import VideoSource
    from .pipeline import Pipeline


class LostClock:
    """The one definition of "camera lost": a live source that delivered no frame for ``after_s``
    (``capture.read_timeout_s``) gives a camera-lost tick, and one more every ``after_s`` while
    none comes. It also times those ticks, as the clock of the frame loop (the pipeline has none):
    the video time of the last frame plus the wall time since it came, or, before any frame, the
    wall time since the loop started."""

    def __init__(self, after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.after_s = float(after_s)
        self._clock = clock
        self._start = self._since = clock()
        self._frame: tuple[float, float] | None = None  # (video time, wall time) of the last frame

    def frame(self, time_s: float) -> None:
        """A frame came (its video time)."""
        self._since = self._clock()
        self._frame = (time_s, self._since)

    def due(self) -> float | None:
        """After a read that gave nothing: the time of a camera-lost tick when one is due, else None."""
        now = self._clock()
        if now - self._since < self.after_s:
            return None
        self._since = now
        return self._frame[0] + (now - self._frame[1]) if self._frame is not None else now - self._start


def _lost_item(src: "VideoSource", lost: LostClock) -> Any:
    """What a read that gave nothing becomes: a lost tick (its frame number and time) when one is
    due, _END when the source has ended, else None (nothing yet: read again)."""
    if not src.is_live or src.ended:
        return _END
    t = lost.due()
    return None if t is None else _Lost(src.lost_tick(), t)


@dataclass(frozen=True, slots=True)
class _Lost:
    index: int | None
    time_s: float


def run_frames(src: "VideoSource", pipeline: "Pipeline", *, max_frames: int | None = None,
               should_stop: Callable[[], bool] = lambda: False, overlap: bool = True,
               idle_s: float | None = None) -> Iterator[FrameResult | None]:
    """Every result of a drive, in order: all frames of a file, the newest frames of a live source
    (with camera-lost ticks while it delivers nothing: :class:`LostClock`, after the pipeline's
    ``capture.read_timeout_s``), until the source ends, ``max_frames`` frames were analysed
    or ``should_stop()``. The caller finishes the pipeline (closing the open events) and closes the
    source. ``idle_s``: a consumer that must stay responsive (the dashboard) also gets None when
    no result came within that long; without it the loop only yields results.

    ``overlap`` (default): two stages on two threads: decoding and the face mesh of frame n+1 run
    while the rest of frame n (alignment, engine, smoothing, state, and the caller's writing) does
    (a file is also decoded up to ``_READ_AHEAD`` frames ahead of the mesh, on a third thread);
    the hand-off holds at most ``_HANDOFF`` frames, the order is kept and a file loses no frame, so
    the results are those of one thread (``overlap=False``). A live source keeps only the newest
    frame: a frame the second stage has not taken yet is replaced by a newer one. An error in the
    first stage is raised here; stopping early (``max_frames``, ``should_stop``, an exception in
    the caller, closing the generator) ends the first stage before this returns."""
    lost = LostClock(pipeline.cfg.capture.read_timeout_s)
    if overlap:
        yield from _two_stages(src, pipeline, max_frames, should_stop, lost, idle_s)
        return
    n = 0
    idle_from = time.perf_counter()
    while (max_frames is None or n < max_frames) and not should_stop():
        t0 = time.perf_counter()
        frame = src.read()
        if frame is not None:
            lost.frame(frame.time_s)
            yield pipeline.process(frame, decode_ms=(time.perf_counter() - t0) * 1e3)
            n += 1
            idle_from = time.perf_counter()
            continue
        item = _lost_item(src, lost)
        if item is _END:
            return
        if item is not None:
            yield pipeline.process(None, index=item.index, t_s=item.time_s)
            idle_from = time.perf_counter()
        elif idle_s is not None and time.perf_counter() - idle_from >= idle_s:
            yield None
            idle_from = time.perf_counter()


_HANDOFF = 2  # frames between the two stages
_WAKE_S = 0.2  # the second stage looks at should_stop at least this often while it waits
_JOIN_S = 0.005  # a stopping loop takes what a thread waits to hand on this often (a seek waits for it)
_WAIT_S = 0.02  # a stage waiting for the decoder looks at the stop this often
_READ_AHEAD = 3  # a file's frames decoded ahead of the mesh
_END = object()


def _first_stage(src: "VideoSource", pipeline: "Pipeline", hand: "queue.Queue[Any]", stop: threading.Event,
                 lost: LostClock) -> None:
    """Read, time the decode, run the mesh; hand (frame, decode_ms, detected) on, in order. A
    file is decoded ahead on a thread of its own (:class:`_ReadAhead`), so the mesh never waits
    for the decoder; a live source has its capture thread already."""
    reader = None if src.is_live else _ReadAhead(src, stop, pipeline.prepare)
    try:
        with _mesh_on_one_core(pipeline):
            _mesh_frames(src, pipeline, hand, stop, reader, lost)
    except BaseException as exc:  # reaches the second stage, which raises it
        _put(hand, exc, stop)
        return
    finally:
        if reader is not None:
            reader.close()
    _put(hand, _END, stop)


def _mesh_frames(src: "VideoSource", pipeline: "Pipeline", hand: "queue.Queue[Any]", stop: threading.Event,
                 reader: "_ReadAhead | None", lost: LostClock) -> None:
    while not stop.is_set():
        prepared = None
        if reader is not None:
            got = reader.next()
            if got is None:
                return
            frame, decode_ms, prepared = got
        else:
            t0 = time.perf_counter()
            frame = src.read()
            decode_ms = (time.perf_counter() - t0) * 1e3
        if frame is None:
            item: Any = _lost_item(src, lost)
            if item is _END:
                return
            if item is None:
                continue
        else:
            lost.frame(frame.time_s)
            item = (frame, decode_ms, pipeline.detect(frame, prepared))
        if src.is_live:
            _put_newest(hand, item)
        else:
            _put(hand, item, stop)


@contextlib.contextmanager
def _mesh_on_one_core(pipeline: "Pipeline") -> Iterator[None]:
    """With ``face.pin_mesh``, the calling thread (the mesh stage) and the threads of the mesh's
    graphs share the core it runs on, for as long as the block runs. The stage hands each frame to
    MediaPipe's graph thread and waits for it: on one core the hand-off wakes no other core and the
    mesh keeps its caches, while the other stage and the decoder have the other cores (on 2 cores
    +0.03x the bare mesh loop with the engine, +0.07x without: docs/benchmarks.md). The results are
    the same. Afterwards the graph threads may run anywhere again."""
    ids = getattr(pipeline.detector, "thread_ids", None)
    core = this_core() if ids is not None and getattr(pipeline.cfg.face, "pin_mesh", False) else None
    if core is None:
        yield
        return
    allowed = allowed_cores()
    pin((0, *ids), {core})  # 0: this thread
    pipeline.mesh_core = core  # the pipeline's own threads (the phone detector's) keep off it
    try:
        yield
    finally:
        pipeline.mesh_core = None
        pin(pipeline.detector.thread_ids, allowed)


def _put(hand: "queue.Queue[Any]", item: Any, *stops: threading.Event) -> None:
    """Hand an item on, waiting for room, unless one of ``stops`` is set (the loop is stopping)."""
    while not any(e.is_set() for e in stops):
        try:
            hand.put(item, timeout=0.05)
            return
        except queue.Full:
            pass


class _ReadAhead:
    """A file's frames decoded on their own thread, at most ``_READ_AHEAD`` ahead, in order, each
    with what ``prepare(frame)`` makes of it for the mesh (its RGB copy). ``next()`` gives
    (frame, decode_ms, prepared), None at the end, or raises the decoder's error; ``close()``
    stops the thread and waits for it (the caller may close the source after)."""

    def __init__(self, src: "VideoSource", stop: threading.Event, prepare: Callable[[Any], Any]) -> None:
        self._src = src
        self._prepare = prepare
        self._stop = stop
        self._done = threading.Event()
        self._q: queue.Queue[Any] = queue.Queue(maxsize=_READ_AHEAD)
        self._thread = threading.Thread(target=self._run, name="decode-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not (self._stop.is_set() or self._done.is_set()):
                t0 = time.perf_counter()
                frame = self._src.read()
                if frame is None:
                    break
                decode_ms = (time.perf_counter() - t0) * 1e3
                self._offer((frame, decode_ms, self._prepare(frame)))
        except BaseException as exc:
            self._offer(exc)
            return
        self._offer(_END)

    def _offer(self, item: Any) -> None:
        _put(self._q, item, self._stop, self._done)

    def next(self) -> tuple[Any, float, Any] | None:
        while not self._stop.is_set():
            try:
                item = self._q.get(timeout=_WAIT_S)
            except queue.Empty:
                continue
            if item is _END:
                return None
            if isinstance(item, BaseException):
                raise item
            return item
        return None

    def close(self) -> None:
        self._done.set()
        while self._thread.is_alive():  # a frame it waits to hand on is taken, so it sees the stop now
            _drain(self._q)
            self._thread.join(_JOIN_S)


def _drain(q: "queue.Queue[Any]") -> None:
    """Take everything ``q`` holds now (a stopping loop: nobody reads it any more)."""
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _put_newest(hand: "queue.Queue[Any]", item: Any) -> None:
    """A live source's frame never waits: when the hand-off is full its oldest frame gives way
    (this thread alone puts, so there is room after one is taken)."""
    try:
        hand.put_nowait(item)
    except queue.Full:
        try:
            hand.get_nowait()
        except queue.Empty:
            pass
        hand.put_nowait(item)


@contextlib.contextmanager
def _opencv_threads_per_stage() -> Iterator[None]:
    """While the stages run, OpenCV's own thread pool keeps off the cores the stages use: each
    stage has a core, and a pool worker woken on the other stage's core only takes turns with it
    (measured on 2 cores: alignment 0.9 ms alone, 3-4 ms beside the mesh with the pool). The pool
    gets the cores beyond the two stages, at least one thread, never more than it had."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, min(before, usable_cores() - 2)))
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _two_stages(src: "VideoSource", pipeline: "Pipeline", max_frames: int | None,
                should_stop: Callable[[], bool], lost: LostClock,
                idle_s: float | None) -> Iterator[FrameResult | None]:
    with _opencv_threads_per_stage():
        yield from _two_stage_loop(src, pipeline, max_frames, should_stop, lost, idle_s)


def _two_stage_loop(src: "VideoSource", pipeline: "Pipeline", max_frames: int | None,
                    should_stop: Callable[[], bool], lost: LostClock,
                    idle_s: float | None) -> Iterator[FrameResult | None]:
    hand: queue.Queue[Any] = queue.Queue(maxsize=_HANDOFF)
    stop = threading.Event()
    first = threading.Thread(target=_first_stage, args=(src, pipeline, hand, stop, lost), name="mesh-stage",
                             daemon=True)
    first.start()
    n = 0
    try:
        while (max_frames is None or n < max_frames) and not should_stop():
            try:
                item = hand.get(timeout=idle_s if idle_s is not None else _WAKE_S)
            except queue.Empty:  # nothing yet: a consumer that waits for nothing hears so
                if idle_s is not None:
                    yield None
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, _Lost):
                yield pipeline.process(None, index=item.index, t_s=item.time_s)
                continue
            frame, decode_ms, detected = item
            yield pipeline.process(frame, decode_ms=decode_ms, detected=detected)
            n += 1
    finally:
        stop.set()
        while first.is_alive():  # unblock a first stage waiting to hand a frame on
            _drain(hand)
            first.join(_JOIN_S)


def end_reason(src: "VideoSource") -> str | None:
    """Why the source ended before its end, or None when it ran to its end (a file) or was stopped."""
    if src.error:
        return src.error
    if src.is_live and src.ended:
        return "the live source was lost and did not come back"
    return None


def source_stats(src: "VideoSource") -> dict[str, Any]:
    """What a source counted that a reader of the results should see (live: frames dropped for a
    newer one, reconnects)."""
    out: dict[str, Any] = {"source": src.description, "source_fps": src.fps, "fps_source": src.fps_source}
    for name in ("dropped", "reconnects"):
        if hasattr(src, name):
            out[f"source_{name}"] = int(getattr(src, name))
    return out


class Recorder:
    """What one drive writes, the one way results are written (``analyze``, a fleet worker, the
    dashboard's recording and its export): results, the pictures of its alerts (``pictures``:
    event_pictures.py; off for results kept without their pixels) and an annotated video
    (``video_fps`` given).

    ``write(result)`` streams a result; ``close(summary, events)`` writes the events the pipeline
    closed at the end and summary.json, and returns the summary. Errors writing are one line
    (:class:`~driver_monitor.errors.OutputError`); what was written stays.
    """

    def __init__(self, out_dir: str | Path, cfg: Config, *, emotion_names: tuple[str, ...] = (),
                 au_names: tuple[str, ...] = (), region_names: tuple[str, ...] = (),
                 video_fps: float | None = None, pictures: bool = True) -> None:
        self.results = ResultWriter(out_dir, cfg, emotion_names=emotion_names, au_names=au_names,
                                    region_names=region_names)
        self.out_dir = self.results.out_dir
        self.video = None
        if video_fps is not None:
            from .annotate import AnnotatedVideoWriter

            self.video = AnnotatedVideoWriter(self.out_dir / "annotated.mp4", video_fps)
        self.pictures = None
        if pictures:
            from .event_pictures import EventPictures

            self.pictures = EventPictures(self.out_dir)  # events/NNN.jpg: each alert at its peak
        self.processing_s = 0.0  # time spent decoding and analysing frames (not waiting)

    @property
    def frames_written(self) -> int:
        return self.results.frames_written

    def write(self, result: FrameResult) -> None:
        if result.camera_ok:
            self.processing_s += float(result.timings_ms.get("total", 0.0)) / 1e3
        written = self.results.write(result)
        if self.pictures is not None:
            self.pictures.update(result, written)
        if self.video is not None:
            self.video.write(result)

    def drive_ended(self, events: Any) -> None:
        """The events the end of the drive closed (after its last frame), with their pictures."""
        written = self.results.write_events(events)
        if self.pictures is not None:
            self.pictures.close(written)

    def close(self, summary: Mapping[str, Any] | None = None, events: Any = ()) -> dict[str, Any]:
        try:
            self.drive_ended(events)
            frames = self.results.frames_written
            extra = {"processing_fps": round(frames / self.processing_s, 2) if self.processing_s > 0 else None}
            if self.video is not None:
                extra["annotated_video"] = self.video.path.name
            if self.pictures is not None and self.pictures.error is not None:
                extra["event_pictures_error"] = self.pictures.error
            return self.results.close({**extra, **(summary or {})})
        finally:
            if self.video is not None:
                self.video.close()
