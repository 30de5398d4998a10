"""Video sources: a camera index, a video file or a stream URL behind one interface.

* Files are replayed frame by frame, in order, every frame: ``time_s = index / fps`` with
  ``cfg.fps`` when set, else the container's fps when it is plausible (1-240 fps), else
  ``cfg.fallback_fps`` with a warning (``.fps_source`` says which, ``.warning`` why). A file that
  stops decoding before its announced end (a truncated copy) ends with ``read() -> None`` and
  ``.error`` set; the frames that decoded before are kept. A URL that serves a video file (it
  announces a frame count) is replayed the same way: it ends, it is not reconnected from the start.
* Live sources (camera, stream) run on a capture thread that keeps only the newest frame
  (``Queue(maxsize=1)``): latency stays bounded whatever the consumer's speed. When the device
  stops delivering, ``read()`` returns None after ``cfg.read_timeout_s`` with ``.lost`` True and the
  thread tries to reconnect ``cfg.reconnect_attempts`` times, ``cfg.reconnect_interval_s`` apart;
  ``.ended`` is True once it gave up, or once that many reconnects in a row brought no frame (a
  stream that opens but never delivers). A dropped camera is never turned into black frames.

OpenCV is the only backend; it is injected (``capture_factory``) so the thread logic is tested
with a fake device.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from .config import CaptureConfig
from .errors import SourceError
from .types import Frame

# A read that fails this many times in a row ends a file (a single undecodable frame is skipped).
_MAX_FILE_READ_FAILS = 3
# A file is called truncated when it ends this many frames (or this fraction) before its announced
# frame count; containers' counts are estimates (no_face.mp4 announces 98 frames and decodes 95).
_TRUNCATED_MIN_MISSING = 5
_TRUNCATED_MIN_FRACTION = 0.02
# Consecutive failed reads before a live device counts as dropped and is reopened.
_LIVE_READ_FAILS = 5


class CaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` we use (fakes implement the same)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Any], CaptureLike]


def _cv2() -> Any:
    import cv2  # local import keeps `import driver_monitor.capture` cheap in pure tests

    return cv2


def _default_factory(target: Any) -> CaptureLike:
    return _cv2().VideoCapture(target)


def _file_factory(threads: int) -> CaptureFactory:
    """OpenCV's own choice of backend with ``threads`` decoder threads when the backend takes the
    setting (FFmpeg does); otherwise, and with 0, the backend's default (FFmpeg: one per core)."""
    def make(target: Any) -> CaptureLike:
        cv2 = _cv2()
        if threads > 0:
            try:
                cap = cv2.VideoCapture(target, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, int(threads)])
            except cv2.error:  # a backend that refuses the setting: open it as it comes
                cap = None
            if cap is not None and cap.isOpened():
                return cap
        return cv2.VideoCapture(target)

    return make


def _stream_factory(timeout_s: float) -> CaptureFactory:
    """OpenCV's FFmpeg backend with open / read timeouts, so a dead stream cannot block the
    capture thread (or close()) for FFmpeg's default of 30 s or more."""
    def make(target: Any) -> CaptureLike:
        cv2 = _cv2()
        ms = int(max(1.0, timeout_s) * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(ms, 5000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)

    return make


# OpenCV property ids (stable across versions; spelled out so fakes need no cv2)
_PROP_POS_FRAMES = 1
_PROP_POS_MSEC = 0
_PROP_FRAME_WIDTH = 3
_PROP_FRAME_HEIGHT = 4
_PROP_FPS = 5
_PROP_FRAME_COUNT = 7


# Frame rates a recorded drive can plausibly have: dashcams and driver cameras record 5-60 fps,
# high-speed ones up to 240. A container outside this range is wrong (1000 fps squashes a drive's
# seconds into milliseconds and breaks every timed rule).
PLAUSIBLE_FPS = (1.0, 240.0)


def _valid_fps(value: float) -> bool:
    return value is not None and math.isfinite(value) and PLAUSIBLE_FPS[0] <= value <= PLAUSIBLE_FPS[1]


def _as_image(img: Any) -> np.ndarray | None:
    """A decoded image as BGR (or grey) uint8, or None when it is not a usable frame."""
    if img is None or not isinstance(img, np.ndarray) or img.size == 0 or img.dtype != np.uint8:
        return None
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])
    elif img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        return None
    return img


class VideoSource:
    """Common interface of file and live sources; use :func:`open_source` to make one.

    description: "camera 0" | "file drive.mp4" | "stream rtsp://...".
    is_live: camera / stream (newest frame only) vs file (every frame).
    fps: container / device fps, or ``cfg.fallback_fps`` when it reports 0 or NaN.
    frame_count: frames a file announces (None when unknown or live).
    lost: live only, True while no frame arrives (camera lost).
    ended: no more frames will come.
    error: why the source ended early (truncated file, device gone), else None.
    """

    description: str = ""
    is_live: bool = False
    fps: float = 30.0
    fps_source: str = "file"
    warning: str | None = None
    frame_count: int | None = None

    def __init__(self) -> None:
        self.lost = False
        self.ended = False
        self.error: str | None = None

    def read(self) -> Frame | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise SourceError(f"{self.description} is live and cannot seek; only files can be replayed from a frame")

    def lost_tick(self) -> int | None:
        """The frame number of a tick on which a live source gave nothing (camera lost): a number
        of its own, which no frame takes after; None for a file (it has no lost ticks)."""
        return None

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self):
        while True:
            frame = self.read()
            if frame is None:
                if self.is_live and not self.ended:
                    continue
                return
            yield frame


class FileSource(VideoSource):
    """Replay of a video file: every frame, in order, ``time_s = index / fps``."""

    is_live = False

    def __init__(self, path: Path | str, cfg: CaptureConfig, factory: CaptureFactory = _default_factory, *,
                 cap: CaptureLike | None = None) -> None:
        super().__init__()
        self.path = Path(path) if not isinstance(path, str) or "://" not in path else Path(path.rsplit("/", 1)[-1])
        self.description = f"file {self.path.name}" if cap is None else f"stream {path}"
        self._cap: CaptureLike | None = cap if cap is not None else factory(str(path))
        hint = "check that it is a video file (mp4, avi, mov, mkv) and that it is not truncated"
        if self._cap is None or not self._cap.isOpened():
            self._release()
            raise SourceError(f"file {str(path)!r} could not be opened as a video; {hint}")
        fps = float(self._cap.get(_PROP_FPS) or 0.0)
        if cfg.fps > 0:
            self.fps, self.fps_source = float(cfg.fps), "set (capture.fps / --fps)"
        elif _valid_fps(fps):
            self.fps, self.fps_source = fps, "file"
        else:
            self.fps = float(cfg.fallback_fps)
            said = "no frame rate" if not (math.isfinite(fps) and fps > 0) else f"{fps:g} fps"
            self.fps_source = f"fallback (the file gives {said})"
            self.warning = (f"{self.path.name} gives {said}, outside {PLAUSIBLE_FPS[0]:g}-{PLAUSIBLE_FPS[1]:g}; "
                            f"timing it at {self.fps:g} fps (capture.fallback_fps); pass --fps N if that is wrong")
        self.fps_from_container = self.fps_source == "file"
        count = self._cap.get(_PROP_FRAME_COUNT)
        self.frame_count = int(count) if count is not None and math.isfinite(count) and count > 0 else None
        self._next = 0
        self._pending: Frame | None = None
        first = self._decode()
        if first is None:
            self._release()
            raise SourceError(f"file {str(path)!r} opened but no frame decodes; {hint}")
        self._pending = first
        self.leading_skipped = self._leading_skipped(fps)
        if self.leading_skipped:
            said = (f"{self.path.name} starts mid-stream: its first {self.leading_skipped} frames do not decode; "
                    f"times count from the first frame that does")
            self.warning = said if self.warning is None else f"{self.warning}; {said}"
            if self.frame_count is not None:
                self.frame_count = max(1, self.frame_count - self.leading_skipped)

    def _leading_skipped(self, container_fps: float) -> int:
        """Frames before the first decodable one: a recording cut out of a stream starts with frames
        that reference data it lacks (FFmpeg: "non-existing PPS"). The first decoded frame's
        timestamp says how many; 0 when the container gives no usable timestamp."""
        try:
            ms = float(self._cap.get(_PROP_POS_MSEC) or 0.0)
        except (TypeError, ValueError):
            return 0
        if not (math.isfinite(ms) and ms > 0 and _valid_fps(container_fps)):
            return 0
        n = int(round(ms / 1000.0 * container_fps))
        return n if self.frame_count is None or n < self.frame_count else 0

    def _decode(self) -> Frame | None:
        cap = self._cap
        if cap is None:
            return None
        for _ in range(_MAX_FILE_READ_FAILS):
            ok, img = cap.read()
            img = _as_image(img) if ok else None
            if img is not None:
                frame = Frame(img, self._next, self._next / self.fps)
                self._next += 1
                return frame
        return None

    def read(self) -> Frame | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self.ended:
            return None
        frame = self._decode()
        if frame is None:
            self.ended = True
            n = self.frame_count
            if n is not None and n - self._next > max(_TRUNCATED_MIN_MISSING, _TRUNCATED_MIN_FRACTION * n):
                self.error = (f"file {self.path.name!r} stopped decoding at frame {self._next} of the "
                              f"{n} it announces; it is probably truncated or damaged (the frames before "
                              f"were kept)")
        return frame

    def seek(self, index: int) -> None:
        if self._cap is None:
            raise SourceError(f"{self.description} is closed; open it again to seek")
        if index < 0 or (self.frame_count is not None and index >= self.frame_count):
            raise SourceError(f"cannot seek {self.description} to frame {index}; "
                              f"valid frames are 0..{(self.frame_count or 1) - 1}")
        self._cap.set(_PROP_POS_FRAMES, float(index + self.leading_skipped))
        self._next = index
        self._pending = None
        self.ended = False
        self.error = None

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            finally:
                self._cap = None

    def close(self) -> None:
        self._release()
        self.ended = True


class LiveSource(VideoSource):
    """Camera or stream on a capture thread that keeps only the newest frame.

    ``clock`` gives seconds (monotonic); ``time_s`` of a frame = clock at capture - clock at open.
    """

    is_live = True

    def __init__(self, target: int | str, description: str, cfg: CaptureConfig,
                 factory: CaptureFactory = _default_factory, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.description = description
        self._target = target
        self._cfg = cfg
        self._factory = factory
        self._clock = clock
        self._queue: queue.Queue[Frame] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._cap_lock = threading.Lock()
        self._cap: CaptureLike | None = self._open()
        if self._cap is None:
            raise SourceError(self._open_failed_message())
        fps = float(self._cap.get(_PROP_FPS) or 0.0)
        self.fps = fps if _valid_fps(fps) else float(cfg.fallback_fps)
        self.fps_source = "device (frames are timed by the clock)"
        self.frame_count = None
        self.reconnects = 0
        self._empty_reconnects = 0  # reconnects in a row after which no frame came
        self.dropped = 0  # frames replaced by a newer one before anyone read them
        self._index = 0
        self._index_lock = threading.Lock()  # frames (capture thread) and lost ticks (reader) take numbers
        self._t0 = clock()
        self._thread = threading.Thread(target=self._run, name=f"capture-{description}", daemon=True)
        self._thread.start()

    def _open_failed_message(self) -> str:
        if isinstance(self._target, int):
            return (f"camera {self._target} could not be opened; check that it is connected and not used by "
                    f"another program, try another camera index (0, 1, ...), or replay a recording (a video "
                    f"file) instead")
        return (f"stream {self._target} could not be opened; check the URL, the network and the credentials, "
                f"or replay a recording (a video file) instead")

    def _open(self) -> CaptureLike | None:
        try:
            cap = self._factory(self._target)
        except Exception:
            return None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        if self._cfg.width > 0:
            cap.set(_PROP_FRAME_WIDTH, float(self._cfg.width))
        if self._cfg.height > 0:
            cap.set(_PROP_FRAME_HEIGHT, float(self._cfg.height))
        return cap

    def _release_cap(self) -> None:
        with self._cap_lock:
            cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:
                pass

    def _publish(self, img: np.ndarray) -> None:
        with self._index_lock:
            frame = Frame(img, self._index, self._clock() - self._t0, captured_at=time.perf_counter())
            self._index += 1
        try:  # keep only the newest: drop the unread one
            self._queue.get_nowait()
            self.dropped += 1
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(frame)
        except queue.Full:  # only this thread puts, so this cannot happen; never block here
            self.dropped += 1

    def _reconnect(self) -> bool:
        """Reopen the device; False when the attempts are used up or close() was called."""
        attempts = self._cfg.reconnect_attempts
        for _ in range(attempts):
            if self._stop.wait(self._cfg.reconnect_interval_s):
                return False
            cap = self._open()
            if cap is not None:
                with self._cap_lock:
                    self._cap = cap
                self.reconnects += 1
                return True
        return False

    def _run(self) -> None:
        fails = 0
        try:
            while not self._stop.is_set():
                cap = self._cap
                if cap is None:
                    break
                try:
                    ok, img = cap.read()
                except Exception:
                    ok, img = False, None
                img = _as_image(img) if ok else None
                # an all-black frame from a dropping driver is not a picture of the cab
                if img is not None and img.any():
                    fails = 0
                    self._empty_reconnects = 0
                    self._publish(img)
                    continue
                if self._stop.is_set():
                    break
                fails += 1
                if fails < _LIVE_READ_FAILS:
                    continue
                fails = 0
                self.lost = True
                self._release_cap()
                if self._empty_reconnects >= max(1, self._cfg.reconnect_attempts):
                    # it opens every time but never delivers: as good as gone
                    self.error = (f"{self.description} opened {self._empty_reconnects} times in a row but "
                                  f"delivered no frame; check the camera or stream, or replay a recording")
                    break
                if not self._reconnect():
                    if not self._stop.is_set():
                        self.error = (f"{self.description} was lost and did not come back after "
                                      f"{self._cfg.reconnect_attempts} reconnect attempts")
                    break
                self._empty_reconnects += 1
        finally:
            self._release_cap()
            self.ended = True

    def read(self) -> Frame | None:
        if self._stop.is_set():
            return None
        try:
            frame = self._queue.get(timeout=self._cfg.read_timeout_s if not self.ended else 0.001)
        except queue.Empty:
            self.lost = True
            return None
        self.lost = False
        return frame

    def lost_tick(self) -> int | None:
        with self._index_lock:
            self._index += 1
            return self._index - 1

    def close(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        wait = timeout_s if timeout_s is not None else max(1.0, self._cfg.read_timeout_s)
        self._thread.join(wait)
        if self._thread.is_alive():  # blocked inside the backend's read: release to unblock it
            self._release_cap()
            self._thread.join(wait)
        self.ended = True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """What a source string or number names: ``kind`` "camera" (target: the index), "stream"
    (target: the URL) or "file" (target: the path)."""

    kind: str
    target: int | str | Path

    @property
    def is_live(self) -> bool:
        return self.kind != "file"


def parse_source(source: int | str | os.PathLike) -> SourceSpec:
    """The one place that decides whether a source is a camera, a stream or a file: ``0`` / ``"0"``
    a camera index, ``scheme://...`` (but ``file://``) a stream URL, anything else a file path.
    Raises SourceError for what is none of them; does not check that a file exists."""
    if isinstance(source, bool):
        raise SourceError(f"source {source!r} is not a camera index, file or URL; give e.g. 0 or drive.mp4")
    if isinstance(source, int):
        if source < 0:
            raise SourceError(f"camera index {source} is negative; give 0, 1, ... or a video file")
        return SourceSpec("camera", source)
    if isinstance(source, os.PathLike):
        return SourceSpec("file", Path(source))
    if not isinstance(source, str):
        raise SourceError(f"source {source!r} is not a camera index, file or URL; give e.g. 0 or drive.mp4")
    text = source.strip()
    if text.isdigit():
        return SourceSpec("camera", int(text))
    if text.lower().startswith("file://"):
        return SourceSpec("file", Path(text[7:]))
    if "://" in text:
        return SourceSpec("stream", text)
    return SourceSpec("file", Path(text))


def source_arg(text: str) -> int | str:
    """A command-line source: a camera index as an int, anything else as given."""
    spec = parse_source(text)
    return spec.target if spec.kind == "camera" else text


def open_source(source: int | str | os.PathLike, cfg: CaptureConfig, *,
                capture_factory: CaptureFactory | None = None) -> VideoSource:
    """Open a camera index (``0`` or ``"0"``), a file path or a stream URL (``rtsp://...``).

    Raises SourceError with what was wrong, the value and what to do.
    """
    factory = capture_factory or _default_factory
    spec = parse_source(source)
    if spec.kind == "camera":
        return LiveSource(spec.target, f"camera {spec.target}", cfg, factory)
    if spec.kind == "stream":
        text = str(spec.target)
        stream_factory = capture_factory or _stream_factory(cfg.read_timeout_s)
        if text.lower().startswith(("http://", "https://", "ftp://")):
            # a web server may serve a recorded file: it announces its frames and it ends; it is
            # replayed like a file, never reopened from the start as if a camera dropped
            try:
                cap = stream_factory(text)
            except Exception:
                cap = None
            if cap is not None and cap.isOpened():
                count = cap.get(_PROP_FRAME_COUNT)
                if count is not None and math.isfinite(count) and count > 0:
                    return FileSource(text, cfg, cap=cap)
            if cap is not None:
                cap.release()
        return LiveSource(text, f"stream {text}", cfg, stream_factory)
    path = Path(spec.target)
    if not path.exists():
        raise SourceError(f"file {str(path)!r} does not exist; check the path, or give a camera index "
                          f"(0, 1, ...) or a stream URL")
    if not path.is_file():
        raise SourceError(f"{str(path)!r} is not a file; give a video file, a camera index or a stream URL")
    return FileSource(path, cfg, capture_factory or _file_factory(cfg.decode_threads))
