#!/usr/bin/env python
"""Compute action-unit pseudo-labels for a face dataset with the MediaPipe Face Landmarker.

    python tools/label_aus.py --model ../shared/data/models/face_landmarker.task \
        --dataset ferplus --root /work/cache/ferplus --split train --out /work/cache/aus/ferplus_train.npz

The model file is the MediaPipe Face Landmarker bundle ``face_landmarker.task`` (Apache-2.0):
download it from https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task

The .npz cache holds, per image of the loaded split (same order as the loader): ``files``,
``found`` (face detected), the raw ``blendshapes`` (N, 52) and ``landmarks`` (N, 478, 3) float16,
and ``aus`` (N, 13) from driver_monitor.training.face_au.aus_from_mediapipe, so the mapping can be changed
and re-applied without re-running MediaPipe (``--remap``).
"""
from __future__ import annotations

import argparse
import sys

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.training.au_labels import label_dataset, remap
from driver_monitor.training.landmarker import LANDMARKER_URL


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help=f"face_landmarker.task (download: {LANDMARKER_URL})")
    ap.add_argument("--dataset", default="ferplus", help="ferplus | fer2013 | folders | ckplus")
    ap.add_argument("--root", help="dataset root folder")
    ap.add_argument("--split", default="train")
    ap.add_argument("--out", required=True, help="output .npz")
    ap.add_argument("--upscale", type=int, default=192, help="crop side fed to MediaPipe (px)")
    ap.add_argument("--pad", type=float, default=0.25, help="border added around the crop, fraction of its side")
    ap.add_argument("--limit", type=int, default=None, help="label only the first N images")
    ap.add_argument("--remap", action="store_true", help="re-apply the AU mapping to an existing .npz")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if args.remap:
            print(f"re-mapped {remap(args.out)} rows in {args.out}")
            return 0
        if not args.model or not args.root:
            ap.error("--model and --root are required (unless --remap)")
        print(label_dataset(args.model, args.dataset, args.root, args.split, args.out, upscale=args.upscale,
                            pad=args.pad, limit=args.limit))
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
