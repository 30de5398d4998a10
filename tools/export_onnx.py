#!/usr/bin/env python
"""Export a trained checkpoint to the shipped ONNX model (+ the matching torch checkpoint).

    python tools/export_onnx.py --checkpoint runs/ferplus/best.pt \
        --metrics results/eval/metrics.json --version 1.0.0 \
        --out engines/emotion_au.onnx --pt-out engines/emotion_au.pt

Writes the ONNX file (opset 17, dynamic batch axis "N", metadata ``dm.*`` inside the file), a
slim copy of the checkpoint (weights + meta, no optimiser state) beside it, and checks that ONNX
Runtime matches PyTorch within 1e-4 (exit code 4 if not). A region-attention checkpoint also
exports ``region_attention`` and ``region_visibility`` with ``dm.regions`` / ``dm.au_regions``
(its regions and ``model.regions.AU_REGIONS``); a plain one exports the two outputs as before.
"""
from __future__ import annotations

import argparse
import sys

from driver_monitor.errors import DriverMonitorError, report


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="training checkpoint (best.pt)")
    ap.add_argument("--out", default="engines/emotion_au.onnx")
    ap.add_argument("--pt-out", default=None, help="slim torch checkpoint (default: <out>.pt beside the ONNX)")
    ap.add_argument("--metrics", default=None, help="JSON from tools/evaluate.py to store as dm.metrics")
    ap.add_argument("--version", default="1.0.0", help="dm.model_version")
    ap.add_argument("--training-data", default=None, help="override dm.training_data")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--flip-tta", action="store_true",
                    help="bake test-time augmentation into the model: every crop is read together with its "
                         "mirror image (same engine call, batch doubled inside) and the outputs averaged")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from driver_monitor.model.release import release_checkpoint

        r = release_checkpoint(args.checkpoint, args.out, pt_out=args.pt_out, metrics=args.metrics,
                               version=args.version, training_data=args.training_data, atol=args.atol,
                               flip_tta=args.flip_tta)
    except DriverMonitorError as err:
        return report(err)
    regions = f"; regions {', '.join(r.region_names)}" if r.region_names else ""
    print(f"wrote {r.onnx} ({r.onnx.stat().st_size / 1e6:.2f} MB) and {r.checkpoint} "
          f"({r.checkpoint.stat().st_size / 1e6:.2f} MB); ONNX Runtime vs PyTorch max abs diff "
          f"{r.max_abs_diff:.2e}{regions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
