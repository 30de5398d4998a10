"""Inference engines for the emotion / action-unit network.

Public API (runtimes are imported only by the backend that is opened)::

    from driver_monitor.engine import create_engine
    engine, selection = create_engine(cfg.engine, project_root=PROJECT_ROOT)
    out = engine.infer(crops)          # (N, S, S) uint8 -> EngineOutput
    selection.to_dict()                # backend, device, precision, reason -> summary.json
    engine.close()

Modules: ``backends`` (the table of backends), ``base`` (the Engine interface), ``select`` (the
choice), ``precision`` (fp16 / int8 copies), ``cache`` (TensorRT plans), one module per backend,
``commands`` (``driver-monitor engines``). The model file's contract, which the exporter in
``driver_monitor.model`` writes to, is ``driver_monitor.model_contract``, below both.
"""
from __future__ import annotations

from ..model_contract import ModelInfo, read_model_info
from .backends import BACKENDS, install_hint
from .base import Engine, Selection
from .select import create_engine, open_engine_or_none, plan_selection

__all__ = ["BACKENDS", "Engine", "ModelInfo", "Selection", "create_engine", "install_hint", "open_engine_or_none",
           "plan_selection", "read_model_info"]
