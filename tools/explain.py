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

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.preprocess import EMOTIONS, InputSpec


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="face crop images")
    ap.add_argument("--checkpoint", default="engines/emotion_au.pt")
    ap.add_argument("--target", default=None,
                    help=f"emotion to explain (default: the predicted one); one of {EMOTIONS}")
    ap.add_argument("--patch", type=int, default=8, help="occlusion patch side (px of the model input)")
    ap.add_argument("--stride", type=int, default=4)
    ap.add_argument("--out", default="results/explain")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from driver_monitor.model.checkpoint import load_checkpoint
        from driver_monitor.training.explain_figure import explain_image

        if args.target is not None and args.target not in EMOTIONS:
            raise DriverMonitorError(f"--target {args.target!r} is not one of {list(EMOTIONS)}")
        model, meta = load_checkpoint(args.checkpoint)
        spec = InputSpec(int(meta["input_size"]), float(meta["input_mean"]), float(meta["input_std"]))
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.images:
            path = Path(name)
            emotion, p, dest = explain_image(model, spec, path, out, args.target, patch=args.patch,
                                             stride=args.stride)
            print(f"{path}: {emotion} ({p:.2f}) -> {dest}")
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
