"""Model accuracy: the emotion + AU model scored on held-out faces (``tools/evaluate.py``).

FERPlus test (two protocols), FER2013 test, CK+ (emotions and AU presence), ONNX Runtime latency,
and the fp16 / int8 ONNX copies against fp32 (the protocols are described in the tool's help).
This is the model's accuracy on face crops, as opposed to the app's scenario scoring of whole
drives (``driver_monitor.scenarios``).
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..engine.precision import COPY_KINDS
from ..engine.predict import Predictor, onnx_predictor
from ..errors import DriverMonitorError, ModelError
from ..model.metrics import binary_f1, classification_report, roc_auc
from ..preprocess import AUS, EMOTIONS, InputSpec
from .datasets import FERPLUS_PROTOCOLS, FaceDataset, load_ckplus, load_fer2013, load_ferplus
from .model_eval_report import markdown, save_confusion_png
from .predictors import checkpoint_predictor

DISFA_AUS = AUS[:12]
#: FERPlus test protocols: (ferplus_protocol name, metrics.json key = summary key prefix, report title).
FERPLUS_TEST_PROTOCOLS = (
    ("plurality", "ferplus_test", "FERPlus test, project protocol (plurality), 8 classes"),
    ("authors_majority", "ferplus_test_authors_majority",
     "FERPlus test, FERPlus authors' majority protocol, 8 classes"),
)


def predict_all(predict: Predictor, images: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    ps, aus = [], []
    for i in range(0, len(images), batch):
        p, a = predict(images[i:i + batch])
        ps.append(p)
        aus.append(a)
    return np.concatenate(ps), np.concatenate(aus)


def restricted_argmax(probs: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Argmax over the model outputs named in ``class_names`` -> index into ``class_names``."""
    cols = [EMOTIONS.index(c) for c in class_names]
    return probs[:, cols].argmax(axis=1)


def eval_emotions(predict: Predictor, ds: FaceDataset, key: str, out: Path, title: str) -> dict:
    probs, aus = predict_all(predict, ds.images)
    pred = restricted_argmax(probs, ds.class_names)
    rep = classification_report(ds.labels, pred, ds.class_names)
    save_confusion_png(rep["confusion_matrix"], list(ds.class_names), f"{title} (acc {rep['accuracy']:.1%})",
                       out / f"confusion_{key}.png")
    rep["confusion_png"] = f"confusion_{key}.png"
    rep["protocol"] = title
    return rep, probs, aus


def eval_aus(au_pred: np.ndarray, ds: FaceDataset, threshold: float) -> dict:
    per = {}
    for i, au in enumerate(AUS):
        if au not in ds.au_names:
            continue
        y = ds.aus[:, ds.au_names.index(au)]
        per[au] = {"roc_auc": roc_auc(y, au_pred[:, i]), "f1": binary_f1(y, au_pred[:, i], threshold),
                   "positives": int(y.sum()), "mean_pred_pos": float(au_pred[y > 0.5, i].mean()) if y.sum() else None}
    disfa = [per[a]["roc_auc"] for a in DISFA_AUS if a in per and not np.isnan(per[a]["roc_auc"])]
    f1s = [per[a]["f1"] for a in DISFA_AUS if a in per]
    return {"per_au": per, "macro_roc_auc_disfa12": float(np.mean(disfa)) if disfa else float("nan"),
            "macro_f1_disfa12": float(np.mean(f1s)) if f1s else float("nan"), "f1_threshold": threshold,
            "n": len(ds)}


def latency(path: Path, runs: int, threads: int) -> dict:
    predict, spec, _ = onnx_predictor(path, threads)
    x = np.random.default_rng(0).integers(0, 255, size=(1, spec.size, spec.size), dtype=np.uint8)
    for _ in range(20):
        predict(x)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        predict(x)
        ts.append((time.perf_counter() - t) * 1000)
    return {"median_ms": float(np.median(ts)), "p90_ms": float(np.percentile(ts, 90)), "runs": runs,
            "intra_op_threads": threads or "default", "includes": "to_input + session.run"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# precision copies
# ----------------------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``engine.cache_dir`` of the project's config.yaml: where ``driver-monitor engines build`` writes."""
    from ..config import PROJECT_ROOT, load_config
    from ..engine.base import resolve_cache_dir

    return resolve_cache_dir(load_config(None, []).engine, PROJECT_ROOT)


def precision_models(onnx: Path, precisions: Sequence[str], cache_dir: Path) -> list[tuple[str, Path | None, str]]:
    """(precision, ONNX file or None, why not) for fp32 (always first: the reference) and each copy asked for;
    a missing or stale copy is kept with the reason and the command that makes it."""
    from ..engine.precision import model_for_precision

    out: list[tuple[str, Path | None, str]] = []
    for p in ["fp32", *(q for q in dict.fromkeys(precisions) if q != "fp32")]:
        try:
            precision, device = COPY_KINDS.get(p, (p, "cuda"))
            out.append((p, model_for_precision(onnx, precision, cache_dir, device).path, ""))
        except ModelError as exc:
            if p == "fp32":
                raise
            out.append((p, None, str(exc)))
    return out


def copy_row(precision: str, path: Path, probs: np.ndarray, aus: np.ndarray, ds: FaceDataset,
             ref: tuple[np.ndarray, np.ndarray, float] | None) -> dict:
    """One precision's scores on ``ds``; ``ref`` = fp32's (probs, AUs, accuracy %), None for fp32 itself."""
    rep = classification_report(ds.labels, restricted_argmax(probs, ds.class_names), ds.class_names)
    acc = round(100.0 * float(rep["accuracy"]), 2)
    ref_probs, ref_aus, ref_acc = ref if ref is not None else (probs, aus, acc)
    return {
        "precision": precision, "status": "ok", "model": str(path), "faces": len(ds),
        "accuracy_pct": acc, "delta_vs_fp32_points": round(acc - ref_acc, 2),
        "macro_f1": round(float(rep["macro_f1"]), 4),
        "agreement_with_fp32_pct": round(100.0 * float(np.mean(probs.argmax(1) == ref_probs.argmax(1))), 2),
        "max_abs_diff_probs": round(float(np.abs(probs - ref_probs).max()), 5),
        "max_abs_diff_aus": round(float(np.abs(aus - ref_aus).max()), 5),
        "mean_abs_diff_aus": round(float(np.abs(aus - ref_aus).mean()), 5),
    }


def _copy_rows(models: list[tuple[str, Path | None, str]], predictors: dict, ds: FaceDataset, key: str,
               log: Callable[[str], None]) -> list[dict]:
    """Every precision's row on one protocol's faces; fp32 (first) is the reference of the others."""
    rows, ref = [], None
    for p, path, reason in models:
        if path is None:
            rows.append({"precision": p, "status": "skipped", "reason": reason})
            log(f"precision copies: {p}: skipped ({reason})")
            continue
        probs, aus = predict_all(predictors[p][0], ds.images)
        rows.append(copy_row(p, path, probs, aus, ds, ref))
        if ref is None:
            ref = (probs, aus, rows[-1]["accuracy_pct"])
        log(f"precision copies: {key}: {p}: accuracy {rows[-1]['accuracy_pct']}% on {len(ds)} faces")
    return rows


def eval_precision_copies(onnx: Path, precisions: Sequence[str], cache_dir: Path, ferplus_root: str | Path,
                          log: Callable[[str], None] = _log) -> dict:
    """FERPlus test scores of the fp32 model and its fp16 / int8 copies (ONNX Runtime CPU), per protocol."""
    models = precision_models(onnx, precisions, cache_dir)
    predictors = {p: onnx_predictor(path) for p, path, _ in models if path is not None}
    size = predictors["fp32"][1].size
    res: dict = {}
    for protocol, key, title in FERPLUS_TEST_PROTOCOLS:
        ds = load_ferplus(ferplus_root, "test", size=size, protocol=protocol)
        rows = _copy_rows(models, predictors, ds, key, log)
        res[key] = {"protocol": title, "protocol_id": protocol, "n": len(ds), "cache_dir": str(cache_dir),
                    "rows": rows}
    return res


# ----------------------------------------------------------------------------------------------
# the evaluation run
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelEvalOptions:
    """What ``tools/evaluate.py`` is asked to score (its options; one of onnx / checkpoint)."""

    onnx: str | None = None
    checkpoint: str | None = None
    ferplus: str | None = None
    fer2013: str | None = None
    fer2013_model: str | None = None
    ckplus: str | None = None
    ckplus_aus: str | None = None
    au_threshold: float = 0.5
    latency_runs: int = 300
    flip_tta: bool = False
    precision_copies: Sequence[str] | None = None
    cache_dir: str | None = None
    out: str = "results/eval"


def model_predictor(path: Path, flip_tta: bool = False) -> tuple[Predictor, InputSpec, dict]:
    """An ONNX file's or a torch checkpoint's predictor (by the file's suffix)."""
    return onnx_predictor(path) if path.suffix == ".onnx" else checkpoint_predictor(path, flip_tta)


def _eval_ferplus(res: dict, predict: Predictor, size: int, root: str, out: Path) -> None:
    s = res["summary"]
    for protocol, key, title in FERPLUS_TEST_PROTOCOLS:
        ds = load_ferplus(root, "test", size=size, protocol=protocol)
        rep, _, _ = eval_emotions(predict, ds, key, out, title)
        rep["protocol_id"] = protocol
        rep["protocol_rule"] = FERPLUS_PROTOCOLS[protocol]
        res["emotion"][key] = rep
        s[f"{key}_accuracy"] = rep["accuracy"]
        s[f"{key}_macro_f1"] = rep["macro_f1"]
        s[f"{key}_n"] = rep["n"]


def _eval_fer2013(res: dict, predict: Predictor, size: int, opts: ModelEvalOptions, out: Path) -> None:
    s = res["summary"]
    ds = load_fer2013(opts.fer2013, "test", size=size)
    rep, _, _ = eval_emotions(predict, ds, "fer2013_test_8to7", out,
                              "FER2013 test, 7 classes, FERPlus-trained model with contempt dropped")
    res["emotion"]["fer2013_test_8to7"] = rep
    s["fer2013_test_accuracy_ferplus_model_8to7"] = rep["accuracy"]
    # FERPlus valid (used to pick the checkpoint) is FER2013 PublicTest: PrivateTest alone is unseen.
    private = np.array(["PrivateTest" in f for f in ds.files])
    if private.any() and not private.all():
        sub = ds.subset(np.flatnonzero(private))
        rep_p, _, _ = eval_emotions(predict, sub, "fer2013_privatetest_8to7", out,
                                    "FER2013 PrivateTest only, 7 classes, FERPlus-trained model, "
                                    "contempt dropped")
        res["emotion"]["fer2013_privatetest_8to7"] = rep_p
        s["fer2013_privatetest_accuracy_ferplus_model_8to7"] = rep_p["accuracy"]
    if opts.fer2013_model:
        pred2 = model_predictor(Path(opts.fer2013_model), opts.flip_tta)[0]
        rep2, _, _ = eval_emotions(pred2, ds, "fer2013_test", out, "FER2013 test, 7 classes, FER2013-trained model")
        res["emotion"]["fer2013_test"] = rep2
        s["fer2013_test_accuracy"] = rep2["accuracy"]


def readout_aus(path: str, ds: FaceDataset) -> np.ndarray:
    """The MediaPipe readout of CK+ (``tools/label_aus.py --dataset ckplus``) as AU intensities (no
    face = 0), checked to list the images of ``ds``."""
    from .face_au import aus_from_mediapipe

    z = np.load(path)
    if list(z["files"]) != list(ds.files):
        raise DriverMonitorError(f"{path} does not list the same CK+ images; relabel it")
    ref = aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), z["found"])
    return np.nan_to_num(ref, nan=0.0)


def _eval_ckplus(res: dict, predict: Predictor, size: int, opts: ModelEvalOptions, out: Path) -> None:
    s = res["summary"]
    ds = load_ckplus(opts.ckplus, size=size)
    rep, _, au_pred = eval_emotions(predict, ds, "ckplus", out, "CK+ 327 peak frames, 7 classes (no neutral)")
    res["emotion"]["ckplus"] = rep
    s["ckplus_accuracy"] = rep["accuracy"]
    au = eval_aus(au_pred, ds, opts.au_threshold)
    res["aus"]["ckplus_network"] = au
    s["ckplus_au_macro_roc_auc"] = au["macro_roc_auc_disfa12"]
    s["ckplus_au_macro_f1"] = au["macro_f1_disfa12"]
    if opts.ckplus_aus:
        res["aus"]["ckplus_mediapipe_pseudo_labels"] = eval_aus(readout_aus(opts.ckplus_aus, ds), ds,
                                                                opts.au_threshold)
        s["ckplus_au_macro_roc_auc_pseudo_labels"] = (
            res["aus"]["ckplus_mediapipe_pseudo_labels"]["macro_roc_auc_disfa12"])


def evaluate_model(opts: ModelEvalOptions, command: str) -> dict:
    """Score the model on every data set given; writes ``<out>/metrics.json`` (everything;
    ``summary`` holds the headline figures), ``<out>/report.md`` and one confusion-matrix PNG per
    data set, and returns what metrics.json holds. ``command``: how the run was started."""
    if opts.precision_copies and not (opts.onnx and opts.ferplus):
        raise DriverMonitorError("--precision-copies scores the copies of an ONNX model on FERPlus test; "
                                 "pass --onnx MODEL and --ferplus DIR with it")
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    if opts.onnx:
        predict, spec, _ = onnx_predictor(Path(opts.onnx))
    else:
        predict, spec, _ = checkpoint_predictor(Path(opts.checkpoint), opts.flip_tta)
    res: dict = {"model": opts.onnx or opts.checkpoint, "command": command,
                 "hardware": f"{platform.processor() or platform.machine()}, {platform.system()}",
                 "emotion": {}, "aus": {}, "summary": {}}
    if opts.ferplus:
        _eval_ferplus(res, predict, spec.size, opts.ferplus, out)
    if opts.precision_copies:
        cache = Path(opts.cache_dir) if opts.cache_dir else default_cache_dir()
        res["precision_copies"] = eval_precision_copies(Path(opts.onnx), opts.precision_copies, cache, opts.ferplus)
    if opts.fer2013:
        _eval_fer2013(res, predict, spec.size, opts, out)
    if opts.ckplus:
        _eval_ckplus(res, predict, spec.size, opts, out)
    if opts.onnx and opts.latency_runs:
        res["latency"] = {"default_threads": latency(Path(opts.onnx), opts.latency_runs, 0),
                          "one_thread": latency(Path(opts.onnx), opts.latency_runs, 1)}
        res["summary"]["onnxruntime_cpu_b1_median_ms"] = res["latency"]["one_thread"]["median_ms"]
    (out / "metrics.json").write_text(json.dumps(res, indent=2, default=float))
    (out / "report.md").write_text(markdown(res))
    return res
