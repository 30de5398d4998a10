#!/usr/bin/env python
"""Explain the emotion model's predictions: Grad-CAM and occlusion-sensitivity maps as PNGs.

    python tools/explain.py --checkpoint engines/emotion_au.pt --out results/explain face1.png face2.jpg

Each input (a face crop, any size, colour or grey; resized to the model's input) gives
``<out>/<name>_explain.png``: the crop, the Grad-CAM heat map of the predicted (or ``--target``)
emotion over the last feature map, the occlusion map (probability drop when an 8 x 8 patch is
greyed out), and the top-3 emotions with their probabilities.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


from driver_monitor.training.datasets import read_grey
from driver_monitor.errors import DatasetError, DriverMonitorError, report
from driver_monitor.preprocess import EMOTIONS, InputSpec, to_input


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="face crop images")
    ap.add_argument("--checkpoint", default="engines/emotion_au.pt")
    ap.add_argument("--target", default=None,
                    help=f"emotion to explain (default: the predicted one); one of {EMOTIONS}")
    ap.add_argument("--patch", type=int, default=8, help="occlusion patch side (px of the model input)")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--out", default="results/explain")
    args = ap.parse_args(argv)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import torch

        from driver_monitor.model.checkpoint import load_checkpoint
        from driver_monitor.model.explain import grad_cam, occlusion_map

        if args.target is not None and args.target not in EMOTIONS:
            raise DriverMonitorError(f"--target {args.target!r} is not one of {list(EMOTIONS)}")
        model, meta = load_checkpoint(args.checkpoint)
        spec = InputSpec(int(meta["input_size"]), float(meta["input_mean"]), float(meta["input_std"]))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.images:
            path = Path(name)
            if not path.is_file():
                raise DatasetError(f"image {path} not found")
            crop = read_grey(path, spec.size)
            x = torch.from_numpy(to_input(crop, spec))
            with torch.no_grad():
                probs = model(x)[0][0].numpy()
            target = EMOTIONS.index(args.target) if args.target else int(probs.argmax())
            cam = grad_cam(model, x, target)
            occ = occlusion_map(model, x, target, patch=args.patch, stride=args.stride)
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
            dest = out / f"{path.stem}_explain.png"
            fig.savefig(dest, dpi=110)
            plt.close(fig)
            print(f"{path}: {EMOTIONS[target]} ({probs[target]:.2f}) -> {dest}")
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
