"""The picture that explains one prediction of the emotion model (``tools/explain.py``): the crop
with its top-3 emotions, the Grad-CAM heat map of the explained emotion over the last feature map,
and the occlusion map (the probability's drop when a patch is greyed out)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..preprocess import EMOTIONS, InputSpec, to_input
from .datasets import read_grey


def _figure(crop: np.ndarray, probs: np.ndarray, target: int, cam: np.ndarray, occ: np.ndarray, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(9, 3.4))
    axes[0].imshow(crop, cmap="gray", vmin=0, vmax=255)
    top = np.argsort(probs)[::-1][:3]
    axes[0].set_title("\n".join(f"{EMOTIONS[i]} {probs[i]:.2f}" for i in top), fontsize=8)
    axes[1].imshow(crop, cmap="gray", vmin=0, vmax=255)
    axes[1].imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[1].set_title(f"Grad-CAM: {EMOTIONS[target]}", fontsize=8)
    lim = max(float(np.abs(occ).max()), 1e-6)
    axes[2].imshow(crop, cmap="gray", vmin=0, vmax=255)
    im = axes[2].imshow(occ, cmap="bwr", alpha=0.55, vmin=-lim, vmax=lim)
    axes[2].set_title(f"occlusion: drop of p({EMOTIONS[target]})", fontsize=8)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(dest, dpi=110)
    plt.close(fig)


def explain_image(model, spec: InputSpec, path: Path, out: Path, target: str | None = None, *, patch: int = 8,
                  stride: int = 4) -> tuple[str, float, Path]:
    """Write ``<out>/<name>_explain.png`` for the face crop at ``path`` (any size, colour or grey;
    resized to the model's input); ``target``: the emotion to explain (default the predicted one).
    Returns (the explained emotion, its probability, the picture's path)."""
    import torch

    from ..model.explain import grad_cam, occlusion_map

    if not path.is_file():
        raise DatasetError(f"image {path} not found")
    crop = read_grey(path, spec.size)
    x = torch.from_numpy(to_input(crop, spec))
    with torch.no_grad():
        probs = model(x)[0][0].numpy()
    index = EMOTIONS.index(target) if target else int(probs.argmax())
    cam = grad_cam(model, x, index)
    occ = occlusion_map(model, x, index, patch=patch, stride=stride)
    dest = out / f"{path.stem}_explain.png"
    _figure(crop, probs, index, cam, occ, dest)
    return EMOTIONS[index], float(probs[index]), dest
