"""The report of the occlusion benchmark (``occlusion_eval``): ``occlusion.md``, the montage of
the conditions (``occlusion_examples.png``) and the machine it ran on."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Callable

import numpy as np

from .datasets import FaceDataset
from .model_eval import DISFA_AUS
from .occlusion import occlude_all

HEADLINE, STRICT = "ferplus_test_authors_majority", "ferplus_test"
EXAMPLE_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger")


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
        aus = [a for a in DISFA_AUS if a in first["aus"]["per_au"]]
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
    from ..engine.onnxruntime_backend import version

    cpu = platform.processor() or platform.machine()
    try:
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPU cores, {platform.system()}; "
            f"ONNX Runtime {version()} CPU, one thread")
