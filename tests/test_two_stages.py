"""The frame loop's two stages (session.run_frames, overlap on): the same results as one thread,
in order, every frame of a file; errors of the first stage reach the caller; stopping early ends
the first stage's thread; a live source keeps the newest frames."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from driver_monitor.capture import CaptureConfig, VideoSource, open_source
from driver_monitor.config import load_config
from driver_monitor.errors import SourceError
from tests.pipelines import FakeDetector, OwningPipeline, make_pipeline
from driver_monitor.session import run_frames
from driver_monitor.types import Frame
from tests.conftest import need_data


class Frames(VideoSource):
    """A file-like source of grey frames; ``fail_at`` raises there, ``live`` makes it a live one."""

    description = "test frames"

    def __init__(self, n: int, *, fail_at: int | None = None, live: bool = False, delay_s: float = 0.0):
        super().__init__()
        self.n, self.fail_at, self.i, self.delay_s = n, fail_at, 0, delay_s
        self.is_live = live

    def read(self):
        if self.i == self.fail_at:
            raise SourceError("the test source broke")
        if self.i >= self.n:
            self.ended = True
            return None
        time.sleep(self.delay_s)
        f = Frame(np.full((8, 8), self.i % 256, np.uint8), self.i, self.i / 30)
        self.i += 1
        return f

    def close(self):
        pass


class NoFaces(FakeDetector):
    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.seen: list[int] = []

    def faces(self, image):
        time.sleep(self.delay_s)
        self.seen.append(int(image[0, 0]))
        return []

    def close(self):
        pass


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("mesh-stage", "decode-ahead")]


def test_every_frame_in_order() -> None:
    cfg = load_config(None, ["engine.enabled=false"])
    with make_pipeline(cfg, None, detector=NoFaces()) as pipe:
        got = [r.frame.index for r in run_frames(Frames(50), pipe)]
    assert got == list(range(50))
    assert not _stage_threads()


def test_a_first_stage_error_reaches_the_caller_after_the_frames_before_it() -> None:
    cfg = load_config(None, ["engine.enabled=false"])
    got = []
    with make_pipeline(cfg, None, detector=NoFaces()) as pipe, pytest.raises(SourceError, match="broke"):
        for r in run_frames(Frames(50, fail_at=20), pipe):
            got.append(r.frame.index)
    assert got == list(range(20))
    assert not _stage_threads()


@pytest.mark.parametrize("how", ["max_frames", "should_stop", "caller_breaks"])
def test_stopping_early_ends_the_first_stage(how: str) -> None:
    cfg = load_config(None, ["engine.enabled=false"])
    with make_pipeline(cfg, None, detector=NoFaces()) as pipe:
        got = []
        if how == "max_frames":
            got = [r.frame.index for r in run_frames(Frames(500), pipe, max_frames=7)]
        elif how == "should_stop":
            for r in run_frames(Frames(500), pipe, should_stop=lambda: len(got) >= 7):
                got.append(r.frame.index)
        else:
            for r in run_frames(Frames(500), pipe):
                got.append(r.frame.index)
                if len(got) == 7:
                    break
    assert got == list(range(7))
    time.sleep(0.2)
    assert not _stage_threads()


def test_a_live_source_keeps_the_newest_frames() -> None:
    """The second stage is slow (20 ms a frame), frames come every 2 ms: older ones are dropped,
    the order stays."""
    cfg = load_config(None, ["engine.enabled=false"])

    class SlowPipeline(OwningPipeline):
        def process(self, frame, **kw):
            time.sleep(0.02)
            return super().process(frame, **kw)

    with make_pipeline(cfg, None, detector=NoFaces(), cls=SlowPipeline) as pipe:
        got = [r.frame.index for r in run_frames(Frames(200, live=True, delay_s=0.002), pipe) if r.camera_ok]
    assert got == sorted(got) and len(set(got)) == len(got)
    assert len(got) < 150 and got[-1] >= 190


def test_two_stages_give_the_results_of_one_thread() -> None:
    """Real face mesh, real clip: every frame's faces, signals, state and events are identical."""
    path = str(need_data("videos/yawn_in_car.mp4"))
    cfg = load_config(None, ["engine.enabled=false"])
    runs = []
    for overlap in (False, True):
        with open_source(path, CaptureConfig()) as src, make_pipeline(cfg, None) as pipe:
            runs.append(list(run_frames(src, pipe, max_frames=150, overlap=overlap)))
    one, two = runs
    assert len(one) == len(two) == 150
    for a, b in zip(one, two):
        assert a.frame.index == b.frame.index and a.faces_count == b.faces_count
        assert (a.face is None) == (b.face is None)
        if a.face is not None:
            np.testing.assert_array_equal(a.face.landmarks, b.face.landmarks)
        assert a.signals == b.signals and a.smoothed == b.smoothed
        assert a.state == b.state and a.events == b.events


def test_a_file_is_decoded_ahead_of_the_mesh_on_its_own_thread() -> None:
    """A file's frames are read on the decode-ahead thread, at most a few ahead of the mesh, and
    the thread is gone when the loop ends; a live source is read by the mesh stage itself."""
    cfg = load_config(None, ["engine.enabled=false"])
    readers: set[str] = set()

    class Spy(Frames):
        def read(self):
            readers.add(threading.current_thread().name)
            return super().read()

    class SlowFaces(NoFaces):
        def __init__(self, src):
            super().__init__(0.002)
            self.src = src
            self.ahead = 0

        def faces(self, image):
            self.ahead = max(self.ahead, self.src.i - int(image[0, 0]) - 1)
            return super().faces(image)

    src = Spy(60)
    det = SlowFaces(src)
    with make_pipeline(cfg, None, detector=det) as pipe:
        got = [r.frame.index for r in run_frames(src, pipe)]
    assert got == list(range(60)) and readers == {"decode-ahead"}
    assert 1 <= det.ahead <= 5  # the read-ahead queue, the frame in hand and the one being offered
    assert not _stage_threads()
    readers.clear()
    with make_pipeline(cfg, None, detector=NoFaces()) as pipe:
        list(run_frames(Spy(20, live=True), pipe))
    assert readers == {"mesh-stage"}


def test_opencv_threads_one_per_stage_while_the_stages_run_then_restored() -> None:
    """OpenCV's pool keeps off the stages' cores while they run (at most the cores beyond the
    two stages, at least one thread) and gets its setting back afterwards, errors included."""
    import cv2

    from driver_monitor.cores import usable_cores

    cfg = load_config(None, ["engine.enabled=false"])
    seen: list[int] = []

    class Counting(NoFaces):
        def faces(self, image):
            seen.append(cv2.getNumThreads())
            return []

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(4)
        with make_pipeline(cfg, None, detector=Counting()) as pipe:
            list(run_frames(Frames(10), pipe))
            assert set(seen) == {max(1, min(4, usable_cores() - 2))}
            assert cv2.getNumThreads() == 4
            with pytest.raises(SourceError):
                list(run_frames(Frames(10, fail_at=3), pipe))
            assert cv2.getNumThreads() == 4
    finally:
        cv2.setNumThreads(before)


def _cores_of(tid: int) -> set[int]:
    return set(os.sched_getaffinity(tid))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs Linux and at least 2 usable cores")
@pytest.mark.parametrize("pin", [True, False])
def test_the_mesh_and_its_graph_threads_share_one_core_while_the_stages_run(pin: bool) -> None:
    """face.pin_mesh: the mesh stage and the detector's graph threads run on the core the stage
    started on while the loop runs, and the graph threads may run anywhere again afterwards;
    off, nothing is pinned. The main thread (the other stage) is never pinned."""
    cfg = load_config(None, ["engine.enabled=false", f"face.pin_mesh={str(pin).lower()}"])
    allowed = _cores_of(0)
    release = threading.Event()
    graph = threading.Thread(target=release.wait, name="graph-stand-in")
    graph.start()
    seen: list[tuple[set[int], set[int], set[int]]] = []

    class Graphed(NoFaces):
        @property
        def thread_ids(self):
            return (graph.native_id,)

        def faces(self, image):
            seen.append((_cores_of(0), _cores_of(graph.native_id), _cores_of(main)))
            return []

    main = threading.get_native_id()
    try:
        with make_pipeline(cfg, None, detector=Graphed()) as pipe:
            assert [r.frame.index for r in run_frames(Frames(20), pipe)] == list(range(20))
        after = _cores_of(graph.native_id)
    finally:
        release.set()
        graph.join()
    assert len(seen) == 20
    stage, graph_cores, main_cores = seen[0]
    assert all(s == seen[0] for s in seen) and main_cores == allowed
    if pin:
        assert len(stage) == 1 and graph_cores == stage and stage <= allowed
    else:
        assert stage == graph_cores == allowed
    assert after == allowed


def test_a_mesh_without_graph_threads_runs_unpinned_the_same() -> None:
    """A detector that names no graph threads (tests, other detectors) is left where the OS puts it."""
    cfg = load_config(None, ["engine.enabled=false"])
    seen: list[set[int]] = []

    class Plain(NoFaces):
        def faces(self, image):
            seen.append(_cores_of(0))
            return []

    with make_pipeline(cfg, None, detector=Plain()) as pipe:
        assert [r.frame.index for r in run_frames(Frames(5), pipe)] == list(range(5))
    assert seen == [_cores_of(0)] * 5
