"""ONNX export of the emotion + AU network, with its metadata inside the file.

The file is the contract the inference engines read (see docs/model.md):

* input ``face``: float32 ``(N, 1, S, S)``, dynamic batch axis ``N``, from ``preprocess.to_input``;
* outputs ``emotion_probs`` float32 ``(N, 8)`` (softmax, EMOTIONS order) and ``au_intensity``
  float32 ``(N, 13)`` in [0, 1] (AUS order); opset 17;
* ``metadata_props`` (strings): ``dm.emotion_names`` / ``dm.au_names`` (JSON lists),
  ``dm.input_size``, ``dm.input_mean``, ``dm.input_std``, ``dm.model_version``,
  ``dm.training_data``, ``dm.metrics`` (JSON), ``dm.torch_checkpoint``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from .network import EmotionAUNet

INPUT_NAME = "face"
OUTPUT_NAMES = ("emotion_probs", "au_intensity")
OPSET = 17
REQUIRED_KEYS = (
    "dm.emotion_names", "dm.au_names", "dm.input_size", "dm.input_mean", "dm.input_std",
    "dm.model_version", "dm.training_data", "dm.metrics", "dm.torch_checkpoint",
)


def onnx_metadata(meta: dict[str, Any], *, torch_checkpoint: str, model_version: str | None = None,
                  metrics: dict[str, Any] | None = None) -> dict[str, str]:
    """Checkpoint meta -> the ``dm.*`` string properties stored in the ONNX file."""
    return {
        "dm.emotion_names": json.dumps(list(meta["emotion_names"])),
        "dm.au_names": json.dumps(list(meta["au_names"])),
        "dm.input_size": str(int(meta["input_size"])),
        "dm.input_mean": repr(float(meta["input_mean"])),
        "dm.input_std": repr(float(meta["input_std"])),
        "dm.model_version": str(model_version or meta.get("model_version", "unversioned")),
        "dm.training_data": str(meta.get("training_data", "unknown")),
        "dm.metrics": json.dumps(metrics if metrics is not None else meta.get("metrics", {}), sort_keys=True),
        "dm.torch_checkpoint": torch_checkpoint,
    }


def export_onnx(model: EmotionAUNet, out_path: str | os.PathLike, metadata: dict[str, str],
                *, input_size: int = 48, opset: int = OPSET) -> Path:
    """Write ``out_path`` (temp file + rename) and return it."""
    import onnx

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, 1, input_size, input_size)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with torch.no_grad():
        torch.onnx.export(
            model, (dummy,), str(tmp), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAMES[0]: {0: "N"}, OUTPUT_NAMES[1]: {0: "N"}},
            do_constant_folding=True,
        )
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "driver-monitor tools/export_onnx.py"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(tmp))
    os.replace(tmp, out_path)
    return out_path


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """``dm.*`` properties of an ONNX file; ModelError if one is missing."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX model {path} not found; export one with tools/export_onnx.py")
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in REQUIRED_KEYS if k not in props]
    if missing:
        raise ModelError(f"ONNX model {path} lacks metadata {missing}; re-export it with tools/export_onnx.py")
    return props


def check_parity(model: EmotionAUNet, onnx_path: str | os.PathLike, *, input_size: int = 48,
                 batches: tuple[int, ...] = (1, 7), atol: float = 1e-4, seed: int = 0) -> float:
    """Max |torch - onnxruntime| over both outputs on random inputs; ModelError above ``atol``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    model = model.eval().cpu()
    for n in batches:
        x = rng.uniform(-1, 1, size=(n, 1, input_size, input_size)).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in model(torch.from_numpy(x))]
        got = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        for r, o in zip(ref, got):
            if r.shape != o.shape:
                raise ModelError(f"ONNX output shape {o.shape} differs from torch {r.shape} at batch {n}")
            worst = max(worst, float(np.abs(r - o).max()))
    if worst > atol:
        raise ModelError(f"ONNX Runtime differs from PyTorch by {worst:.2e} (> {atol:.0e}) in {onnx_path}")
    return worst
