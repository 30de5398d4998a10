"""The report of a model-accuracy evaluation (``model_eval``): ``report.md`` and the
confusion-matrix pictures."""
from __future__ import annotations

from pathlib import Path

import numpy as np


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


def _emotion_sections(res: dict) -> list[str]:
    lines: list[str] = []
    for key, rep in res.get("emotion", {}).items():
        lines += ["", f"## {key}: {rep['protocol']}", ""]
        if "protocol_rule" in rep:
            lines += [f"Images kept: {rep['protocol_rule']}.", ""]
        lines += [f"n = {rep['n']}, accuracy {rep['accuracy']:.4f}, macro F1 {rep['macro_f1']:.4f}", "",
                  f"![confusion]({rep['confusion_png']})", "",
                  "| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for c, m in rep["per_class"].items():
            lines.append(f"| {c} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    return lines


def _au_sections(res: dict) -> list[str]:
    lines: list[str] = []
    for key, au in res.get("aus", {}).items():
        lines += ["", f"## {key}: AU presence (CK+ FACS labels)", "",
                  f"macro ROC AUC over the 12 DISFA AUs: {au['macro_roc_auc_disfa12']:.4f}; "
                  f"macro F1 at intensity >= {au['f1_threshold']}: {au['macro_f1_disfa12']:.4f}", "",
                  "| AU | ROC AUC | F1 | positives |", "|---|---|---|---|"]
        for a, m in au["per_au"].items():
            lines.append(f"| {a} | {m['roc_auc']:.3f} | {m['f1']:.3f} | {m['positives']} |")
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
    lines += _emotion_sections(res)
    lines += _au_sections(res)
    if res.get("precision_copies"):
        lines += markdown_precision_copies(res["precision_copies"])
    if "latency" in res:
        lines += ["", "## Latency (ONNX Runtime CPU, batch 1)", ""]
        for k, v in res["latency"].items():
            lines.append(f"- {k}: median {v['median_ms']:.3f} ms, p90 {v['p90_ms']:.3f} ms over {v['runs']} runs")
    return "\n".join(lines) + "\n"
