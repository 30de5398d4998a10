"""Predictors of a model file, for measuring a model's accuracy: crops in, outputs out.

A predictor maps uint8 grey crops ``(N, S, S)`` to ``(emotion probabilities (N, C), AU
intensities (N, K))`` as numpy arrays; with it come the model's input spec and its metadata. The
ONNX ones run ONNX Runtime on the CPU with its default session options (``threads`` intra-op
threads, 0 = ONNX Runtime's default), the way the model-accuracy figures are measured; the app's
engines are :func:`~driver_monitor.engine.select.create_engine`'s. Predictors of a torch
checkpoint need the network's code and are made in ``driver_monitor.training.predictors``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..model_contract import (
    INPUT_NAME, OUTPUT_AUS, OUTPUT_PROBS, OUTPUT_REGION_VISIBILITY, read_metadata, read_model_info,
)
from ..preprocess import InputSpec, to_input
from .onnxruntime_backend import plain_cpu_session

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
#: crops -> region visibility (N, R) of a region-attention model
VisibilityPredictor = Callable[[np.ndarray], np.ndarray]


def onnx_predictor(path: Path, threads: int = 0) -> tuple[Predictor, InputSpec, dict]:
    """(predictor, input spec, ``dm.*`` metadata) of an ONNX model file."""
    props = read_metadata(path)
    spec = InputSpec(int(props["dm.input_size"]), float(props["dm.input_mean"]), float(props["dm.input_std"]))
    sess = plain_cpu_session(path, threads)

    def predict(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, a = sess.run([OUTPUT_PROBS, OUTPUT_AUS], {INPUT_NAME: to_input(crops, spec)})
        return p, a

    return predict, spec, props


def onnx_visibility_predictor(path: str | Path,
                              threads: int = 1) -> tuple[VisibilityPredictor, tuple[str, ...]] | None:
    """(crops -> region visibility, region names) of a region-attention ONNX model; None for a
    plain one."""
    info = read_model_info(path)
    if not info.region_names:
        return None
    sess = plain_cpu_session(path, threads)
    return (lambda crops: sess.run([OUTPUT_REGION_VISIBILITY], {INPUT_NAME: to_input(crops, info.spec)})[0],
            info.region_names)
