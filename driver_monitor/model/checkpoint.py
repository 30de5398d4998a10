"""Checkpoint files: the network's architecture, weights and metadata in one torch file.

Layout (a plain dict, loadable with ``torch.load(..., weights_only=True)``)::

    {"format": "driver-monitor/emotion-au/1", "variant": "plain" | "region_attention",
     "net_config": {...}, "state_dict": {...},
     "meta": {"emotion_names": [...], "au_names": [...], "input_size": 48, "input_mean": 0.5,
              "input_std": 0.5, "model_version": "...", "training_data": "...", "metrics": {...}, ...},
     "train_state": {...}}          # optional: optimiser / scheduler / epoch, for --resume only

``net_config`` is what rebuilds the network, the variant included (``region_names`` /
``region_boxes``; ``variant`` repeats it for people and tools reading the file). Checkpoints that
predate a ``NetConfig`` field (and ``variant``) load with that field's default: the plain network.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError
from ..preprocess import AUS, EMOTIONS
from .network import EmotionAUNet, NetConfig

FORMAT = "driver-monitor/emotion-au/1"


def build_model(net_config: dict | NetConfig | None = None) -> EmotionAUNet:
    cfg = net_config if isinstance(net_config, NetConfig) else NetConfig.from_dict(net_config or {})
    return EmotionAUNet(cfg)


def default_meta(**extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "emotion_names": list(EMOTIONS),
        "au_names": list(AUS),
        "input_size": 48,
        "input_mean": 0.5,
        "input_std": 0.5,
    }
    meta.update(extra)
    return meta


def save_checkpoint(
    path: str | os.PathLike,
    model: EmotionAUNet,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob: dict[str, Any] = {
        "format": FORMAT,
        "variant": model.cfg.variant,
        "net_config": model.cfg.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta),
    }
    if train_state is not None:
        blob["train_state"] = train_state
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"checkpoint {path} not found; train one with tools/train.py or use engines/emotion_au.pt"
        )
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt / foreign files
        raise ModelError(f"checkpoint {path} could not be read ({err}); is it a driver-monitor .pt?") from err
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ModelError(
            f"checkpoint {path} is not a {FORMAT} file "
            f"(format={blob.get('format') if isinstance(blob, dict) else type(blob).__name__})"
        )
    return blob


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[EmotionAUNet, dict[str, Any]]:
    """-> (model in eval mode, meta dict). ``model(x)`` returns ``(emotion_probs, au_intensity)``."""
    blob = read_checkpoint(path, map_location)
    try:
        model = build_model(blob["net_config"])
        model.load_state_dict(blob["state_dict"])
    except (KeyError, RuntimeError, TypeError, ModelError) as err:
        raise ModelError(f"checkpoint {path} does not match the network definition: {err}") from err
    if blob.get("variant", model.cfg.variant) != model.cfg.variant:
        raise ModelError(f"checkpoint {path} says it is the {blob['variant']!r} network but its net_config "
                         f"builds the {model.cfg.variant!r} one; the file was edited or is damaged")
    model.to(map_location).eval()
    return model, dict(blob.get("meta", {}))
