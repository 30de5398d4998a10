"""The occlusion benchmark of the emotion + AU model (``tools/occlusion_eval.py``): the same test
faces clean and under each condition of :mod:`driver_monitor.training.occlusion`, scored as
:mod:`driver_monitor.training.model_eval` scores them.

* FERPlus test under both protocols: the crops are occluded once, as the plurality set (a crop's
  index is its position in that set, label.csv order); the authors' majority set is a subset of
  it with the same labels, so both protocols see the same occluded crop of a face.
* CK+ 327 peak frames: accuracy over its 7 classes; AU presence against the FACS labels (the
  references under every condition); with the MediaPipe readout of the clean images, the mean
  absolute difference of the network's AU intensities from it.
* A region-attention model is also read for what it says it sees: each region's mean visibility
  and the share of crops where it counts as hidden, and the share of AUs the dashboard would grey
  out (``monitor.hidden.hidden_aus``).

Runs on the CPU with one ONNX Runtime / torch thread.
"""
from __future__ import annotations

import datetime
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..engine.predict import onnx_predictor, onnx_visibility_predictor
from ..errors import DriverMonitorError
from ..model.metrics import classification_report
from .datasets import FaceDataset, load_ckplus, load_ferplus
from .model_eval import FERPLUS_TEST_PROTOCOLS, eval_aus, predict_all, restricted_argmax
from .occlusion import CONDITIONS, DEFAULT_PARAMS, occlude_all
from .occlusion_report import example_faces, machine, markdown, save_examples
from .predictors import checkpoint_predictor, checkpoint_visibility_predictor

PROTOCOL_KEYS = {protocol: key for protocol, key, _ in FERPLUS_TEST_PROTOCOLS}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Models and data
# ----------------------------------------------------------------------------------------------

def load_models(onnx: list[str], checkpoints: list[str], flip_tta: bool) -> list[tuple[str, Callable, int]]:
    """(name, predictor, input size) per model, in the order given (ONNX files first), one thread each."""
    models = [(p, *onnx_predictor(Path(p), threads=1)[:2]) for p in onnx]
    if checkpoints:
        import torch

        torch.set_num_threads(1)
        models += [(p, *checkpoint_predictor(Path(p), flip_tta)[:2]) for p in checkpoints]
    sizes = {spec.size for _, _, spec in models}
    if len(sizes) != 1:
        raise DriverMonitorError(f"the models read crops of different sizes {sorted(sizes)}; compare models of "
                                 "one input size per run")
    return [(name, predict, spec.size) for name, predict, spec in models]


def region_predictor(name: str, onnx: bool, flip_tta: bool = False) -> tuple[Callable, tuple[str, ...]] | None:
    """crops -> region visibility ``(N, R)`` for a region-attention model and its region names; None
    for a plain one."""
    if onnx:
        return onnx_visibility_predictor(name, threads=1)
    return checkpoint_visibility_predictor(name, flip_tta)


def _visibility_all(predict: Callable, images: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([predict(images[i:i + batch]) for i in range(0, len(images), batch)])


def load_ferplus_test(root: str, size: int, split: str = "test") -> tuple[FaceDataset, dict[str, np.ndarray]]:
    """FERPlus test under the plurality protocol (the superset) and, per protocol key, the rows of it
    that protocol keeps (the authors' majority set is a subset with the same labels; checked)."""
    full = load_ferplus(root, split, size=size, protocol="plurality")
    rows = {PROTOCOL_KEYS["plurality"]: np.arange(len(full))}
    sub = load_ferplus(root, split, size=size, protocol="authors_majority")
    pos = {f: i for i, f in enumerate(full.files)}
    missing = [f for f in sub.files if f not in pos]
    idx = np.array([pos.get(f, -1) for f in sub.files], np.int64)
    if missing or not np.array_equal(full.labels[idx], sub.labels):
        raise DriverMonitorError(f"{root}: the authors' majority set is not a subset of the plurality set with the "
                                 "same labels; check label.csv")
    rows[PROTOCOL_KEYS["authors_majority"]] = idx
    return full, rows


def readout_reference(path: str, ds: FaceDataset) -> tuple[np.ndarray, np.ndarray, dict]:
    """The MediaPipe readout of the clean CK+ images: (AU pseudo-labels, found mask, its own FACS scores)."""
    from .face_au import aus_from_mediapipe

    z = np.load(path)
    if list(z["files"]) != list(ds.files):
        raise DriverMonitorError(f"{path} does not list the same CK+ images; relabel it")
    found = z["found"].astype(bool)
    ref = np.nan_to_num(aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), found), nan=0.0)
    return ref, found, eval_aus(ref, ds, 0.5)


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------

def score_regions(vis: np.ndarray, names: tuple[str, ...], threshold: float) -> dict:
    """Each region's mean visibility and the share of crops where it is hidden (< threshold)."""
    return {name: {"mean_visibility": float(vis[:, i].mean()), "hidden_share": float((vis[:, i] < threshold).mean())}
            for i, name in enumerate(names)}


def score_hidden_aus(vis: np.ndarray, names: tuple[str, ...], threshold: float) -> dict:
    """The share of AUs the dashboard would grey out: mouth AUs, eye AUs (AU45, AU5) and all 13."""
    from ..model.regions import AU_REGIONS
    from ..monitor.hidden import hidden_aus
    from ..preprocess import AUS

    groups = {"mouth_aus": [a for a in AUS if AU_REGIONS.get(a) == ("mouth",)],
              "eye_aus": [a for a in AUS if AU_REGIONS.get(a) == ("eyes",)], "all_aus": list(AUS)}
    hidden = [set(hidden_aus(AUS, AU_REGIONS, dict(zip(names, map(float, row))), threshold)) for row in vis]
    return {g: float(np.mean([len(h & set(aus)) / len(aus) for h in hidden])) for g, aus in groups.items()}


def score_ferplus(probs: np.ndarray, clean_top1: np.ndarray, ds: FaceDataset, rows: dict[str, np.ndarray]) -> dict:
    out = {}
    for key, idx in rows.items():
        rep = classification_report(ds.labels[idx], restricted_argmax(probs[idx], ds.class_names), ds.class_names)
        rep["agreement_with_clean"] = float(np.mean(probs[idx].argmax(1) == clean_top1[idx]))
        out[key] = rep
    return out


def score_ckplus(probs: np.ndarray, aus: np.ndarray, clean_aus: np.ndarray, ds: FaceDataset,
                 readout: tuple[np.ndarray, np.ndarray, dict] | None, threshold: float) -> dict:
    rep = classification_report(ds.labels, restricted_argmax(probs, ds.class_names), ds.class_names)
    rep["aus"] = eval_aus(aus, ds, threshold)
    rep["aus"]["mean_abs_diff_vs_clean"] = float(np.abs(aus - clean_aus).mean())
    if readout is not None:
        ref, found, _ = readout
        rep["aus"]["mean_abs_diff_vs_clean_readout"] = float(np.abs(aus[found] - ref[found]).mean())
    return rep


@dataclass(frozen=True)
class TestFaces:
    """The faces every model is scored on: FERPlus (the plurality set and each protocol's rows),
    CK+, and the MediaPipe readout of the clean CK+ images (each None when not given)."""

    ferplus: tuple[FaceDataset, dict[str, np.ndarray]] | None
    ckplus: FaceDataset | None
    readout: tuple[np.ndarray, np.ndarray, dict] | None


def _condition(predict: Callable, cond: str, faces: TestFaces, clean: dict, threshold: float,
               regions: tuple | None, min_visibility: float) -> dict:
    """One condition's scores for one model; ``clean`` collects the clean condition's outputs
    (it runs first) that the other conditions are read against."""
    r: dict = {}
    if faces.ferplus is not None:
        ds, rows = faces.ferplus
        crops = occlude_all(ds.images, cond)
        probs, _ = predict_all(predict, crops)
        clean.setdefault("ferplus_top1", probs.argmax(1))
        r.update(score_ferplus(probs, clean["ferplus_top1"], ds, rows))
        if regions is not None:
            r["regions"] = score_regions(_visibility_all(regions[0], crops), regions[1], min_visibility)
    if faces.ckplus is not None:
        crops = occlude_all(faces.ckplus.images, cond)
        probs, aus = predict_all(predict, crops)
        clean.setdefault("ckplus_aus", aus)
        r["ckplus"] = score_ckplus(probs, aus, clean["ckplus_aus"], faces.ckplus, faces.readout, threshold)
        if regions is not None:
            r["ckplus"]["hidden_aus"] = score_hidden_aus(_visibility_all(regions[0], crops), regions[1],
                                                         min_visibility)
    return r


def _against_clean(res: dict) -> None:
    """Each condition's accuracy change in points and AU ROC AUC change against the clean crops."""
    for r in res.values():
        for key, rep in r.items():
            if key == "regions":
                continue
            rep["delta_vs_clean_points"] = round(100 * (rep["accuracy"] - res["clean"][key]["accuracy"]), 2)
        if "ckplus" in r:
            au, au0 = r["ckplus"]["aus"], res["clean"]["ckplus"]["aus"]
            au["delta_auc_vs_clean"] = au["macro_roc_auc_disfa12"] - au0["macro_roc_auc_disfa12"]


def run_model(predict: Callable, conditions: list[str], faces: TestFaces, threshold: float, name: str,
              regions: tuple | None = None, min_visibility: float = 0.5) -> dict:
    """Every condition's scores for one model; the clean condition runs first (the others are read against
    it). ``regions``: a region model's (visibility predictor, region names), scored under ``regions``."""
    res: dict = {}
    clean: dict = {}
    for cond in ["clean", *(c for c in conditions if c != "clean")]:
        r = _condition(predict, cond, faces, clean, threshold, regions, min_visibility)
        res[cond] = r
        _log(f"{name}: {cond}: " + ", ".join(f"{k} {v['accuracy']:.2%}" for k, v in r.items() if k != "regions"))
    _against_clean(res)
    return {c: res[c] for c in conditions}


# ----------------------------------------------------------------------------------------------
# The benchmark run
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OcclusionOptions:
    """What ``tools/occlusion_eval.py`` is asked to run (its options)."""

    onnx: list[str] = field(default_factory=list)
    checkpoint: list[str] = field(default_factory=list)
    flip_tta: bool = False
    ferplus: str | None = None
    ferplus_split: str = "test"
    ckplus: str | None = None
    ckplus_aus: str | None = None
    conditions: list[str] = field(default_factory=lambda: list(CONDITIONS))
    au_threshold: float = 0.5
    min_visibility: float = 0.8
    out: str = "results/occlusion"


def check_options(opts: OcclusionOptions) -> None:
    """A model and test data are given, and the CK+ readout comes with CK+."""
    if not (opts.onnx or opts.checkpoint):
        raise DriverMonitorError("no model: pass --onnx MODEL or --checkpoint CKPT (repeatable)")
    if not (opts.ferplus or opts.ckplus):
        raise DriverMonitorError("no test data: pass --ferplus DIR and / or --ckplus DIR")
    if opts.ckplus_aus and not opts.ckplus:
        raise DriverMonitorError("--ckplus-aus is the readout of the CK+ images: pass --ckplus DIR with it")


def load_faces(opts: OcclusionOptions, size: int) -> TestFaces:
    ferplus = load_ferplus_test(opts.ferplus, size, opts.ferplus_split) if opts.ferplus else None
    ckplus = load_ckplus(opts.ckplus, size=size) if opts.ckplus else None
    readout = readout_reference(opts.ckplus_aus, ckplus) if opts.ckplus_aus else None
    return TestFaces(ferplus, ckplus, readout)


def run_benchmark(opts: OcclusionOptions, command: str) -> dict:
    """Score every model under every condition; writes ``<out>/occlusion.json`` (every figure),
    ``<out>/occlusion.md`` and, with FERPlus, ``<out>/occlusion_examples.png``; returns the figures.
    ``command``: how the run was started."""
    check_options(opts)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    models = load_models(opts.onnx, opts.checkpoint, opts.flip_tta)
    faces = load_faces(opts, models[0][2])
    conditions = list(dict.fromkeys(opts.conditions))
    res: dict = {
        "command": command,
        "date": datetime.date.today().isoformat(), "machine": machine(), "conditions": conditions,
        "params": {c: None if DEFAULT_PARAMS[c] is None else asdict(DEFAULT_PARAMS[c]) for c in conditions},
        "ferplus_n": {k: len(v) for k, v in faces.ferplus[1].items()} if faces.ferplus else {},
        "readout_reference": faces.readout[2] if faces.readout else None,
        "min_visibility": opts.min_visibility, "ferplus_split": opts.ferplus_split,
        "models": [{"model": name, "conditions": run_model(
            predict, conditions, faces, opts.au_threshold, name,
            region_predictor(name, name in opts.onnx, opts.flip_tta), opts.min_visibility)}
            for name, predict, _ in models],
    }
    (out / "occlusion.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "occlusion.md").write_text(markdown(res))
    if faces.ferplus is not None:
        ds = faces.ferplus[0]
        save_examples(ds.images, example_faces(ds), conditions, out / "occlusion_examples.png")
    return res
