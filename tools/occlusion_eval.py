#!/usr/bin/env python
"""Occlusion benchmark of the emotion + AU model: the same test faces clean, behind sunglasses, a
mask or a hand, under random patches, blurred, in low light and with a near-infrared look.

    python tools/occlusion_eval.py --onnx engines/emotion_au.onnx --ferplus /work/cache/ferplus \
        --ckplus /work/cache/ckplus48_dev --ckplus-aus /work/cache/aus/ckplus.npz --out docs/model_eval

Writes ``<out>/occlusion.md`` (condition x metric table, command, date, machine),
``<out>/occlusion.json`` (every figure, per class and per AU too) and
``<out>/occlusion_examples.png`` (a few FERPlus test faces under every condition). Several models
go in one table: repeat ``--onnx`` / ``--checkpoint`` (``--onnx engines/emotion_au.onnx --onnx
new.onnx``); the first one is the reference the others are read against.

The conditions are ``driver_monitor.training.occlusion`` (deterministic: a crop's random parts are
seeded by its index, so every run and every model sees byte-identical crops). Scoring is
``tools/evaluate.py``'s:

* FERPlus test under both protocols (``driver_monitor.training.datasets.ferplus_protocol``): the
  FERPlus authors' majority protocol (3,137 images, the headline, the one published figures use) and
  the project's stricter plurality protocol (3,522 images). The crops are occluded once, as the
  plurality set (a crop's index is its position in that set, label.csv order); the authors' set is a
  subset of it with the same labels, so both protocols see the same occluded crop of a face.
* CK+ 327 peak frames: accuracy over CK+'s 7 classes; AU presence: macro ROC AUC of the network's
  intensities against the CK+ FACS labels over the 12 DISFA AUs, and F1 at intensity >= 0.5. The
  FACS labels describe the face, not the picture, so they are the references under every condition.
* ``--ckplus-aus``: the MediaPipe readout of CK+ (tools/label_aus.py). It was read from the clean
  images, so it stays the reference under every condition: the table gives the mean absolute
  difference between the network's AU intensities and these clean pseudo-labels (what the AU head
  was trained to reproduce), and the readout's own FACS ROC AUC once, as a clean-image reference.

A region-attention model (ONNX outputs ``region_visibility`` / a checkpoint with regions) is also
read for what it says it sees: per condition, each region's mean visibility on FERPlus test and the
share of crops where it counts as hidden (below ``--min-visibility``, the dashboard's
``engine.min_region_visibility``), and on CK+ the share of the mouth AUs, eye AUs and all AUs that
would be greyed out (``monitor.hidden.hidden_aus``). A visibility head is right when the region a condition
covers drops and the others stay.

Runs on the CPU with one ONNX Runtime / torch thread.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np


from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.model.metrics import classification_report
from driver_monitor.training.datasets import FaceDataset, load_ckplus, load_ferplus
from driver_monitor.training.occlusion import CONDITIONS, DEFAULT_PARAMS, occlude_all


def _evaluate_tool():
    """tools/evaluate.py as a module: its predictors and scoring are the ones used here."""
    name = "dm_tools_evaluate"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / "evaluate.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


ev = _evaluate_tool()
HEADLINE, STRICT = "ferplus_test_authors_majority", "ferplus_test"
PROTOCOL_KEYS = {protocol: key for protocol, key, _ in ev.FERPLUS_TEST_PROTOCOLS}
EXAMPLE_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# Models and data
# ----------------------------------------------------------------------------------------------

def load_models(onnx: list[str], checkpoints: list[str], flip_tta: bool) -> list[tuple[str, Callable, int]]:
    """(name, predictor, input size) per model, in the order given (ONNX files first), one thread each."""
    models = [(p, *ev.onnx_predictor(Path(p), threads=1)[:2]) for p in onnx]
    if checkpoints:
        import torch

        torch.set_num_threads(1)
        models += [(p, *ev.torch_predictor(Path(p), flip_tta)[:2]) for p in checkpoints]
    sizes = {spec.size for _, _, spec in models}
    if len(sizes) != 1:
        raise DriverMonitorError(f"the models read crops of different sizes {sorted(sizes)}; compare models of "
                                 "one input size per run")
    return [(name, predict, spec.size) for name, predict, spec in models]


def region_predictor(name: str, onnx: bool, flip_tta: bool = False) -> tuple[Callable, tuple[str, ...]] | None:
    """crops -> region visibility ``(N, R)`` for a region-attention model and its region names; None
    for a plain one."""
    from driver_monitor.preprocess import to_input

    if onnx:
        import onnxruntime as ort

        from driver_monitor.model_contract import OUTPUT_REGION_VISIBILITY, read_model_info

        info = read_model_info(name)
        if not info.region_names:
            return None
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(name, so, providers=["CPUExecutionProvider"])
        return (lambda crops: sess.run([OUTPUT_REGION_VISIBILITY], {"face": to_input(crops, info.spec)})[0],
                info.region_names)
    import torch

    from driver_monitor.model.checkpoint import load_checkpoint
    from driver_monitor.preprocess import InputSpec

    model, meta = load_checkpoint(name)
    if not model.region_names:
        return None
    model.set_flip_tta(flip_tta)
    spec = InputSpec(int(meta["input_size"]), float(meta["input_mean"]), float(meta["input_std"]))

    def visibility(crops: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model.forward_regions(torch.from_numpy(to_input(crops, spec)))[3].numpy()

    return visibility, tuple(model.region_names)


def _visibility_all(predict: Callable, images: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([predict(images[i:i + batch]) for i in range(0, len(images), batch)])


def score_regions(vis: np.ndarray, names: tuple[str, ...], threshold: float) -> dict:
    """Each region's mean visibility and the share of crops where it is hidden (< threshold)."""
    return {name: {"mean_visibility": float(vis[:, i].mean()), "hidden_share": float((vis[:, i] < threshold).mean())}
            for i, name in enumerate(names)}


def score_hidden_aus(vis: np.ndarray, names: tuple[str, ...], threshold: float) -> dict:
    """The share of AUs the dashboard would grey out: mouth AUs, eye AUs (AU45, AU5) and all 13."""
    from driver_monitor.model.regions import AU_REGIONS
    from driver_monitor.monitor.hidden import hidden_aus
    from driver_monitor.preprocess import AUS

    groups = {"mouth_aus": [a for a in AUS if AU_REGIONS.get(a) == ("mouth",)],
              "eye_aus": [a for a in AUS if AU_REGIONS.get(a) == ("eyes",)], "all_aus": list(AUS)}
    hidden = [set(hidden_aus(AUS, AU_REGIONS, dict(zip(names, map(float, row))), threshold)) for row in vis]
    return {g: float(np.mean([len(h & set(aus)) / len(aus) for h in hidden])) for g, aus in groups.items()}


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
    from driver_monitor.training.face_au import aus_from_mediapipe

    z = np.load(path)
    if list(z["files"]) != list(ds.files):
        raise DriverMonitorError(f"{path} does not list the same CK+ images; relabel it")
    found = z["found"].astype(bool)
    ref = np.nan_to_num(aus_from_mediapipe(z["blendshapes"], z["landmarks"].astype(np.float32), found), nan=0.0)
    return ref, found, ev.eval_aus(ref, ds, 0.5)


# ----------------------------------------------------------------------------------------------
# Scoring
# ----------------------------------------------------------------------------------------------

def score_ferplus(probs: np.ndarray, clean_top1: np.ndarray, ds: FaceDataset, rows: dict[str, np.ndarray]) -> dict:
    out = {}
    for key, idx in rows.items():
        rep = classification_report(ds.labels[idx], ev.restricted_argmax(probs[idx], ds.class_names), ds.class_names)
        rep["agreement_with_clean"] = float(np.mean(probs[idx].argmax(1) == clean_top1[idx]))
        out[key] = rep
    return out


def score_ckplus(probs: np.ndarray, aus: np.ndarray, clean_aus: np.ndarray, ds: FaceDataset,
                 readout: tuple[np.ndarray, np.ndarray, dict] | None, threshold: float) -> dict:
    rep = classification_report(ds.labels, ev.restricted_argmax(probs, ds.class_names), ds.class_names)
    rep["aus"] = ev.eval_aus(aus, ds, threshold)
    rep["aus"]["mean_abs_diff_vs_clean"] = float(np.abs(aus - clean_aus).mean())
    if readout is not None:
        ref, found, _ = readout
        rep["aus"]["mean_abs_diff_vs_clean_readout"] = float(np.abs(aus[found] - ref[found]).mean())
    return rep


def run_model(predict: Callable, conditions: list[str], ferplus: tuple | None, ckplus: FaceDataset | None,
              readout: tuple | None, threshold: float, name: str, regions: tuple | None = None,
              min_visibility: float = 0.5) -> dict:
    """Every condition's scores for one model; the clean condition runs first (the others are read against
    it). ``regions``: a region model's (visibility predictor, region names), scored under ``regions``."""
    res: dict = {}
    clean: dict = {}
    for cond in ["clean", *(c for c in conditions if c != "clean")]:
        r: dict = {}
        if ferplus is not None:
            ds, rows = ferplus
            crops = occlude_all(ds.images, cond)
            probs, _ = ev.predict_all(predict, crops)
            clean.setdefault("ferplus_top1", probs.argmax(1))
            r.update(score_ferplus(probs, clean["ferplus_top1"], ds, rows))
            if regions is not None:
                r["regions"] = score_regions(_visibility_all(regions[0], crops), regions[1], min_visibility)
        if ckplus is not None:
            crops = occlude_all(ckplus.images, cond)
            probs, aus = ev.predict_all(predict, crops)
            clean.setdefault("ckplus_aus", aus)
            r["ckplus"] = score_ckplus(probs, aus, clean["ckplus_aus"], ckplus, readout, threshold)
            if regions is not None:
                r["ckplus"]["hidden_aus"] = score_hidden_aus(_visibility_all(regions[0], crops), regions[1],
                                                             min_visibility)
        res[cond] = r
        _log(f"{name}: {cond}: " + ", ".join(f"{k} {v['accuracy']:.2%}" for k, v in r.items() if k != "regions"))
    for r in res.values():  # points against clean
        for key, rep in r.items():
            if key == "regions":
                continue
            rep["delta_vs_clean_points"] = round(100 * (rep["accuracy"] - res["clean"][key]["accuracy"]), 2)
        if "ckplus" in r:
            au, au0 = r["ckplus"]["aus"], res["clean"]["ckplus"]["aus"]
            au["delta_auc_vs_clean"] = au["macro_roc_auc_disfa12"] - au0["macro_roc_auc_disfa12"]
    return {c: res[c] for c in conditions}


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def _pct(rep: dict | None) -> str:
    if rep is None:
        return "-"
    d = rep["delta_vs_clean_points"]
    return f"{100 * rep['accuracy']:.2f}" + ("" if d == 0 else f" ({d:+.2f})")


def _main_row(cond: str, r: dict) -> str:
    h, s, c = r.get(HEADLINE), r.get(STRICT), r.get("ckplus")
    cells = [cond, _pct(h), f"{h['macro_f1']:.3f}" if h else "-", _pct(s), f"{s['macro_f1']:.3f}" if s else "-",
             _pct(c)]
    if c is not None:
        au = c["aus"]
        d = au["delta_auc_vs_clean"]
        cells.append(f"{au['macro_roc_auc_disfa12']:.3f}" + ("" if abs(d) < 5e-4 else f" ({d:+.3f})"))
    else:
        cells.append("-")
    return "| " + " | ".join(cells) + " |"


def _most_predicted(rep: dict | None) -> str:
    """The class predicted most often and its share of the predictions."""
    if rep is None:
        return "-"
    col = np.asarray(rep["confusion_matrix"]).sum(axis=0)
    return f"{rep['class_names'][int(col.argmax())]} {100 * col.max() / max(col.sum(), 1):.0f} %"


def _side_row(cond: str, r: dict) -> str:
    h, s, c = r.get(HEADLINE), r.get(STRICT), r.get("ckplus")
    cells = [cond, f"{100 * h['agreement_with_clean']:.1f}" if h else "-",
             f"{100 * s['agreement_with_clean']:.1f}" if s else "-", _most_predicted(h or s)]
    if c is not None:
        au = c["aus"]
        mae = au.get("mean_abs_diff_vs_clean_readout")
        cells += [f"{au['macro_f1_disfa12']:.3f}", f"{au['mean_abs_diff_vs_clean']:.3f}",
                  "-" if mae is None else f"{mae:.3f}"]
    else:
        cells += ["-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def _table(res: dict, header: str, row: Callable[[str, dict], str]) -> list[str]:
    many = len(res["models"]) > 1
    cols = header.count("|") - 1
    lines = [("| model " if many else "") + header, "|---" * (cols + many) + "|"]
    for cond in res["conditions"]:
        for m in res["models"]:
            line = row(cond, m["conditions"][cond])
            lines.append(f"| `{Path(m['model']).name}` " + line if many else line)
    return lines


CONDITION_TEXT = {
    "clean": "the test crop as it is",
    "sunglasses": "dark lenses (grey 22, 8 % of the eye shows through) over both eyes, frame, bridge, "
                  "temple arms, two faint highlight streaks per lens",
    "mask": "light surgical-mask-like patch from the nose tip (55 % of the height on the mid-line) over "
            "mouth and chin, three pleats, straps leaving its corners",
    "hand_mouth": "four fingers and a palm, toned from the face's own cheeks, across the mouth from the "
                  "image's right (rows 59-95 %, columns 20-100 %)",
    "hand_cheek": "the same hand over the lower left cheek (image left), fingers up to 50 % of the height",
    "random_patches": "three flat grey rectangles (16-26 % of the side, grey 96-160) at positions drawn "
                      "from the crop's seed",
    "blur": "Gaussian blur, sigma 1.5 px at 48 px",
    "low_light": "dark tone curve (grey x 0.5, gamma 1.6) + read noise (3 grey levels) and shot noise",
    "ir_contrast": "near-infrared look: mid-tones lifted (gamma 0.6), fine texture smoothed, contrast x 0.6 "
                   "around a fixed exposure, an illuminator hot spot (gain 1.6 peaking between the eyes and the "
                   "nose, vignetting to the corners) that blows the highlights, noise",
}


def _class_share(res: dict) -> str:
    """The most frequent true class of the FERPlus set the most-predicted column reads, and its share."""
    r = res["models"][0]["conditions"][res["conditions"][0]]
    rep = r.get(HEADLINE) or r.get(STRICT)
    if rep is None:
        return "-"
    row = np.asarray(rep["confusion_matrix"]).sum(axis=1)
    return f"{rep['class_names'][int(row.argmax())]} {100 * row.max() / max(row.sum(), 1):.0f} %"


def per_au_tables(res: dict) -> list[str]:
    """CK+ ROC AUC of each DISFA AU under each condition, one table per model."""
    lines: list[str] = []
    for m in res["models"]:
        first = m["conditions"][res["conditions"][0]].get("ckplus")
        if first is None:
            continue
        aus = [a for a in ev.DISFA_AUS if a in first["aus"]["per_au"]]
        lines += ["", f"CK+ ROC AUC per action unit, `{m['model']}`:", "",
                  "| condition | " + " | ".join(aus) + " |", "|---" * (len(aus) + 1) + "|"]
        for cond in res["conditions"]:
            per = m["conditions"][cond]["ckplus"]["aus"]["per_au"]
            lines.append(f"| {cond} | " + " | ".join(f"{per[a]['roc_auc']:.2f}" for a in aus) + " |")
    return lines


def region_tables(res: dict) -> list[str]:
    """A region model's visibility per condition: mean (share hidden) per region, and the AUs it hides."""
    lines: list[str] = []
    for m in res["models"]:
        first = m["conditions"][res["conditions"][0]]
        if "regions" not in first:
            continue
        names = list(first["regions"])
        ck = "hidden_aus" in first.get("ckplus", {})
        split = res.get("ferplus_split", "test")
        lines += ["", f"What `{Path(m['model']).name}` says it sees: each region's mean visibility on FERPlus {split} "
                  f"(in brackets the share of crops where it counts as hidden, below {res['min_visibility']})"
                  + ("; on CK+ the share of the mouth AUs, eye AUs and all AUs the dashboard would grey out" if ck
                     else "") + ".", "",
                  "| condition | " + " | ".join(n.replace("_", " ") for n in names)
                  + (" | CK+ mouth AUs hidden | eye AUs hidden | all AUs hidden" if ck else "") + " |",
                  "|---" * (len(names) + 1 + 3 * ck) + "|"]
        for cond in res["conditions"]:
            r = m["conditions"][cond]
            cells = [f"{r['regions'][n]['mean_visibility']:.2f} ({100 * r['regions'][n]['hidden_share']:.0f} %)"
                     for n in names]
            if ck:
                h = r["ckplus"]["hidden_aus"]
                cells += [f"{100 * h[g]:.0f} %" for g in ("mouth_aus", "eye_aus", "all_aus")]
            lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    return lines


def markdown(res: dict) -> str:
    lines = ["# Occlusion benchmark of the emotion + AU model", "",
             f"Command: `{res['command']}`", "", f"Date: {res['date']}. Machine: {res['machine']}.", "",
             *([f"**FERPlus split: {res['ferplus_split']}**: every \"FERPlus test\" below reads this split.", ""]
               if res.get("ferplus_split", "test") != "test" else []),
             "The same test faces under each condition of `driver_monitor.training.occlusion` (deterministic: "
             "a crop's random parts are seeded by its index, its row in the plurality set of FERPlus test "
             "(label.csv order) or in CK+'s labels.csv, so every run and every model sees the same crops). "
             "Every figure, per class and per AU too: `occlusion.json`.", "",
             *(["![conditions](occlusion_examples.png)", ""] if res.get("ferplus_n") else []),
             "Accuracy in %, the change against the clean crops in points in brackets. FERPlus test: "
             f"{res.get('ferplus_n', {}).get(HEADLINE, '-')} images under the FERPlus authors' majority protocol "
             "(the headline, comparable with published figures), "
             f"{res.get('ferplus_n', {}).get(STRICT, '-')} under the project's stricter plurality protocol; "
             "8-way argmax. CK+: 327 peak frames, argmax over its 7 classes; AU: macro ROC AUC over the 12 DISFA "
             "AUs against the CK+ FACS labels, which describe the face and so are the references under every "
             "condition.", ""]
    lines += _table(res, "| condition | FERPlus authors' majority | macro F1 | FERPlus plurality | macro F1 | "
                         "CK+ | CK+ AU ROC AUC |", _main_row)
    lines += ["", "Stability against the clean crops: how often the top emotion stays the one predicted on the "
              "clean crop (FERPlus, %), the emotion predicted most often (FERPlus authors' set; its test share: "
              f"{_class_share(res)}), CK+ AU macro F1 at intensity >= 0.5, the mean absolute change of the 13 "
              "AU intensities on CK+, and their mean absolute difference from the MediaPipe readout of the "
              "clean CK+ images (`--ckplus-aus`; the readout was read from the clean images, so the clean "
              "readout is the reference under every condition).", ""]
    lines += _table(res, "| condition | same top-1 as clean, authors' set | same top-1 as clean, plurality set | "
                         "most predicted | CK+ AU F1 | CK+ AU change vs clean | CK+ AU diff vs clean readout |",
                    _side_row)
    if res.get("readout_reference"):
        lines += ["", "The MediaPipe readout itself (clean CK+ images) against the FACS labels: macro ROC AUC "
                  f"{res['readout_reference']['macro_roc_auc_disfa12']:.3f} (as `tools/evaluate.py` reports it)."]
    lines += per_au_tables(res)
    lines += region_tables(res)
    lines += ["", "## Conditions", "", "| condition | what it does (benchmark parameters in `occlusion.json`) |",
              "|---|---|"]
    lines += [f"| {c} | {CONDITION_TEXT.get(c, '')} |" for c in res["conditions"]]
    return "\n".join(lines) + "\n"


def example_faces(ds: FaceDataset, classes: tuple[str, ...] = EXAMPLE_CLASSES) -> list[int]:
    """Rows of FERPlus test (plurality set) for the montage: the first face of each class listed."""
    return [int(np.flatnonzero(ds.labels == ds.class_names.index(c))[0]) for c in classes
            if (ds.labels == ds.class_names.index(c)).any()]


def save_examples(images: np.ndarray, rows: list[int], conditions: list[str], path: Path, tile: int = 96) -> None:
    """Montage: one face per row (its benchmark index), one condition per column, names on top."""
    import cv2

    head = 18
    out = np.full((head + tile * len(rows), tile * len(conditions)), 255, np.uint8)
    for j, cond in enumerate(conditions):
        cv2.putText(out, cond, (j * tile + 3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.32, 0, 1, cv2.LINE_AA)
        for i, r in enumerate(rows):
            crop = occlude_all(images[r:r + 1], cond, start=r)[0]
            out[head + i * tile:head + (i + 1) * tile, j * tile:(j + 1) * tile] = cv2.resize(
                crop, (tile, tile), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(path), out, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def machine() -> str:
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()}; "
            f"ONNX Runtime {onnxruntime.__version__} CPU, one thread")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", action="append", default=[], help="ONNX model; repeat to compare models")
    ap.add_argument("--checkpoint", action="append", default=[], help="torch checkpoint; repeat to compare")
    ap.add_argument("--flip-tta", action="store_true", help="torch checkpoints: mirror-image averaging")
    ap.add_argument("--ferplus", help="FERPlus root (with FER2013Test/)")
    ap.add_argument("--ferplus-split", default="test", choices=["test", "valid"],
                    help="FERPlus split to occlude (valid: to choose a setting off the test set)")
    ap.add_argument("--ckplus", help="CK+ folder with labels.csv")
    ap.add_argument("--ckplus-aus", help="MediaPipe readout of the clean CK+ images (tools/label_aus.py)")
    ap.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), metavar="C",
                    help=f"conditions to run (default: all: {' '.join(CONDITIONS)})")
    ap.add_argument("--au-threshold", type=float, default=0.5)
    ap.add_argument("--min-visibility", type=float, default=0.8,
                    help="region models: a region below this visibility is hidden (engine.min_region_visibility)")
    ap.add_argument("--out", default="results/occlusion")
    args = ap.parse_args(argv)
    try:
        if not (args.onnx or args.checkpoint):
            raise DriverMonitorError("no model: pass --onnx MODEL or --checkpoint CKPT (repeatable)")
        if not (args.ferplus or args.ckplus):
            raise DriverMonitorError("no test data: pass --ferplus DIR and / or --ckplus DIR")
        if args.ckplus_aus and not args.ckplus:
            raise DriverMonitorError("--ckplus-aus is the readout of the CK+ images: pass --ckplus DIR with it")
        return run(args, argv)
    except DriverMonitorError as err:
        return report(err)


def run(args: argparse.Namespace, argv: list[str] | None) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = load_models(args.onnx, args.checkpoint, args.flip_tta)
    size = models[0][2]
    ferplus = load_ferplus_test(args.ferplus, size, args.ferplus_split) if args.ferplus else None
    ckplus = load_ckplus(args.ckplus, size=size) if args.ckplus else None
    readout = readout_reference(args.ckplus_aus, ckplus) if args.ckplus_aus else None
    conditions = list(dict.fromkeys(args.conditions))
    res: dict = {
        "command": "python tools/occlusion_eval.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.date.today().isoformat(), "machine": machine(), "conditions": conditions,
        "params": {c: None if DEFAULT_PARAMS[c] is None else asdict(DEFAULT_PARAMS[c]) for c in conditions},
        "ferplus_n": {k: len(v) for k, v in ferplus[1].items()} if ferplus else {},
        "readout_reference": readout[2] if readout else None,
        "min_visibility": args.min_visibility, "ferplus_split": args.ferplus_split,
        "models": [{"model": name, "conditions": run_model(
            predict, conditions, ferplus, ckplus, readout, args.au_threshold, name,
            region_predictor(name, name in args.onnx, args.flip_tta), args.min_visibility)}
            for name, predict, _ in models],
    }
    (out / "occlusion.json").write_text(json.dumps(res, indent=1, default=float))
    (out / "occlusion.md").write_text(markdown(res))
    if ferplus is not None:
        save_examples(ferplus[0].images, example_faces(ferplus[0]), conditions, out / "occlusion_examples.png")
    print(markdown(res).split("## Conditions")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
