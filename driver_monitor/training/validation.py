"""Validation during training: the network's outputs on uint8 crops and the per-epoch scores."""
from __future__ import annotations

import numpy as np
import torch

from ..model.metrics import classification_report
from ..preprocess import EMOTIONS, InputSpec
from .augment import normalise


@torch.no_grad()
def predict(model, images: np.ndarray, spec: InputSpec, device: torch.device,
            batch: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """uint8 crops (N, S, S) -> (emotion probs, AU intensities, region visibility or None)."""
    model.eval()
    regions = getattr(model, "regions", None) is not None
    outs: list[list[np.ndarray]] = [[], [], []]
    for i in range(0, len(images), batch):
        x = normalise(torch.from_numpy(images[i:i + batch]).to(device).float().div_(255.0)[:, None], spec)
        res = model.forward_regions(x) if regions else model(x)
        outs[0].append(res[0].cpu().numpy())
        outs[1].append(res[1].cpu().numpy())
        if regions:
            outs[2].append(res[3].cpu().numpy())
    return np.concatenate(outs[0]), np.concatenate(outs[1]), np.concatenate(outs[2]) if regions else None


def evaluate(model, images: np.ndarray, hard: np.ndarray, aus: np.ndarray, spec: InputSpec,
             device: torch.device, batch: int = 512, cover: np.ndarray | None = None) -> dict:
    """Accuracy, macro F1, NLL, AU mean absolute error against ``aus`` (NaN = no label) and, for the
    region-attention network with ``cover`` (N, R) given, the visibility output's mean absolute
    error against ``1 - cover``."""
    probs_np, au_np, vis = predict(model, images, spec, device, batch)
    rep = classification_report(hard, probs_np.argmax(1), EMOTIONS)
    nll = float(-np.log(np.maximum(probs_np[np.arange(len(hard)), hard], 1e-7)).mean())
    m = ~np.isnan(aus)
    au_mae = float(np.abs(au_np - np.nan_to_num(aus))[m].mean()) if m.any() else float("nan")
    vis_mae = float(np.abs(vis - (1.0 - cover)).mean()) if vis is not None and cover is not None else float("nan")
    return {"accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "nll": nll, "au_mae": au_mae,
            "vis_mae": vis_mae}
