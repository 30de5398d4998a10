"""Image evidence that the driver's eyes can really be seen (pure: numpy + OpenCV on pixels).

MediaPipe fits eye landmarks behind dark sunglasses too, so EAR from the mesh alone would report
"eyes open" for a driver whose eyes nobody can see. The lenses of sunglasses cover the skin
around the eye (under the eye and beside its outer corner) with something much darker than the
rest of the face; clear glasses, closed lids, IR night images and normal shadows do not.

Score: for each eye, the median grey level of small patches on the skin just below and beside the
eye, divided by the median grey level of reference skin (forehead, both cheeks, nose) that glasses
do not cover; the better-lit eye counts (a turned head shades one side). That ratio is mapped to
0..1 linearly between ``RATIO_HIDDEN`` (0) and ``RATIO_VISIBLE`` (1).

Measured ratios on the shared clips (docs/signals.md): dark sunglasses 0.29..0.61 (1st..95th
percentile), every clip where the eyes can be seen 0.72 or more (1st percentile; clear glasses
0.98, IR night 1.27). The ramp 0.45..0.85 puts the default decision ``face.min_eye_visibility =
0.5`` at a ratio of 0.65, in the middle of that gap.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..types import Face

# Skin around each eye that a sunglasses lens covers: below the eye (230/229/231, 450/449/451),
# beside the outer corner (226, 446) and under the outer corner (25, 255).
AROUND_RIGHT_EYE = (230, 229, 231, 226, 25)
AROUND_LEFT_EYE = (450, 449, 451, 446, 255)
# Reference skin no glasses cover: mid forehead, both cheeks, the nose.
REFERENCE_SKIN = (151, 50, 280, 5)
EYE_PATCH_FRACTION = 0.05   # patch half-size as a fraction of the inter-ocular distance
REF_PATCH_FRACTION = 0.08
RATIO_HIDDEN = 0.45
RATIO_VISIBLE = 0.85

_W = np.array([0.114, 0.587, 0.299], np.float32)  # BGR -> luma


def _patch_pixels(image: NDArray[np.uint8], pts: NDArray[np.float32], idx: tuple[int, ...], r: int) -> list[NDArray]:
    """The pixels of the (2r+1)^2 patches around the given landmarks (cut at the image's edge),
    each patch as (n, 3) BGR or (n,) grey."""
    h, w = image.shape[:2]
    out = []
    for i in idx:
        x, y = int(round(float(pts[i, 0]))), int(round(float(pts[i, 1])))
        p = image[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
        if p.size:
            out.append(p.reshape(-1, 3) if p.ndim == 3 else p.reshape(-1))
    return out


def _grey(pixels: list[NDArray]) -> NDArray[np.float32]:
    """Grey levels (float32) of the pixels, concatenated."""
    allp = np.concatenate(pixels)
    if allp.ndim == 1:
        return allp.astype(np.float32)
    # the weighted sum by hand, not ``@``: a matrix product goes to the BLAS library, whose
    # worker threads spin on the core the face mesh runs on (0.4 ms alone, 1.8-3.8 ms beside it)
    c = allp.astype(np.float32)
    return c[:, 0] * _W[0] + c[:, 1] * _W[1] + c[:, 2] * _W[2]


def _median(v: NDArray[np.float32]) -> float:
    """``np.median`` of a non-empty 1-D array without NaN, the same value, without its checks."""
    k = v.size // 2
    if v.size % 2:
        return float(np.partition(v, k)[k])
    return float(np.partition(v, (k - 1, k))[k - 1:k + 1].mean())


def eye_visibility_ratio(image: NDArray[np.uint8], face: Face) -> float:
    """Skin-around-the-eyes / reference-skin brightness ratio (NaN when it cannot be measured)."""
    pts = face.landmarks
    iod = float(np.hypot(pts[33, 0] - pts[263, 0], pts[33, 1] - pts[263, 1]))
    if not np.isfinite(iod) or iod < 4.0:
        return float("nan")
    r_eye = max(1, int(EYE_PATCH_FRACTION * iod))
    r_ref = max(1, int(REF_PATCH_FRACTION * iod))
    # the three groups' pixels made grey at once, then split again
    groups = [_patch_pixels(image, pts, REFERENCE_SKIN, r_ref),
              *(_patch_pixels(image, pts, idx, r_eye) for idx in (AROUND_RIGHT_EYE, AROUND_LEFT_EYE))]
    if not groups[0]:
        return float("nan")
    sizes = [sum(len(p) for p in g) for g in groups]
    grey = np.split(_grey([p for g in groups for p in g]), np.cumsum(sizes)[:-1])
    ref_level = _median(grey[0])
    if ref_level < 8.0:  # a black face region: nothing can be said
        return float("nan")
    ratios = [_median(g) / ref_level for g in grey[1:] if g.size]
    return max(ratios) if ratios else float("nan")


def eye_visibility(image: NDArray[np.uint8], face: Face) -> float:
    """0..1 evidence that the eyes are really visible (0: hidden, e.g. dark sunglasses).

    Returns 1.0 when it cannot be measured (the mesh's own checks then decide)."""
    ratio = eye_visibility_ratio(image, face)
    if not np.isfinite(ratio):
        return 1.0
    return float(min(1.0, max(0.0, (ratio - RATIO_HIDDEN) / (RATIO_VISIBLE - RATIO_HIDDEN))))
