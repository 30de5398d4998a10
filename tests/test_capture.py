"""Capture: file replay, error messages, and the live thread against a fake device."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.capture import open_source
from driver_monitor.config import CaptureConfig
from driver_monitor.errors import SourceError

from .conftest import need_data


def _img(value: int, shape=(8, 10, 3)) -> np.ndarray:
    return np.full(shape, value, np.uint8)


class FakeCapture:
    """cv2.VideoCapture look-alike driven by a script of reads.

    script items: an int v (a frame filled with v), None (a failed read), "black" (an all-zero
    frame), "block" (read blocks until released). After the script: ``tail`` repeats.
    """

    def __init__(self, script=(), *, opened=True, fps=25.0, count=0.0, tail=None, delay_s=0.0):
        self.script = list(script)
        self.opened = opened
        self.props = {5: fps, 7: count}
        self.tail = tail
        self.delay_s = delay_s
        self.released = threading.Event()
        self.reads = 0

    def isOpened(self):
        return self.opened and not self.released.is_set()

    def read(self):
        self.reads += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        item = self.script.pop(0) if self.script else self.tail
        if item == "block":
            self.released.wait(10)
            return False, None
        if item is None or self.released.is_set():
            return False, None
        if item == "black":
            return True, _img(0)
        return True, _img(item)

    def get(self, prop):
        return self.props.get(prop, 0.0)

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def release(self):
        self.released.set()


def _factory(*caps):
    """A capture factory handing out the given fakes in order (then unopened ones)."""
    made = list(caps)
    calls = []

    def make(target):
        calls.append(target)
        return made.pop(0) if made else FakeCapture(opened=False)

    make.calls = calls
    return make


def _cfg(**kw) -> CaptureConfig:
    base = dict(read_timeout_s=0.3, reconnect_interval_s=0.02, reconnect_attempts=2, fallback_fps=30.0)
    base.update(kw)
    return CaptureConfig(**base)


# --------------------------------------------------------------------------- files (fake)


@pytest.mark.parametrize("fps, want_fps", [(25.0, 25.0), (0.0, 30.0), (float("nan"), 30.0), (-1.0, 30.0)])
def test_file_times_from_index_and_fps(tmp_path: Path, fps: float, want_fps: float) -> None:
    p = tmp_path / "v.mp4"
    p.write_bytes(b"x")
    src = open_source(p, _cfg(), capture_factory=_factory(FakeCapture([1, 2, 3], fps=fps, count=3)))
    frames = list(src)
    assert src.fps == want_fps
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 1 / want_fps, 2 / want_fps])
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 3]
    assert src.error is None and src.ended


@pytest.mark.parametrize("script, count, want_values, truncated", [
    ([1, 2, 3], 3, [1, 2, 3], False),
    ([1, 2, 3], 5, [1, 2, 3], False),          # container count is an estimate: 2 short is not truncated
    ([1, 2, 3], 100, [1, 2, 3], True),          # stops far before its announced end
    ([1, None, 2, 3], 4, [1, 2, 3], False),    # one undecodable frame is skipped, not the end
    ([None, None, 1, 2], 4, [1, 2], False),    # undecodable leading frames (IR clip's missing PPS)
    ([1, 2, 3], 0, [1, 2, 3], False),          # unknown count: cannot say truncated
])
def test_file_end_and_truncation(tmp_path: Path, script, count, want_values, truncated) -> None:
    p = tmp_path / "v.mp4"
    p.write_bytes(b"x")
    src = open_source(p, _cfg(), capture_factory=_factory(FakeCapture(script, count=count)))
    assert [int(f.image[0, 0, 0]) for f in src] == want_values
    assert (src.error is not None) == truncated
    if truncated:
        assert "truncated" in src.error and "v.mp4" in src.error


class MidStreamCapture(FakeCapture):
    """A recording cut out of a stream: FFmpeg skips its first frames internally, so the first
    frame that reads carries the timestamp of those it skipped."""

    def __init__(self, script, skipped: int, **kw):
        super().__init__(script, **kw)
        self.skipped = skipped

    def read(self):
        ok, img = super().read()
        if ok and 0 not in self.props:
            self.props[0] = 1000.0 * self.skipped / self.props[5]
        return ok, img


@pytest.mark.parametrize("skipped, decoded, count, truncated", [
    (8, 52, 60, False),    # Phoning_03.avi: 8 frames missing at the start, none at the end
    (22, 37, 59, False),   # eye_closed_14-like: a third missing at the start
    (8, 20, 60, True),     # missing at the start and far before the end as well
    (0, 60, 60, False),
])
def test_file_starting_mid_stream_is_not_truncated(tmp_path: Path, skipped, decoded, count, truncated) -> None:
    p = tmp_path / "v.avi"
    p.write_bytes(b"x")
    cap = MidStreamCapture(list(range(1, decoded + 1)), skipped, fps=10.0, count=count)
    src = open_source(p, _cfg(), capture_factory=_factory(cap))
    frames = list(src)
    assert len(frames) == decoded and frames[0].time_s == 0.0 and frames[0].index == 0
    assert (src.error is not None) == truncated
    assert src.leading_skipped == skipped
    assert src.frame_count == count - skipped
    if skipped:
        assert f"first {skipped} frames do not decode" in src.warning
    else:
        assert src.warning is None


def test_real_mid_stream_clips_are_complete() -> None:
    """The near-infrared clips start mid-stream (up to 24 frames do not decode); none is truncated."""
    folder = need_data("ir_clips")
    skipped = []
    for path in sorted(folder.glob("*.avi")):
        with open_source(path, CaptureConfig()) as src:
            n = sum(1 for _ in src)
            assert src.error is None, src.error
            assert n == src.frame_count, path.name
            assert (src.leading_skipped > 0) == ("mid-stream" in (src.warning or "")), path.name
            skipped.append(src.leading_skipped)
    assert len(skipped) == 35 and sum(k > 0 for k in skipped) >= 30 and max(skipped) <= 24


def test_file_seek_restarts_numbering(tmp_path: Path) -> None:
    p = tmp_path / "v.mp4"
    p.write_bytes(b"x")
    cap = FakeCapture([1, 2, 3, 4], count=4)
    src = open_source(p, _cfg(), capture_factory=_factory(cap))
    src.seek(2)
    f = src.read()
    assert f.index == 2 and f.time_s == pytest.approx(2 / 25.0)
    assert f.captured_at is None  # a file's frames were not captured now
    assert cap.props[1] == 2.0
    with pytest.raises(SourceError, match="seek"):
        src.seek(99)


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "missing.mp4", "does not exist"),
    (lambda d: d, "is not a file"),
    (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "could not be opened as a video"),
])
def test_file_errors_are_clear(tmp_path: Path, make, match) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(make(tmp_path), _cfg())


def test_file_that_opens_but_never_decodes(tmp_path: Path) -> None:
    p = tmp_path / "v.mp4"
    p.write_bytes(b"x")
    with pytest.raises(SourceError, match="no frame decodes"):
        open_source(p, _cfg(), capture_factory=_factory(FakeCapture([], tail=None)))


# --------------------------------------------------------------------------- live (fake)


@pytest.mark.parametrize("source, want", [(0, "camera 0"), ("1", "camera 1"),
                                          ("rtsp://cam.local/x", "stream rtsp://cam.local/x")])
def test_live_source_kinds(source, want) -> None:
    fake = _factory(FakeCapture([], tail=7, delay_s=0.005))
    with open_source(source, _cfg(), capture_factory=fake) as src:
        assert src.is_live and src.description == want
        assert src.read() is not None
    assert fake.calls[0] == (int(source) if str(source).isdigit() else source)


@pytest.mark.parametrize("source, match", [(2, "camera 2 could not be opened.*replay a recording"),
                                           ("rtsp://x/y", "stream rtsp://x/y could not be opened")])
def test_live_open_failure_message(source, match) -> None:
    with pytest.raises(SourceError, match=match):
        open_source(source, _cfg(), capture_factory=_factory(FakeCapture(opened=False)))


def test_live_keeps_only_newest_frame() -> None:
    cap = FakeCapture(list(range(1, 60)), tail="block", delay_s=0.001)
    src = open_source(0, _cfg(), capture_factory=_factory(cap))
    try:
        deadline = time.monotonic() + 3
        while cap.reads < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = time.perf_counter()
        f = src.read()
        assert int(f.image[0, 0, 0]) == 59 and f.index == 58   # the newest, not the oldest
        assert f.captured_at is not None and f.captured_at <= before  # when it arrived, for the latency
        assert src.dropped >= 50
        assert src._queue.maxsize == 1
    finally:
        src.close(timeout_s=0.5)


def test_live_lost_then_reconnects() -> None:
    # first device: 3 frames then dies; second device: frames again
    first = FakeCapture([5, 5, 5], tail=None, delay_s=0.002)
    second = FakeCapture([], tail=9, delay_s=0.002)
    make = _factory(first, FakeCapture(opened=False), second)
    src = open_source(0, _cfg(read_timeout_s=0.05, reconnect_attempts=5), capture_factory=make)
    try:
        values, saw_lost = [], False
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and 9 not in values:
            f = src.read()
            if f is None:
                saw_lost = saw_lost or src.lost
            else:
                values.append(int(f.image[0, 0, 0]))
                assert f.image.any()  # never a black frame
        assert 5 in values and 9 in values
        assert saw_lost
        assert not src.lost and not src.ended
        assert first.released.is_set() and src.reconnects == 1
    finally:
        src.close(timeout_s=0.5)


def test_live_gives_up_after_attempts_and_never_feeds_black() -> None:
    cap = FakeCapture([3, "black", "black"], tail=None, delay_s=0.001)
    src = open_source(0, _cfg(read_timeout_s=0.05, reconnect_attempts=2), capture_factory=_factory(cap))
    try:
        got = []
        deadline = time.monotonic() + 3
        while not src.ended and time.monotonic() < deadline:
            f = src.read()
            if f is not None:
                got.append(int(f.image[0, 0, 0]))
        assert src.ended and "lost" in src.error and "2 reconnect" in src.error
        assert got == [3]
        assert src.read() is None and src.lost
    finally:
        src.close(timeout_s=0.5)


def test_close_returns_within_timeout_even_when_read_blocks() -> None:
    cap = FakeCapture([1], tail="block")
    src = open_source(0, _cfg(), capture_factory=_factory(cap))
    assert src.read() is not None
    t = time.monotonic()
    src.close(timeout_s=0.2)
    assert time.monotonic() - t < 1.0
    assert cap.released.is_set()
    assert not src.alive
    assert src.read() is None
    with pytest.raises(SourceError, match="cannot seek"):
        src.seek(0)


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize("name, fps, n_min", [
    ("single_face.mp4", 30.0, 72),
    ("ir_driver_eyes_closed.avi", 10.0, 57),   # first 2 frames undecodable: must not end the file
    ("no_face.mp4", 23.67, 95),
])
def test_real_files_decode_every_frame(name: str, fps: float, n_min: int) -> None:
    path = need_data(f"videos/{name}")
    with open_source(str(path), CaptureConfig()) as src:
        assert not src.is_live and src.description == f"file {name}"
        frames = list(src)
        assert src.error is None
    assert len(frames) >= n_min
    assert src.fps == pytest.approx(fps, abs=0.01)
    assert [f.index for f in frames] == list(range(len(frames)))
    assert frames[-1].time_s == pytest.approx((len(frames) - 1) / src.fps)
    assert frames[0].image.ndim == 3  # grey IR stays as decoded (BGR)


@pytest.mark.parametrize("name, frames", [
    ("sunglasses_talking_yawns.avi", 1683),
    ("driver_eyes_closed_glasses.mp4", 229),   # its mp4 index sits at the start: a cut copy still opens
    ("ir_driver_eyes_closed.avi", 59),
])
def test_real_truncated_file_keeps_decoded_frames(tmp_path: Path, name: str, frames: int) -> None:
    path = need_data(f"videos/{name}")
    data = path.read_bytes()
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(cut, CaptureConfig()) as src:
        n = sum(1 for _ in src)
        assert src.error is not None and "truncated" in src.error and f"cut_{name}" in src.error
    assert frames * 0.3 < n < frames * 0.7


def test_real_truncated_mp4_without_index_is_refused(tmp_path: Path) -> None:
    path = need_data("videos/head_turns.mp4")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[:800_000])  # the moov index sits at the end: cut off
    with pytest.raises(SourceError, match="could not be opened as a video"):
        open_source(cut, CaptureConfig())


def _serve(folder: Path):
    """A local HTTP server for the files of ``folder`` that counts its requests."""
    import functools
    import http.server

    hits: list[str] = []

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


def test_real_http_url_serving_a_file_is_replayed_once_and_ends(tmp_path: Path) -> None:
    """A web server serving a recorded drive: every frame once, then the end; never reopened from
    the start as if a camera had dropped (it used to replay forever)."""
    import shutil

    src_path = need_data("videos/driver_eyes_closed_glasses.mp4")  # index first: streams without range requests
    shutil.copy(src_path, tmp_path / "drive.mp4")
    server, hits = _serve(tmp_path)
    url = f"http://127.0.0.1:{server.server_address[1]}/drive.mp4"
    cfg = CaptureConfig(read_timeout_s=0.5, reconnect_interval_s=0.1, reconnect_attempts=2)
    try:
        src = open_source(url, cfg)
        assert not src.is_live and src.description == f"stream {url}" and src.frame_count == 229
        frames = list(src)
        requests = len(hits)
        assert src.read() is None and src.ended and src.error is None
        assert [f.index for f in frames] == list(range(229))
        assert frames[-1].time_s == pytest.approx(228 / 30.0)
        src.close()
        time.sleep(0.3)
        assert len(hits) == requests <= 4  # no reopening after the end
    finally:
        server.shutdown()
        server.server_close()


def test_stream_that_opens_but_never_delivers_ends() -> None:
    # every reconnect opens fine and then reads nothing: bounded by reconnect_attempts
    caps = [FakeCapture([], tail=None) for _ in range(10)]
    fake = _factory(*caps)
    src = open_source("rtsp://cam/live", _cfg(reconnect_attempts=2), capture_factory=fake)
    try:
        deadline = time.monotonic() + 10
        while not src.ended and time.monotonic() < deadline:
            assert src.read() is None
        assert src.ended and "delivered no frame" in src.error
        assert len(fake.calls) <= 4
    finally:
        src.close(timeout_s=1.0)


@pytest.mark.parametrize("container_fps, cfg_fps, fps, source, warned", [
    (25.0, 0.0, 25.0, "file", False),
    (1000.0, 0.0, 30.0, "fallback (the file gives 1000 fps)", True),   # squashes a drive into milliseconds
    (0.0, 0.0, 30.0, "fallback (the file gives no frame rate)", True),
    (1000.0, 12.5, 12.5, "set (capture.fps / --fps)", False),
])
def test_file_frame_rate_is_checked_and_can_be_set(tmp_path: Path, container_fps, cfg_fps, fps, source, warned) -> None:
    path = tmp_path / "drive.mp4"
    path.write_bytes(b"x")
    fake = _factory(FakeCapture([1, 2, 3], fps=container_fps, count=3))
    with open_source(path, _cfg(fps=cfg_fps), capture_factory=fake) as src:
        assert (src.fps, src.fps_source) == (fps, source)
        assert (src.warning is not None) == warned
        if warned:
            assert "--fps" in src.warning and "drive.mp4" in src.warning
        assert [f.time_s for f in src] == pytest.approx([0.0, 1 / fps, 2 / fps])


@pytest.mark.parametrize("source, kind, target", [
    (0, "camera", 0), ("2", "camera", 2), (" 1 ", "camera", 1),
    ("rtsp://cam/live", "stream", "rtsp://cam/live"), ("http://host/drive.mp4", "stream", "http://host/drive.mp4"),
    ("drive.mp4", "file", Path("drive.mp4")), ("file:///data/d.mp4", "file", Path("/data/d.mp4")),
    (Path("x/y.avi"), "file", Path("x/y.avi")),
])
def test_parse_source_is_the_one_place_that_tells_kinds_apart(source, kind, target) -> None:
    from driver_monitor.capture import parse_source, source_arg

    spec = parse_source(source)
    assert (spec.kind, spec.target, spec.is_live) == (kind, target, kind != "file")
    if isinstance(source, str):
        assert source_arg(source) == (target if kind == "camera" else source)


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_parse_source_refuses_what_is_no_source(bad) -> None:
    from driver_monitor.capture import parse_source

    with pytest.raises(SourceError):
        parse_source(bad)


def test_a_file_decodes_with_the_configured_decoder_threads_and_the_same_frames() -> None:
    """``capture.decode_threads`` (default 1) reaches FFmpeg; the frames are those of the
    decoder's own default (one thread per core), bit for bit."""
    import cv2

    path = str(need_data("videos/driver_eyes_closed_glasses.mp4"))
    frames = {}
    for threads in (1, 0):
        src = open_source(path, CaptureConfig(decode_threads=threads))
        try:
            if threads:
                assert src._cap.get(cv2.CAP_PROP_N_THREADS) == 1
            frames[threads] = [f.image for f in iter(src.read, None)]
        finally:
            src.close()
    assert len(frames[1]) == len(frames[0]) > 200
    assert all(np.array_equal(a, b) for a, b in zip(frames[1], frames[0]))


def test_a_backend_that_refuses_the_decoder_threads_opens_the_file_as_it_comes(monkeypatch, tmp_path) -> None:
    import cv2

    from driver_monitor import capture

    opened = []

    class Cap(FakeCapture):
        def __init__(self, target, *args):
            if args:
                raise cv2.error("the backend takes no parameters")
            opened.append(target)
            super().__init__([1, 2], count=2)

    monkeypatch.setattr(cv2, "VideoCapture", Cap)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    src = capture.open_source(str(video), CaptureConfig(decode_threads=1))
    assert opened == [str(video)] and src.read().image[0, 0, 0] == 1
