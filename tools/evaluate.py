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
import sys

from driver_monitor.engine.precision import COPY_KINDS
from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.training.model_eval import ModelEvalOptions, evaluate_model


def build_parser() -> argparse.ArgumentParser:
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
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python tools/evaluate.py " + " ".join(argv or sys.argv[1:])
    try:
        res = evaluate_model(ModelEvalOptions(**vars(args)), command)
    except DriverMonitorError as err:
        return report(err)
    print(json.dumps(res["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
