"""The AU pseudo-label cache of a face dataset (``tools/label_aus.py``).

Per image of the loaded split (same order as the loader): ``files``, ``found`` (face detected), the
raw ``blendshapes`` (N, 52) and ``landmarks`` (N, 478, 3) float16 of the MediaPipe Face
Landmarker, and ``aus`` (N, 13) from :func:`~driver_monitor.training.face_au.aus_from_mediapipe`,
so the mapping can be changed and re-applied without re-running MediaPipe (:func:`remap`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import DriverMonitorError
from ..preprocess import AUS
from .datasets import load_dataset
from .landmarker import BLENDSHAPES


def label_dataset(model: str, dataset: str, root: str, split: str, out: str | Path, *, upscale: int = 192,
                  pad: float = 0.25, limit: int | None = None) -> str:
    """Read every image of the split (the first ``limit``) with the Face Landmarker ``model`` and
    write the cache to ``out``; returns a line saying what was found and how fast."""
    from tqdm import tqdm

    from .face_au import BlendshapeExtractor, aus_from_mediapipe

    ds = load_dataset(dataset, root, split)
    n = len(ds) if limit is None else min(limit, len(ds))
    found = np.zeros(n, bool)
    bs = np.zeros((n, 52), np.float32)
    lms = np.zeros((n, 478, 3), np.float16)
    t0 = time.perf_counter()
    with BlendshapeExtractor(model, upscale=upscale, pad=pad) as ex:
        for i in tqdm(range(n), desc=f"mediapipe {ds.name}", mininterval=5):
            r = ex.read(ds.images[i])
            found[i] = r.found
            bs[i] = r.blendshapes
            lms[i] = r.landmarks.astype(np.float16)
    wall = time.perf_counter() - t0
    aus = aus_from_mediapipe(bs, lms.astype(np.float32), found)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, files=np.asarray(ds.files[:n]), found=found, blendshapes=bs, landmarks=lms, aus=aus,
        au_names=np.asarray(AUS), blendshape_names=np.asarray(BLENDSHAPES),
        upscale=upscale, pad=pad, dataset=ds.name,
    )
    return (f"{ds.name}: {n} images, face found in {found.sum()} ({found.mean():.1%}), "
            f"{wall / max(n, 1) * 1000:.1f} ms/image -> {out}")


def remap(path: str | Path) -> int:
    """Re-apply the current AU mapping to an existing cache; returns its number of rows."""
    from .face_au import aus_from_mediapipe

    path = Path(path)
    if not path.is_file():
        raise DriverMonitorError(f"{path} does not exist; run label_aus.py without --remap first")
    z = dict(np.load(path, allow_pickle=False))
    z["aus"] = aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), z["found"])
    z["au_names"] = np.asarray(AUS)
    np.savez_compressed(path, **z)
    return len(z["found"])
