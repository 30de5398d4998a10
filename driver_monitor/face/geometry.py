"""Geometry signals from the 478-point mesh: EAR, MAR, head pose, gaze (pure: numpy only).

Landmark indices are MediaPipe FaceMesh's (``refine_landmarks=True``); "left" / "right" are the
driver's own sides (the driver's right eye is on the image's left in a camera facing them).
Definitions, indices and what they measure on the shared clips: docs/signals.md.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..config import FaceConfig
from ..types import Face, Signals

# Eye contours in Soukupova & Cech order p1..p6: p1/p4 the corners, p2/p3 upper lid, p6/p5 lower
# lid (p2 faces p6, p3 faces p5). Right eye: 33 outer corner, 133 inner; left eye: 362 inner, 263 outer.
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)
# lid mid points (upper, lower) and iris centres (refined landmarks)
RIGHT_LIDS = (159, 145)
LEFT_LIDS = (386, 374)
RIGHT_IRIS = 468
LEFT_IRIS = 473
# Mouth: inner-lip pairs (upper, lower) across the mouth, and the outer corners for the width.
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))
MOUTH_CORNERS = (61, 291)
# Head pose axes from the mesh's own 3D points (x, y pixels; z pixels, depth scaled like x):
# the image-left half of the face vs the image-right half gives the face's x axis, the brow line vs
# the chin / lower lip the face's y axis.
POSE_RIGHT_SIDE = (33, 133, 234, 61, 93)     # the driver's right side (image left, frontal)
POSE_LEFT_SIDE = (263, 362, 454, 291, 323)   # their mirror images on the driver's left
POSE_TOP = (9, 107, 336)                     # glabella and inner brows
POSE_BOTTOM = (152, 17, 200)                 # chin and below the lower lip

_EPS = 1e-6
_IDX_RIGHT_SIDE = np.array(POSE_RIGHT_SIDE)
_IDX_LEFT_SIDE = np.array(POSE_LEFT_SIDE)
_IDX_TOP = np.array(POSE_TOP)
_IDX_BOTTOM = np.array(POSE_BOTTOM)

# Scalar float maths below: a frame needs a few dozen distances, and Python floats beat numpy's
# per-call overhead on 2-vectors by ~10x (the whole measure() stays well under 0.1 ms).


def _dist(p, a: int, b: int) -> float:
    """Image distance between points a and b of ``p`` (an (N, >=2) array or {index: (x, y)})."""
    pa, pb = p[a], p[b]
    return math.hypot(pa[0] - pb[0], pa[1] - pb[1])


def eye_aspect_ratio(pts: NDArray[np.floating], idx: tuple[int, ...]) -> float:
    """Soukupova & Cech: (|p2-p6| + |p3-p5|) / (2 |p1-p4|), on the x, y pixel coordinates."""
    p = pts
    horizontal = _dist(p, idx[0], idx[3])
    if horizontal <= _EPS:
        return float("nan")
    return (_dist(p, idx[1], idx[5]) + _dist(p, idx[2], idx[4])) / (2.0 * horizontal)


def mouth_aspect_ratio(pts: NDArray[np.floating]) -> float:
    """Mean inner-lip opening over three pairs / mouth width between the outer corners."""
    width = _dist(pts, MOUTH_CORNERS[0], MOUTH_CORNERS[1])
    if width <= _EPS:
        return float("nan")
    opening = sum(_dist(pts, a, b) for a, b in INNER_LIP_PAIRS) / len(INNER_LIP_PAIRS)
    return opening / width


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    n = math.sqrt(float(v @ v))
    return v / n if n > _EPS else v


def face_axes(pts: NDArray[np.floating]) -> NDArray[np.float64]:
    """3x3 rotation whose columns are the face's x (towards the driver's left), y (down) and z
    (into the head) axes in camera coordinates (x right, y down, z away from the camera)."""
    p = np.asarray(pts, np.float64)
    ex = _unit(p[_IDX_LEFT_SIDE].mean(0) - p[_IDX_RIGHT_SIDE].mean(0))
    ey = p[_IDX_BOTTOM].mean(0) - p[_IDX_TOP].mean(0)
    ey = _unit(ey - ex * float(ey @ ex))
    ez = np.array([ex[1] * ey[2] - ex[2] * ey[1], ex[2] * ey[0] - ex[0] * ey[2], ex[0] * ey[1] - ex[1] * ey[0]])
    return np.stack([ex, ey, ez], axis=1)


def head_pose(pts: NDArray[np.floating]) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees, signs as in driver_monitor.types (yaw > 0: the driver's own
    left; pitch > 0: chin up; roll > 0: towards the driver's left shoulder, clockwise in the image).

    Yaw and pitch are the azimuth and elevation of the face's normal; roll is the turn about that
    normal (intrinsic yaw -> pitch -> roll). The axes come from the mesh's own 3D points (z is
    MediaPipe's depth in pixels), so no generic 3D head model or camera matrix is needed."""
    r = face_axes(pts)
    nx, ny, nz = -float(r[0, 2]), -float(r[1, 2]), -float(r[2, 2])  # face normal, (0, 0, -1) frontal
    yaw = math.degrees(math.atan2(nx, -nz))
    pitch = math.degrees(math.atan2(-ny, math.hypot(nx, nz)))
    # intrinsic yaw -> pitch -> roll: roll is the turn about the face's own normal
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[1, 1])))
    return yaw, pitch, roll


def _eye_gaze(p, corners: tuple[int, int], lids: tuple[int, int], iris: int) -> tuple[float, float]:
    """Iris offset from the eye centre in half-widths (x, towards the image's right) and
    half-heights (y, down); the half-height is floored at 0.3 half-widths (nearly shut lids)."""
    (ax, ay), (bx, by) = p[corners[0]][:2], p[corners[1]][:2]
    if ax > bx:
        ax, ay, bx, by = bx, by, ax, ay
    length = math.hypot(bx - ax, by - ay)
    if length <= _EPS:
        return float("nan"), float("nan")
    ux, uy = (bx - ax) / length, (by - ay) / length
    vx, vy = -uy, ux  # u turned +90 deg in image coordinates: points down
    half_w = length / 2.0
    (tx, ty), (bx2, by2) = p[lids[0]][:2], p[lids[1]][:2]
    half_h = max(abs((bx2 - tx) * vx + (by2 - ty) * vy) / 2.0, 0.3 * half_w)
    cx, cy = p[iris][:2]
    gx = ((cx - (ax + bx) / 2.0) * ux + (cy - (ay + by) / 2.0) * uy) / half_w
    gy = ((cx - (tx + bx2) / 2.0) * vx + (cy - (ty + by2) / 2.0) * vy) / half_h
    return gx, gy


def right_eye_weight(yaw_deg: float) -> float:
    """How much the driver's right eye counts in a value of both eyes (the left gets the rest):
    turning to their left (yaw > 0) shows the camera the right eye better; +-20 deg = one eye only."""
    return min(1.0, max(0.0, 0.5 + yaw_deg / 40.0))


_USED = sorted({*RIGHT_EYE, *LEFT_EYE, *RIGHT_LIDS, *LEFT_LIDS, RIGHT_IRIS, LEFT_IRIS, *MOUTH_CORNERS,
                *(i for pair in INNER_LIP_PAIRS for i in pair)})


def measure(face: Face, cfg: FaceConfig,
            eye_visibility: float | None = None) -> Signals:
    """Signals of one face. ``eye_visibility`` (0..1, from face.visibility) below
    ``cfg.min_eye_visibility`` marks the eyes not visible (sunglasses, occlusion)."""
    pts = face.landmarks
    # the 2D points the ratios need, as Python floats keyed by mesh index
    p = dict(zip(_USED, pts[_USED, :2].tolist()))
    ear_r = eye_aspect_ratio(p, RIGHT_EYE)
    ear_l = eye_aspect_ratio(p, LEFT_EYE)
    yaw, pitch, roll = head_pose(pts)
    w_right = right_eye_weight(yaw)
    ear = w_right * ear_r + (1.0 - w_right) * ear_l
    gx_r, gy_r = _eye_gaze(p, (RIGHT_EYE[0], RIGHT_EYE[3]), RIGHT_LIDS, RIGHT_IRIS)
    gx_l, gy_l = _eye_gaze(p, (LEFT_EYE[0], LEFT_EYE[3]), LEFT_LIDS, LEFT_IRIS)
    gaze_x = min(2.0, max(-2.0, w_right * gx_r + (1.0 - w_right) * gx_l))
    gaze_y = min(2.0, max(-2.0, w_right * gy_r + (1.0 - w_right) * gy_l))
    visible = abs(yaw) <= cfg.max_eye_yaw_deg
    if eye_visibility is not None and eye_visibility < cfg.min_eye_visibility:
        visible = False
    return Signals(
        ear_left=ear_l, ear_right=ear_r, ear=float(ear), mar=mouth_aspect_ratio(p),
        yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll, gaze_x=float(gaze_x), gaze_y=float(gaze_y),
        eyes_visible=bool(visible),
    )

