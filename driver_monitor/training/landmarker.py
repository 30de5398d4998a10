"""MediaPipe Face Landmarker adapter (Tasks API): blendshapes and the 478-point mesh of a face crop.

With face/mesh.py the only code that imports MediaPipe. The training tools use it to label action
units (training/face_au.py); the run-time pipeline uses face/mesh.py.

The Face Landmarker bundle is ``face_landmarker.task`` (Apache-2.0). Get it from
https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task
(or ../shared/data/models/face_landmarker.task in this project).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError

LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)

#: MediaPipe's 52 blendshape names, in the order the Face Landmarker returns them.
BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
_BS = {n: i for i, n in enumerate(BLENDSHAPES)}


@dataclass(frozen=True, slots=True)
class MediapipeFaceReadout:
    """What the Face Landmarker saw on one crop.

    found: whether a face was detected.
    blendshapes: ``(52,)`` float32 in [0, 1], BLENDSHAPES order (zeros when not found).
    landmarks: ``(478, 3)`` float32, x and y normalised to the upscaled crop (0..1), z relative.
    """

    found: bool
    blendshapes: NDArray[np.float32]
    landmarks: NDArray[np.float32]


class BlendshapeExtractor:
    """MediaPipe Face Landmarker (Tasks API, IMAGE mode) over small grey face crops.

    The 48 x 48 FER crops are too small for the detector: each crop gets a ``pad`` border
    (replicated edge, as a fraction of its side) and is upscaled to ``upscale`` pixels.
    """

    def __init__(self, model_path: str | os.PathLike, *, upscale: int = 192, pad: float = 0.25,
                 min_confidence: float = 0.3) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(
                f"face landmarker model {path} not found; download it from {LANDMARKER_URL} "
                "and pass its path with --model"
            )
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as err:  # pragma: no cover - mediapipe is a dependency
            raise ModelError(f"mediapipe is needed for AU labelling ({err}); pip install mediapipe==0.10.21") from None
        self._mp = mp
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            output_face_blendshapes=True,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
        )
        try:
            self._lm = vision.FaceLandmarker.create_from_options(opts)
        except Exception as err:  # mediapipe raises RuntimeError / ValueError with its own text
            raise ModelError(f"face landmarker model {path} could not be loaded: {err}") from err
        self.upscale = int(upscale)
        self.pad = float(pad)

    def read(self, crop: NDArray[np.uint8]) -> MediapipeFaceReadout:
        """``(S, S)`` uint8 grey (or BGR) crop -> readout."""
        img = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        p = int(round(img.shape[0] * self.pad))
        if p:
            img = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_REPLICATE)
        img = cv2.resize(img, (self.upscale, self.upscale), interpolation=cv2.INTER_CUBIC)
        rgb = np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2))
        res = self._lm.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        if not res.face_landmarks:
            return MediapipeFaceReadout(False, np.zeros(52, np.float32), np.zeros((478, 3), np.float32))
        bs = np.zeros(52, np.float32)
        for c in res.face_blendshapes[0]:
            if c.category_name in _BS:
                bs[_BS[c.category_name]] = c.score
        lm = np.array([[q.x, q.y, q.z] for q in res.face_landmarks[0]], np.float32)
        return MediapipeFaceReadout(True, bs, lm)

    def close(self) -> None:
        self._lm.close()

    def __enter__(self) -> "BlendshapeExtractor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
