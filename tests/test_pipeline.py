"""Pipeline wiring: driver pick, passengers batched into one engine call, camera lost, timings."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from driver_monitor.config import load_config
from driver_monitor.engine.base import Engine
from tests.pipelines import FakeDetector, make_pipeline
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec
from driver_monitor.types import Face, Frame, Level, Status
from tests.conftest import need_data


class FakeEngine(Engine):
    """Returns 'happiness' for every face and records each batch it was given."""

    name, device, precision = "fake", "cpu", "fp32"

    def __init__(self) -> None:
        super().__init__(InputSpec(), EMOTIONS, AUS, max_batch=8)
        self.batches: list[int] = []

    def _run(self, x):
        self.batches.append(x.shape[0])
        p = np.full((x.shape[0], len(EMOTIONS)), 0.02, np.float32)
        p[:, 1] = 1 - 0.02 * (len(EMOTIONS) - 1)
        return p, np.full((x.shape[0], len(AUS)), 0.25, np.float32)


class ScriptedDetector(FakeDetector):
    """Returns the faces scripted for each call, in order."""

    def __init__(self, script):
        self.script = list(script)
        self.closed = False

    def faces(self, image):
        return self.script.pop(0) if self.script else []

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def real_face():
    """The mesh of the first frame of single_face.mp4 and the frame itself."""
    from driver_monitor.face.mesh import FaceMeshDetector

    cap = cv2.VideoCapture(str(need_data("videos/single_face.mp4")))
    ok, img = cap.read()
    cap.release()
    assert ok
    with FaceMeshDetector(load_config(None).face, static_image_mode=True) as det:
        faces = det.detect(img)
    assert len(faces) == 1
    return img, faces[0]


def shrunk(face: Face, scale: float) -> Face:
    c = np.array([*face.center, 0], np.float32)
    lm = ((face.landmarks - c) * scale + c).astype(np.float32)
    xy = lm[:, :2]
    return Face(np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32), lm)


def test_driver_is_the_largest_face_and_only_the_driver_is_read(real_face) -> None:
    img, face = real_face
    small = shrunk(face, 0.6)
    batch = 1
    cfg = load_config(None, ["engine.rate_hz=0"])  # the engine on every frame
    engine = FakeEngine()
    det = ScriptedDetector([[small, face]] * 3)
    with make_pipeline(cfg, engine, detector=det) as pipe:
        results = [pipe.process(Frame(img, i, i / 30), decode_ms=1.5) for i in range(3)]
        assert pipe.backend_description == "fake cpu fp32"
    assert det.closed
    assert engine.batches == [batch] * 3
    r = results[-1]
    assert r.face is face and r.faces_count == 2  # the larger face is the driver
    assert r.emotion == "happiness" and abs(sum(r.emotion_probs.values()) - 1) < 1e-5
    assert set(r.aus) == set(AUS)
    assert r.aligned is not None and r.aligned.image.shape == (48, 48)
    assert {"decode", "mesh", "align", "engine", "state", "total"} <= set(r.timings_ms)
    assert r.timings_ms["total"] >= r.timings_ms["decode"] == 1.5


def test_camera_lost_is_its_own_state_not_no_face(real_face) -> None:
    img, face = real_face
    cfg = load_config(None, ["engine.enabled=false"])
    with make_pipeline(cfg, None, detector=ScriptedDetector([[face]] * 30)) as pipe:
        for i in range(30):
            r = pipe.process(Frame(img, i, i / 30))
        assert r.camera_ok and r.state.status in (Status.OK, Status.CALIBRATING)
        lost = [pipe.process(None, t_s=1.0 + k / 10) for k in range(30)]
        assert all(not x.camera_ok and x.face is None for x in lost)
        assert lost[-1].state.status == Status.CAMERA_LOST
        assert lost[-1].state.status != Status.DRIVER_ABSENT
        started = [e for x in lost for e in x.events if e.type == "camera_lost"]
        assert started and started[0].end_s is None
        assert not [e for x in lost for e in x.events if e.type == "driver_absent"]
        ended = [e for e in pipe.finish() if e.type == "camera_lost"]
        assert ended and ended[0].end_s is not None


def test_no_engine_still_aligns_for_display(real_face) -> None:
    img, face = real_face
    with make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]])) as pipe:
        r = pipe.process(Frame(img, 0, 0.0))
    assert r.emotion_probs is None and r.aus is None and r.aligned is not None
    assert "engine" not in r.timings_ms and pipe.backend_description == "none"
    assert r.state.drowsiness == Level.NONE


def test_engine_stride_runs_every_kth_frame_and_holds_between(real_face) -> None:
    img, face = real_face
    cfg = load_config(None, ["engine.stride=3"])
    engine = FakeEngine()
    script = [[face]] * 7 + [[]] + [[face]] * 2
    with make_pipeline(cfg, engine, detector=ScriptedDetector(script)) as pipe:
        results = [pipe.process(Frame(img, i, i / 30)) for i in range(len(script))]
    ran = [i for i, r in enumerate(results) if "engine" in r.timings_ms]
    assert ran == [0, 3, 6, 8]  # every 3rd frame of the face; the face's return runs it at once
    assert len(engine.batches) == 4
    for i in (1, 2, 4, 5):  # held frames carry the last outputs
        assert results[i].emotion_probs == results[i - 1].emotion_probs and results[i].aus is not None
    assert results[7].emotion_probs is None  # no face, nothing held


def test_engine_stride_one_and_no_rate_is_every_frame(real_face) -> None:
    img, face = real_face
    engine = FakeEngine()
    cfg = load_config(None, ["engine.rate_hz=0"])
    with make_pipeline(cfg, engine, detector=ScriptedDetector([[face]] * 5)) as pipe:
        for i in range(5):
            pipe.process(Frame(img, i, i / 30))
    assert engine.batches == [1] * 5


@pytest.mark.parametrize("fps, ran", [(30.0, [0, 2, 4, 6, 8]), (29.97, [0, 2, 4, 6, 8]), (10.0, list(range(10))),
                                      (60.0, [0, 4, 8])])
def test_the_engine_reads_at_most_its_rate_a_second_of_video(real_face, fps, ran) -> None:
    img, face = real_face
    engine = FakeEngine()
    with make_pipeline(load_config(None), engine, detector=ScriptedDetector([[face]] * 11)) as pipe:  # 15 Hz
        results = [pipe.process(Frame(img, i, i / fps)) for i in range(10)]
        assert [i for i, r in enumerate(results) if "engine" in r.timings_ms] == ran
        assert all(r.emotion_probs is not None for r in results)  # frames between hold the last outputs
        back = pipe.process(Frame(img, 0, 0.0))  # a rewind reads at once
        assert "engine" in back.timings_ms


class CountingEyeModel:
    """An eye-state model that reads every eye as ``p`` and counts its calls."""

    size, scale, version, path = 32, 1.5, "test", "counting"

    def __init__(self, p: float) -> None:
        self.p, self.calls = p, 0

    def p_closed(self, patches):
        self.calls += 1
        return np.full(len(patches), self.p, np.float32)

    def close(self):
        pass


@pytest.mark.parametrize("p,fps,expected_calls", [
    (0.02, 30, 10),   # clearly open at 30 frames/s: read again every 0.1 s (3 frames): 10 of 30
    (0.02, 10, 10),   # at 10 frames/s every frame is read
    (0.97, 30, 10),   # clearly closed, the same
    (0.50, 30, 30),   # neither clearly open nor clearly closed: every frame
])
def test_clear_readings_are_taken_again_every_tenth_of_a_second(real_face, p, fps, expected_calls):
    img, face = real_face
    model = CountingEyeModel(p)
    pipe = make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 30), eye_model=model)
    results = [pipe.process(Frame(img, i, i / fps)) for i in range(30 if fps == 30 else 10)]
    assert model.calls == expected_calls
    assert all(r.signals.eye_closed_p == pytest.approx(p) for r in results)


def _shut(face: Face) -> Face:
    shut = face.landmarks.copy()
    for upper, lower in ((159, 145), (160, 144), (158, 153), (386, 374), (385, 380), (387, 373)):
        mid = (shut[upper] + shut[lower]) / 2
        shut[upper], shut[lower] = mid, mid
    return Face(bbox=face.bbox, landmarks=shut)


@pytest.mark.parametrize("p,opening", [(0.02, False), (0.97, True)])
def test_a_move_of_the_ear_is_read_at_once(real_face, p, opening):
    """A blink starts (the EAR drops by more than a tenth) after a clearly open reading, or the eyes
    open (it rises) after a clearly closed one: the next frame is read anew."""
    img, face = real_face
    script = [[_shut(face)], [face]] if opening else [[face], [_shut(face)]]
    model = CountingEyeModel(p)
    pipe = make_pipeline(load_config(None), None, detector=ScriptedDetector(script), eye_model=model)
    pipe.process(Frame(img, 0, 0.0))
    pipe.process(Frame(img, 1, 1 / 30))
    assert model.calls == 2


class CountingPhoneDetector:
    """A phone detector that finds a phone scoring ``score`` on every call and counts them."""

    def __init__(self, score: float) -> None:
        self.score, self.calls = score, 0

    def detect(self, image):
        from driver_monitor.engine.phone import PhoneBox

        self.calls += 1
        return [PhoneBox((1.0, 1.0, 5.0, 9.0), self.score)] if self.score > 0 else []

    def close(self):
        pass


def test_the_phone_detector_runs_at_its_rate_and_its_vote_is_phone_use(real_face):
    img, face = real_face
    det = CountingPhoneDetector(0.4)
    pipe = make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 60), eye_model=None,
                    phone_detector=det)
    results = [pipe.process(Frame(img, i, i / 30)) for i in range(60)]
    assert det.calls == 6  # 3 a second of video: frames 0, 10, 20, ...
    ran = [i for i, r in enumerate(results) if "phone" in r.timings_ms]
    assert ran == [0, 10, 20, 30, 40, 50] and all(results[i].phone_score == pytest.approx(0.4) for i in ran)
    assert results[5].phone_score is None
    assert not results[9].state.phone_use and results[10].state.phone_use  # two readings of three
    assert [e.type for e in results[10].events] == ["phone_use"]


def test_the_phone_detector_idles_at_one_run_a_second_and_its_box_is_kept(real_face):
    img, face = real_face
    det = CountingPhoneDetector(0.12)  # counts for the vote (0.1), not phone-like enough to wake (0.15)
    pipe = make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 150), eye_model=None,
                    phone_detector=det)
    results = [pipe.process(Frame(img, i, i / 30)) for i in range(90)]
    assert [i for i, r in enumerate(results) if "phone" in r.timings_ms] == [0, 30, 60]
    assert all(r.phone_box == (1.0, 1.0, 5.0, 9.0) for r in results)  # held between runs
    assert results[30].state.phone_use  # two of three runs at 0.12
    det.score = 0.0
    later = [pipe.process(Frame(img, i, i / 30)) for i in range(90, 150)]
    assert later[0].phone_score == 0.0 and all(r.phone_box is None for r in later)


def test_the_phone_runs_are_the_same_on_two_stages_as_on_one(real_face):
    """The detector starts with a frame's mesh (first stage) and is read with the rest of it
    (second stage); a detector that takes 0-30 ms at random gives the same readings on the
    same frames as the one-thread loop."""
    import random
    import time as _time

    from driver_monitor.session import run_frames

    class Slow(CountingPhoneDetector):
        def detect(self, image):
            _time.sleep(random.uniform(0.0, 0.03))
            self.score = 0.4 if 3 <= self.calls < 9 else 0.05
            return super().detect(image)

    class Source:
        is_live, ended, fps = False, False, 30.0

        def __init__(self):
            self.i = 0

        def read(self):
            if self.i >= 240:
                self.ended = True
                return None
            self.i += 1
            return Frame(img, self.i - 1, (self.i - 1) / 30)

    img, face = real_face
    runs = []
    cfg = load_config(None, ["phone.busy_rate_hz=10"])  # busy: a run every 3 frames, less than the hand-off spans
    for overlap in (False, True):
        pipe = make_pipeline(cfg, None, detector=ScriptedDetector([[face]] * 240), eye_model=None,
                        phone_detector=Slow(0.05))
        runs.append([(r.index, r.phone_score, r.state.phone_use) for r in run_frames(Source(), pipe, overlap=overlap)])
        pipe.close()
    assert len(runs[0]) == 240 and runs[0] == runs[1] and any(use for _, _, use in runs[0])


def test_a_files_phone_run_starts_as_its_frame_is_decoded(real_face):
    """``Pipeline.prepare`` (the decoding thread, frames ahead) starts the run that the frame's
    face stage carries and its processing reads."""
    img, face = real_face
    det = CountingPhoneDetector(0.4)
    with make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 2), eye_model=None,
                       phone_detector=det) as pipe:
        ahead = pipe.prepare(Frame(img, 0, 0.0))
        assert ahead.phone is not None and ahead.phone.result()[0][0].score == pytest.approx(0.4)
        assert det.calls == 1  # run before the mesh
        assert pipe.prepare(Frame(img, 1, 1 / 30)).phone is None  # not due a frame later
        detected = pipe.detect(Frame(img, 0, 0.0), ahead)
        assert detected.phone.future is ahead.phone and not detected.phone.nobody
        r = pipe.process(Frame(img, 0, 0.0), detected=detected)
        assert r.phone_score == pytest.approx(0.4) and "phone" in r.timings_ms and det.calls == 1


def test_no_phone_found_reads_zero_and_the_detector_is_on_by_default(real_face):
    img, face = real_face
    det = CountingPhoneDetector(0.0)
    with make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 3), eye_model=None,
                  phone_detector=det) as pipe:
        assert pipe.process(Frame(img, 0, 0.0)).phone_score == 0.0
    with make_pipeline(load_config(None), None, detector=ScriptedDetector([[face]] * 4), eye_model=None) as pipe:
        assert pipe.phone is not None  # the shipped YOLOX-Nano
        assert pipe.process(Frame(img, 0, 0.0)).phone_score is not None
    off = load_config(None, ["phone.enabled=false"])
    with make_pipeline(off, None, detector=ScriptedDetector([[face]]), eye_model=None) as pipe:
        assert pipe.phone is None
        r = pipe.process(Frame(img, 0, 0.0))
        assert r.phone_score is None and "phone" not in r.timings_ms


def test_with_nobody_in_view_the_phone_reads_none_and_phone_use_ends(real_face):
    """The detector keeps its schedule (it is started ahead of the face stage that would say nobody
    is there), but with nobody in view its reading is no phone: phone use ends."""
    img, face = real_face
    det = CountingPhoneDetector(0.4)
    mesh = ScriptedDetector([[face]] * 30 + [[]] * 60)
    pipe = make_pipeline(load_config(None), None, detector=mesh, eye_model=None, phone_detector=det)
    with_face = [pipe.process(Frame(img, i, i / 30)) for i in range(30)]
    assert with_face[-1].state.phone_use and det.calls == 3
    mesh.person_in_view = True  # a person without a face (turned away): still looked at
    turned = [pipe.process(Frame(img, i, i / 30)) for i in range(30, 45)]
    assert det.calls == 5 and any(r.phone_score == pytest.approx(0.4) for r in turned)
    mesh.person_in_view = False  # nobody: the runs read no phone, which ends the phone use
    gone = [pipe.process(Frame(img, i, i / 30)) for i in range(45, 90)]
    ran = [r for r in gone if "phone" in r.timings_ms]
    assert det.calls == 5 + len(ran) and len(ran) >= 2
    assert all(r.phone_score is None for r in gone)
    assert not gone[-1].state.phone_use and gone[-1].phone_box is None
