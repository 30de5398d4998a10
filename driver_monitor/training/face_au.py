"""Action-unit pseudo-labels from the MediaPipe Face Landmarker (blendshapes + 478-point mesh).

No AU-intensity dataset can be had for training, so the AU head learns from what the MediaPipe
Face Landmarker sees on each training face. This module is the adapter: a small grey face crop in,
52 blendshape scores and 478 normalised landmarks out (:class:`BlendshapeExtractor`), and the
mapping from those to our 13 AUs (:func:`aus_from_mediapipe`), documented unit by unit in
docs/model.md and checked against the CK+ FACS presence labels.

The Face Landmarker itself is read through ``training/landmarker.py``, its only user being this labeller.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .landmarker import BLENDSHAPES, BlendshapeExtractor, MediapipeFaceReadout  # noqa: F401 - the labeller's API
from ..preprocess import AUS

_BS = {n: i for i, n in enumerate(BLENDSHAPES)}

# Landmark indices of the MediaPipe 478-point mesh used by the geometric AU cues.
_EYE_R = (33, 133)      # outer, inner corner of the subject's right eye (image left)
_EYE_L = (362, 263)     # inner, outer corner of the subject's left eye
_LID_R = (159, 145)     # upper, lower lid, right eye
_LID_L = (386, 374)     # upper, lower lid, left eye
_BROW_INNER = (55, 285)  # inner brow ends (right, left)
_LIP_INNER = (13, 14)   # upper, lower inner lip centre
_MOUTH_CORNERS = (61, 291)


def _ramp(x: NDArray[np.float32], lo: float, hi: float) -> NDArray[np.float32]:
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def face_geometry(landmarks: NDArray[np.float32]) -> dict[str, NDArray[np.float32]]:
    """Scale- and roll-free mesh cues, ``(N, 478, >=2)`` landmarks -> dict of ``(N,)`` arrays.

    The mesh is rotated so the eye line is level and distances are divided by the distance between
    the eye centres (``iod``):

    * ``lip_gap``: inner-lip opening (13-14) / iod;
    * ``corner_drop``: how far the mouth corners sit below the inner-lip centre (y down) / iod;
    * ``brow_lower``: minus the inner-brow-end to inner-eye-corner distance / iod (higher = lower brows);
    * ``eye_narrow``: minus the mean lid opening / eye width (higher = narrower eyes).
    """
    pts = np.asarray(landmarks, np.float32)[:, :, :2]
    ec_r = pts[:, list(_EYE_R)].mean(axis=1)
    ec_l = pts[:, list(_EYE_L)].mean(axis=1)
    v = ec_l - ec_r
    iod = np.maximum(np.linalg.norm(v, axis=1), 1e-6)
    ang = np.arctan2(v[:, 1], v[:, 0])
    c, s = np.cos(-ang), np.sin(-ang)
    rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)
    p = np.einsum("nij,nkj->nki", rot, pts)

    def dist(a: int, b: int) -> NDArray[np.float32]:
        return np.linalg.norm(p[:, a] - p[:, b], axis=1)

    eye_w_r = np.maximum(dist(*_EYE_R), 1e-6)
    eye_w_l = np.maximum(dist(*_EYE_L), 1e-6)
    mouth_y = p[:, list(_MOUTH_CORNERS), 1].mean(axis=1)
    lip_y = p[:, list(_LIP_INNER), 1].mean(axis=1)
    return {
        "lip_gap": dist(*_LIP_INNER) / iod,
        "corner_drop": (mouth_y - lip_y) / iod,
        "brow_lower": -(dist(_BROW_INNER[0], _EYE_R[1]) + dist(_BROW_INNER[1], _EYE_L[0])) / 2 / iod,
        "eye_narrow": -(dist(*_LID_R) / eye_w_r + dist(*_LID_L) / eye_w_l) / 2,
    }


def aus_from_mediapipe(
    blendshapes: NDArray[np.float32], landmarks: NDArray[np.float32], found: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """``(N, 52)`` blendshapes + ``(N, 478, 3)`` landmarks -> ``(N, 13)`` AU intensities in [0, 1]
    (AUS order); rows where no face was found are NaN (the trainer masks them out)."""
    bs = np.asarray(blendshapes, np.float32)

    def b(*names: str) -> NDArray[np.float32]:
        return np.mean([bs[:, _BS[n]] for n in names], axis=0)

    geo = face_geometry(landmarks)
    squint = b("eyeSquintLeft", "eyeSquintRight")
    smile = b("mouthSmileLeft", "mouthSmileRight")
    # One cue per AU, reasoning in docs/model.md ("AU pseudo-labels"). Ramps: 0 at the FERPlus-train
    # median face, 1 near its 95th-99th percentile (measured on the FERPlus train readouts).
    cols = {
        "AU1": b("browInnerUp"),
        "AU2": b("browOuterUpLeft", "browOuterUpRight"),
        "AU4": b("browDownLeft", "browDownRight"),
        "AU5": b("eyeWideLeft", "eyeWideRight"),
        # cheek raiser: lower lid pushed up (eye squint) with the cheek lift of a lip-corner pull;
        # cheekSquint barely responds on upscaled 48 px crops.
        "AU6": 0.5 * (squint + smile),
        # nose wrinkler: noseSneer ranks CK+ AU9 backwards; AU9 pulls the inner brows down and
        # narrows the eyes, which the mesh sees.
        "AU9": 0.5 * (_ramp(geo["brow_lower"], -0.25, -0.15) + _ramp(geo["eye_narrow"], -0.35, -0.15)),
        "AU12": smile,
        # lip corner depressor: corners pulled below the lip centre line (mouthFrown is weak here).
        "AU15": _ramp(geo["corner_drop"], 0.0, 0.08),
        "AU17": b("mouthShrugLower"),
        "AU20": b("mouthStretchLeft", "mouthStretchRight"),
        # lips part: the inner-lip gap itself (jawOpen also needs the jaw to move).
        "AU25": _ramp(geo["lip_gap"], 0.02, 0.12),
        # jaw drop: jawOpen over its full range (DISFA codes wide openings as AU26 too; CK+ calls
        # them AU27, see docs/model.md).
        "AU26": b("jawOpen"),
        "AU45": b("eyeBlinkLeft", "eyeBlinkRight"),
    }
    out = np.stack([cols[a] for a in AUS], axis=1).clip(0.0, 1.0).astype(np.float32)
    out[~np.asarray(found, bool)] = np.nan
    return out
