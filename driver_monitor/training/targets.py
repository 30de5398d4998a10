"""A training run's targets: emotion labels in the network's class space, AU pseudo-labels and
class weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..preprocess import AUS, EMOTIONS
from .datasets import FaceDataset


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
    from .face_au import aus_from_mediapipe

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
