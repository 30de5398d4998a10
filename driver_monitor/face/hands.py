"""MediaPipe Hands adapter: the hands in a frame as boxes in pixels, and where they are against
the driver's face (evidence for a phone held at the ear or low in the hand, which the hand often
hides from a phone detector).

Legacy ``mp.solutions.hands`` (the palm detector and the hand landmark model ship inside the
mediapipe wheel), ``model_complexity=0``, tracking between video frames. Measured on the marked
clips by ``tools/phone_eval.py --hands``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError


@dataclass(frozen=True)
class Hand:
    """One hand: ``box`` ``(x0, y0, x1, y1)`` around its 21 landmarks (pixels), ``score`` the
    detector's handedness confidence."""

    box: tuple[float, float, float, float]
    score: float


def hand_place(hand_box: tuple[float, ...], face_box: NDArray[np.float32] | tuple[float, ...]) -> tuple[float, float]:
    """Where a hand is against a face: its centre's offset from the face's centre, ``(dx, dy)`` in
    face widths (x) and face heights (y); ``dy`` > 0 is below."""
    fx0, fy0, fx1, fy1 = (float(v) for v in face_box[:4])
    fw, fh = max(1.0, fx1 - fx0), max(1.0, fy1 - fy0)
    hx, hy = 0.5 * (hand_box[0] + hand_box[2]), 0.5 * (hand_box[1] + hand_box[3])
    return (hx - 0.5 * (fx0 + fx1)) / fw, (hy - 0.5 * (fy0 + fy1)) / fh


class HandFinder:
    """``find(image)``: the hands in a BGR (or grey) frame, best first."""

    def __init__(self, max_hands: int = 2, static_image_mode: bool = False, min_confidence: float = 0.5) -> None:
        try:
            import mediapipe as mp

            self._hands: Any = mp.solutions.hands.Hands(
                static_image_mode=static_image_mode, max_num_hands=max_hands, model_complexity=0,
                min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence)
        except Exception as exc:  # a broken wheel: its own error types
            raise ModelError(f"MediaPipe's hand model could not be loaded ({exc.__class__.__name__}: "
                             f"{str(exc)[:200]}); reinstall mediapipe==0.10.21") from None

    def find(self, image: NDArray[np.uint8]) -> list[Hand]:
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        res = self._hands.process(rgb)
        out = []
        for lms, handed in zip(res.multi_hand_landmarks or [], res.multi_handedness or []):
            pts = np.array([(p.x * w, p.y * h) for p in lms.landmark], np.float32)
            box = (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))
            out.append(Hand(box, float(handed.classification[0].score)))
        return sorted(out, key=lambda hd: -hd.score)

    def close(self) -> None:
        if self._hands is not None:
            self._hands.close()
            self._hands = None

    def __enter__(self) -> "HandFinder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
