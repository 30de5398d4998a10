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
import sys

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.training.occlusion import CONDITIONS
from driver_monitor.training.occlusion_eval import OcclusionOptions, run_benchmark
from driver_monitor.training.occlusion_report import markdown


def build_parser() -> argparse.ArgumentParser:
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
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = "python tools/occlusion_eval.py " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        res = run_benchmark(OcclusionOptions(**vars(args)), command)
    except DriverMonitorError as err:
        return report(err)
    print(markdown(res).split("## Conditions")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
