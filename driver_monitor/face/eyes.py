"""Eye patches for the eye-state model: one small grey square per eye, cut along the mesh's eye
corners (pure: numpy + OpenCV on pixels).

Each patch is centred on the eye (the mean of its six contour points), rotated so the corner line
is level, ``PATCH_SCALE`` eye widths (corner to corner) wide, and resized to ``size`` pixels: the
framing of CEW's eye patches ("Closed Eyes In The Wild", 24x24, the eye corners at about a sixth
and five sixths of the width), so the model sees the same framing on its training data and on a
drive. The driver's left eye is mirrored, so both patches show the outer corner on the left.

A patch is cut from the frame region it needs only (grey, area-averaged when the eye is large),
about 0.1 ms for both eyes.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from ..types import Face

#: (outer corner, inner corner) of the driver's right and left eye (MediaPipe mesh indices)
RIGHT_CORNERS = (33, 133)
LEFT_CORNERS = (263, 362)
#: the six contour points of each eye (see face.geometry: RIGHT_EYE / LEFT_EYE)
RIGHT_CONTOUR = (33, 160, 158, 133, 153, 144)
LEFT_CONTOUR = (362, 385, 387, 263, 373, 380)
PATCH_SIZE = 24      # pixels, CEW's patch size
PATCH_SCALE = 1.5    # patch side in eye widths (corner to corner)



def _grey(region: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if region.ndim == 2:
        return region
    return cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)


def _patch(image: NDArray[np.uint8], pts: NDArray[np.float32], corners: tuple[int, int],
           contour: tuple[int, ...], size: int, scale: float, mirror: bool) -> NDArray[np.uint8] | None:
    outer = pts[corners[0], :2].astype(np.float64)
    inner = pts[corners[1], :2].astype(np.float64)
    width = float(np.hypot(*(inner - outer)))
    if not math.isfinite(width) or width < 2.0:
        return None
    centre = pts[list(contour), :2].astype(np.float64).mean(0)
    # the corner line, pointing from the image-left corner to the image-right one
    a, b = (outer, inner) if outer[0] <= inner[0] else (inner, outer)
    angle = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
    side = scale * width
    # cut the region the rotated square needs (its bounding box and a pixel for the interpolation),
    # grey, shrunk towards 2x size
    h, w = image.shape[:2]
    rad = math.radians(angle)
    r = 0.5 * side * (abs(math.cos(rad)) + abs(math.sin(rad))) + 2.0
    x0, x1 = int(max(0, math.floor(centre[0] - r))), int(min(w, math.ceil(centre[0] + r)))
    y0, y1 = int(max(0, math.floor(centre[1] - r))), int(min(h, math.ceil(centre[1] + r)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    region = _grey(image[y0:y1, x0:x1])
    shrink = max(1, int(side // (2 * size)))
    if shrink > 1:
        region = cv2.resize(region, ((x1 - x0) // shrink or 1, (y1 - y0) // shrink or 1), interpolation=cv2.INTER_AREA)
    cx, cy = (centre[0] - x0) / shrink, (centre[1] - y0) / shrink
    m = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, size * shrink / side)
    m[:, 2] += np.array([size / 2.0 - cx, size / 2.0 - cy])
    out = cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out[:, ::-1].copy() if mirror else out


def eye_patches(image: NDArray[np.uint8], face: Face, size: int = PATCH_SIZE,
                scale: float = PATCH_SCALE) -> NDArray[np.uint8] | None:
    """``(2, size, size)`` uint8 grey patches of the driver's right and left eye (the left one
    mirrored), ``scale`` eye widths wide, or None when an eye is degenerate (corners on one pixel)
    or off the frame."""
    pts = face.landmarks
    right = _patch(image, pts, RIGHT_CORNERS, RIGHT_CONTOUR, size, scale, mirror=False)
    left = _patch(image, pts, LEFT_CORNERS, LEFT_CONTOUR, size, scale, mirror=True)
    if right is None or left is None:
        return None
    return np.stack([right, left])
