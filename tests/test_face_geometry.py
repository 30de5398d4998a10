"""Geometry, driver selection and eye visibility on synthetic faces (pure, no MediaPipe)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from driver_monitor.config import FaceConfig
from driver_monitor.face import geometry as geo
from driver_monitor.face.select import pick_driver
from driver_monitor.face.visibility import eye_visibility, eye_visibility_ratio
from driver_monitor.types import NUM_LANDMARKS, Face

# A hand-made generic face in face coordinates (millimetres; x towards the driver's left, which
# is the image's right in a frontal view; y down; z into the head). Only the mesh indices the
# geometry uses are placed; every other point sits at the face centre.
EYE_W = 30.0     # corner to corner
MOUTH_W = 50.0   # outer corner to outer corner


def _template(eye_h_right: float, eye_h_left: float, mouth_open: float,
              gaze: tuple[float, float]) -> np.ndarray:
    p = np.zeros((NUM_LANDMARKS, 3), np.float64)
    p[:] = (0.0, 30.0, 0.0)

    def eye(cx: float, h: float, outer: int, inner: int, up: tuple[int, int], low: tuple[int, int],
            lids: tuple[int, int], iris: int) -> None:
        sgn = 1.0 if cx > 0 else -1.0
        p[outer] = (cx + sgn * EYE_W / 2, 0, 2)
        p[inner] = (cx - sgn * EYE_W / 2, 0, 2)
        # p2/p3 above p6/p5, 5 mm either side of the centre
        for (u, lo), dx in zip(zip(up, low), (-5.0, 5.0)):
            p[u] = (cx + dx, -h / 2, 0)
            p[lo] = (cx + dx, h / 2, 0)
        p[lids[0]] = (cx, -h / 2, 0)
        p[lids[1]] = (cx, h / 2, 0)
        p[iris] = (cx + gaze[0] * EYE_W / 2, gaze[1] * max(h / 2, 0.3 * EYE_W / 2), -1)

    # right eye (image left): p1=33 outer, p2=160, p3=158, p4=133 inner, p5=153, p6=144
    eye(-32.0, eye_h_right, 33, 133, (160, 158), (144, 153), (159, 145), 468)
    # left eye (image right): p1=362 inner, p2=385, p3=387, p4=263 outer, p5=373, p6=380
    eye(32.0, eye_h_left, 263, 362, (385, 387), (380, 373), (386, 374), 473)
    # mouth: outer corners and three inner-lip pairs
    p[61], p[291] = (-MOUTH_W / 2, 60, -5), (MOUTH_W / 2, 60, -5)
    for (u, lo), x in zip(geo.INNER_LIP_PAIRS, (-10.0, 0.0, 10.0)):
        p[u] = (x, 60 - mouth_open / 2, -8)
        p[lo] = (x, 60 + mouth_open / 2, -8)
    # face outline, brow, chin, nose
    p[234], p[454] = (-70, 10, 30), (70, 10, 30)
    p[93], p[323] = (-68, 30, 30), (68, 30, 30)
    p[9], p[107], p[336] = (0, -20, -8), (-12, -25, -5), (12, -25, -5)
    p[152], p[17], p[200] = (0, 110, -5), (0, 80, -8), (0, 95, -8)
    p[1] = (0, 45, -30)
    # skin under and beside the eyes (what a lens covers) and reference skin (what it does not)
    for sgn, (u1, u2, u3, side, low) in ((-1, (230, 229, 231, 226, 25)), (1, (450, 449, 451, 446, 255))):
        p[u1], p[u2], p[u3] = (sgn * 32, 14, 0), (sgn * 26, 13, 0), (sgn * 38, 13, 0)
        p[side], p[low] = (sgn * 50, 2, 2), (sgn * 45, 8, 0)
    p[151], p[50], p[280], p[5] = (0, -45, -5), (-45, 45, 0), (45, 45, 0), (0, 30, -25)
    p[10] = (0, -60, 0)
    return p


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-frame rotation for the documented signs (checked on the nose / eyes below); yaw,
    pitch and roll compose as intrinsic yaw -> pitch -> roll, as docs/signals.md defines them."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return ry @ rx @ rz  # roll about the face's own axis, then pitch, then yaw


def make_face(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, *, eye_h: float = 9.0,
              eye_h_left: float | None = None, mouth_open: float = 0.0,
              gaze: tuple[float, float] = (0.0, 0.0), scale: float = 1.5,
              centre: tuple[float, float] = (320.0, 200.0)) -> Face:
    """A Face as the mesh adapter gives it: x, y pixels, z pixels (orthographic camera)."""
    tpl = _template(eye_h, eye_h if eye_h_left is None else eye_h_left, mouth_open, gaze)
    pts = (rotation(yaw, pitch, roll) @ tpl.T).T * scale
    pts[:, 0] += centre[0]
    pts[:, 1] += centre[1]
    lm = pts.astype(np.float32)
    bbox = np.concatenate([lm[:, :2].min(0), lm[:, :2].max(0)]).astype(np.float32)
    return Face(bbox=bbox, landmarks=lm)


CFG = FaceConfig()


# --------------------------------------------------------------------------- the factory itself


@pytest.mark.parametrize("kw, check", [
    (dict(yaw=30), lambda f: f.landmarks[1, 0] > 320 + 10),      # nose towards the image's right
    (dict(yaw=-30), lambda f: f.landmarks[1, 0] < 320 - 10),
    (dict(pitch=25), lambda f: f.landmarks[1, 1] < 200 + 45 * 1.5 - 10),  # chin up: nose rises
    (dict(roll=20), lambda f: f.landmarks[263, 1] > f.landmarks[33, 1] + 10),  # clockwise: image-right eye lower
])
def test_factory_follows_documented_signs(kw, check) -> None:
    assert check(make_face(**kw))


# --------------------------------------------------------------------------- EAR / MAR


@pytest.mark.parametrize("eye_h, want", [(9.0, 0.30), (6.0, 0.20), (1.5, 0.05), (0.0, 0.0)])
def test_ear_is_lid_gap_over_eye_width(eye_h: float, want: float) -> None:
    s = geo.measure(make_face(eye_h=eye_h), CFG)
    assert s.ear_left == pytest.approx(want, abs=1e-4)
    assert s.ear_right == pytest.approx(want, abs=1e-4)
    assert s.ear == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("yaw, w_right", [(0.0, 0.5), (10.0, 0.75), (25.0, 1.0), (-25.0, 0.0), (-40.0, 0.0)])
def test_ear_prefers_the_eye_facing_the_camera(yaw: float, w_right: float) -> None:
    # right eye open, left eye nearly closed; yaw > 0 shows the camera the right eye better
    s = geo.measure(make_face(yaw=yaw, eye_h=9.0, eye_h_left=3.0), CFG)
    assert s.ear_right > 2 * s.ear_left
    assert s.ear == pytest.approx(w_right * s.ear_right + (1 - w_right) * s.ear_left, abs=1e-6)


@pytest.mark.parametrize("mouth_open, want", [(0.0, 0.0), (10.0, 0.2), (35.0, 0.7)])
def test_mar_is_inner_lip_gap_over_mouth_width(mouth_open: float, want: float) -> None:
    assert geo.measure(make_face(mouth_open=mouth_open), CFG).mar == pytest.approx(want, abs=1e-3)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_ratios_do_not_depend_on_face_size(scale: float) -> None:
    s = geo.measure(make_face(scale=scale, mouth_open=20.0), CFG)
    assert (s.ear, s.mar) == pytest.approx((0.3, 0.4), abs=1e-3)


# --------------------------------------------------------------------------- head pose


@pytest.mark.parametrize("yaw, pitch, roll", [
    (0, 0, 0), (30, 0, 0), (-30, 0, 0), (45, 0, 0), (-45, 0, 0),
    (0, 20, 0), (0, -20, 0), (0, 35, 0), (0, -35, 0),
    (0, 0, 15), (0, 0, -15), (20, 10, 5), (-25, -15, 10), (10, -20, -12),
])
def test_head_pose_recovers_angles_with_documented_signs(yaw: float, pitch: float, roll: float) -> None:
    s = geo.measure(make_face(yaw, pitch, roll), CFG)
    assert (s.yaw_deg, s.pitch_deg, s.roll_deg) == pytest.approx((yaw, pitch, roll), abs=1.5)


# --------------------------------------------------------------------------- gaze


@pytest.mark.parametrize("gaze", [(0.0, 0.0), (0.5, 0.0), (-0.5, 0.0), (0.0, 0.6), (0.0, -0.6), (0.4, -0.3)])
def test_gaze_is_iris_offset_in_half_eye_sizes(gaze: tuple[float, float]) -> None:
    s = geo.measure(make_face(gaze=gaze), CFG)
    assert (s.gaze_x, s.gaze_y) == pytest.approx(gaze, abs=0.02)


def test_gaze_stays_finite_with_closed_eyes() -> None:
    s = geo.measure(make_face(eye_h=0.0, gaze=(0.0, 0.2)), CFG)
    assert math.isfinite(s.gaze_x) and math.isfinite(s.gaze_y) and abs(s.gaze_y) <= 2.0


# --------------------------------------------------------------------------- eyes visible


@pytest.mark.parametrize("yaw, visibility, want", [
    (0.0, None, True), (35.0, None, True), (45.0, None, False), (-45.0, None, False),
    (0.0, 0.9, True), (0.0, 0.5, True), (0.0, 0.2, False), (45.0, 1.0, False),
])
def test_eyes_visible(yaw: float, visibility: float | None, want: bool) -> None:
    assert geo.measure(make_face(yaw=yaw), CFG, eye_visibility=visibility).eyes_visible is want


# --------------------------------------------------------------------------- pick_driver


def _box_face(x0: float, y0: float, x1: float, y1: float) -> Face:
    lm = np.zeros((NUM_LANDMARKS, 3), np.float32)
    lm[:, 0] = np.linspace(x0, x1, NUM_LANDMARKS)
    lm[:, 1] = np.linspace(y0, y1, NUM_LANDMARKS)
    return Face(bbox=np.array([x0, y0, x1, y1], np.float32), landmarks=lm)


SMALL_LEFT = _box_face(50, 50, 150, 150)      # centre x 100 (left half)
BIG_RIGHT = _box_face(400, 50, 600, 250)      # centre x 500 (right half)
MID_LEFT = _box_face(100, 100, 250, 250)      # centre x 175 (left half), larger than SMALL_LEFT


@pytest.mark.parametrize("faces, rule, want", [
    ([], "largest", None),
    ([SMALL_LEFT], "largest", 0),
    ([SMALL_LEFT, BIG_RIGHT], "largest", 1),
    ([SMALL_LEFT, BIG_RIGHT, MID_LEFT], "largest", 1),
    ([SMALL_LEFT, BIG_RIGHT], "seat_region", 0),
    ([SMALL_LEFT, BIG_RIGHT, MID_LEFT], "seat_region", 2),
    ([BIG_RIGHT], "seat_region", None),        # a passenger alone is not the driver
])
def test_pick_driver(faces, rule, want) -> None:
    cfg = FaceConfig(driver_rule=rule, seat_region=[0.0, 0.0, 0.5, 1.0])
    assert pick_driver(faces, (480, 640), cfg) == want


# --------------------------------------------------------------------------- eye visibility


def _painted(face: Face, skin: int, around_eyes: int, colour: bool = True) -> np.ndarray:
    """An image of uniform skin with the skin around the eyes painted ``around_eyes``."""
    img = np.full((400, 640), skin, np.uint8)
    for ring in (geo.RIGHT_EYE, geo.LEFT_EYE):
        c = face.landmarks[list(ring), :2].mean(0)
        x, y = int(c[0]), int(c[1])
        img[y - 25:y + 30, x - 35:x + 35] = around_eyes  # a lens: covers the eye and the skin below
    return np.repeat(img[:, :, None], 3, axis=2) if colour else img


@pytest.mark.parametrize("skin, lens, colour, want_lo, want_hi", [
    (160, 160, True, 1.0, 1.0),    # nothing over the eyes
    (160, 150, False, 1.0, 1.0),   # grey (IR) image, a little shadow
    (160, 40, True, 0.0, 0.0),     # dark sunglasses
    (60, 15, True, 0.0, 0.0),      # dark sunglasses on a dark face: the ratio, not the level, counts
    (160, 104, True, 0.4, 0.6),    # ratio 0.65: the decision point
])
def test_eye_visibility_on_painted_faces(skin, lens, colour, want_lo, want_hi) -> None:
    face = make_face(scale=1.5)
    v = eye_visibility(_painted(face, skin, lens, colour), face)
    assert want_lo <= v <= want_hi


def test_eye_visibility_unmeasurable_is_neutral() -> None:
    face = make_face(scale=1.5)
    black = np.zeros((400, 640, 3), np.uint8)
    assert math.isnan(eye_visibility_ratio(black, face))
    assert eye_visibility(black, face) == 1.0


def test_eye_patch_luma_is_the_weighted_sum_of_the_channels() -> None:
    """The patches' grey levels are 0.114 B + 0.587 G + 0.299 R, as a matrix product would give
    them (computed by hand so no BLAS thread pool wakes beside the face mesh)."""
    from driver_monitor.face.visibility import _W, _grey, _patch_pixels

    def _grey_patches(image, pts, idx, r):
        return _grey(_patch_pixels(image, pts, idx, r))

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    pts = np.array([[10, 10, 0], [40, 30, 0], [79, 59, 0]], np.float32)
    got = _grey_patches(img, pts, (0, 1, 2), 4)
    want = np.concatenate([img[6:15, 6:15].reshape(-1, 3), img[26:35, 36:45].reshape(-1, 3),
                           img[55:60, 75:80].reshape(-1, 3)]).astype(np.float64) @ _W.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)
    grey = img[..., 1]
    np.testing.assert_array_equal(_grey_patches(grey, pts, (1,), 2), grey[28:33, 38:43].reshape(-1).astype(np.float32))


@pytest.mark.parametrize("n", [1, 2, 7, 8, 441, 2916])
def test_patch_median_is_numpys_median(n: int) -> None:
    """The eye-visibility medians are np.median's values exactly (odd and even counts)."""
    from driver_monitor.face.visibility import _median

    v = np.random.default_rng(n).integers(0, 256, (n, 3)).astype(np.float32) @ np.float32([0.114, 0.587, 0.299])
    assert _median(v) == float(np.median(v))
    assert _median(v[: n // 2 * 2 or 1]) == float(np.median(v[: n // 2 * 2 or 1]))
