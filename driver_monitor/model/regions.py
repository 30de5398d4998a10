"""Coarse face regions of the aligned 48 x 48 crop (pure Python, no torch).

One definition serves two readers: the training occluder (``training/occlusion_aug.py``), which
reports how much of each region it covered, and the region-attention network
(``network.EmotionAUNet`` with ``NetConfig.region_names``), which pools its last feature map over
the same boxes, scores each with a learned attention weight and predicts whether the region is
visible.

Boxes are ``(x0, y0, x1, y1)`` as fractions of the crop side, read off the mean FERPlus training
face (eye centres at about (0.29, 0.37) and (0.69, 0.37), the mouth at y 0.70-0.85). "left" and
"right" are as seen in the image (the image's left cheek is the driver's right cheek).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

#: region name -> box (x0, y0, x1, y1), fractions of the crop side.
REGION_BOXES: dict[str, tuple[float, float, float, float]] = {
    "eyes": (0.08, 0.15, 0.92, 0.48),          # both eyes and brows
    "nose": (0.35, 0.38, 0.65, 0.68),
    "mouth": (0.22, 0.64, 0.78, 1.0),          # mouth and chin
    "left_cheek": (0.04, 0.45, 0.36, 0.78),    # image left
    "right_cheek": (0.64, 0.45, 0.96, 0.78),   # image right
    "face": (0.0, 0.0, 1.0, 1.0),              # the whole crop (RAN's whole-face branch)
}
#: default region order of the region-attention network and the occluder's coverage columns.
REGIONS: tuple[str, ...] = tuple(REGION_BOXES)

#: which region each action unit is read from (AU6, the cheek raiser, shows at the lower lids and
#: both cheeks; a hidden region means its AUs cannot be trusted).
AU_REGIONS: dict[str, tuple[str, ...]] = {
    "AU1": ("eyes",), "AU2": ("eyes",), "AU4": ("eyes",), "AU5": ("eyes",), "AU45": ("eyes",),
    "AU6": ("eyes", "left_cheek", "right_cheek"), "AU9": ("nose",),
    "AU12": ("mouth",), "AU15": ("mouth",), "AU17": ("mouth",), "AU20": ("mouth",),
    "AU25": ("mouth",), "AU26": ("mouth",),
}


def region_boxes(names: Sequence[str]) -> tuple[tuple[float, float, float, float], ...]:
    """Boxes of ``names`` (KeyError naming the known regions for an unknown one)."""
    unknown = [n for n in names if n not in REGION_BOXES]
    if unknown:
        raise KeyError(f"unknown face region(s) {unknown}; known: {list(REGION_BOXES)}")
    return tuple(REGION_BOXES[n] for n in names)


def pixel_masks(boxes: Sequence[Sequence[float]], size: int) -> NDArray[np.float32]:
    """``(R, size, size)`` masks: the fraction of each pixel that lies inside each box."""
    return cell_weights(boxes, size, size, normalise=False)


def cell_weights(boxes: Sequence[Sequence[float]], h: int, w: int, *, normalise: bool = True) -> NDArray[np.float32]:
    """``(R, h, w)``: the area of each cell of an ``h x w`` grid over the crop that each box covers,
    as a fraction of the cell (``normalise=False``) or of the box's total (``normalise=True``, so a
    weighted sum over the grid is the box's mean; how the network pools a region)."""
    out = np.zeros((len(boxes), h, w), np.float32)
    ys, xs = np.arange(h + 1) / h, np.arange(w + 1) / w
    for r, (x0, y0, x1, y1) in enumerate(boxes):
        oy = np.clip(np.minimum(ys[1:], y1) - np.maximum(ys[:-1], y0), 0, None) * h
        ox = np.clip(np.minimum(xs[1:], x1) - np.maximum(xs[:-1], x0), 0, None) * w
        out[r] = oy[:, None] * ox[None, :]
    if normalise:
        out /= np.maximum(out.sum(axis=(1, 2), keepdims=True), 1e-12)
    return out


def mirror_index(boxes: Sequence[Sequence[float]], tol: float = 1e-6) -> tuple[int, ...]:
    """For each box, the index of its left-right mirror image among ``boxes`` (itself when it is
    symmetric); ValueError when a box has no mirror (a mirrored crop could not be read back)."""
    out = []
    for x0, y0, x1, y1 in boxes:
        m = (1.0 - x1, y0, 1.0 - x0, y1)
        hits = [j for j, b in enumerate(boxes) if all(abs(a - c) <= tol for a, c in zip(m, b))]
        if not hits:
            raise ValueError(f"region box {(x0, y0, x1, y1)} has no mirror image among the regions")
        out.append(hits[0])
    return tuple(out)
