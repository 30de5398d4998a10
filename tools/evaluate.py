#!/usr/bin/env python
"""Evaluate the emotion + AU model: FERPlus test, FER2013 test, CK+ (emotions and AUs), latency.

    python tools/evaluate.py --onnx engines/emotion_au.onnx \
        --ferplus /work/cache/ferplus --fer2013 /work/cache/fer2013 --ckplus /work/cache/ckplus48_dev \
        --out results/eval

Writes ``<out>/metrics.json`` (everything; ``summary`` holds the headline figures that
tools/export_onnx.py stores as ``dm.metrics``), ``<out>/report.md`` and one confusion-matrix PNG
per dataset. ``--checkpoint X.pt`` evaluates a torch checkpoint instead of an ONNX file.

Protocols:
* FERPlus test, two protocols, both 8-way argmax (driver_monitor.training.datasets.ferplus_protocol):
  - ``ferplus_test_authors_majority``: the FERPlus authors' "majority" protocol, the one published
    FERPlus accuracies use: single votes count as 0, an image is kept only when its top class holds
    more than 50 % of the remaining votes and is an emotion (3,137 images on the official test split);
  - ``ferplus_test`` (the project's stricter figure, as in training): the most-voted emotion, every
    image kept unless unknown / not a face has at least as many votes (3,522 images, the ambiguous
    faces included). ``summary`` carries both (``ferplus_test_accuracy`` is this one).
* FER2013 test (PublicTest + PrivateTest, 7,178 images; PrivateTest alone is reported too, because
  FERPlus "valid", which picks the checkpoint, is FER2013 PublicTest): a FERPlus-trained 8-class model is scored
  by dropping "contempt" and taking the argmax over the other 7 classes; this is NOT the issue's
  FER2013 recipe (a model trained on FER2013), and is reported under its own name. ``--fer2013-model``
  scores a 7-class-trained model (same 8 outputs, FER2013 classes only) as the real recipe.
* CK+ (327 peak frames, no neutral): argmax over CK+'s 7 classes (neutral excluded). AUs: ROC AUC
  of each predicted intensity against the FACS presence label, and F1 at intensity >= 0.5
  (threshold fixed in advance, not tuned on CK+); macro over the 12 DISFA AUs (AU45 has no CK+ label).
* Latency: ONNX Runtime CPU, batch 1, median of ``--latency-runs`` after warm-up.
* Precision copies (``--precision-copies fp16 int8 int8cpu``, with ``--onnx`` and ``--ferplus``): the fp16 /
  int8 (TensorRT's) / int8cpu (ONNX Runtime's on the CPU, also found beside the model where it is
  shipped) ONNX copies of the model that ``driver-monitor engines build`` writes to ``engine.cache_dir``
  (``--cache-dir``), run with ONNX Runtime on the CPU on FERPlus test under both protocols above:
  accuracy, change against fp32 in points, macro F1, top-1 agreement with fp32 and the largest
  difference of the probabilities / AU intensities. In ``metrics.json`` under ``precision_copies``
  and in ``report.md``; ``summary`` (what export stores in the model) is unchanged. Speed is
  ``driver-monitor bench``'s part.

    python tools/evaluate.py --onnx engines/emotion_au.onnx --ferplus /work/cache/ferplus \
        --precision-copies fp16 int8 int8cpu --latency-runs 0 --out results/eval_precision
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np


from driver_monitor.training.datasets import (
    FERPLUS_PROTOCOLS, FaceDataset, load_ckplus, load_fer2013, load_ferplus,
)
from driver_monitor.engine.precision import COPY_KINDS
from driver_monitor.errors import DriverMonitorError, ModelError, report
from driver_monitor.model.metrics import binary_f1, classification_report, roc_auc
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec, to_input

DISFA_AUS = AUS[:12]
#: FERPlus test protocols: (ferplus_protocol name, metrics.json key = summary key prefix, report title).
FERPLUS_TEST_PROTOCOLS = (
    ("plurality", "ferplus_test", "FERPlus test, project protocol (plurality), 8 classes"),
    ("authors_majority", "ferplus_test_authors_majority",
     "FERPlus test, FERPlus authors' majority protocol, 8 classes"),
)
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def onnx_predictor(path: Path, threads: int = 0) -> tuple[Predictor, InputSpec, dict]:
    import onnxruntime as ort

    from driver_monitor.model_contract import read_metadata

    props = read_metadata(path)
    spec = InputSpec(int(props["dm.input_size"]), float(props["dm.input_mean"]), float(props["dm.input_std"]))
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def predict(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, a = sess.run(["emotion_probs", "au_intensity"], {"face": to_input(crops, spec)})
        return p, a

    return predict, spec, props


def torch_predictor(path: Path, flip_tta: bool = False) -> tuple[Predictor, InputSpec, dict]:
    import torch

    from driver_monitor.model.checkpoint import load_checkpoint

    model, meta = load_checkpoint(path)
    if flip_tta:
        model.set_flip_tta()
    spec = InputSpec(int(meta["input_size"]), float(meta["input_mean"]), float(meta["input_std"]))

    def predict(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            p, a = model(torch.from_numpy(to_input(crops, spec)))
        return p.numpy(), a.numpy()

    return predict, spec, meta


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


def save_confusion_png(cm: list[list[int]], names: list[str], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.asarray(cm, float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(names), 0.8 + 0.7 * len(names)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{int(m[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def default_cache_dir() -> Path:
    """``engine.cache_dir`` of the project's config.yaml: where ``driver-monitor engines build`` writes."""
    from driver_monitor.config import PROJECT_ROOT, load_config
    from driver_monitor.engine.base import resolve_cache_dir

    return resolve_cache_dir(load_config(None, []).engine, PROJECT_ROOT)


def precision_models(onnx: Path, precisions: Sequence[str], cache_dir: Path) -> list[tuple[str, Path | None, str]]:
    """(precision, ONNX file or None, why not) for fp32 (always first: the reference) and each copy asked for;
    a missing or stale copy is kept with the reason and the command that makes it."""
    from driver_monitor.engine.precision import model_for_precision

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


def eval_precision_copies(onnx: Path, precisions: Sequence[str], cache_dir: Path, ferplus_root: str | Path,
                          log: Callable[[str], None] = _log) -> dict:
    """FERPlus test scores of the fp32 model and its fp16 / int8 copies (ONNX Runtime CPU), per protocol."""
    models = precision_models(onnx, precisions, cache_dir)
    predictors = {p: onnx_predictor(path) for p, path, _ in models if path is not None}
    size = predictors["fp32"][1].size
    res: dict = {}
    for protocol, key, title in FERPLUS_TEST_PROTOCOLS:
        ds = load_ferplus(ferplus_root, "test", size=size, protocol=protocol)
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
        res[key] = {"protocol": title, "protocol_id": protocol, "n": len(ds), "cache_dir": str(cache_dir),
                    "rows": rows}
    return res


def markdown_precision_copies(copies: dict) -> list[str]:
    lines = ["", "## Precision copies on FERPlus test (ONNX Runtime CPU)", "",
             "fp32 is the evaluated model; fp16 / int8 are its copies made by `driver-monitor engines build`."]
    for key, part in copies.items():
        lines += ["", f"### {key}: {part['protocol']}", "",
                  "| precision | accuracy % | vs fp32 (points) | macro F1 | top-1 agreement with fp32 % | "
                  "max abs diff probs | max abs diff AUs |", "|---|---|---|---|---|---|---|"]
        for r in part["rows"]:
            if r["status"] != "ok":
                lines.append(f"| {r['precision']} | skipped: {r['reason'][:160].replace('|', '/')} |")
                continue
            lines.append(f"| {r['precision']} | {r['accuracy_pct']:.2f} | {r['delta_vs_fp32_points']:+.2f} | "
                         f"{r['macro_f1']:.3f} | {r['agreement_with_fp32_pct']:.2f} | "
                         f"{r['max_abs_diff_probs']:.4f} | {r['max_abs_diff_aus']:.4f} |")
    return lines


def markdown(res: dict) -> str:
    lines = [f"# Evaluation of {res['model']}", "", f"Command: `{res['command']}`", "",
             f"Hardware: {res['hardware']}", "", "## Summary", "", "| metric | value |", "|---|---|"]
    for k, v in res["summary"].items():
        lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
    if "ferplus_test_authors_majority_accuracy" in res["summary"]:
        lines += ["", "FERPlus test is scored under two protocols: `ferplus_test_authors_majority_*` uses the "
                  "FERPlus authors' majority protocol, the one published FERPlus accuracies use; "
                  "`ferplus_test_*` is the project's stricter protocol, which also keeps the ambiguous "
                  "faces (no class above 50 % of the votes once single votes are dropped)."]
    for key, rep in res.get("emotion", {}).items():
        lines += ["", f"## {key}: {rep['protocol']}", ""]
        if "protocol_rule" in rep:
            lines += [f"Images kept: {rep['protocol_rule']}.", ""]
        lines += [f"n = {rep['n']}, accuracy {rep['accuracy']:.4f}, macro F1 {rep['macro_f1']:.4f}", "",
                  f"![confusion]({rep['confusion_png']})", "",
                  "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for c, m in rep["per_class"].items():
            lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    for key, au in res.get("aus", {}).items():
        lines += ["", f"## {key}: AU presence (CK+ FACS labels)", "",
                  f"macro ROC AUC over the 12 DISFA AUs: {au['macro_roc_auc_disfa12']:.4f}; "
                  f"macro F1 at intensity >= {au['f1_threshold']}: {au['macro_f1_disfa12']:.4f}", "",
                  "| AU | ROC AUC | F1 | positives |", "|---|---|---|---|"]
        for a, m in au["per_au"].items():
            lines.append(f"| {a} | {m['roc_auc']:.3f} | {m['f1']:.3f} | {m['positives']} |")
    if res.get("precision_copies"):
        lines += markdown_precision_copies(res["precision_copies"])
    if "latency" in res:
        lines += ["", "## Latency (ONNX Runtime CPU, batch 1)", ""]
        for k, v in res["latency"].items():
            lines.append(f"- {k}: median {v['median_ms']:.3f} ms, p90 {v['p90_ms']:.3f} ms over {v['runs']} runs")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", help="ONNX model (engines/emotion_au.onnx)")
    src.add_argument("--checkpoint", help="torch checkpoint")
    ap.add_argument("--ferplus", help="FERPlus root (with FER2013Test/)")
    ap.add_argument("--fer2013", help="FER2013 root (Kaggle folders) or fer2013.csv")
    ap.add_argument("--fer2013-model", help="a FER2013-trained model (.onnx or .pt) for the 7-class recipe")
    ap.add_argument("--ckplus", help="CK+ folder with labels.csv")
    ap.add_argument("--ckplus-aus", help="MediaPipe readout of CK+ (tools/label_aus.py --dataset ckplus) to "
                    "report the pseudo-label mapping's own AUC as a reference")
    ap.add_argument("--au-threshold", type=float, default=0.5)
    ap.add_argument("--latency-runs", type=int, default=300)
    ap.add_argument("--flip-tta", action="store_true",
                    help="torch checkpoints: average each crop with its mirror image, as an ONNX file "
                         "exported with tools/export_onnx.py --flip-tta does (ONNX files carry their own setting)")
    ap.add_argument("--precision-copies", nargs="+", choices=tuple(COPY_KINDS), metavar="P",
                    help="also score these ONNX copies of --onnx (fp16, int8 for TensorRT, int8cpu the one "
                         "ONNX Runtime runs on the CPU; made by `driver-monitor engines build`) against it on "
                         "FERPlus test, both protocols (needs --ferplus)")
    ap.add_argument("--cache-dir", metavar="DIR",
                    help="folder holding the copies (default: engine.cache_dir of config.yaml)")
    ap.add_argument("--out", default="results/eval")
    args = ap.parse_args(argv)
    try:
        if args.precision_copies and not (args.onnx and args.ferplus):
            raise DriverMonitorError("--precision-copies scores the copies of an ONNX model on FERPlus test; "
                                     "pass --onnx MODEL and --ferplus DIR with it")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        if args.onnx:
            predict, spec, meta = onnx_predictor(Path(args.onnx))
            model_name = args.onnx
        else:
            predict, spec, meta = torch_predictor(Path(args.checkpoint), args.flip_tta)
            model_name = args.checkpoint
        res: dict = {"model": model_name, "command": "python tools/evaluate.py " + " ".join(argv or sys.argv[1:]),
                     "hardware": f"{platform.processor() or platform.machine()}, {platform.system()}",
                     "emotion": {}, "aus": {}, "summary": {}}
        s = res["summary"]
        if args.ferplus:
            for protocol, key, title in FERPLUS_TEST_PROTOCOLS:
                ds = load_ferplus(args.ferplus, "test", size=spec.size, protocol=protocol)
                rep, _, _ = eval_emotions(predict, ds, key, out, title)
                rep["protocol_id"] = protocol
                rep["protocol_rule"] = FERPLUS_PROTOCOLS[protocol]
                res["emotion"][key] = rep
                s[f"{key}_accuracy"] = rep["accuracy"]
                s[f"{key}_macro_f1"] = rep["macro_f1"]
                s[f"{key}_n"] = rep["n"]
        if args.precision_copies:
            cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
            res["precision_copies"] = eval_precision_copies(Path(args.onnx), args.precision_copies, cache,
                                                            args.ferplus)
        if args.fer2013:
            ds = load_fer2013(args.fer2013, "test", size=spec.size)
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
            if args.fer2013_model:
                p2 = Path(args.fer2013_model)
                pred2 = onnx_predictor(p2)[0] if p2.suffix == ".onnx" else torch_predictor(p2, args.flip_tta)[0]
                rep2, _, _ = eval_emotions(pred2, ds, "fer2013_test", out,
                                           "FER2013 test, 7 classes, FER2013-trained model")
                res["emotion"]["fer2013_test"] = rep2
                s["fer2013_test_accuracy"] = rep2["accuracy"]
        if args.ckplus:
            ds = load_ckplus(args.ckplus, size=spec.size)
            rep, _, au_pred = eval_emotions(predict, ds, "ckplus", out, "CK+ 327 peak frames, 7 classes (no neutral)")
            res["emotion"]["ckplus"] = rep
            s["ckplus_accuracy"] = rep["accuracy"]
            au = eval_aus(au_pred, ds, args.au_threshold)
            res["aus"]["ckplus_network"] = au
            s["ckplus_au_macro_roc_auc"] = au["macro_roc_auc_disfa12"]
            s["ckplus_au_macro_f1"] = au["macro_f1_disfa12"]
            if args.ckplus_aus:
                from driver_monitor.training.face_au import aus_from_mediapipe

                z = np.load(args.ckplus_aus)
                if list(z["files"]) != list(ds.files):
                    raise DriverMonitorError(f"{args.ckplus_aus} does not list the same CK+ images; relabel it")
                ref = aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), z["found"])
                ref = np.nan_to_num(ref, nan=0.0)
                res["aus"]["ckplus_mediapipe_pseudo_labels"] = eval_aus(ref, ds, args.au_threshold)
                s["ckplus_au_macro_roc_auc_pseudo_labels"] = (
                    res["aus"]["ckplus_mediapipe_pseudo_labels"]["macro_roc_auc_disfa12"])
        if args.onnx and args.latency_runs:
            res["latency"] = {"default_threads": latency(Path(args.onnx), args.latency_runs, 0),
                              "one_thread": latency(Path(args.onnx), args.latency_runs, 1)}
            s["onnxruntime_cpu_b1_median_ms"] = res["latency"]["one_thread"]["median_ms"]
        (out / "metrics.json").write_text(json.dumps(res, indent=2, default=float))
        (out / "report.md").write_text(markdown(res))
        print(json.dumps(s, indent=2))
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
