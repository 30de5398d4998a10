"""The face mesh tracks one face and counts the faces on a schedule (face.search_interval_s):
two faces in view are both followed from the search that sees them, a lone face is tracked alone
again after a search, and the interval 0 follows every face on every frame."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from driver_monitor.config import load_config
from tests.conftest import need_data


@pytest.fixture(scope="module")
def frames():
    """Frames of single_face.mp4 (one face) and the same frames beside their mirror (two faces)."""
    cap = cv2.VideoCapture(str(need_data("videos/single_face.mp4")))
    one = []
    while len(one) < 60:
        ok, img = cap.read()
        if not ok:
            break
        one.append(img)
    cap.release()
    assert len(one) >= 40
    pad = [np.hstack([img, np.zeros_like(img)]) for img in one]  # the same size as the pairs
    two = [np.hstack([img, img[:, ::-1]]) for img in one]
    return pad, two


def _detector(interval: float):
    from driver_monitor.face.mesh import FaceMeshDetector

    face = dataclasses.replace(load_config(None).face, search_interval_s=interval)
    return FaceMeshDetector(face)


def test_one_face_is_tracked_alone_between_searches(frames) -> None:
    pad, _ = frames
    with _detector(0.5) as det:
        counts = [len(det.detect(img, t_s=i / 30)) for i, img in enumerate(pad[:40])]
        assert counts == [1] * 40
        assert not det.following_all
        assert det.searches == 3  # at 0 s, 0.5 s, 1.0 s: 40 frames at 30 fps


def test_a_second_face_is_followed_from_the_next_search(frames) -> None:
    pad, two = frames
    with _detector(0.5) as det:
        seq = pad[:20] + two[20:40]  # the second face enters at 0.667 s
        counts = [len(det.detect(img, t_s=i / 30)) for i, img in enumerate(seq)]
        assert counts[:20] == [1] * 20
        first_two = counts.index(2)
        assert 20 <= first_two <= 20 + 15  # within one interval (15 frames)
        assert counts[first_two:] == [2] * (40 - first_two)
        assert det.following_all
        # the second face leaves: a search sees one face and tracking goes back to one face
        counts = [len(det.detect(img, t_s=(40 + i) / 30)) for i, img in enumerate(pad[40:60])]
        assert counts == [1] * len(counts)
        assert not det.following_all


def test_interval_zero_follows_every_face_on_every_frame(frames) -> None:
    _, two = frames
    with _detector(0.0) as det:
        counts = [len(det.detect(img, t_s=i / 30)) for i, img in enumerate(two[:10])]
        assert counts == [2] * 10
        assert det.following_all and det.searches == 0


def test_the_warm_up_leaves_nothing_behind(frames) -> None:
    """The detector runs its graphs once on a blank frame when it is made (so the first frame of a
    drive does not pay for setting them up); the landmarks are those of a mesh that never ran it."""
    import mediapipe as mp

    pad, _ = frames
    face = load_config(None).face
    with _detector(0.5) as det, mp.solutions.face_mesh.FaceMesh(
            max_num_faces=1, refine_landmarks=True, min_detection_confidence=face.min_detection_confidence,
            min_tracking_confidence=face.min_tracking_confidence) as cold:
        for i, img in enumerate(pad[:20]):
            warm = det.detect(img, t_s=i / 30)
            ref = cold.process(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).multi_face_landmarks
            assert len(warm) == len(ref) == 1
            w, h = img.shape[1], img.shape[0]
            xy = np.array([(p.x * w, p.y * h) for p in ref[0].landmark], np.float32)
            np.testing.assert_array_equal(warm[0].landmarks[:, :2], xy)


def test_warm_up_runs_each_graph_once_and_forgets_it() -> None:
    from driver_monitor.face.mesh import WARM_UP_SHAPE, warm_up

    class Graph:
        def __init__(self) -> None:
            self.calls: list[str] = []

        def process(self, image: np.ndarray) -> None:
            assert image.shape == WARM_UP_SHAPE and not image.any()
            self.calls.append("process")

        def reset(self) -> None:
            self.calls.append("reset")

    a, b = Graph(), Graph()
    warm_up(a, None, b)
    assert a.calls == b.calls == ["process", "reset"]


def test_the_frame_is_lent_to_the_graphs_with_the_same_landmarks() -> None:
    """prepare() makes the RGB copy read-only, so MediaPipe reads it in place instead of copying it
    per graph; on a frame whose rows are not a multiple of 16 bytes wide (554 x 3) the landmarks
    equal those of the copied frame, and the caller's frame stays writable."""
    from driver_monitor.face.mesh import FaceMeshDetector

    cap = cv2.VideoCapture(str(need_data("videos/yawn_in_car.mp4")))
    imgs = [cap.read()[1] for _ in range(5)]
    cap.release()
    assert imgs[0].shape[1] * 3 % 16 != 0
    face = dataclasses.replace(load_config(None).face, search_interval_s=0.0)
    with FaceMeshDetector(face) as lent, FaceMeshDetector(face) as copied:
        for img in imgs:
            rgb = lent.prepare(img)
            assert not rgb.flags.writeable and img.flags.writeable
            a = lent.detect(img, prepared=rgb)
            b = copied.detect(img, prepared=np.array(rgb))  # writable: MediaPipe copies it
            assert len(a) == len(b) == 1
            np.testing.assert_array_equal(a[0].landmarks, b[0].landmarks)
