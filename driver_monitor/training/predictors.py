"""Predictors of a torch checkpoint, for measuring a model's accuracy (the ONNX ones are the
engine package's: ``driver_monitor.engine.predict``, same call shape)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..engine.predict import Predictor, VisibilityPredictor
from ..preprocess import InputSpec, to_input


def _spec(meta: dict) -> InputSpec:
    return InputSpec(int(meta["input_size"]), float(meta["input_mean"]), float(meta["input_std"]))


def checkpoint_predictor(path: Path, flip_tta: bool = False) -> tuple[Predictor, InputSpec, dict]:
    """(predictor, input spec, checkpoint metadata) of a torch checkpoint; ``flip_tta`` averages
    each crop with its mirror image, as an ONNX file exported with ``--flip-tta`` does."""
    import torch

    from ..model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    if flip_tta:
        model.set_flip_tta()
    spec = _spec(meta)

    def predict(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            p, a = model(torch.from_numpy(to_input(crops, spec)))
        return p.numpy(), a.numpy()

    return predict, spec, meta


def checkpoint_visibility_predictor(path: str | Path, flip_tta: bool = False
                                    ) -> tuple[VisibilityPredictor, tuple[str, ...]] | None:
    """(crops -> region visibility, region names) of a region-attention checkpoint; None for a
    plain one."""
    import torch

    from ..model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    if not model.region_names:
        return None
    model.set_flip_tta(flip_tta)
    spec = _spec(meta)

    def visibility(crops: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.forward_regions(torch.from_numpy(to_input(crops, spec)))[3].numpy()

    return visibility, tuple(model.region_names)
