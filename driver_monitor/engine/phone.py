"""The phone detector on ONNX Runtime's CPU provider: a frame (or a region of it) -> phone boxes.

The model is YOLOX-Nano trained on COCO (80 classes, "cell phone" is class 67), shipped as
``engines/phone/yolox_nano.onnx`` with its Apache-2.0 licence (``engines/phone/``, ``NOTICE``). It
takes ``images`` float32 ``(1, 3, S, S)``: BGR 0-255, not normalised, the picture resized with its
aspect kept and placed at the top-left, the rest filled with 114; it gives ``output`` float32
``(1, A, 85)``: per anchor of the stride 8 / 16 / 32 grids the raw box (x, y, log w, log h),
objectness and 80 class scores. A box's centre is (xy + its grid cell) x stride, its size exp(wh) x
stride, its phone score objectness x the phone class's score.

A phone at the ear is small beside a face and half hidden by the hand, and one held low in a wide
frame is a few pixels: the detector sees more on a crop around the driver (:func:`driver_region`)
than on the whole frame. About 12-14 ms a 416 x 416 run on one CPU thread, so the monitor runs it
at a few hertz, not on every frame. A missing or broken file is a :class:`ModelError` naming it and
what to do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from .onnxruntime_backend import cpu_session

INPUT_NAME = "images"
OUTPUT_NAME = "output"
PHONE_CLASS = 67          # COCO "cell phone"
PERSON_CLASS = 0
PAD_VALUE = 114.0
STRIDES = (8, 16, 32)
NMS_IOU = 0.45


@dataclass(frozen=True)
class PhoneBox:
    """One phone the detector found: ``box`` ``(x0, y0, x1, y1)`` in the frame's pixels, ``score``
    (objectness x the phone class) in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return (0.5 * (self.box[0] + self.box[2]), 0.5 * (self.box[1] + self.box[3]))


def _grids(size: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The anchors' grid cells ``(A, 2)`` and strides ``(A, 1)`` of a ``size`` x ``size`` input."""
    cells, strides = [], []
    for s in STRIDES:
        n = size // s
        ys, xs = np.mgrid[0:n, 0:n]
        cells.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


def letterbox(image: NDArray[np.uint8], size: int) -> tuple[NDArray[np.float32], float]:
    """``image`` (BGR or grey) as the model's input ``(1, 3, size, size)`` and the scale it was
    resized by (model pixels per image pixel)."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    nh, nw = max(1, int(round(h * r))), max(1, int(round(w * r)))
    interp = cv2.INTER_AREA if r < 1.0 else cv2.INTER_LINEAR
    small = cv2.resize(image, (nw, nh), interpolation=interp)
    if small.ndim == 2:
        small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
    x = np.empty((1, 3, size, size), np.float32)  # filled plane by plane: no transposed copy
    x[0, :, nh:, :] = PAD_VALUE
    x[0, :, :nh, nw:] = PAD_VALUE
    x[0, :, :nh, :nw] = small.transpose(2, 0, 1)
    return x, r


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou: float = NMS_IOU) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    area = np.maximum(0, boxes[:, 2] - boxes[:, 0]) * np.maximum(0, boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(0, xx1 - xx0) * np.maximum(0, yy1 - yy0)
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-6)
        order = rest[overlap <= iou]
    return keep


def decode(raw: NDArray[np.float32], size: int, class_index: int, min_score: float,
           grids: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
           ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Boxes ``(K, 4)`` (x0, y0, x1, y1 in model pixels) and scores ``(K,)`` of one class from the
    model's raw ``(A, 85)`` output, those scoring at least ``min_score``, after NMS."""
    cells, strides = grids if grids is not None else _grids(size)
    if raw.shape[0] != cells.shape[0]:
        raise ValueError(f"the detector gave {raw.shape[0]} anchors; a {size} px input has {cells.shape[0]}")
    scores = raw[:, 4] * raw[:, 5 + class_index]
    sel = np.flatnonzero(scores >= min_score)
    if sel.size == 0:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    r = raw[sel]
    centre = (r[:, :2] + cells[sel]) * strides[sel]
    half = 0.5 * np.exp(np.clip(r[:, 2:4], -10.0, 10.0)) * strides[sel]
    boxes = np.concatenate([centre - half, centre + half], 1).astype(np.float32)
    keep = nms(boxes, scores[sel])
    return boxes[keep], scores[sel][keep].astype(np.float32)


def driver_region(face_bbox: NDArray[np.float32] | tuple[float, ...], frame_shape: tuple[int, ...],
                  widths: float = 3.2, above: float = 0.6, below: float = 2.6) -> tuple[int, int, int, int]:
    """The part of the frame where a driver's phone is (``x0, y0, x1, y1``, clipped to the frame):
    ``widths`` face widths wide around the face (both ears and a hand raised beside them), from
    ``above`` face heights above the face's top to ``below`` face heights under its bottom (a
    phone held at the chest or in the lap)."""
    x0, y0, x1, y1 = (float(v) for v in face_bbox[:4])
    fw, fh = max(1.0, x1 - x0), max(1.0, y1 - y0)
    cx = 0.5 * (x0 + x1)
    h, w = frame_shape[:2]
    rx0 = int(max(0, math.floor(cx - 0.5 * widths * fw)))
    rx1 = int(min(w, math.ceil(cx + 0.5 * widths * fw)))
    ry0 = int(max(0, math.floor(y0 - above * fh)))
    ry1 = int(min(h, math.ceil(y1 + below * fh)))
    return rx0, ry0, rx1, ry1


def _set_input_side(proto: Any, size: int) -> None:
    """The graph's input made ``size`` x ``size`` and its anchors' count left open (in memory)."""
    for inp in proto.graph.input:
        if inp.name == INPUT_NAME:
            dims = inp.type.tensor_type.shape.dim
            if len(dims) == 4:
                dims[2].dim_value = dims[3].dim_value = size
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) == 3:
            dims[1].dim_param = "anchors"
    del proto.graph.value_info[:]  # shapes inferred for the file's size


class PhoneDetector:
    """``detect(image, region)``: the phones in ``image`` (or in ``region`` of it), frame pixels."""

    def __init__(self, path: str | Path, threads: int = 1, min_score: float = 0.1, size: int | None = None) -> None:
        """``size``: run at this input side (a multiple of 32) instead of the file's: the network is
        convolutional, its cost goes with the pixels (416: about 13 ms on one thread, 320: 7, 256: 4.5)."""
        self.path = Path(path)
        if size is not None and (size < 64 or size % 32):
            raise ValueError(f"the phone detector's input side must be a multiple of 32 from 64, got {size}")
        self._session: Any = cpu_session(
            self.path, "phone detector",
            "restore engines/phone/ (git checkout engines/), point phone.model at the file, or set "
            "phone.enabled=false to run without phone detection", threads,
            edit=None if size is None else lambda proto: _set_input_side(proto, size))
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(f"phone detector {str(self.path)!r} has inputs {sorted(inputs)} and outputs "
                             f"{sorted(outputs)}; expected {INPUT_NAME!r} -> {OUTPUT_NAME!r} (a YOLOX export "
                             f"with COCO's 80 classes)")
        shape = inputs[INPUT_NAME].shape
        if len(shape) != 4 or not isinstance(shape[-1], int) or shape[-1] != shape[-2]:
            raise ModelError(f"phone detector {str(self.path)!r}: input shape {shape}; expected (1, 3, S, S)")
        self.size = int(shape[-1])
        self.min_score = float(min_score)
        self._grids = _grids(self.size)
        self.detect(np.zeros((self.size, self.size, 3), np.uint8))  # the session's first run pays its allocations

    def detect(self, image: NDArray[np.uint8], region: tuple[int, int, int, int] | None = None,
               class_index: int = PHONE_CLASS) -> list[PhoneBox]:
        """The boxes of ``class_index`` (the phone) scoring at least ``min_score``, best first, in
        the coordinates of ``image``; ``region`` (``x0, y0, x1, y1``) limits the search to that
        part of it (a crop around the driver)."""
        ox = oy = 0
        if region is not None:
            x0, y0, x1, y1 = region
            if x1 - x0 < 8 or y1 - y0 < 8:
                return []
            image, ox, oy = image[y0:y1, x0:x1], x0, y0
        x, r = letterbox(image, self.size)
        raw = np.asarray(self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0], np.float32)
        boxes, scores = decode(raw.reshape(-1, raw.shape[-1]), self.size, class_index, self.min_score, self._grids)
        h, w = image.shape[:2]
        out = []
        for b, s in zip(boxes, scores):
            bx0, by0 = max(0.0, b[0] / r), max(0.0, b[1] / r)
            bx1, by1 = min(float(w), b[2] / r), min(float(h), b[3] / r)
            if bx1 > bx0 and by1 > by0:
                out.append(PhoneBox((bx0 + ox, by0 + oy, bx1 + ox, by1 + oy), float(s)))
        return out

    def close(self) -> None:
        self._session = None


def open_phone_detector(cfg: Any, project_root: str | Path | None = None) -> PhoneDetector | None:
    """The detector ``cfg`` (the ``phone`` config section) names, or None when it is switched off."""
    if not cfg.enabled:
        return None
    from .base import project_path

    # boxes down to 0.05 are kept so frames.csv shows the near misses, and never fewer than the
    # vote's own threshold counts
    return PhoneDetector(project_path(cfg.model, project_root), min_score=min(0.05, cfg.min_score),
                         size=cfg.size or None)
