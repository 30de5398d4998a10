"""The networks of a training run: the one to train (fresh, fine-tuned, grown or resumed), its
frozen parts, the frozen teacher, and the moving average of its weights."""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from ..errors import DriverMonitorError
from ..model.checkpoint import build_model, load_checkpoint, read_checkpoint
from ..model.network import NetConfig, grow_from, load_plain_weights, with_region_attention
from .options import TrainOptions
from .presets import ARCHS


def _resumed(path: Path) -> tuple[torch.nn.Module, dict | None]:
    blob = read_checkpoint(path)
    model = build_model(blob["net_config"])
    model.load_state_dict(blob["state_dict"])
    train_state = blob.get("train_state")
    print(f"resuming from {path} (epoch {train_state['epoch'] if train_state else '?'})")
    return model, train_state


def _fine_tuned(init: str, region_attention: bool) -> torch.nn.Module:
    blob = read_checkpoint(init)
    cfg = NetConfig.from_dict(blob["net_config"])
    if region_attention and not cfg.region_names:
        model = build_model(with_region_attention(cfg))
        new = load_plain_weights(model, blob["state_dict"])
        print(f"fine-tuning from {init} with region attention ({len(new)} new tensors: {new})")
        return model
    model = build_model(cfg)
    model.load_state_dict(blob["state_dict"])
    print(f"fine-tuning from {init} ({cfg.variant})")
    return model


def build_network(opts: TrainOptions, out: Path) -> tuple[torch.nn.Module, dict | None]:
    """The network to train and, with --resume, the saved training state.

    --resume: <out>/last.pt as saved. --init alone: the checkpoint's network (turned into the
    region-attention variant of the same preset with --region-attention: the checkpoint's weights,
    new region layers). --init with --arch: the checkpoint grown into that preset. Otherwise a
    fresh --arch preset."""
    if opts.resume and (out / "last.pt").is_file():
        return _resumed(out / "last.pt")
    if opts.init and not opts.arch:
        return _fine_tuned(opts.init, opts.region_attention), None
    cfg = ARCHS[opts.arch or "small"]
    cfg = NetConfig.from_dict({**cfg.to_dict(), "dropout": opts.dropout})
    model = build_model(cfg)
    if opts.init:
        # grow the checkpoint's network into a wider preset, computing the same function
        grow_from(model, read_checkpoint(opts.init)["state_dict"])
        print(f"grown from {opts.init} into --arch {opts.arch}")
    if opts.region_attention:
        plain = model
        model = build_model(with_region_attention(cfg))
        load_plain_weights(model, plain.state_dict())
    return model, None


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


def load_teacher(path: str, device: torch.device) -> torch.nn.Module:
    """The frozen teacher network (eval mode, no gradients) for ``--teacher``."""
    teacher, meta = load_checkpoint(path, map_location="cpu")
    teacher.to(device).to(memory_format=torch.channels_last).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    print(f"teacher: {path} (model {meta.get('model_version', '?')}, {teacher.cfg.variant})")
    return teacher


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
