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
import json
import sys
from pathlib import Path


from driver_monitor.errors import DriverMonitorError, ModelError, report


def main(argv: list[str] | None = None) -> int:
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
    args = ap.parse_args(argv)
    try:
        from driver_monitor.model.checkpoint import load_checkpoint, save_checkpoint
        from driver_monitor.model_contract import model_metadata
        from driver_monitor.model.export import check_parity, export_onnx
        from driver_monitor.model.regions import AU_REGIONS

        model, meta = load_checkpoint(args.checkpoint)
        if args.flip_tta:
            model.set_flip_tta()
        out = Path(args.out)
        pt_out = Path(args.pt_out) if args.pt_out else out.with_suffix(".pt")
        metrics = meta.get("metrics", {})
        if args.metrics:
            mpath = Path(args.metrics)
            if not mpath.is_file():
                raise ModelError(f"metrics file {mpath} not found; run tools/evaluate.py first")
            metrics = json.loads(mpath.read_text()).get("summary", {})
        meta = {**meta, "model_version": args.version, "metrics": metrics}
        if args.training_data:
            meta["training_data"] = args.training_data
        save_checkpoint(pt_out, model, meta)
        props = model_metadata(meta, torch_checkpoint=pt_out.name, model_version=args.version, metrics=metrics,
                               regions=model.region_names, au_regions=AU_REGIONS)
        export_onnx(model, out, props, input_size=int(meta["input_size"]))
        err = check_parity(model, out, input_size=int(meta["input_size"]), atol=args.atol)
        regions = f"; regions {', '.join(model.region_names)}" if model.region_names else ""
        print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and {pt_out} "
              f"({pt_out.stat().st_size / 1e6:.2f} MB); ONNX Runtime vs PyTorch max abs diff {err:.2e}{regions}")
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
