#!/usr/bin/env python
"""Rebuild engines: the FP16 / INT8 ONNX copies and (where TensorRT and a GPU exist) the plans.

A thin wrapper over ``driver-monitor engines ...``; every option of those commands works here:

    python tools/build_engine.py                       # = driver-monitor engines build
    python tools/build_engine.py build --precision int8 --calib-dir DIR
    python tools/build_engine.py list
    python tools/build_engine.py clean [--all] [--dry-run]
    python tools/build_engine.py --set engine.max_batch=16 build --plans yes
"""
from __future__ import annotations

import sys

from driver_monitor.cli import main

ACTIONS = ("build", "list", "clean", "-h", "--help")


def run(argv: list[str]) -> int:
    # options before the action (--config, --set, --backend) go before "engines"
    i = next((k for k, a in enumerate(argv) if a in ACTIONS), len(argv))
    head, tail = argv[:i], argv[i:] or ["build"]
    return main([*head, "engines", *tail])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
