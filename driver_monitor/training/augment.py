"""Batch-wise augmentation of the training crops, on tensors, and the occluded inputs.

Flip, small rotations / scales / shifts (= crops), brightness / contrast, blur, noise and random
erasing, so no DataLoader workers are needed. With ``--occlusion-p`` a random occluder
(``occlusion_aug``) replaces the random erasing on that share of the crops.
AUs are left/right averaged, so a horizontal flip leaves every AU target unchanged.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import DriverMonitorError
from ..preprocess import InputSpec
from .occlusion_aug import OCCLUDER_WEIGHTS, OccluderGenerator
from .options import TrainOptions


def _geometry(x: torch.Tensor, u, strength: float) -> torch.Tensor:
    """Rotation +-10 deg, scale 0.9..1.1 (crop / zoom), shift +-8 % (crops)."""
    ang = u(-10, 10) * strength * math.pi / 180
    sc = 1.0 + u(-0.1, 0.1) * strength
    tx, ty = u(-0.08, 0.08) * strength, u(-0.08, 0.08) * strength
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _erase(x: torch.Tensor, mean: torch.Tensor, u, er: torch.Tensor) -> torch.Tensor:
    """One rectangle 10-30 % of the side, filled with the crop's mean, on the crops ``er`` marks."""
    s = x.shape[-1]
    dev = x.device
    h = (u(0.1, 0.3) * s).long()
    w = (u(0.1, 0.3) * s).long()
    y0 = (u(0, 1) * (s - h)).long()
    x0 = (u(0, 1) * (s - w)).long()
    ar = torch.arange(s, device=dev)
    my = (ar[None, :] >= y0[:, None]) & (ar[None, :] < (y0 + h)[:, None])
    mx = (ar[None, :] >= x0[:, None]) & (ar[None, :] < (x0 + w)[:, None])
    m = (my[:, :, None] & mx[:, None, :] & er[:, None, None])[:, None]
    return torch.where(m, mean.expand_as(x), x)


def augment(x: torch.Tensor, g: torch.Generator, strength: float = 1.0,
            erase: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, 1, S, S) float in [0, 1]. Returns (augmented x, flipped mask (N,) bool).

    erase: the random erasing step (off when the occluder generator runs after this: then the
    clean crop is the teacher's input and the generator's patches take the erasing's place)."""
    n = x.shape[0]
    dev = x.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*(shape or (n,)), generator=g).to(dev)

    flip = torch.rand(n, generator=g).to(dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    x = _geometry(x, u, strength)
    # brightness / contrast
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * u(0.7, 1.3)[:, None, None, None] + mean + u(-0.12, 0.12)[:, None, None, None]
    # blur on 25 % of the batch (3 x 3 Gaussian)
    k = torch.tensor([1.0, 2.0, 1.0], device=dev)
    k2 = (k[:, None] * k[None, :] / 16.0)[None, None]
    blur = torch.rand(n, generator=g).to(dev) < 0.25
    if blur.any():
        x = torch.where(blur[:, None, None, None], F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k2), x)
    # Gaussian noise on 30 % of the batch
    noisy = (torch.rand(n, generator=g).to(dev) < 0.3).float()[:, None, None, None]
    x = x + noisy * torch.randn(x.shape, generator=g).to(dev) * u(0.0, 0.04)[:, None, None, None]
    # random erasing (occlusion) on 25 % of the batch
    er = torch.rand(n, generator=g).to(dev) < 0.25
    if erase and er.any():
        x = _erase(x, mean, u, er)
    return x.clamp(0.0, 1.0), flip


def normalise(x01: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    return (x01 - spec.mean) / spec.std


def make_occluder(opts: TrainOptions, size: int) -> OccluderGenerator | None:
    """``--occlusion-p`` / ``--occlusion-kinds`` -> the training occluder generator (None when off)."""
    if opts.occlusion_p <= 0:
        return None
    if opts.occlusion_p > 1:
        raise DriverMonitorError(f"--occlusion-p is a probability in [0, 1], got {opts.occlusion_p}")
    kinds = None
    if opts.occlusion_kinds:
        names = [k.strip() for k in opts.occlusion_kinds.split(",") if k.strip()]
        unknown = sorted(set(names) - set(OCCLUDER_WEIGHTS))
        if unknown:
            raise DriverMonitorError(f"--occlusion-kinds: unknown kind(s) {unknown}; known: {list(OCCLUDER_WEIGHTS)}")
        kinds = {k: OCCLUDER_WEIGHTS[k] for k in names}
    return OccluderGenerator(size, kinds)


def batch_inputs(x01: torch.Tensor, g: torch.Generator, opts: TrainOptions,
                 occluder: OccluderGenerator | None, spec: InputSpec) -> tuple[torch.Tensor, torch.Tensor,
                                                                              torch.Tensor | None]:
    """Augmented batch -> (student input, clean input for the teacher, covered fraction of each
    region (N, R) or None). Without an occluder the student reads the clean crop too. The occluder
    draws from a numpy generator seeded from ``g``, so a run (and --resume) stays reproducible."""
    if occluder is None:
        x, _ = augment(x01, g, opts.aug_strength)
        x = normalise(x, spec)
        return x, x, None
    clean, _ = augment(x01, g, opts.aug_strength, erase=False)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    occ, cover, _ = occluder.batch(clean[:, 0].cpu().numpy(), np.random.default_rng(seed), opts.occlusion_p)
    student = torch.from_numpy(occ)[:, None].to(x01.device)
    return normalise(student, spec), normalise(clean, spec), torch.from_numpy(cover).to(x01.device)


def occluded_copy(images: np.ndarray, occluder: OccluderGenerator, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded occluded copy of uint8 crops (every crop occluded): (uint8 crops, coverage)."""
    occ, cover, _ = occluder.batch(images.astype(np.float32) / 255.0, np.random.default_rng(seed), p=1.0)
    return np.clip(np.round(occ * 255.0), 0, 255).astype(np.uint8), cover
