"""Alignment: eye line level, FERPlus framing, size and colour handling (synthetic faces)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from driver_monitor.face.align import EYE_Y, align_face, eye_centres

from .test_face_geometry import make_face

S = 48
MARGIN = 0.14


def _apply(m: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return m[:, :2].astype(np.float64) @ np.asarray(xy, np.float64) + m[:, 2]


def _eyes_in_crop(face, size=S, margin=MARGIN):
    al = align_face(np.zeros((400, 640, 3), np.uint8), face, size, margin)
    right, left = eye_centres(face)
    return al, _apply(al.matrix, right), _apply(al.matrix, left)


@pytest.mark.parametrize("roll", [-30.0, -10.0, 0.0, 12.0, 35.0])
def test_eye_line_is_level_and_placed_like_ferplus(roll: float) -> None:
    al, right, left = _eyes_in_crop(make_face(roll=roll))
    assert right[1] == pytest.approx(left[1], abs=1e-3)                    # level
    assert (right[1] + left[1]) / 2 == pytest.approx(EYE_Y * S, abs=1e-3)  # at FERPlus eye height
    assert (right[0] + left[0]) / 2 == pytest.approx(S / 2, abs=1e-3)      # centred
    assert right[0] < left[0]                                              # not flipped
    assert al.angle_deg == pytest.approx(roll, abs=0.5)                    # clockwise roll -> positive angle


@pytest.mark.parametrize("scale", [0.6, 1.0, 2.5])
def test_crop_scale_follows_face_size(scale: float) -> None:
    # the face width (234-454 = 140 mm) fills 1 / (1 + 2 margin) of the side, whatever its pixel size
    _, right, left = _eyes_in_crop(make_face(scale=scale))
    eye_dist_frac = (left[0] - right[0]) / S
    assert eye_dist_frac == pytest.approx(64.0 / 140.0 / (1 + 2 * MARGIN), rel=1e-3)


def test_turned_head_is_not_zoomed_in() -> None:
    # 3D face width: a 40 deg turn changes the crop scale by less than 3 %
    a = align_face(np.zeros((400, 640), np.uint8), make_face(), S, MARGIN).matrix
    b = align_face(np.zeros((400, 640), np.uint8), make_face(yaw=40), S, MARGIN).matrix
    assert np.hypot(*b[0, :2]) == pytest.approx(np.hypot(*a[0, :2]), rel=0.03)


@pytest.mark.parametrize("margin", [0.0, 0.14, 0.5])
def test_margin_widens_the_crop(margin: float) -> None:
    _, right, left = _eyes_in_crop(make_face(), margin=margin)
    assert (left[0] - right[0]) / S == pytest.approx(64.0 / 140.0 / (1 + 2 * margin), rel=1e-3)


@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize("size", [48, 64, 112])
def test_output_is_grey_square_of_size(colour: bool, size: int) -> None:
    img = np.random.default_rng(0).integers(0, 255, (400, 640, 3) if colour else (400, 640), dtype=np.uint8)
    al = align_face(img, make_face(), size, MARGIN)
    assert al.image.shape == (size, size) and al.image.dtype == np.uint8


def test_pixels_follow_the_matrix() -> None:
    # paint two bright discs on the eyes of a tilted face: in the crop they sit level where the matrix says
    face = make_face(roll=20.0, scale=2.0)
    img = np.zeros((400, 640, 3), np.uint8)
    right, left = eye_centres(face)
    for c in (right, left):
        cv2.circle(img, (int(round(c[0])), int(round(c[1]))), 6, (255, 255, 255), -1)
    al = align_face(img, face, 96, MARGIN)
    ys, xs = np.nonzero(al.image > 128)
    left_blob, right_blob = xs < 48, xs >= 48
    for mask, c in ((left_blob, right), (right_blob, left)):
        want = _apply(al.matrix, c)
        assert xs[mask].mean() == pytest.approx(want[0], abs=1.0)
        assert ys[mask].mean() == pytest.approx(want[1], abs=1.0)
    assert ys[left_blob].mean() == pytest.approx(ys[right_blob].mean(), abs=1.0)


def test_bad_size_is_refused() -> None:
    with pytest.raises(ValueError, match="crop size"):
        align_face(np.zeros((10, 10), np.uint8), make_face(), 4, MARGIN)
