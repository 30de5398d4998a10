#!/usr/bin/env python
"""Train the emotion + action-unit network.

    python tools/train.py --data /work/cache/ferplus --aus-dir /work/cache/aus --out runs/ferplus \
        --epochs 30 --seed 0

Whole dataset held in memory as uint8; augmentation is done batch-wise on tensors (flip, small
rotations / scales / shifts = crops, brightness / contrast, blur, noise, random erasing), so no
DataLoader workers are needed. Loss = ``emo_weight * soft-label cross-entropy (class re-weighted)
+ au_weight * masked BCE against the AU pseudo-labels`` (tools/label_aus.py). Per-epoch metrics go
to ``<out>/metrics.csv``; ``<out>/last.pt`` (with optimiser state, for --resume) and
``<out>/best.pt`` (best validation accuracy) are written every epoch; early stopping after
``--patience`` epochs without improvement. Fine-tuning / transfer learning: ``--init CKPT`` loads a
trained network and ``--freeze stem,trunk.0`` keeps those parameter groups (and their batch-norm
statistics) fixed; ``--init CKPT --arch wider`` grows the checkpoint's network into a wider
preset that starts out computing the same function (``network.grow_from``). ``--ema 0.999``
keeps an exponential moving average of the weights; that average is what is validated and saved
as ``best.pt`` (``metrics.csv`` then also logs the raw iterate's ``val_acc_raw``). Uses CUDA when
available (``--device``).

Occlusion-aware training: ``--occlusion-p 0.5`` draws a random occluder (sunglasses, eye bands,
masks, hands, phones / cups, patches, blur, low light, IR look; ``training/occlusion_aug.py``) on
that share of the augmented crops (it replaces the random erasing) and validates on a fixed
occluded copy of the validation split too (``val_acc_occ``; ``--select clean+occluded`` picks
``best.pt`` by the mean of both). ``--teacher CKPT`` distils from a frozen network: the teacher
reads the clean augmented crop, the student the occluded one, and ``--distill-weight`` x KL on the
emotion distribution + ``--distill-au-weight`` x binary KL on the AU intensities pull the student
towards the teacher (without ``--aus-dir`` the teacher's AU outputs are the AU head's only target,
and ``val_au_mae`` is measured against the teacher's on the clean validation crops).
``--region-attention`` trains the region-attention variant (``network.RegionAttention``; with
``--init`` of a plain checkpoint its weights are kept and the region layers start fresh) with a
``--visibility-weight`` x BCE of its region-visibility output against the regions the occluder
covered. Fine-tuning the shipped model for occlusion:

    python tools/train.py --data /work/cache/ferplus --out runs/occ --init engines/emotion_au.pt \
        --teacher engines/emotion_au.pt --occlusion-p 0.5 --epochs 40 --lr 1e-3 --ema 0.999 \
        --select clean+occluded --time-budget-min 75

Dataset kinds: ferplus (soft labels from votes), fer2013 (folders or csv), folders (RAF-DB-like).
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np


import torch
from torch.nn import functional as F

from driver_monitor.training.datasets import FaceDataset, load_dataset
from driver_monitor.errors import DatasetError, DriverMonitorError, report
from driver_monitor.model.checkpoint import (
    build_model, default_meta, load_checkpoint, read_checkpoint, save_checkpoint,
)
from driver_monitor.model.metrics import classification_report
from driver_monitor.model.network import (
    NetConfig, count_parameters, grow_from, load_plain_weights, with_region_attention,
)
from driver_monitor.training.occlusion_aug import OCCLUDER_WEIGHTS, OccluderGenerator
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec

ARCHS: dict[str, NetConfig] = {
    # name: architecture presets (see docs/model.md for the measured speed / accuracy trade-off)
    "tiny": NetConfig(stem=(16, 32), widths=(48, 96, 192), extra_blocks=1),
    "fast": NetConfig(stem=(24, 48), stem_stride=2, widths=(96, 192, 256), extra_blocks=1),
    "fast2": NetConfig(stem=(32, 64), stem_stride=2, widths=(128, 256), extra_blocks=2),
    "small": NetConfig(stem=(24, 48), widths=(64, 128, 256), extra_blocks=1),
    "base": NetConfig(stem=(32, 64), widths=(128, 256, 384), extra_blocks=1),
    # base's widths on fast's stride-2 stem: 0.95 M parameters, 5x cheaper to train than base
    # (seconds per step of every preset: tools/bench_train.py, docs/bench/train_speed.md)
    "wide": NetConfig(stem=(32, 64), stem_stride=2, widths=(128, 256, 384), extra_blocks=1),
    # wide with 25-33 % more channels per module: 1.59 M parameters, 1.5x wide's latency
    # (engines/MODEL_CARD.md); grown from a trained wide checkpoint (--init wide.pt --arch wider),
    # see network.grow_from()
    "wider": NetConfig(stem=(32, 64), stem_stride=2, widths=(160, 320, 512), extra_blocks=1),
}


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast
    trains about 2x faster than float32; elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_amp(choice: str, device: torch.device) -> torch.dtype | None:
    """--amp auto|bf16|off -> the autocast dtype (None = float32 throughout). Weights, optimiser
    state, losses and evaluation stay float32; only the forward / backward convolutions run in bf16."""
    if choice == "off":
        return None
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bf16() else None


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_class_space(ds: FaceDataset) -> tuple[np.ndarray, np.ndarray]:
    """Dataset labels -> (hard labels in EMOTIONS index, soft targets (N, 8))."""
    idx = np.array([EMOTIONS.index(c) for c in ds.class_names], np.int64)
    hard = idx[ds.labels]
    soft = np.zeros((len(ds), len(EMOTIONS)), np.float32)
    if ds.soft is not None:
        soft[:, idx] = ds.soft
    else:
        soft[np.arange(len(ds)), hard] = 1.0
    return hard, soft


def load_au_labels(path: Path | None, ds: FaceDataset) -> np.ndarray:
    """(N, 13) AU targets aligned with ``ds`` (NaN rows = no label); all NaN when no file."""
    out = np.full((len(ds), len(AUS)), np.nan, np.float32)
    if path is None:
        return out
    if not path.is_file():
        raise DatasetError(f"AU label file {path} is missing; create it with tools/label_aus.py")
    from driver_monitor.training.face_au import aus_from_mediapipe

    z = np.load(path, allow_pickle=False)
    aus = aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), z["found"])
    pos = {f: i for i, f in enumerate(z["files"].tolist())}
    hit = 0
    for i, f in enumerate(ds.files):
        j = pos.get(f)
        if j is not None:
            out[i] = aus[j]
            hit += 1
    if hit < len(ds) * 0.5:
        raise DatasetError(f"AU label file {path} matches only {hit} of {len(ds)} images of {ds.name}")
    return out


def class_weights(hard: np.ndarray, power: float, cap: float) -> np.ndarray:
    """Inverse-frequency weights ``(n_c / n_max) ** -power``, capped, normalised to mean 1 over samples."""
    counts = np.bincount(hard, minlength=len(EMOTIONS)).astype(np.float64)
    w = np.where(counts > 0, (np.maximum(counts, 1) / counts.max()) ** (-power), 0.0)
    w = np.minimum(w, cap)
    w /= (w[hard]).mean()
    return w.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# augmentation (batch-wise, on tensors)
# ----------------------------------------------------------------------------------------------

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
    # rotation +-10 deg, scale 0.9..1.1 (crop / zoom), shift +-8 % (crops)
    ang = u(-10, 10) * strength * math.pi / 180
    sc = 1.0 + u(-0.1, 0.1) * strength
    tx, ty = u(-0.08, 0.08) * strength, u(-0.08, 0.08) * strength
    cos, sin = torch.cos(ang) / sc, torch.sin(ang) / sc
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
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
    # random erasing (occlusion) on 25 % of the batch: one rectangle 10-30 % of the side
    s = x.shape[-1]
    er = torch.rand(n, generator=g).to(dev) < 0.25
    if erase and er.any():
        h = (u(0.1, 0.3) * s).long()
        w = (u(0.1, 0.3) * s).long()
        y0 = (u(0, 1) * (s - h)).long()
        x0 = (u(0, 1) * (s - w)).long()
        ar = torch.arange(s, device=dev)
        my = (ar[None, :] >= y0[:, None]) & (ar[None, :] < (y0 + h)[:, None])
        mx = (ar[None, :] >= x0[:, None]) & (ar[None, :] < (x0 + w)[:, None])
        m = (my[:, :, None] & mx[:, None, :] & er[:, None, None])[:, None]
        x = torch.where(m, mean.expand_as(x), x)
    return x.clamp(0.0, 1.0), flip


# AUs are left/right averaged, so a horizontal flip leaves every AU target unchanged.


def normalise(x01: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    return (x01 - spec.mean) / spec.std


# ----------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------

def soft_ce(logits: torch.Tensor, target: torch.Tensor, sample_w: torch.Tensor) -> torch.Tensor:
    logp = F.log_softmax(logits, dim=1)
    return (-(target * logp).sum(1) * sample_w).mean()


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = ~torch.isnan(target)
    if not mask.any():
        return logits.sum() * 0.0
    t = torch.nan_to_num(target, nan=0.0)
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    return (loss * mask).sum() / mask.sum()


def distill_loss(emo_logits: torch.Tensor, au_logits: torch.Tensor, t_probs: torch.Tensor,
                 t_au: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distillation towards a teacher's outputs (``--teacher``): (KL(teacher || student) over the
    emotion distribution, mean binary KL between the teacher's AU intensities and the student's).
    Both are 0 when the student matches the teacher and have the gradients of the cross-entropy /
    BCE against the teacher's soft targets (the teacher's entropy is a constant)."""
    logp = F.log_softmax(emo_logits, dim=1)
    kl_emo = (t_probs * (torch.log(t_probs.clamp_min(1e-8)) - logp)).sum(1).mean()
    t = t_au.clamp(1e-6, 1.0 - 1e-6)
    entropy = -(t * torch.log(t) + (1.0 - t) * torch.log1p(-t)).mean()
    kl_au = F.binary_cross_entropy_with_logits(au_logits, t_au) - entropy
    return kl_emo, kl_au


def visibility_loss(vis_logits: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """BCE of the region-visibility logits against ``1 - covered fraction`` of each region."""
    return F.binary_cross_entropy_with_logits(vis_logits, 1.0 - coverage.clamp(0.0, 1.0))


def load_teacher(path: str, device: torch.device) -> torch.nn.Module:
    """The frozen teacher network (eval mode, no gradients) for ``--teacher``."""
    teacher, meta = load_checkpoint(path, map_location="cpu")
    teacher.to(device).to(memory_format=torch.channels_last).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    print(f"teacher: {path} (model {meta.get('model_version', '?')}, {teacher.cfg.variant})")
    return teacher


@torch.no_grad()
def teacher_outputs(teacher: torch.nn.Module, x: torch.Tensor,
                    amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        p, a = teacher(x.contiguous(memory_format=torch.channels_last))
    return p.float(), a.float()


def make_occluder(args: argparse.Namespace, size: int) -> OccluderGenerator | None:
    """``--occlusion-p`` / ``--occlusion-kinds`` -> the training occluder generator (None when off)."""
    if args.occlusion_p <= 0:
        return None
    if args.occlusion_p > 1:
        raise DriverMonitorError(f"--occlusion-p is a probability in [0, 1], got {args.occlusion_p}")
    kinds = None
    if args.occlusion_kinds:
        names = [k.strip() for k in args.occlusion_kinds.split(",") if k.strip()]
        unknown = sorted(set(names) - set(OCCLUDER_WEIGHTS))
        if unknown:
            raise DriverMonitorError(f"--occlusion-kinds: unknown kind(s) {unknown}; known: {list(OCCLUDER_WEIGHTS)}")
        kinds = {k: OCCLUDER_WEIGHTS[k] for k in names}
    return OccluderGenerator(size, kinds)


def batch_inputs(x01: torch.Tensor, g: torch.Generator, args: argparse.Namespace,
                 occluder: OccluderGenerator | None, spec: InputSpec) -> tuple[torch.Tensor, torch.Tensor,
                                                                              torch.Tensor | None]:
    """Augmented batch -> (student input, clean input for the teacher, covered fraction of each
    region (N, R) or None). Without an occluder the student reads the clean crop too. The occluder
    draws from a numpy generator seeded from ``g``, so a run (and --resume) stays reproducible."""
    if occluder is None:
        x, _ = augment(x01, g, args.aug_strength)
        x = normalise(x, spec)
        return x, x, None
    clean, _ = augment(x01, g, args.aug_strength, erase=False)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    occ, cover, _ = occluder.batch(clean[:, 0].cpu().numpy(), np.random.default_rng(seed), args.occlusion_p)
    student = torch.from_numpy(occ)[:, None].to(x01.device)
    return normalise(student, spec), normalise(clean, spec), torch.from_numpy(cover).to(x01.device)


def batch_loss(model: torch.nn.Module, teacher: torch.nn.Module | None, x: torch.Tensor, clean: torch.Tensor,
               cover: torch.Tensor | None, tgt: torch.Tensor, sw: torch.Tensor, aus: torch.Tensor,
               args: argparse.Namespace,
               amp_dtype: torch.dtype | None) -> tuple[torch.Tensor, list[float], torch.Tensor]:
    """-> (total loss, [emotion, AU, emotion distillation, AU distillation, visibility] terms,
    emotion logits). Terms that do not apply are 0."""
    with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        emo_logits, au_logits, _, vis_logits = model.forward_logits_all(x.contiguous(memory_format=torch.channels_last))
    emo_logits, au_logits = emo_logits.float(), au_logits.float()
    l_emo = soft_ce(emo_logits, tgt, sw)
    l_au = masked_bce(au_logits, aus)
    loss = args.emo_weight * l_emo + args.au_weight * l_au
    zero = emo_logits.new_zeros(())
    kd_emo = kd_au = l_vis = zero
    if teacher is not None:
        t_probs, t_au = teacher_outputs(teacher, clean, amp_dtype)
        kd_emo, kd_au = distill_loss(emo_logits, au_logits, t_probs, t_au)
        loss = loss + args.distill_weight * kd_emo + args.distill_au_weight * kd_au
    if vis_logits is not None and args.visibility_weight > 0:
        l_vis = visibility_loss(vis_logits.float(), cover if cover is not None else torch.zeros_like(vis_logits))
        loss = loss + args.visibility_weight * l_vis
    return loss, [t.item() for t in (l_emo, l_au, kd_emo, kd_au, l_vis)], emo_logits


def freeze(model: torch.nn.Module, prefixes: list[str]) -> list[str]:
    """Freeze parameters whose name starts with one of ``prefixes``; returns the frozen names."""
    frozen = []
    for name, p in model.named_parameters():
        if any(name == pre or name.startswith(pre + ".") for pre in prefixes):
            p.requires_grad_(False)
            frozen.append(name)
    if prefixes and not frozen:
        names = sorted({n.split(".")[0] for n, _ in model.named_parameters()})
        raise DriverMonitorError(f"--freeze {prefixes} matched no parameter; top-level groups: {names}")
    return frozen


def set_frozen_bn_eval(model: torch.nn.Module, prefixes: list[str]) -> None:
    """Keep batch-norm statistics of frozen parts fixed too (train() would update them)."""
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.BatchNorm2d) and any(name == p or name.startswith(p + ".") for p in prefixes):
            mod.eval()


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


def occluded_copy(images: np.ndarray, occluder: OccluderGenerator, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded occluded copy of uint8 crops (every crop occluded): (uint8 crops, coverage)."""
    occ, cover, _ = occluder.batch(images.astype(np.float32) / 255.0, np.random.default_rng(seed), p=1.0)
    return np.clip(np.round(occ * 255.0), 0, 255).astype(np.uint8), cover


class WeightEMA:
    """Exponential moving average of the weights and batch-norm statistics (``--ema DECAY``).

    The averaged network is what gets validated and written to ``best.pt``: it is smoother than the
    last SGD iterate, which matters with noisy crowd labels and a short, time-budgeted schedule.
    The effective decay ramps up as ``(1 + n) / (10 + n)`` so the first updates (random or
    ``--init`` weights) are not dragged along for thousands of steps."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise DriverMonitorError(f"--ema must be in (0, 1) (e.g. 0.999), or 0 to turn it off; got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, m in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(m.detach(), 1.0 - d)
            else:
                e.copy_(m)

    def state(self) -> dict:
        return {"state_dict": self.module.state_dict(), "updates": self.updates}

    def load(self, state: dict) -> None:
        self.module.load_state_dict(state["state_dict"])
        self.updates = int(state["updates"])


def _np_state() -> dict:
    """numpy's RNG state as tensors / plain values (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def build_network(args: argparse.Namespace, out: Path) -> tuple[torch.nn.Module, dict | None]:
    """The network to train and, with --resume, the saved training state.

    --resume: <out>/last.pt as saved. --init alone: the checkpoint's network (turned into the
    region-attention variant of the same preset with --region-attention: the checkpoint's weights,
    new region layers). --init with --arch: the checkpoint grown into that preset. Otherwise a
    fresh --arch preset."""
    if args.resume and (out / "last.pt").is_file():
        blob = read_checkpoint(out / "last.pt")
        model = build_model(blob["net_config"])
        model.load_state_dict(blob["state_dict"])
        train_state = blob.get("train_state")
        print(f"resuming from {out / 'last.pt'} (epoch {train_state['epoch'] if train_state else '?'})")
        return model, train_state
    if args.init and not args.arch:
        blob = read_checkpoint(args.init)
        cfg = NetConfig.from_dict(blob["net_config"])
        if args.region_attention and not cfg.region_names:
            model = build_model(with_region_attention(cfg))
            new = load_plain_weights(model, blob["state_dict"])
            print(f"fine-tuning from {args.init} with region attention ({len(new)} new tensors: {new})")
            return model, None
        model = build_model(cfg)
        model.load_state_dict(blob["state_dict"])
        print(f"fine-tuning from {args.init} ({cfg.variant})")
        return model, None
    cfg = ARCHS[args.arch or "small"]
    cfg = NetConfig.from_dict({**cfg.to_dict(), "dropout": args.dropout})
    model = build_model(cfg)
    if args.init:
        # grow the checkpoint's network into a wider preset, computing the same function
        grow_from(model, read_checkpoint(args.init)["state_dict"])
        print(f"grown from {args.init} into --arch {args.arch}")
    if args.region_attention:
        plain = model
        model = build_model(with_region_attention(cfg))
        load_plain_weights(model, plain.state_dict())
    return model, None


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    spec = InputSpec()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    t_load = time.perf_counter()
    train_ds = load_dataset(args.kind, args.data, args.train_split, size=spec.size)
    if args.val_split.startswith("holdout:"):
        # a seeded random fraction of the training split (layouts without a validation split)
        frac = float(args.val_split.split(":", 1)[1])
        if not 0 < frac < 0.5:
            raise DriverMonitorError(f"--val-split holdout fraction must be in (0, 0.5), got {frac}")
        order = np.random.default_rng(args.seed).permutation(len(train_ds))
        n_val = int(round(frac * len(train_ds)))
        val_ds = train_ds.subset(np.sort(order[:n_val]))
        train_ds = train_ds.subset(np.sort(order[n_val:]))
    else:
        val_ds = load_dataset(args.kind, args.data, args.val_split, size=spec.size)
    aus_dir = Path(args.aus_dir) if args.aus_dir else None
    tr_hard, tr_soft = to_class_space(train_ds)
    va_hard, _ = to_class_space(val_ds)
    prefix = args.kind
    tr_aus = load_au_labels(aus_dir / f"{prefix}_{args.train_split}.npz" if aus_dir else None, train_ds)
    va_split = args.train_split if args.val_split.startswith("holdout:") else args.val_split
    va_aus = load_au_labels(aus_dir / f"{prefix}_{va_split}.npz" if aus_dir else None, val_ds)
    if args.limit:
        tr_hard, tr_soft, tr_aus = tr_hard[: args.limit], tr_soft[: args.limit], tr_aus[: args.limit]
        train_ds = train_ds.subset(np.arange(min(args.limit, len(train_ds))))
    if not args.soft:
        tr_soft = np.eye(len(EMOTIONS), dtype=np.float32)[tr_hard]
    cw = class_weights(tr_hard, args.class_weight_power, args.class_weight_cap)
    print(f"data: train {len(train_ds)} ({train_ds.name}), val {len(val_ds)}, AU labels on "
          f"{(~np.isnan(tr_aus[:, 0])).sum()} train images; loaded in {time.perf_counter() - t_load:.1f}s")
    print("class weights:", {e: round(float(w), 2) for e, w in zip(EMOTIONS, cw)})

    model, train_state = build_network(args, out)
    model.to(device)
    # channels-last: the memory layout oneDNN's CPU convolutions and tensor cores are fastest in
    model.to(memory_format=torch.channels_last)
    amp_dtype = pick_amp(args.amp, device)
    frozen_prefixes = [p for p in args.freeze.split(",") if p] if args.freeze else []
    frozen = freeze(model, frozen_prefixes)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = count_parameters(model)
    print(f"model: {n_params} parameters, {len(frozen)} frozen tensors, device {device}, "
          f"autocast {amp_dtype or 'off (float32)'}")

    teacher = load_teacher(args.teacher, device) if args.teacher else None
    occluder = make_occluder(args, spec.size)
    if teacher is not None and np.isnan(va_aus).all():
        # no AU labels: the teacher's AU intensities on the clean validation crops are the reference
        # (val_au_mae: how far the student is from the teacher; val_au_mae_occ: the same, occluded)
        va_aus = predict(teacher, val_ds.images, spec, device)[1]
    # a fixed occluded copy of the validation split (val_acc_occ); its own seed, not the training's
    val_occ = occluded_copy(val_ds.images, occluder, args.seed + 1_000_003) if occluder is not None else None
    if args.select != "clean" and val_occ is None:
        raise DriverMonitorError(f"--select {args.select} needs the occluded validation copy: set --occlusion-p")
    ema = WeightEMA(model, args.ema) if args.ema > 0 else None
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(train_ds) / args.batch)
    total_steps = args.epochs * steps_per_epoch
    warm = min(steps_per_epoch, total_steps // 10)

    budget_s = args.time_budget_min * 60.0

    def lr_at(step: int, wall_s: float = 0.0) -> float:
        """Linear warm-up, then cosine decay to 2 % of --lr over the planned steps, or over the
        time budget when that runs out first (so a slow, shared CPU still ends annealed)."""
        if step < warm:
            return args.lr * (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        if budget_s > 0:
            frac = max(frac, wall_s / budget_s)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    start_epoch, step, best_acc, bad_epochs = 0, 0, -1.0, 0
    wall_before = 0.0
    g = torch.Generator().manual_seed(args.seed)
    if train_state:
        opt.load_state_dict(train_state["optimizer"])
        start_epoch = train_state["epoch"] + 1
        step = train_state["step"]
        best_acc = train_state["best_acc"]
        bad_epochs = train_state["bad_epochs"]
        wall_before = train_state.get("wall_s", 0.0)
        g.set_state(train_state["generator"])
        npr = train_state["np_random"]
        np.random.set_state((npr["name"], npr["keys"].numpy().astype(np.uint32), int(npr["pos"]),
                             int(npr["has_gauss"]), float(npr["cached"])))
        torch.set_rng_state(train_state["torch_rng"])
        if ema is not None and train_state.get("ema"):
            ema.load(train_state["ema"])

    images = torch.from_numpy(train_ds.images)
    soft_t = torch.from_numpy(tr_soft)
    aus_t = torch.from_numpy(tr_aus)
    w_t = torch.from_numpy(cw)
    hard_t = torch.from_numpy(tr_hard)
    meta_base = default_meta(
        input_size=spec.size, input_mean=spec.mean, input_std=spec.std,
        training_data=args.training_data or f"{train_ds.name} ({len(train_ds)} images)"
        + (", AU pseudo-labels from MediaPipe Face Landmarker blendshapes" if aus_dir else "")
        + (f", distilled from {Path(args.teacher).name} (teacher on the clean crop)" if teacher is not None else "")
        + (f", random occluders on {args.occlusion_p:.0%} of the crops" if occluder is not None else ""),
        train_args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        seed=args.seed, parameters=n_params, hardware=f"{platform.processor() or platform.machine()} "
        f"({os.cpu_count()} CPUs), torch {torch.__version__}, device {device}",
    )

    csv_path = out / "metrics.csv"
    fields = ["epoch", "lr", "train_loss", "train_emo_loss", "train_au_loss", "train_kd_emo", "train_kd_au",
              "train_vis_loss", "train_acc", "val_acc", "val_macro_f1", "val_nll", "val_au_mae", "val_acc_raw",
              "val_acc_occ", "val_au_mae_occ", "val_vis_mae_occ", "epoch_s", "images_per_s"]
    if not csv_path.exists() or start_epoch == 0:
        with open(csv_path, "w", newline="") as fh:
            csv.writer(fh).writerow(fields)

    from tqdm import tqdm

    t_run = time.perf_counter()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        set_frozen_bn_eval(model, frozen_prefixes)
        perm = torch.randperm(len(train_ds), generator=g)
        t0 = time.perf_counter()
        sums = np.zeros(7)
        n_seen = 0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", mininterval=10,
                   disable=args.no_progress)
        for b in bar:
            idx = perm[b * args.batch:(b + 1) * args.batch]
            x, clean, cover = batch_inputs(images[idx].float().div_(255.0)[:, None].to(device), g, args,
                                           occluder, spec)
            tgt = soft_t[idx].to(device)
            sw = (w_t[hard_t[idx]]).to(device)
            wall_now = wall_before + time.perf_counter() - t_run
            if budget_s > 0 and wall_now > budget_s:
                print(f"time budget of {args.time_budget_min} min used: ending epoch {epoch + 1} after {b} of "
                      f"{steps_per_epoch} batches", flush=True)
                break
            for pg in opt.param_groups:
                pg["lr"] = lr_at(step, wall_now)
            loss, terms, emo_logits = batch_loss(model, teacher, x, clean, cover, tgt, sw, aus_t[idx].to(device),
                                                 args, amp_dtype)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update(model)
            step += 1
            k = len(idx)
            n_seen += k
            acc = (emo_logits.argmax(1).cpu() == hard_t[idx]).float().mean().item()
            sums += np.array([loss.item(), *terms, acc]) * k
            bar.set_postfix(loss=f"{sums[0] / n_seen:.3f}", acc=f"{sums[6] / n_seen:.3f}")
        ep_s = time.perf_counter() - t0
        if n_seen == 0:
            break
        # with --ema the averaged weights are the model: validated, selected and saved as best.pt
        net = ema.module if ema is not None else model
        val_raw = evaluate(model, val_ds.images, va_hard, va_aus, spec, device)
        val = evaluate(net, val_ds.images, va_hard, va_aus, spec, device) if ema is not None else val_raw
        nan = {"accuracy": float("nan"), "au_mae": float("nan"), "vis_mae": float("nan")}
        occ = evaluate(net, val_occ[0], va_hard, va_aus, spec, device, cover=val_occ[1]) if val_occ else nan
        row = {
            "epoch": epoch + 1, "lr": opt.param_groups[0]["lr"],
            "train_loss": sums[0] / n_seen, "train_emo_loss": sums[1] / n_seen,
            "train_au_loss": sums[2] / n_seen, "train_kd_emo": sums[3] / n_seen, "train_kd_au": sums[4] / n_seen,
            "train_vis_loss": sums[5] / n_seen, "train_acc": sums[6] / n_seen,
            "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"], "val_nll": val["nll"],
            "val_au_mae": val["au_mae"], "val_acc_raw": val_raw["accuracy"], "val_acc_occ": occ["accuracy"],
            "val_au_mae_occ": occ["au_mae"], "val_vis_mae_occ": occ["vis_mae"], "epoch_s": ep_s,
            "images_per_s": n_seen / ep_s,
        }
        with open(csv_path, "a", newline="") as fh:
            csv.writer(fh).writerow([f"{row[f]:.5g}" if isinstance(row[f], float) else row[f] for f in fields])
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
        wall = wall_before + time.perf_counter() - t_run
        score = val["accuracy"] if args.select == "clean" else 0.5 * (val["accuracy"] + occ["accuracy"])
        improved = score > best_acc
        if improved:
            best_acc = score
            bad_epochs = 0
            save_checkpoint(out / "best.pt", net, {
                **meta_base, "epoch": epoch + 1, "train_wall_s": wall,
                "metrics": {f"{val_ds.name}_accuracy": val["accuracy"], f"{val_ds.name}_macro_f1": val["macro_f1"],
                            **({f"{val_ds.name}_occluded_accuracy": occ["accuracy"]} if val_occ else {})},
            })
        else:
            bad_epochs += 1
        save_checkpoint(out / "last.pt", model, {**meta_base, "epoch": epoch + 1}, train_state={
            "optimizer": opt.state_dict(), "epoch": epoch, "step": step, "best_acc": best_acc,
            "bad_epochs": bad_epochs, "wall_s": wall, "generator": g.get_state(),
            "np_random": _np_state(), "torch_rng": torch.get_rng_state(),
            "ema": ema.state() if ema is not None else None,
        })
        if bad_epochs >= args.patience:
            print(f"early stopping: no validation improvement for {args.patience} epochs")
            break
        if budget_s > 0 and wall > budget_s:
            print(f"stopping: time budget of {args.time_budget_min} min used")
            break
    summary = {"best_val_accuracy": best_acc, "wall_s": wall_before + time.perf_counter() - t_run,
               "epochs_run": epoch + 1 - start_epoch if args.epochs > start_epoch else 0}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print("done:", summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset root (e.g. the FERPlus folder with FER2013Train/...)")
    ap.add_argument("--kind", default="ferplus", help="ferplus | fer2013 | folders")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--val-split", default="valid",
                    help="validation split, or holdout:0.1 = a seeded 10%% of the training split "
                         "(FER2013 Kaggle folders have no validation split)")
    ap.add_argument("--aus-dir", default=None,
                    help="folder with <kind>_<split>.npz AU pseudo-labels (tools/label_aus.py)")
    ap.add_argument("--out", required=True, help="run folder: metrics.csv, last.pt, best.pt")
    ap.add_argument("--arch", default=None, choices=sorted(ARCHS),
                    help="network preset (default small); with --init: grow the checkpoint's network into "
                         "this wider preset (same function at the start, new channels then train)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"],
                    help="mixed precision: auto = bfloat16 autocast on a CUDA GPU or a CPU with native "
                         "bf16 (AVX512-BF16 / AMX), float32 elsewhere")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--emo-weight", type=float, default=1.0, help="weight of the emotion loss")
    ap.add_argument("--au-weight", type=float, default=0.5, help="weight of the AU loss")
    ap.add_argument("--no-soft", dest="soft", action="store_false", help="train on majority labels only")
    ap.add_argument("--class-weight-power", type=float, default=0.5,
                    help="class weight = (n_c / n_max) ** -power (0 = no re-weighting)")
    ap.add_argument("--class-weight-cap", type=float, default=5.0)
    ap.add_argument("--aug-strength", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this decay (e.g. 0.999) "
                         "and validate / save that as best.pt; 0 = off")
    ap.add_argument("--occlusion-p", type=float, default=0.0,
                    help="occlude this share of the training crops with random occluders (sunglasses, masks, "
                         "hands, objects, patches, blur, low light, IR look; training/occlusion_aug.py), e.g. 0.5; "
                         "replaces the random erasing; also validates on a fixed occluded copy (val_acc_occ)")
    ap.add_argument("--occlusion-kinds", default="",
                    help="comma-separated occluder kinds to draw from (default: all, " +
                         ",".join(OCCLUDER_WEIGHTS) + ")")
    ap.add_argument("--teacher", default=None,
                    help="frozen teacher checkpoint (e.g. engines/emotion_au.pt): it reads the clean augmented "
                         "crop, the student the occluded one, and the student is pulled towards the teacher's "
                         "emotion probabilities and AU intensities (the AU head's only target without --aus-dir)")
    ap.add_argument("--distill-weight", type=float, default=1.0,
                    help="weight of the KL term towards the teacher's emotion probabilities (with --teacher)")
    ap.add_argument("--distill-au-weight", type=float, default=1.0,
                    help="weight of the binary KL term towards the teacher's AU intensities (with --teacher)")
    ap.add_argument("--region-attention", action="store_true",
                    help="train the region-attention variant (region features of eyes, nose, mouth, cheeks and "
                         "the whole face, learned attention weights, region visibility); with --init of a plain "
                         "checkpoint its weights are kept and the region layers are new")
    ap.add_argument("--visibility-weight", type=float, default=0.2,
                    help="weight of the region-visibility BCE (region-attention network only)")
    ap.add_argument("--select", default="clean", choices=["clean", "clean+occluded"],
                    help="best.pt = best validation accuracy (clean) or best mean of the clean and the occluded "
                         "validation accuracy (needs --occlusion-p)")
    ap.add_argument("--init", default=None, help="checkpoint to fine-tune from (transfer learning)")
    ap.add_argument("--freeze", default="",
                    help="comma-separated parameter prefixes to freeze, e.g. stem,trunk.0,trunk.1")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--patience", type=int, default=6, help="early stopping patience (epochs)")
    ap.add_argument("--time-budget-min", type=float, default=0.0,
                    help="training wall-time budget: the LR schedule anneals by then and training stops (0 = no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    ap.add_argument("--training-data", default="", help="description stored in the checkpoint metadata")
    ap.add_argument("--no-progress", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
