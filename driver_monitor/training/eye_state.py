"""Data and training for the eye-state model (``model/eye_net.py``).

Two kinds of labelled eye patches, both ``(N, 24, 24)`` uint8 grey in the framing of
``face.eyes.eye_patches``:

* CEW ("Closed Eyes In The Wild", ``../shared/data/eyes/cew_eye_patches.tar.gz`` unpacked):
  ``open/``, ``closed/`` and ``labels.csv`` with a subject-disjoint ``suggested_split``;
* frames of videos marked by eye, one CSV per clip (``scenarios/frame_marks/``: ``frame,eyes,...``
  with ``eyes`` one of open / closed / half / hidden): every frame marked open or closed gives the
  patches of the eyes the camera sees (an eye turned more than ``FAR_EYE_YAW_DEG`` away is left
  out), cut by the same face mesh and patch code the app runs. These bring what CEW lacks:
  infrared, open eyes looking down under lowered lids, narrow eyes, eyes squeezed in a yawn.

Training (:func:`train`) holds everything in memory and augments batch-wise on tensors (flip,
small rotations / scales / shifts, brightness / contrast / gamma, blur, low resolution, noise), so
no DataLoader workers are needed. Pure numpy + OpenCV below :func:`train`; torch inside it.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import DatasetError

OPEN, CLOSED = 0, 1
MARK_LABELS = {"open": OPEN, "closed": CLOSED}
FAR_EYE_YAW_DEG = 25.0  # beyond this yaw the eye turned away from the camera is hidden by the nose


@dataclass
class EyeSet:
    """Labelled eye patches. ``patches`` (N, 24, 24) uint8; ``labels`` (N,) 0 open / 1 closed;
    per patch: ``subject`` (a person), ``source`` (``cew`` or a clip name), ``frame`` (-1 for CEW),
    ``side`` ("R" / "L"), ``split`` (CEW's suggested split; ``video`` for frames)."""

    patches: NDArray[np.uint8]
    labels: NDArray[np.int64]
    subject: NDArray[Any]
    source: NDArray[Any]
    frame: NDArray[np.int64]
    side: NDArray[Any]
    split: NDArray[Any]
    extra: dict[str, NDArray[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.labels))

    def take(self, mask: NDArray[np.bool_]) -> "EyeSet":
        return EyeSet(self.patches[mask], self.labels[mask], self.subject[mask], self.source[mask],
                      self.frame[mask], self.side[mask], self.split[mask],
                      {k: v[mask] for k, v in self.extra.items()})

    @staticmethod
    def concat(sets: Sequence["EyeSet"]) -> "EyeSet":
        keys = set.intersection(*(set(s.extra) for s in sets)) if sets else set()
        return EyeSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in
                        ("patches", "labels", "subject", "source", "frame", "side", "split")),
                      {k: np.concatenate([s.extra[k] for s in sets]) for k in keys})

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, patches=self.patches, labels=self.labels, subject=self.subject.astype(str),
                            source=self.source.astype(str), frame=self.frame, side=self.side.astype(str),
                            split=self.split.astype(str), **{f"x_{k}": v for k, v in self.extra.items()})

    @classmethod
    def load(cls, path: str | Path) -> "EyeSet":
        z = np.load(path, allow_pickle=False)
        extra = {k[2:]: z[k] for k in z.files if k.startswith("x_")}
        return cls(z["patches"], z["labels"], z["subject"], z["source"], z["frame"], z["side"], z["split"], extra)


# --------------------------------------------------------------------------- CEW

def load_cew(root: str | Path, size: int = 24) -> EyeSet:
    """CEW's patches with its subject-disjoint ``suggested_split`` (train / test)."""
    root = Path(root)
    labels_csv = root / "labels.csv"
    if not labels_csv.is_file():
        raise DatasetError(f"{labels_csv} not found: unpack ../shared/data/eyes/cew_eye_patches.tar.gz and pass "
                           f"the folder that holds open/, closed/ and labels.csv")
    rows = list(csv.DictReader(open(labels_csv, newline="", encoding="utf-8")))
    imgs, labels, subj, side, split = [], [], [], [], []
    for r in rows:
        img = cv2.imread(str(root / r["file"]), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DatasetError(f"{root / r['file']} does not decode as an image")
        if img.shape != (size, size):
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        imgs.append(img)
        labels.append(MARK_LABELS[r["label"]])
        subj.append(r["subject"])
        side.append(r["eye_side"])
        split.append(r["suggested_split"])
    n = len(rows)
    return EyeSet(np.stack(imgs), np.array(labels, np.int64), np.array(subj), np.array(["cew"] * n),
                  np.full(n, -1, np.int64), np.array(side), np.array(split))


# --------------------------------------------------------------------------- marked video frames

def read_frame_marks(path: str | Path) -> dict[int, dict[str, str]]:
    """``frame -> row`` of a per-frame marks CSV (``frame,eyes,...``)."""
    path = Path(path)
    out: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "frame" not in reader.fieldnames or "eyes" not in reader.fieldnames:
            raise DatasetError(f"{path}: a frame-marks CSV needs the columns frame and eyes")
        for i, row in enumerate(reader):
            try:
                out[int(row["frame"])] = {k: (v or "").strip() for k, v in row.items() if k}
            except ValueError:
                raise DatasetError(f"{path} row {i + 2}: frame {row['frame']!r} is not an integer") from None
    return out


def video_eye_patches(video: str | Path, marks: Mapping[int, Mapping[str, str]], subject: str,
                      detector_factory: Callable[[], Any], size: int = 24, scale: float = 1.5) -> EyeSet:
    """The eye patches of every frame of ``video`` marked open or closed, cut by the app's own face
    mesh (``detector_factory()``: a FaceMeshDetector) and patch code; the eye turned away from the
    camera (``FAR_EYE_YAW_DEG``) is left out. ``extra`` holds each patch's yaw, pitch and EAR."""
    from ..config import load_config
    from ..capture import open_source
    from ..face.eyes import eye_patches
    from ..face.geometry import measure
    from ..face.select import pick_driver

    cfg = load_config(None)
    name = Path(video).stem
    out: dict[str, list[Any]] = {k: [] for k in ("p", "y", "frame", "side", "yaw", "pitch", "ear", "gaze")}
    det = detector_factory()
    try:
        with open_source(video, cfg.capture) as src:
            for fr in src:
                faces = det.detect(fr.image, t_s=fr.time_s)
                mark = marks.get(fr.index)
                if mark is None or mark.get("eyes") not in MARK_LABELS or not faces:
                    continue
                face = faces[pick_driver(faces, fr.image.shape[:2], cfg.face) or 0]
                pts = eye_patches(fr.image, face, size, scale)
                if pts is None:
                    continue
                s = measure(face, cfg.face)
                for k, side in enumerate(("R", "L")):
                    # yaw > 0 turns the driver's left eye away from the camera, yaw < 0 the right
                    if (side == "L" and s.yaw_deg > FAR_EYE_YAW_DEG) or (side == "R" and s.yaw_deg < -FAR_EYE_YAW_DEG):
                        continue
                    out["p"].append(pts[k])
                    out["y"].append(MARK_LABELS[mark["eyes"]])
                    out["frame"].append(fr.index)
                    out["side"].append(side)
                    out["yaw"].append(s.yaw_deg)
                    out["pitch"].append(s.pitch_deg)
                    out["ear"].append(s.ear_right if side == "R" else s.ear_left)
                    out["gaze"].append(mark.get("gaze", ""))
    finally:
        det.close()
    n = len(out["y"])
    patches = np.stack(out["p"]) if n else np.zeros((0, size, size), np.uint8)
    return EyeSet(patches, np.array(out["y"], np.int64), np.array([subject] * n), np.array([name] * n),
                  np.array(out["frame"], np.int64), np.array(out["side"]), np.array(["video"] * n),
                  {"yaw": np.array(out["yaw"], np.float32), "pitch": np.array(out["pitch"], np.float32),
                   "ear": np.array(out["ear"], np.float32), "gaze": np.array(out["gaze"])})


def read_eyes(data: EyeSet) -> NDArray[np.bool_]:
    """The video patches of eyes the app reads: an eye whose weight in the two-eye value
    (``face.geometry.right_eye_weight``) is at least a quarter; CEW patches all."""
    from ..face.geometry import right_eye_weight

    if "yaw" not in data.extra:
        return np.ones(len(data), bool)
    w_right = np.array([right_eye_weight(float(y)) for y in data.extra["yaw"]])
    w = np.where(data.side == "R", w_right, 1.0 - w_right)
    return (data.split != "video") | (w >= 0.25)


# --------------------------------------------------------------------------- metrics

def accuracy_report(labels: NDArray[np.int64], p_closed: NDArray[np.floating], threshold: float = 0.5
                    ) -> dict[str, float]:
    """Accuracy overall and per class (open / closed), and the count of each class."""
    pred = (np.asarray(p_closed) >= threshold).astype(np.int64)
    labels = np.asarray(labels)
    out: dict[str, float] = {"n": int(len(labels)),
                             "accuracy": float((pred == labels).mean()) if len(labels) else math.nan}
    for name, k in (("open", OPEN), ("closed", CLOSED)):
        m = labels == k
        out[f"n_{name}"] = int(m.sum())
        out[f"acc_{name}"] = float((pred[m] == k).mean()) if m.any() else math.nan
    return out


# --------------------------------------------------------------------------- training (torch)

@dataclass
class TrainConfig:
    epochs: int = 30
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 5e-4
    video_weight: float = 2.0   # a marked video patch weighs this many CEW patches (the app's own crops)
    seed: int = 0
    threads: int = 2
    members: int = 1            # networks trained from seeds seed, seed + 1, ...; the model averages their logits
    squash: float = 0.5         # the vertical squash's most: 0.5 = the eye up to a third lower, 1.0 = up to half


def _augment(x: Any, gen: Any, squash_max: float) -> Any:
    """Batch-wise augmentation of (N, 1, S, S) float tensors in [0, 1]: geometry, a cabin camera's
    low resolution and blur, spectacle rims and glare, light."""
    x = _geometry(x, gen, squash_max)
    x = _degrade(x, gen)
    x = _spectacles(x, gen)
    return _light(x, gen)


def _geometry(x: Any, gen: Any, squash_max: float) -> Any:
    """Flip, rotation, scale, shift, and a vertical squash on 40 % of the patches (narrow eyes, lids
    lowered over an open eye): the patch sampled up to 1 + ``squash_max`` times as tall, so 0.5 makes
    the eye up to a third lower and 1.0 up to half (a narrow-eyed driver's open EAR, 0.15-0.17,
    is about half the usual 0.28)."""
    import torch
    import torch.nn.functional as F

    n, _, s, _ = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    ang = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(12)
    scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.12
    squash = 1 + torch.rand(n, generator=gen) * squash_max * (torch.rand(n, generator=gen) < 0.4)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.5 / s * 2)
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin * squash, cos * squash, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def _degrade(x: Any, gen: Any) -> Any:
    """Low resolution (an eye 10-20 px wide in a cabin camera: down and up again) and blur."""
    import torch
    import torch.nn.functional as F

    n, _, s, _ = x.shape
    low = torch.rand(n, generator=gen) < 0.5
    if low.any():
        k = int(torch.randint(7, 16, (1,), generator=gen))
        small = F.interpolate(x[low], size=(k, k), mode="area")
        x[low] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)
    blur = torch.rand(n, generator=gen) < 0.4
    if blur.any():
        kern = torch.tensor([1.0, 2.0, 1.0])
        kern = (kern[:, None] * kern[None, :]) / 16.0
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), kern[None, None])
    return x


def _spectacles(x: Any, gen: Any) -> Any:
    """A spectacle frame's rim above or below the eye (30 %: a dark line that is no lid) and a
    bright spot on a lens (25 %): neither may be a cue for open or closed."""
    import torch

    n, _, s, _ = x.shape
    yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32),
                            indexing="ij")
    rim = torch.rand(n, generator=gen) < 0.3
    if rim.any():
        k = int(rim.sum())
        top = torch.rand(k, generator=gen) < 0.5
        y0 = torch.where(top, 0.05 + 0.2 * torch.rand(k, generator=gen), 0.75 + 0.2 * torch.rand(k, generator=gen)) * s
        bend = (torch.rand(k, generator=gen) * 2 - 1) * 0.15 / s          # a gentle arc
        tilt = (torch.rand(k, generator=gen) * 2 - 1) * 0.15
        half = 0.5 + 1.0 * torch.rand(k, 1, 1, generator=gen)             # half-thickness, px
        yc = y0[:, None, None] + tilt[:, None, None] * (xx - s / 2) + bend[:, None, None] * (xx - s / 2) ** 2
        line = torch.exp(-((yy - yc) ** 2) / (2 * half ** 2))
        tone = torch.where(torch.rand(k, 1, 1, generator=gen) < 0.8, torch.zeros(k, 1, 1),
                           torch.ones(k, 1, 1))                            # dark rims mostly, some bright
        strength = 0.5 + 0.5 * torch.rand(k, 1, 1, generator=gen)
        a = (strength * line)[:, None]
        x[rim] = x[rim] * (1 - a) + tone[:, None] * a
    glare = torch.rand(n, generator=gen) < 0.25
    if glare.any():
        k = int(glare.sum())
        c = (0.15 + 0.7 * torch.rand(k, 2, generator=gen)) * s
        r = 1.5 + 3.0 * torch.rand(k, 1, 1, generator=gen)
        amp = 0.4 + 0.6 * torch.rand(k, 1, 1, generator=gen)
        blob = amp * torch.exp(-((yy - c[:, 0, None, None]) ** 2 + (xx - c[:, 1, None, None]) ** 2) / (2 * r * r))
        x[glare] = (x[glare] + blob[:, None]).clamp(0, 1)
    return x


def _light(x: Any, gen: Any) -> Any:
    """Gamma, contrast, brightness and sensor noise."""
    import torch

    n = x.shape[0]
    gamma = torch.exp((torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.5)
    x = x.clamp(1e-4, 1) ** gamma
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.4
    bright = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * 0.15
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + bright
    x = x + torch.randn(x.shape, generator=gen) * (torch.rand(n, 1, 1, 1, generator=gen) * 0.04)
    return x.clamp(0, 1)


def sample_weights(data: EyeSet, video_weight: float) -> NDArray[np.float64]:
    """Per-patch training weights: a CEW patch 1; a marked video patch ``video_weight`` scaled by
    sqrt(median group size / its group's size), a group being one person's open or closed eyes, so
    one long clip of a sleeping driver does not teach that every blurred patch is a closed eye."""
    w = np.ones(len(data), np.float64)
    video = data.split == "video"
    if not video.any():
        return w
    keys = np.char.add(data.subject.astype(str), data.labels.astype(str))
    groups, inverse, counts = np.unique(keys[video], return_inverse=True, return_counts=True)
    w[video] = video_weight * np.sqrt(np.median(counts) / counts[inverse])
    return w


def predict(net: Any, patches: NDArray[np.uint8], batch: int = 1024) -> NDArray[np.float32]:
    """P(closed) of each patch with a torch EyeStateNet (eval mode)."""
    import torch

    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(patches), batch):
            x = torch.from_numpy(patches[i:i + batch].astype(np.float32) / 255.0)[:, None]
            out.append(net.probability(x).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def train(data: EyeSet, cfg: TrainConfig, log: Callable[[str], None] = print,
          checks: Iterable[tuple[str, EyeSet]] = ()) -> tuple[Any, list[dict[str, Any]]]:
    """Train an EyeStateNet on ``data`` (class-balanced, marked video patches weighted
    ``video_weight``); ``checks``: named sets scored after every 10th epoch and the last (logged
    only, never used to choose anything). Returns the network and the per-epoch log."""
    import torch

    from ..model.eye_net import EyeStateNet

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.from_numpy(data.patches.astype(np.float32) / 255.0)[:, None]
    y_all = torch.from_numpy(data.labels.astype(np.float32))
    w = sample_weights(data, cfg.video_weight)
    for k in (OPEN, CLOSED):  # balance the classes by weight
        m = data.labels == k
        if m.any():
            w[m] *= 0.5 * w.sum() / w[m].sum()
    w_all = torch.from_numpy((w / w.mean()).astype(np.float32))
    net = EyeStateNet()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(data) / cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, steps), pct_start=0.15)
    history: list[dict[str, Any]] = []
    checks = list(checks)
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(data), generator=gen)
        total = 0.0
        for i in range(0, len(order), cfg.batch):
            idx = order[i:i + cfg.batch]
            x = _augment(x_all[idx].clone(), gen, cfg.squash)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), y_all[idx], weight=w_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        row: dict[str, Any] = {"epoch": epoch + 1, "loss": total / len(data), "s": time.perf_counter() - t0}
        if checks and ((epoch + 1) % 10 == 0 or epoch + 1 == cfg.epochs):
            for name, s in checks:
                row[f"{name}_acc"] = accuracy_report(s.labels, predict(net, s.patches))["accuracy"]
        history.append(row)
        log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    net.eval()
    return net, history


def train_ensemble(data: EyeSet, cfg: TrainConfig, log: Callable[[str], None] = print,
                   checks: Iterable[tuple[str, EyeSet]] = ()) -> tuple[Any, list[dict[str, Any]]]:
    """``cfg.members`` networks, each :func:`train` with seed ``cfg.seed + k`` (the first one is
    what ``train`` alone makes), as one :class:`~driver_monitor.model.eye_net.EyeEnsemble`; the
    per-epoch logs of all, each row with its ``member``."""
    from dataclasses import replace

    from ..model.eye_net import EyeEnsemble

    nets, history = [], []
    checks = list(checks)
    for k in range(max(1, cfg.members)):
        net, rows = train(data, replace(cfg, seed=cfg.seed + k), log=log, checks=checks)
        nets.append(net)
        history += [{"member": k, **row} for row in rows]
    return EyeEnsemble(nets).eval(), history
