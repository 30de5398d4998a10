#!/usr/bin/env python
"""Train, cross-validate and export the eye-state model (engines/eye_state.onnx).

    # 1. eye patches of every marked video frame, cut by the app's own mesh and patch code
    python tools/train_eye_state.py extract --out /work/cache/eye_video.npz
    # 2. leave-one-subject-out over the marked drivers: each fold trains on CEW + the other drivers
    python tools/train_eye_state.py cv --cew /work/cache/eyes --video /work/cache/eye_video.npz --out runs/eye_cv
    # 3. the shipped model: CEW train + every marked driver; CEW test is never trained on
    python tools/train_eye_state.py train --cew /work/cache/eyes --video /work/cache/eye_video.npz \
        --out runs/eye --export engines/eye_state.onnx
    # (cv and train --export also write each model's int8 copy beside it; for a model made otherwise:)
    python tools/train_eye_state.py quantize engines/eye_state.onnx --cew /work/cache/eyes

The marks are ``scenarios/frame_marks/*/<clip>.csv`` (``frame,eyes,...``, marked by eye) and
``scenarios/frame_marks/subjects.csv`` (``clip,subject,video``: which person each clip shows and
where the video is, relative to ../shared/data). Results go to ``<out>/metrics.json`` and
``<out>/report.md``.
"""
from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from driver_monitor.config import PROJECT_ROOT
from driver_monitor.errors import DriverMonitorError
from driver_monitor.training import eye_state_runs as runs
from driver_monitor.training.eye_state import TrainConfig

MARKS = PROJECT_ROOT / "scenarios" / "frame_marks"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
flushed = partial(print, flush=True)


def cmd_extract(args: argparse.Namespace) -> None:
    print(runs.extract_patches(args.marks, args.subjects, args.data, args.out, size=args.size,
                               warn=partial(print, file=sys.stderr)))


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, seed=args.seed, threads=args.threads, members=args.members,
                       squash=args.squash)


def cmd_cv(args: argparse.Namespace) -> None:
    metrics = runs.cross_validate(args.cew, args.video, args.out, _config(args), folds=args.folds, log=flushed)
    print(json.dumps(metrics["held_out_all"]))


def cmd_train(args: argparse.Namespace) -> None:
    runs.train_shipped(args.cew, args.video, args.out, _config(args), export=args.export, version=args.version,
                       command=" ".join(sys.argv))


def cmd_quantize(args: argparse.Namespace) -> None:
    runs.quantize(args.models, args.cew, log=flushed)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="eye patches of the marked video frames -> .npz")
    ex.add_argument("--marks", default=str(MARKS))
    ex.add_argument("--subjects", default=str(MARKS / "subjects.csv"))
    ex.add_argument("--data", default=str(SHARED_DATA), help="../shared/data")
    ex.add_argument("--out", required=True)
    ex.add_argument("--size", type=int, default=32, help="patch side in pixels")
    qu = sub.add_parser("quantize", help="the int8 copy beside each model (<stem>.int8cpu.onnx)")
    qu.add_argument("models", nargs="+", help="eye-state ONNX models")
    qu.add_argument("--cew", required=True, help="unpacked cew_eye_patches.tar.gz (calibration: its training split)")
    for name, helptext in (("cv", "leave-one-subject-out cross-validation"), ("train", "train the shipped model")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--cew", required=True, help="unpacked cew_eye_patches.tar.gz")
        p.add_argument("--video", required=True, help="the .npz made by extract")
        p.add_argument("--out", required=True)
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--members", type=int, default=TrainConfig().members,
                       help="networks from seeds seed, seed + 1, ... whose logits the model averages")
        p.add_argument("--squash", type=float, default=TrainConfig().squash,
                       help="augmentation: patches squashed vertically by up to 1 + this (0.5: a third)")
        p.add_argument("--threads", type=int, default=2)
        if name == "cv":
            p.add_argument("--folds", nargs="*", default=[], help="only these held-out subjects")
        if name == "train":
            p.add_argument("--export", help="write the ONNX model here")
            p.add_argument("--version", default="1.0.0")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"extract": cmd_extract, "cv": cmd_cv, "train": cmd_train, "quantize": cmd_quantize}[args.cmd](args)
    except DriverMonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
