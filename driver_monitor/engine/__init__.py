"""Inference engines for the emotion / action-unit network.

Public API (runtimes are imported only by the backend that is opened)::

    from driver_monitor.engine import create_engine
    engine, selection = create_engine(cfg.engine, project_root=PROJECT_ROOT)
    out = engine.infer(crops)          # (N, S, S) uint8 -> EngineOutput
    selection.to_dict()                # backend, device, precision, reason -> summary.json
    engine.close()
"""
from __future__ import annotations

from .base import (BACKENDS, Engine, ModelInfo, Selection, create_engine, install_hint, plan_selection,
                   read_model_info)

__all__ = ["BACKENDS", "Engine", "ModelInfo", "Selection", "create_engine", "install_hint", "plan_selection",
           "read_model_info"]
