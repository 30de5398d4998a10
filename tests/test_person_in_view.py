"""A person in view with no face in the mesh (a head in profile): MediaPipe's person segmentation,
looked at when the mesh finds no face, on real clips."""
from __future__ import annotations

import pytest

from driver_monitor.capture import open_source
from driver_monitor.config import CaptureConfig, FaceConfig
from tests.conftest import need_data


def _looks(rel: str, cfg: FaceConfig) -> list[tuple[int, bool | None]]:
    from driver_monitor.face.mesh import FaceMeshDetector

    out = []
    with open_source(need_data(rel), CaptureConfig()) as src, FaceMeshDetector(cfg) as det:
        for f in src:
            faces = det.detect(f.image, t_s=f.time_s)
            out.append((len(faces), det.person_in_view))
    return out


def test_a_head_in_profile_is_a_person_in_view():
    looks = _looks("ir_clips/look_sideway_02.avi", FaceConfig())
    no_face = [p for n, p in looks[:30] if n == 0]  # frames 0-32: in profile, no mesh
    assert len(no_face) >= 25 and all(no_face)


@pytest.mark.parametrize("rel", ["videos/no_face.mp4", "videos/face_then_noface.mov"])
def test_an_empty_view_is_no_person(rel):
    looks = _looks(rel, FaceConfig())
    no_face = [p for n, p in looks if n == 0]
    assert no_face and not any(no_face)


def test_the_look_can_be_switched_off():
    looks = _looks("ir_clips/look_sideway_02.avi", FaceConfig(person_check_hz=0.0))
    assert all(p is None for _, p in looks)
