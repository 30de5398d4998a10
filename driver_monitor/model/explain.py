"""Explanations of the emotion head: Grad-CAM and occlusion sensitivity (torch only, no plotting)."""
from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional as F

from .network import EmotionAUNet


def grad_cam(model: EmotionAUNet, x: torch.Tensor, target: int, head: str = "emotion") -> NDArray[np.float32]:
    """Grad-CAM on the last feature map for one input ``x (1, 1, S, S)``.

    head: "emotion" (target = class index, explained on its logit) or "au" (target = AU index).
    Returns an ``(S, S)`` map in [0, 1] (all zeros when no evidence is positive).
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"grad_cam explains one image (1, 1, S, S), got {tuple(x.shape)}")
    model.eval()
    fmap = model.features(x)
    fmap.retain_grad()
    emo, au = model.heads(fmap)
    score = (emo if head == "emotion" else au)[0, target]
    model.zero_grad(set_to_none=True)
    score.backward()
    weights = fmap.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * fmap).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam.detach().numpy()
    top = cam.max()
    return (cam / top).astype(np.float32) if top > 0 else np.zeros_like(cam, np.float32)


@torch.no_grad()
def occlusion_map(model: EmotionAUNet, x: torch.Tensor, target: int, *, patch: int = 8, stride: int = 4,
                  fill: float = 0.0) -> NDArray[np.float32]:
    """Drop of the target emotion probability when a ``patch`` square (filled with ``fill``, i.e. mid
    grey in normalised input) covers each place; ``(S, S)`` map, positive = the region supports it."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"occlusion_map explains one image (1, 1, S, S), got {tuple(x.shape)}")
    model.eval()
    s = x.shape[-1]
    base = float(model(x)[0][0, target])
    starts = list(range(0, s - patch + 1, stride))
    if starts[-1] != s - patch:
        starts.append(s - patch)
    boxes = [(r, c) for r in starts for c in starts]
    batch = x.repeat(len(boxes), 1, 1, 1)
    for i, (r, c) in enumerate(boxes):
        batch[i, :, r:r + patch, c:c + patch] = fill
    probs = model(batch)[0][:, target].numpy()
    acc = np.zeros((s, s), np.float64)
    cnt = np.zeros((s, s), np.float64)
    for (r, c), p in zip(boxes, probs):
        acc[r:r + patch, c:c + patch] += base - p
        cnt[r:r + patch, c:c + patch] += 1
    return (acc / np.maximum(cnt, 1)).astype(np.float32)
