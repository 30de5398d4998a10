"""Face alignment for the emotion / AU network: eye line level, FER-style square crop, grey.

The network is trained on FER2013 / FERPlus 48x48 faces, so the crop copies their framing. Measured
with the face mesh on 372 FERPlus test images (docs/signals.md): the face's cheek-to-cheek width
(landmarks 234-454, 3D) is 0.78 of the image side (median), and the midpoint of the eyes sits at
0.50 across and 0.39 down. Here: side = width x (1 + 2 x margin) with the default
``face.align_margin = 0.14`` (1 / 0.78 = 1 + 2 x 0.14), eye midpoint at (0.5, ``EYE_Y``).

The 3D width (x, y and the mesh's depth, all in pixels) barely changes when the head turns, so a
turned face is not zoomed in. Pure: numpy + OpenCV on pixels.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from ..types import AlignedFace, Face

RIGHT_EYE_RING = (33, 133, 159, 145)   # corners and lid mid points of the driver's right eye
LEFT_EYE_RING = (362, 263, 386, 374)
FACE_WIDTH = (234, 454)                # cheek-to-cheek contour points
EYE_Y = 0.39                           # eye midpoint height in a FERPlus crop (fraction of side)


def eye_centres(face: Face) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(right eye centre, left eye centre) in pixels (x, y); right = driver's right = image left."""
    p = face.landmarks[:, :2].astype(np.float64)
    return p[list(RIGHT_EYE_RING)].mean(0), p[list(LEFT_EYE_RING)].mean(0)


def alignment_matrix(face: Face, size: int, margin: float) -> tuple[NDArray[np.float64], float]:
    """(2x3 affine frame pixels -> crop pixels, rotation in degrees)."""
    right, left = eye_centres(face)
    dx, dy = left - right
    angle = math.degrees(math.atan2(dy, dx))
    a, b = face.landmarks[FACE_WIDTH[0]].astype(np.float64), face.landmarks[FACE_WIDTH[1]].astype(np.float64)
    width = float(np.linalg.norm(a - b))
    if not math.isfinite(width) or width < 1.0:
        width = max(1.0, 2.8 * float(np.hypot(dx, dy)))  # FERPlus: eye distance ~0.36 of the side
    side = width * (1.0 + 2.0 * margin)
    centre = (right + left) / 2.0
    m = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, size / side)
    m[:, 2] += np.array([0.5 * size, EYE_Y * size]) - centre
    return m, angle


def align_face(image: NDArray[np.uint8], face: Face, size: int, margin: float) -> AlignedFace:
    """Rotate so the eye line is level, crop a square around the face, resize to ``size``, grey.

    Fast path: only the frame region the crop needs is made grey and area-shrunk by a whole
    factor towards twice the crop's resolution, warped to ``2 x size`` and area-averaged down, so a large face
    is not aliased and a full-frame warp is never paid for.
    """
    if size < 8:
        raise ValueError(f"crop size must be >= 8, got {size}")
    m, angle = alignment_matrix(face, size, margin)
    h, w = image.shape[:2]
    # frame region under the crop: its corners mapped back, plus a pixel for interpolation
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    back = corners @ inv[:, :2].T + inv[:, 2]
    x0 = int(np.clip(np.floor(back[:, 0].min()) - 2, 0, w - 1))
    y0 = int(np.clip(np.floor(back[:, 1].min()) - 2, 0, h - 1))
    x1 = int(np.clip(np.ceil(back[:, 0].max()) + 3, x0 + 1, w))
    y1 = int(np.clip(np.ceil(back[:, 1].max()) + 3, y0 + 1, h))
    roi = image[y0:y1, x0:x1]
    if roi.ndim == 3:
        roi = cv2.cvtColor(roi, cv2.COLOR_BGR2GRAY)
    scale = float(np.hypot(m[0, 0], m[0, 1]))  # crop pixels per frame pixel
    # shrink the region by a whole factor n towards twice the crop resolution (OpenCV's fast
    # integer INTER_AREA path; a fractional factor costs ~5x more)
    n = max(1, int(1.0 / (2.0 * max(scale, 1e-6))))
    if n > 1 and roi.shape[0] >= 2 * n and roi.shape[1] >= 2 * n:
        rh, rw = roi.shape[0] - roi.shape[0] % n, roi.shape[1] - roi.shape[1] % n
        roi = cv2.resize(roi[:rh, :rw], (rw // n, rh // n), interpolation=cv2.INTER_AREA)
        fx = fy = 1.0 / n
    else:
        fx = fy = 1.0
    # frame p = (roi_small / (fx, fy)) + (x0, y0): fold that into the crop matrix, at 2x size
    a = m[:, :2] / np.array([fx, fy])
    b = m[:, :2] @ np.array([x0, y0], np.float64) + m[:, 2]
    k = 2
    mk = np.hstack([a, b[:, None]]) * k
    crop = cv2.warpAffine(roi, mk, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return AlignedFace(image=np.ascontiguousarray(crop), angle_deg=float(angle), matrix=m.astype(np.float32))
