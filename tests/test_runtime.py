"""The run's one assembly (runtime.Runtime): models opened once, lent to every drive and every
seek, closed once; a drive session iterated or stepped gives the same results."""
from __future__ import annotations

import numpy as np
import pytest

from driver_monitor.config import Config, load_config
from driver_monitor.errors import ModelError
from driver_monitor.runtime import DriveSession, Runtime
from driver_monitor.types import Frame
from tests.pipelines import FakeDetector


class Closing(FakeDetector):
    """A stand-in model that counts its resets and closes."""

    person_in_view = True  # someone in view: the phone detector runs

    def __init__(self) -> None:
        self.resets = self.closes = 0

    def faces(self, image):
        return []

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closes += 1


class Source:
    """A file of ``n`` grey frames (as a VideoSource)."""

    is_live, fps, frame_count, description, warning, error, ended = False, 10.0, None, "frames", None, None, False

    def __init__(self, n: int = 5) -> None:
        self.n, self.next, self.closes = n, 0, 0

    def read(self):
        if self.next >= self.n:
            self.ended = True
            return None
        self.next += 1
        return Frame(np.zeros((48, 64), np.uint8), self.next - 1, (self.next - 1) / self.fps)

    def seek(self, index: int) -> None:
        self.next = index

    def close(self) -> None:
        self.closes += 1


def test_the_models_open_once_and_every_drive_borrows_them():
    det = Closing()
    runtime = Runtime(Config(), engine=None, detector=det, log=lambda m: None).open()
    models = runtime.models
    runtime.open()  # again: nothing reopens
    assert runtime.models is models and models.eye_model is not None and models.phone_detector is not None
    a, b = runtime.pipeline(), runtime.pipeline()
    assert a is not b and a.models is models and b.models is models
    assert det.resets == 1  # the next drive starts its face tracking afresh (the first has a fresh detector)
    a.close()
    b.close()
    assert det.closes == 0 and models.eye_model is not None  # a pipeline closes no model
    runtime.close()
    runtime.close()  # again: nothing more
    assert det.closes == 1 and models.eye_model._session is None and runtime.models is None


def test_a_seek_keeps_the_models_and_stops_the_old_pipelines_phone_thread():
    runtime = Runtime(Config(), engine=None, detector=Closing(), log=lambda m: None)
    src = Source(20)
    drive = runtime.session(src)
    first = drive.pipeline
    eye, phone = first.eyes.model, first.phone.detector
    assert first.process(src.read()).phone_score is not None
    assert first.phone._pool is not None  # its thread is running
    drive.seek(10)
    assert drive.pipeline is not first and first.phone._pool is None
    assert drive.pipeline.eyes.model is eye and drive.pipeline.phone.detector is phone
    assert next(drive.results(overlap=False)).index == 10
    drive.close()
    assert src.closes == 1 and drive.pipeline.phone._pool is None and runtime.models.phone_detector is phone
    runtime.close()


def test_a_model_that_cannot_open_closes_those_opened_before_it(tmp_path):
    cfg = load_config(None, [f"phone.model={tmp_path / 'missing.onnx'}"])
    made: list = []

    class Tracking(Runtime):
        def _eye_model(self):
            made.append(super()._eye_model())
            return made[-1]

    runtime = Tracking(cfg, engine=None, detector=Closing(), log=lambda m: None)
    with pytest.raises(ModelError):
        runtime.open()
    assert runtime.models is None and made and made[0]._session is None  # the eye model was closed


def test_a_session_that_cannot_start_closes_its_source():
    class Broken(Runtime):
        def pipeline(self, cfg=None):
            raise ModelError("no model")

    src = Source()
    with pytest.raises(ModelError):
        Broken(Config(), log=lambda m: None).session(src)
    assert src.closes == 1


def test_two_stages_and_one_give_the_same_results():
    def states(drive: DriveSession, overlap: bool) -> list:
        return [(r.index, r.state.status) for r in drive.results(overlap=overlap)]

    with Runtime(Config(), engine=None, detector=Closing(), phone_detector=None, log=lambda m: None) as runtime:
        with runtime.session(Source(8)) as a, runtime.session(Source(8)) as b:
            two, one = states(a, True), states(b, False)
    assert two == one and [i for i, _ in two] == list(range(8))


class Silent(Source):
    """A live source whose camera gives nothing: each read waits a little and says so."""

    is_live = True

    def read(self):
        import time

        time.sleep(0.01)
        return None

    def lost_tick(self) -> int:
        self.next += 1
        return self.next - 1


@pytest.mark.parametrize("overlap", [True, False])
def test_a_consumer_hears_when_nothing_came_and_gets_the_lost_ticks_on_time(overlap):
    """The dashboard takes results from the same loop as analyze: None while nothing came (it looks
    at its requests), a camera-lost tick once nothing came for capture.read_timeout_s."""
    cfg = load_config(None, ["capture.read_timeout_s=0.3"])
    with Runtime(cfg, engine=None, detector=Closing(), phone_detector=None, log=lambda m: None) as runtime:
        with runtime.session(Silent()) as drive:
            loop, got = drive.results(overlap=overlap, idle_s=0.05), []
            while len([r for r in got if r is not None]) < 2:
                got.append(next(loop))
            loop.close()
    ticks = [r for r in got if r is not None]
    assert got[0] is None and all(not r.camera_ok for r in ticks)  # "nothing yet" first, then lost ticks
    assert [r.index for r in ticks] == [0, 1] and ticks[0].time_s == pytest.approx(0.3, abs=0.1)
    assert ticks[1].time_s - ticks[0].time_s == pytest.approx(0.3, abs=0.1)


def test_a_drive_may_differ_from_the_run_but_not_in_its_models():
    """evaluate lends one Runtime to every clip whose models agree: a clip's own settings (the
    camera mount, say) reach its pipeline; other models need a Runtime of their own."""
    from driver_monitor.runtime import models_key

    run = load_config(None)
    mirror = load_config(None, ["calibration.mount=mirror"])
    other_mesh = load_config(None, ["face.max_faces=1"])
    assert models_key(mirror) == models_key(run) and models_key(other_mesh) != models_key(run)
    with Runtime(run, engine=None, detector=Closing(), phone_detector=None, log=lambda m: None) as runtime:
        with runtime.session(Source(3), mirror) as drive:
            assert drive.pipeline.cfg is mirror
            drive.seek(1)
            assert drive.pipeline.cfg is mirror  # a seek keeps the drive's config
        with pytest.raises(ValueError, match="other models"):
            runtime.pipeline(other_mesh)
