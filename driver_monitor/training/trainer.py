"""The training run of the emotion + action-unit network (``tools/train.py``).

The whole dataset is held in memory as uint8 and augmented batch-wise on tensors (``augment``), so
no DataLoader workers are needed; the losses are ``losses``. Per-epoch metrics go to
``<out>/metrics.csv``; ``<out>/last.pt`` (with optimiser state, for --resume) and ``<out>/best.pt``
(best validation score) are written every epoch; early stopping after ``patience`` epochs without
improvement; ``summary.json`` at the end. With ``ema`` the moving average of the weights is what
is validated and saved as ``best.pt`` (``val_acc_raw`` logs the raw iterate). With
``occlusion_p`` the validation split is also scored on a fixed occluded copy (``val_acc_occ``).
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import DriverMonitorError
from ..model.checkpoint import default_meta, save_checkpoint
from ..model.network import count_parameters
from ..preprocess import EMOTIONS, InputSpec
from .amp import pick_amp
from .augment import batch_inputs, make_occluder, occluded_copy
from .datasets import FaceDataset, load_dataset
from .losses import batch_loss
from .networks import WeightEMA, build_network, freeze, load_teacher, set_frozen_bn_eval
from .options import TrainOptions
from .targets import class_weights, load_au_labels, to_class_space
from .validation import evaluate, predict

METRIC_FIELDS = ["epoch", "lr", "train_loss", "train_emo_loss", "train_au_loss", "train_kd_emo", "train_kd_au",
                 "train_vis_loss", "train_acc", "val_acc", "val_macro_f1", "val_nll", "val_au_mae", "val_acc_raw",
                 "val_acc_occ", "val_au_mae_occ", "val_vis_mae_occ", "epoch_s", "images_per_s"]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else the CPU; otherwise the device named."""
    return torch.device(name if name != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))


# ----------------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------------

@dataclass
class TrainData:
    """The splits and their targets: hard / soft emotion labels, AU labels, class weights."""

    train: FaceDataset
    val: FaceDataset
    tr_hard: np.ndarray
    tr_soft: np.ndarray
    tr_aus: np.ndarray
    va_hard: np.ndarray
    va_aus: np.ndarray
    cw: np.ndarray
    with_aus: bool


def _holdout(train_ds: FaceDataset, val_split: str, seed: int) -> tuple[FaceDataset, FaceDataset]:
    """``holdout:F``: a seeded random fraction F of the training split (layouts without a
    validation split) -> (training part, validation part)."""
    frac = float(val_split.split(":", 1)[1])
    if not 0 < frac < 0.5:
        raise DriverMonitorError(f"--val-split holdout fraction must be in (0, 0.5), got {frac}")
    order = np.random.default_rng(seed).permutation(len(train_ds))
    n_val = int(round(frac * len(train_ds)))
    return train_ds.subset(np.sort(order[n_val:])), train_ds.subset(np.sort(order[:n_val]))


def load_data(opts: TrainOptions, spec: InputSpec) -> TrainData:
    """The training and validation splits with their targets (``limit``, ``soft`` applied)."""
    t_load = time.perf_counter()
    train_ds = load_dataset(opts.kind, opts.data, opts.train_split, size=spec.size)
    holdout = opts.val_split.startswith("holdout:")
    if holdout:
        train_ds, val_ds = _holdout(train_ds, opts.val_split, opts.seed)
    else:
        val_ds = load_dataset(opts.kind, opts.data, opts.val_split, size=spec.size)
    aus_dir = Path(opts.aus_dir) if opts.aus_dir else None
    tr_hard, tr_soft = to_class_space(train_ds)
    va_hard, _ = to_class_space(val_ds)
    tr_aus = load_au_labels(aus_dir / f"{opts.kind}_{opts.train_split}.npz" if aus_dir else None, train_ds)
    va_split = opts.train_split if holdout else opts.val_split
    va_aus = load_au_labels(aus_dir / f"{opts.kind}_{va_split}.npz" if aus_dir else None, val_ds)
    if opts.limit:
        tr_hard, tr_soft, tr_aus = tr_hard[: opts.limit], tr_soft[: opts.limit], tr_aus[: opts.limit]
        train_ds = train_ds.subset(np.arange(min(opts.limit, len(train_ds))))
    if not opts.soft:
        tr_soft = np.eye(len(EMOTIONS), dtype=np.float32)[tr_hard]
    cw = class_weights(tr_hard, opts.class_weight_power, opts.class_weight_cap)
    print(f"data: train {len(train_ds)} ({train_ds.name}), val {len(val_ds)}, AU labels on "
          f"{(~np.isnan(tr_aus[:, 0])).sum()} train images; loaded in {time.perf_counter() - t_load:.1f}s")
    print("class weights:", {e: round(float(w), 2) for e, w in zip(EMOTIONS, cw)})
    return TrainData(train_ds, val_ds, tr_hard, tr_soft, tr_aus, va_hard, va_aus, cw, aus_dir is not None)


# ----------------------------------------------------------------------------------------------
# schedule and saved state
# ----------------------------------------------------------------------------------------------

def lr_schedule(opts: TrainOptions, steps_per_epoch: int) -> Callable[[int, float], float]:
    """``lr_at(step, wall_s)``: linear warm-up, then cosine decay to 2 % of ``lr`` over the planned
    steps, or over the time budget when that runs out first (so a slow, shared CPU still ends
    annealed)."""
    total_steps = opts.epochs * steps_per_epoch
    warm = min(steps_per_epoch, total_steps // 10)
    budget_s = opts.time_budget_min * 60.0

    def lr_at(step: int, wall_s: float = 0.0) -> float:
        if step < warm:
            return opts.lr * (step + 1) / warm
        frac = (step - warm) / max(1, total_steps - warm)
        if budget_s > 0:
            frac = max(frac, wall_s / budget_s)
        return opts.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    return lr_at


def np_state() -> dict:
    """numpy's RNG state as tensors / plain values (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_np_state(npr: dict) -> None:
    """The inverse of :func:`np_state`."""
    np.random.set_state((npr["name"], npr["keys"].numpy().astype(np.uint32), int(npr["pos"]),
                         int(npr["has_gauss"]), float(npr["cached"])))


@dataclass
class Progress:
    """Where the run stands: restored from ``last.pt`` by --resume."""

    start_epoch: int = 0
    step: int = 0
    best_acc: float = -1.0
    bad_epochs: int = 0
    wall_before: float = 0.0


def training_data_text(opts: TrainOptions, data: TrainData, teacher: bool, occluder: bool) -> str:
    """What the checkpoint says it was trained on (``--training-data`` overrides it)."""
    return opts.training_data or f"{data.train.name} ({len(data.train)} images)" + (
        ", AU pseudo-labels from MediaPipe Face Landmarker blendshapes" if data.with_aus else "") + (
        f", distilled from {Path(opts.teacher).name} (teacher on the clean crop)" if teacher else "") + (
        f", random occluders on {opts.occlusion_p:.0%} of the crops" if occluder else "")


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------

class Trainer:
    """One training run: everything is set up on construction (data, network, teacher, occluder,
    optimiser, the state --resume restores); :meth:`run` trains and writes the run folder."""

    def __init__(self, opts: TrainOptions) -> None:
        self.opts = opts
        torch.set_num_threads(opts.threads)
        set_seed(opts.seed)
        self.device = pick_device(opts.device)
        self.spec = InputSpec()
        self.out = Path(opts.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.data = load_data(opts, self.spec)
        self._setup_model()
        self._setup_teacher_and_occluder()
        self.ema = WeightEMA(self.model, opts.ema) if opts.ema > 0 else None
        self.opt = torch.optim.AdamW(self.params, lr=opts.lr, weight_decay=opts.weight_decay)
        self.steps_per_epoch = math.ceil(len(self.data.train) / opts.batch)
        self.lr_at = lr_schedule(opts, self.steps_per_epoch)
        self.budget_s = opts.time_budget_min * 60.0
        self.progress = Progress()
        self.g = torch.Generator().manual_seed(opts.seed)
        if self.train_state:
            self._restore(self.train_state)
        self.tensors = {k: torch.from_numpy(v) for k, v in (
            ("images", self.data.train.images), ("soft", self.data.tr_soft), ("aus", self.data.tr_aus),
            ("weights", self.data.cw), ("hard", self.data.tr_hard))}
        self.meta_base = self._meta_base()
        self.csv_path = self.out / "metrics.csv"
        if not self.csv_path.exists() or self.progress.start_epoch == 0:
            with open(self.csv_path, "w", newline="") as fh:
                csv.writer(fh).writerow(METRIC_FIELDS)

    def _setup_model(self) -> None:
        opts = self.opts
        model, self.train_state = build_network(opts, self.out)
        model.to(self.device)
        # channels-last: the memory layout oneDNN's CPU convolutions and tensor cores are fastest in
        model.to(memory_format=torch.channels_last)
        self.amp_dtype = pick_amp(opts.amp, self.device)
        self.frozen_prefixes = [p for p in opts.freeze.split(",") if p] if opts.freeze else []
        frozen = freeze(model, self.frozen_prefixes)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.n_params = count_parameters(model)
        print(f"model: {self.n_params} parameters, {len(frozen)} frozen tensors, device {self.device}, "
              f"autocast {self.amp_dtype or 'off (float32)'}")
        self.model = model

    def _setup_teacher_and_occluder(self) -> None:
        opts, data = self.opts, self.data
        self.teacher = load_teacher(opts.teacher, self.device) if opts.teacher else None
        self.occluder = make_occluder(opts, self.spec.size)
        if self.teacher is not None and np.isnan(data.va_aus).all():
            # no AU labels: the teacher's AU intensities on the clean validation crops are the reference
            # (val_au_mae: how far the student is from the teacher; val_au_mae_occ: the same, occluded)
            data.va_aus = predict(self.teacher, data.val.images, self.spec, self.device)[1]
        # a fixed occluded copy of the validation split (val_acc_occ); its own seed, not the training's
        self.val_occ = (occluded_copy(data.val.images, self.occluder, opts.seed + 1_000_003)
                        if self.occluder is not None else None)
        if opts.select != "clean" and self.val_occ is None:
            raise DriverMonitorError(f"--select {opts.select} needs the occluded validation copy: set --occlusion-p")

    def _restore(self, state: dict) -> None:
        """Optimiser, progress, random generators and the weight average as --resume finds them."""
        self.opt.load_state_dict(state["optimizer"])
        self.progress = Progress(start_epoch=state["epoch"] + 1, step=state["step"], best_acc=state["best_acc"],
                                 bad_epochs=state["bad_epochs"], wall_before=state.get("wall_s", 0.0))
        self.g.set_state(state["generator"])
        set_np_state(state["np_random"])
        torch.set_rng_state(state["torch_rng"])
        if self.ema is not None and state.get("ema"):
            self.ema.load(state["ema"])

    def _meta_base(self) -> dict:
        spec = self.spec
        return default_meta(
            input_size=spec.size, input_mean=spec.mean, input_std=spec.std,
            training_data=training_data_text(self.opts, self.data, self.teacher is not None,
                                             self.occluder is not None),
            train_args=self.opts.as_meta(), seed=self.opts.seed, parameters=self.n_params,
            hardware=f"{platform.processor() or platform.machine()} "
            f"({os.cpu_count()} CPUs), torch {torch.__version__}, device {self.device}",
        )

    # ------------------------------------------------------------------------------- one epoch

    def _step(self, idx: torch.Tensor, wall_now: float, x: torch.Tensor, clean: torch.Tensor,
              cover: torch.Tensor | None) -> tuple[np.ndarray, float]:
        """One optimiser step on the batch ``idx`` -> ([loss, 5 terms, accuracy], batch size)."""
        t, dev = self.tensors, self.device
        tgt = t["soft"][idx].to(dev)
        sw = (t["weights"][t["hard"][idx]]).to(dev)
        for pg in self.opt.param_groups:
            pg["lr"] = self.lr_at(self.progress.step, wall_now)
        loss, terms, emo_logits = batch_loss(self.model, self.teacher, x, clean, cover, tgt, sw,
                                             t["aus"][idx].to(dev), self.opts, self.amp_dtype)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.progress.step += 1
        acc = (emo_logits.argmax(1).cpu() == t["hard"][idx]).float().mean().item()
        return np.array([loss.item(), *terms, acc]), len(idx)

    def _train_epoch(self, epoch: int, t_run: float) -> tuple[np.ndarray, int, float]:
        """One pass over the training split (cut short when the time budget runs out) ->
        (sums of [loss, 5 terms, accuracy] weighted by batch size, images seen, seconds)."""
        from tqdm import tqdm

        opts = self.opts
        self.model.train()
        set_frozen_bn_eval(self.model, self.frozen_prefixes)
        perm = torch.randperm(len(self.data.train), generator=self.g)
        t0 = time.perf_counter()
        sums = np.zeros(7)
        n_seen = 0
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {epoch + 1}/{opts.epochs}", mininterval=10,
                   disable=opts.no_progress)
        for b in bar:
            idx = perm[b * opts.batch:(b + 1) * opts.batch]
            x01 = self.tensors["images"][idx].float().div_(255.0)[:, None].to(self.device)
            x, clean, cover = batch_inputs(x01, self.g, opts, self.occluder, self.spec)
            wall_now = self.progress.wall_before + time.perf_counter() - t_run
            if self.budget_s > 0 and wall_now > self.budget_s:
                print(f"time budget of {opts.time_budget_min} min used: ending epoch {epoch + 1} after {b} of "
                      f"{self.steps_per_epoch} batches", flush=True)
                break
            values, k = self._step(idx, wall_now, x, clean, cover)
            n_seen += k
            sums += values * k
            bar.set_postfix(loss=f"{sums[0] / n_seen:.3f}", acc=f"{sums[6] / n_seen:.3f}")
        return sums, n_seen, time.perf_counter() - t0

    def _validate(self, epoch: int, sums: np.ndarray, n_seen: int, ep_s: float) -> tuple[dict, dict, dict]:
        """The epoch's metrics row, and the validation scores (clean, occluded) of the network that
        is selected and saved (the weight average with --ema)."""
        data, spec, dev = self.data, self.spec, self.device
        net = self.ema.module if self.ema is not None else self.model
        val_raw = evaluate(self.model, data.val.images, data.va_hard, data.va_aus, spec, dev)
        val = evaluate(net, data.val.images, data.va_hard, data.va_aus, spec, dev) if self.ema is not None else val_raw
        nan = {"accuracy": float("nan"), "au_mae": float("nan"), "vis_mae": float("nan")}
        occ = (evaluate(net, self.val_occ[0], data.va_hard, data.va_aus, spec, dev, cover=self.val_occ[1])
               if self.val_occ else nan)
        row = {
            "epoch": epoch + 1, "lr": self.opt.param_groups[0]["lr"],
            "train_loss": sums[0] / n_seen, "train_emo_loss": sums[1] / n_seen,
            "train_au_loss": sums[2] / n_seen, "train_kd_emo": sums[3] / n_seen, "train_kd_au": sums[4] / n_seen,
            "train_vis_loss": sums[5] / n_seen, "train_acc": sums[6] / n_seen,
            "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"], "val_nll": val["nll"],
            "val_au_mae": val["au_mae"], "val_acc_raw": val_raw["accuracy"], "val_acc_occ": occ["accuracy"],
            "val_au_mae_occ": occ["au_mae"], "val_vis_mae_occ": occ["vis_mae"], "epoch_s": ep_s,
            "images_per_s": n_seen / ep_s,
        }
        return row, val, occ

    def _log_row(self, row: dict) -> None:
        with open(self.csv_path, "a", newline="") as fh:
            csv.writer(fh).writerow([f"{row[f]:.5g}" if isinstance(row[f], float) else row[f] for f in METRIC_FIELDS])
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)

    def _save(self, epoch: int, val: dict, occ: dict, wall: float) -> None:
        """best.pt when the selection score improved (and the patience count), last.pt always."""
        p, name = self.progress, self.data.val.name
        net = self.ema.module if self.ema is not None else self.model
        score = val["accuracy"] if self.opts.select == "clean" else 0.5 * (val["accuracy"] + occ["accuracy"])
        if score > p.best_acc:
            p.best_acc = score
            p.bad_epochs = 0
            save_checkpoint(self.out / "best.pt", net, {
                **self.meta_base, "epoch": epoch + 1, "train_wall_s": wall,
                "metrics": {f"{name}_accuracy": val["accuracy"], f"{name}_macro_f1": val["macro_f1"],
                            **({f"{name}_occluded_accuracy": occ["accuracy"]} if self.val_occ else {})},
            })
        else:
            p.bad_epochs += 1
        save_checkpoint(self.out / "last.pt", self.model, {**self.meta_base, "epoch": epoch + 1}, train_state={
            "optimizer": self.opt.state_dict(), "epoch": epoch, "step": p.step, "best_acc": p.best_acc,
            "bad_epochs": p.bad_epochs, "wall_s": wall, "generator": self.g.get_state(),
            "np_random": np_state(), "torch_rng": torch.get_rng_state(),
            "ema": self.ema.state() if self.ema is not None else None,
        })

    def _stop_after(self, wall: float) -> bool:
        """Early stopping (patience) or the time budget used up."""
        if self.progress.bad_epochs >= self.opts.patience:
            print(f"early stopping: no validation improvement for {self.opts.patience} epochs")
            return True
        if self.budget_s > 0 and wall > self.budget_s:
            print(f"stopping: time budget of {self.opts.time_budget_min} min used")
            return True
        return False

    def run(self) -> dict:
        """Train; returns the summary written to ``<out>/summary.json``."""
        p = self.progress
        start_epoch = p.start_epoch
        t_run = time.perf_counter()
        epoch = start_epoch
        for epoch in range(start_epoch, self.opts.epochs):
            sums, n_seen, ep_s = self._train_epoch(epoch, t_run)
            if n_seen == 0:
                break
            row, val, occ = self._validate(epoch, sums, n_seen, ep_s)
            self._log_row(row)
            wall = p.wall_before + time.perf_counter() - t_run
            self._save(epoch, val, occ, wall)
            if self._stop_after(wall):
                break
        summary = {"best_val_accuracy": p.best_acc, "wall_s": p.wall_before + time.perf_counter() - t_run,
                   "epochs_run": epoch + 1 - start_epoch if self.opts.epochs > start_epoch else 0}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def train(opts: TrainOptions) -> dict:
    """Run a training run (:class:`Trainer`); returns its summary."""
    return Trainer(opts).run()
