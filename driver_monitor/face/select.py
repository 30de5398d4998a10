"""Pick the driver among the faces in view (pure: numpy only)."""
from __future__ import annotations

from typing import Sequence

from ..config import FaceConfig
from ..types import Face


def pick_driver(faces: Sequence[Face], image_shape: tuple[int, ...], cfg: FaceConfig) -> int | None:
    """Index of the driver's face in ``faces``, or None.

    ``largest``: the face with the largest box. ``seat_region``: the largest face whose box centre
    lies inside ``cfg.seat_region`` (x0, y0, x1, y1 as fractions of the image width / height);
    None when no face sits there (a passenger alone is not the driver).
    """
    if not faces:
        return None
    h, w = int(image_shape[0]), int(image_shape[1])
    candidates = list(range(len(faces)))
    if cfg.driver_rule == "seat_region":
        x0, y0, x1, y1 = (float(v) for v in cfg.seat_region)
        inside = []
        for i in candidates:
            cx, cy = faces[i].center
            if x0 * w <= cx <= x1 * w and y0 * h <= cy <= y1 * h:
                inside.append(i)
        candidates = inside
    if not candidates:
        return None
    return max(candidates, key=lambda i: (faces[i].area, -i))
