"""ONNX export of the emotion + AU network, with its metadata inside the file.

The file follows the model contract of ``engine/contract.py`` (names, opset, the ``dm.*`` keys
written by ``contract.model_metadata``), which the engines and tools/evaluate.py read.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..engine.contract import INPUT_NAME, OPSET, OUTPUT_NAMES
from ..errors import ModelError
from .network import EmotionAUNet

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
