"""The one definition of what the emotion / action-unit network reads.

The aligner produces ``(S, S)`` uint8 grey crops (eye line level, margin around the face); the
trainer, the exporter and every engine backend turn them into the network's input with
``to_input``. The ONNX file carries the spec in its metadata (``dm.input_size``,
``dm.input_mean``, ``dm.input_std``), and backends read it from there, so a model trained at
another size still gets crops of the size it expects.

Pure module: numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# FERPlus order; the network's emotion head outputs these, in this order.
EMOTIONS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
)

# The 12 DISFA action units plus AU45 (blink / eye closure), in this order.
AUS: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26", "AU45",
)

AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU9": "nose wrinkler",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU45": "blink / eye closure",
}


@dataclass(frozen=True, slots=True)
class InputSpec:
    """Input of the network: ``(N, 1, size, size)`` float32, ``(pixel / 255 - mean) / std``."""

    size: int = 48
    mean: float = 0.5
    std: float = 0.5

    def __post_init__(self) -> None:
        if not (8 <= self.size <= 512):
            raise ValueError(f"InputSpec.size must be 8..512, got {self.size}")
        if not self.std > 0:
            raise ValueError(f"InputSpec.std must be > 0, got {self.std}")


DEFAULT_INPUT = InputSpec()


def to_input(crops: NDArray[np.uint8], spec: InputSpec = DEFAULT_INPUT) -> NDArray[np.float32]:
    """``(N, S, S)`` or ``(S, S)`` uint8 grey crops -> ``(N, 1, S, S)`` float32 network input."""
    arr = np.asarray(crops)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (spec.size, spec.size):
        raise ValueError(f"crops must be (N, {spec.size}, {spec.size}) grey, got {arr.shape}")
    x = arr.astype(np.float32) * np.float32(1.0 / 255.0)
    x -= np.float32(spec.mean)
    x *= np.float32(1.0 / spec.std)
    return x[:, None, :, :]
