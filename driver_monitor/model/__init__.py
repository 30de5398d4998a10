"""The PyTorch emotion + action-unit network (imported only by training and the torch backend).

Public API::

    from driver_monitor.model import load_checkpoint, save_checkpoint, EmotionAUNet, NetConfig
    model, meta = load_checkpoint("engines/emotion_au.pt", map_location="cpu")
    emotion_probs, au_intensity = model(x)      # x: (N, 1, S, S) float32 from preprocess.to_input

``driver_monitor.model.metrics`` is pure numpy and can be imported without torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["EmotionAUNet", "NetConfig", "load_checkpoint", "save_checkpoint", "build_model", "count_parameters"]


def __getattr__(name: str) -> Any:  # lazy, so `driver_monitor.model.metrics` needs no torch
    if name in ("EmotionAUNet", "NetConfig", "count_parameters"):
        from . import network

        return getattr(network, name)
    if name in ("load_checkpoint", "save_checkpoint", "build_model"):
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
