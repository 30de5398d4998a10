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
import time
from pathlib import Path

import numpy as np


from driver_monitor.training.datasets import load_dataset
from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.training.landmarker import BLENDSHAPES, LANDMARKER_URL
from driver_monitor.preprocess import AUS


def label(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from driver_monitor.training.face_au import BlendshapeExtractor, aus_from_mediapipe

    ds = load_dataset(args.dataset, args.root, args.split)
    n = len(ds) if args.limit is None else min(args.limit, len(ds))
    found = np.zeros(n, bool)
    bs = np.zeros((n, 52), np.float32)
    lms = np.zeros((n, 478, 3), np.float16)
    t0 = time.perf_counter()
    with BlendshapeExtractor(args.model, upscale=args.upscale, pad=args.pad) as ex:
        for i in tqdm(range(n), desc=f"mediapipe {ds.name}", mininterval=5):
            r = ex.read(ds.images[i])
            found[i] = r.found
            bs[i] = r.blendshapes
            lms[i] = r.landmarks.astype(np.float16)
    wall = time.perf_counter() - t0
    aus = aus_from_mediapipe(bs, lms.astype(np.float32), found)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out, files=np.asarray(ds.files[:n]), found=found, blendshapes=bs, landmarks=lms, aus=aus,
        au_names=np.asarray(AUS), blendshape_names=np.asarray(BLENDSHAPES),
        upscale=args.upscale, pad=args.pad, dataset=ds.name,
    )
    print(f"{ds.name}: {n} images, face found in {found.sum()} ({found.mean():.1%}), "
          f"{wall / max(n, 1) * 1000:.1f} ms/image -> {out}")
    return 0


def remap(args: argparse.Namespace) -> int:
    from driver_monitor.training.face_au import aus_from_mediapipe

    path = Path(args.out)
    if not path.is_file():
        raise DriverMonitorError(f"{path} does not exist; run label_aus.py without --remap first")
    z = dict(np.load(path, allow_pickle=False))
    z["aus"] = aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), z["found"])
    z["au_names"] = np.asarray(AUS)
    np.savez_compressed(path, **z)
    print(f"re-mapped {len(z['found'])} rows in {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)
    try:
        if args.remap:
            return remap(args)
        if not args.model or not args.root:
            ap.error("--model and --root are required (unless --remap)")
        return label(args)
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
