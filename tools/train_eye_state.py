#!/usr/bin/env python
"""Train, cross-validate and export the eye-state model (engines/eye_state.onnx).

    # 1. eye patches of every marked video frame, cut by the app's own mesh and patch code
    python tools/train_eye_state.py extract --out /work/cache/eye_video.npz
    # 2. leave-one-subject-out over the marked drivers: each fold trains on CEW + the other drivers
    python tools/train_eye_state.py cv --cew /work/cache/eyes --video /work/cache/eye_video.npz --out runs/eye_cv
    # 3. the shipped model: CEW train + every marked driver; CEW test is never trained on
    python tools/train_eye_state.py train --cew /work/cache/eyes --video /work/cache/eye_video.npz \
        --out runs/eye --export engines/eye_state.onnx

The marks are ``scenarios/frame_marks/*/<clip>.csv`` (``frame,eyes,...``, marked by eye) and
``scenarios/frame_marks/subjects.csv`` (``clip,subject,video``: which person each clip shows and
where the video is, relative to ../shared/data). Results go to ``<out>/metrics.json`` and
``<out>/report.md``.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from driver_monitor.config import PROJECT_ROOT
from driver_monitor.errors import DriverMonitorError
from driver_monitor.training import eye_state as es

MARKS = PROJECT_ROOT / "scenarios" / "frame_marks"
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _subjects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def cmd_extract(args: argparse.Namespace) -> None:
    from driver_monitor.config import load_config
    from driver_monitor.face.mesh import FaceMeshDetector

    cfg = load_config(None)
    sets = []
    for row in _subjects(Path(args.subjects)):
        marks_csv = next(iter(sorted(Path(args.marks).glob(f"*/{row['clip']}.csv"))), None)
        if marks_csv is None:
            print(f"skip {row['clip']}: no marks", file=sys.stderr)
            continue
        video = Path(args.data) / row["video"]
        s = es.video_eye_patches(video, es.read_frame_marks(marks_csv), row["subject"],
                                 lambda: FaceMeshDetector(cfg.face), size=args.size)
        print(f"{row['clip']}: {len(s)} patches ({int((s.labels == 1).sum())} closed), subject {row['subject']}")
        sets.append(s)
    data = es.EyeSet.concat(sets)
    data.save(args.out)
    print(f"{len(data)} patches from {len(sets)} clips -> {args.out}")


def _load(args: argparse.Namespace) -> tuple[es.EyeSet, es.EyeSet, es.EyeSet]:
    """(CEW train, CEW test, marked video patches of the eyes the app reads)."""
    video = es.EyeSet.load(args.video)
    cew = es.load_cew(args.cew, size=int(video.patches.shape[-1]))
    return cew.take(cew.split == "train"), cew.take(cew.split == "test"), video.take(es.read_eyes(video))


def _by(name: str, keys: np.ndarray, data: es.EyeSet, p: np.ndarray) -> dict[str, dict[str, float]]:
    return {str(k): es.accuracy_report(data.labels[keys == k], p[keys == k]) for k in np.unique(keys)}


def cmd_cv(args: argparse.Namespace) -> None:
    import torch

    from driver_monitor.model.eye_net import export_onnx

    cew_train, cew_test, video = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = es.TrainConfig(epochs=args.epochs, seed=args.seed, threads=args.threads)
    held_p = np.full(len(video), np.nan, np.float32)
    folds = {}
    for subject in sorted(set(video.subject.tolist())):
        if args.folds and subject not in args.folds:
            continue
        test = video.subject == subject
        train = es.EyeSet.concat([cew_train, video.take(~test)])
        print(f"fold {subject}: train {len(train)}, held out {int(test.sum())}", flush=True)
        net, _ = es.train(train, cfg, log=lambda s: None)
        export_onnx(net, str(out / f"eye_state_without_{subject}.onnx"),
                    {"dm.model_version": f"cv-without-{subject}", "dm.seed": str(args.seed),
                     "dm.patch_size": str(video.patches.shape[-1]), "dm.patch_scale": "1.5"})
        held_p[test] = es.predict(net, video.patches[test])
        folds[subject] = {"held_out": es.accuracy_report(video.labels[test], held_p[test]),
                          "cew_test": es.accuracy_report(cew_test.labels, es.predict(net, cew_test.patches))}
        print(f"  {folds[subject]['held_out']}", flush=True)
        del net
        torch.set_num_threads(args.threads)
    metrics = {"protocol": "leave one marked subject out; each fold trains on CEW train + the other subjects",
               "config": vars(cfg), "folds": folds,
               "held_out_all": es.accuracy_report(video.labels, held_p),
               "held_out_by_clip": _by("clip", video.source, video, held_p),
               "held_out_by_gaze_mark": _by("gaze", video.extra.get("gaze", video.source), video, held_p)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    np.savez_compressed(out / "held_out_p.npz", p_closed=held_p, source=video.source.astype(str), frame=video.frame,
                        side=video.side.astype(str), labels=video.labels)
    print(json.dumps(metrics["held_out_all"]))


def cmd_train(args: argparse.Namespace) -> None:
    import torch

    from driver_monitor.model.eye_net import export_onnx

    cew_train, cew_test, video = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = es.TrainConfig(epochs=args.epochs, seed=args.seed, threads=args.threads)
    data = es.EyeSet.concat([cew_train, video])
    net, history = es.train(data, cfg, checks=[("cew_test", cew_test)])
    torch.save({"state_dict": net.state_dict(), "config": vars(cfg)}, out / "eye_state.pt")
    p = es.predict(net, cew_test.patches)
    metrics = {"cew_test": es.accuracy_report(cew_test.labels, p), "config": vars(cfg), "train_patches": len(data),
               "video_patches": len(video), "subjects": sorted(set(video.subject.tolist())),
               "history": history}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics["cew_test"]))
    if args.export:
        meta = {"dm.model_version": args.version, "dm.training_data": (
            f"CEW train split ({len(cew_train)} patches) + {len(video)} patches of marked video frames "
            f"({len(set(video.subject.tolist()))} people)"),
            "dm.metrics": json.dumps({"cew_test": metrics["cew_test"]}),
            "dm.command": " ".join(sys.argv), "dm.seed": str(args.seed),
            "dm.patch_size": str(video.patches.shape[-1]), "dm.patch_scale": "1.5"}
        export_onnx(net, args.export, meta)
        print(f"exported {args.export}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("extract", help="eye patches of the marked video frames -> .npz")
    ex.add_argument("--marks", default=str(MARKS))
    ex.add_argument("--subjects", default=str(MARKS / "subjects.csv"))
    ex.add_argument("--data", default=str(SHARED_DATA), help="../shared/data")
    ex.add_argument("--out", required=True)
    ex.add_argument("--size", type=int, default=32, help="patch side in pixels")
    for name, helptext in (("cv", "leave-one-subject-out cross-validation"), ("train", "train the shipped model")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--cew", required=True, help="unpacked cew_eye_patches.tar.gz")
        p.add_argument("--video", required=True, help="the .npz made by extract")
        p.add_argument("--out", required=True)
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=2)
        if name == "cv":
            p.add_argument("--folds", nargs="*", default=[], help="only these held-out subjects")
        if name == "train":
            p.add_argument("--export", help="write the ONNX model here")
            p.add_argument("--version", default="1.0.0")
    args = ap.parse_args(argv)
    try:
        {"extract": cmd_extract, "cv": cmd_cv, "train": cmd_train}[args.cmd](args)
    except DriverMonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
