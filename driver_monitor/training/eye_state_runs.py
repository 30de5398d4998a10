"""The eye-state model's runs (``tools/train_eye_state.py``): the eye patches of the marked video
frames, leave-one-subject-out cross-validation, and the shipped model.

The marks are ``scenarios/frame_marks/*/<clip>.csv`` (``frame,eyes,...``, marked by eye) and
``scenarios/frame_marks/subjects.csv`` (``clip,subject,video``: which person each clip shows and
where the video is, relative to ../shared/data). Results go to ``<out>/metrics.json``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable

import numpy as np

from . import eye_state as es

Log = Callable[[str], None]


def _subjects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def extract_patches(marks: str | Path, subjects: str | Path, data: str | Path, out: str | Path, size: int = 32,
                    log: Log = print, warn: Log = print) -> str:
    """Eye patches of every marked frame, cut by the app's own mesh and patch code -> ``out``
    (.npz); returns a line saying how many. ``warn``: clips without marks."""
    from ..config import load_config
    from ..face.mesh import FaceMeshDetector

    cfg = load_config(None)
    sets = []
    for row in _subjects(Path(subjects)):
        marks_csv = next(iter(sorted(Path(marks).glob(f"*/{row['clip']}.csv"))), None)
        if marks_csv is None:
            warn(f"skip {row['clip']}: no marks")
            continue
        video = Path(data) / row["video"]
        s = es.video_eye_patches(video, es.read_frame_marks(marks_csv), row["subject"],
                                 lambda: FaceMeshDetector(cfg.face), size=size)
        log(f"{row['clip']}: {len(s)} patches ({int((s.labels == 1).sum())} closed), subject {row['subject']}")
        sets.append(s)
    result = es.EyeSet.concat(sets)
    result.save(out)
    return f"{len(result)} patches from {len(sets)} clips -> {out}"


def load_sets(cew: str | Path, video: str | Path) -> tuple[es.EyeSet, es.EyeSet, es.EyeSet]:
    """(CEW train, CEW test, marked video patches of the eyes the app reads)."""
    patches = es.EyeSet.load(video)
    faces = es.load_cew(cew, size=int(patches.patches.shape[-1]))
    return faces.take(faces.split == "train"), faces.take(faces.split == "test"), patches.take(es.read_eyes(patches))


#: the int8 copies are calibrated on this many of CEW's training patches (seed 0): no marked
#: driver's eyes, so a fold's copy has seen nothing of its held-out person
CALIBRATION_PATCHES = 512


def calibration_patches(cew_train: es.EyeSet, n: int = CALIBRATION_PATCHES, seed: int = 0) -> np.ndarray:
    """``n`` patches of CEW's training split, drawn with ``seed``: what the int8 copies calibrate on."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cew_train), size=min(n, len(cew_train)), replace=False)
    return cew_train.patches[np.sort(pick)]


def quantize(models: list[str | Path], cew: str | Path, log: Log = print) -> list[Path]:
    """The int8 copy (``engine.eye_state.make_int8``) beside each model, calibrated on CEW's
    training patches at the model's patch size."""
    from ..engine.eye_state import EyeStateModel, make_int8

    out = []
    calibration: dict[int, np.ndarray] = {}  # patch size -> patches: CEW read once per size
    for model in models:
        size = EyeStateModel(model).size
        if size not in calibration:
            faces = es.load_cew(cew, size=size)
            calibration[size] = calibration_patches(faces.take(faces.split == "train"))
        path = make_int8(model, calibration[size])
        log(f"int8 copy: {path}")
        out.append(path)
    return out


def _by(keys: np.ndarray, data: es.EyeSet, p: np.ndarray) -> dict[str, dict[str, float]]:
    return {str(k): es.accuracy_report(data.labels[keys == k], p[keys == k]) for k in np.unique(keys)}


def _patch_meta(video: es.EyeSet, cfg: es.TrainConfig) -> dict[str, str]:
    """``dm.seed``: every member's seed (``train_ensemble``: seed, seed + 1, ...)."""
    seeds = ",".join(str(cfg.seed + k) for k in range(max(1, cfg.members)))
    return {"dm.seed": seeds, "dm.patch_size": str(video.patches.shape[-1]), "dm.patch_scale": "1.5"}


def cross_validate(cew: str | Path, video_npz: str | Path, out: str | Path, cfg: es.TrainConfig,
                   folds: list[str] | None = None, log: Log = print) -> dict:
    """Leave one marked subject out: each fold trains on CEW train + the other subjects and exports
    ``eye_state_without_<subject>.onnx``; writes metrics.json and held_out_p.npz, returns the metrics."""
    import torch

    from ..engine.eye_state import make_int8
    from ..model.eye_net import export_onnx

    cew_train, cew_test, video = load_sets(cew, video_npz)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    held_p = np.full(len(video), np.nan, np.float32)
    results = {}
    for subject in sorted(set(video.subject.tolist())):
        if folds and subject not in folds:
            continue
        test = video.subject == subject
        train = es.EyeSet.concat([cew_train, video.take(~test)])
        log(f"fold {subject}: train {len(train)}, held out {int(test.sum())}")
        net, _ = es.train_ensemble(train, cfg, log=lambda s: None)
        fold_model = out / f"eye_state_without_{subject}.onnx"
        export_onnx(net, str(fold_model), {"dm.model_version": f"cv-without-{subject}", **_patch_meta(video, cfg)})
        make_int8(fold_model, calibration_patches(cew_train))
        held_p[test] = es.predict(net, video.patches[test])
        results[subject] = {"held_out": es.accuracy_report(video.labels[test], held_p[test]),
                            "cew_test": es.accuracy_report(cew_test.labels, es.predict(net, cew_test.patches))}
        log(f"  {results[subject]['held_out']}")
        del net
        torch.set_num_threads(cfg.threads)
    metrics = {"protocol": "leave one marked subject out; each fold trains on CEW train + the other subjects",
               "config": vars(cfg), "folds": results,
               "held_out_all": es.accuracy_report(video.labels, held_p),
               "held_out_by_clip": _by(video.source, video, held_p),
               "held_out_by_gaze_mark": _by(video.extra.get("gaze", video.source), video, held_p)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    np.savez_compressed(out / "held_out_p.npz", p_closed=held_p, source=video.source.astype(str), frame=video.frame,
                        side=video.side.astype(str), labels=video.labels)
    return metrics


def train_shipped(cew: str | Path, video_npz: str | Path, out: str | Path, cfg: es.TrainConfig, *,
                  export: str | None = None, version: str = "1.0.0", command: str = "",
                  log: Log = print) -> dict:
    """The shipped model: CEW train + every marked driver (CEW test is never trained on); writes
    eye_state.pt and metrics.json, and the ONNX model to ``export`` when given; returns the metrics."""
    import torch

    from ..model.eye_net import export_onnx

    cew_train, cew_test, video = load_sets(cew, video_npz)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = es.EyeSet.concat([cew_train, video])
    net, history = es.train_ensemble(data, cfg, checks=[("cew_test", cew_test)])
    torch.save({"state_dict": net.state_dict(), "config": vars(cfg)}, out / "eye_state.pt")
    p = es.predict(net, cew_test.patches)
    metrics = {"cew_test": es.accuracy_report(cew_test.labels, p), "config": vars(cfg), "train_patches": len(data),
               "video_patches": len(video), "subjects": sorted(set(video.subject.tolist())),
               "history": history}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log(json.dumps(metrics["cew_test"]))
    if export:
        meta = {"dm.model_version": version, "dm.training_data": (
            f"CEW train split ({len(cew_train)} patches) + {len(video)} patches of marked video frames "
            f"({len(set(video.subject.tolist()))} people)"),
            "dm.metrics": json.dumps({"cew_test": metrics["cew_test"]}), "dm.command": command,
            **_patch_meta(video, cfg)}
        export_onnx(net, export, meta)
        log(f"exported {export}")
        from ..engine.eye_state import make_int8

        log(f"int8 copy: {make_int8(export, calibration_patches(cew_train))}")
    return metrics
