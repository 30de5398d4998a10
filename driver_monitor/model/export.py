"""ONNX export of the emotion + AU network, with its metadata inside the file.

The file follows the model contract of ``model_contract.py`` (names, opset, the ``dm.*`` keys
written by ``contract.model_metadata``), which the engines and tools/evaluate.py read. A plain
network exports the two outputs ``emotion_probs`` / ``au_intensity``; the region-attention variant
adds ``region_attention`` and ``region_visibility`` (``forward_regions``: attention weights and
visibility probabilities, ``(N, R)`` each), and its metadata must name its regions (``dm.regions``,
``dm.au_regions``: ``model_metadata(..., regions=..., au_regions=...)``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from ..model_contract import INPUT_NAME, OPSET, OUTPUT_NAMES, REGION_OUTPUT_NAMES
from ..errors import ModelError
from .network import EmotionAUNet


class _RegionOutputs(torch.nn.Module):
    """Traces ``forward_regions``: the four outputs of the region-attention network."""

    def __init__(self, net: EmotionAUNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.net.forward_regions(x)


def _regions(model: EmotionAUNet) -> tuple[str, ...]:
    return tuple(getattr(model, "region_names", ()) or ())


def _check_region_metadata(model: EmotionAUNet, metadata: dict[str, str]) -> None:
    """The metadata names the network's regions (region-attention) or none (plain)."""
    regions = _regions(model)
    listed = metadata.get("dm.regions")
    if not regions and listed is None:
        return
    if not regions:
        raise ModelError(f"the metadata names regions ({listed}) but the network is the plain one (no region "
                         f"outputs); export it without regions")
    if listed is None or json.loads(listed) != list(regions) or "dm.au_regions" not in metadata:
        raise ModelError(f"the region-attention network has regions {list(regions)} but the metadata says "
                         f"dm.regions={listed}; write it with model_metadata(..., regions=model.region_names, "
                         f"au_regions=...)")


def export_onnx(model: EmotionAUNet, out_path: str | os.PathLike, metadata: dict[str, str],
                *, input_size: int = 48, opset: int = OPSET) -> Path:
    """Write ``out_path`` (temp file + rename) and return it."""
    import onnx

    _check_region_metadata(model, metadata)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    dummy = torch.zeros(2, 1, input_size, input_size)
    tmp = out_path.with_name(out_path.name + ".tmp")
    if _regions(model):
        # eval() on the wrapper too: the exporter puts a module back in the mode it found it in,
        # and a wrapper left training would switch the caller's network to training mode
        traced, names = _RegionOutputs(model).eval(), [*OUTPUT_NAMES, *REGION_OUTPUT_NAMES]
    else:
        traced, names = model, list(OUTPUT_NAMES)
    with torch.no_grad():
        torch.onnx.export(
            traced, (dummy,), str(tmp), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=names,
            dynamic_axes={INPUT_NAME: {0: "N"}, **{name: {0: "N"} for name in names}},
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


def _reference(model: EmotionAUNet, x: np.ndarray, with_regions: bool) -> list[np.ndarray]:
    with torch.no_grad():
        t = torch.from_numpy(x)
        outs = model.forward_regions(t) if with_regions else model(t)
    return [o.numpy() for o in outs]


def check_parity(model: EmotionAUNet, onnx_path: str | os.PathLike, *, input_size: int = 48,
                 batches: tuple[int, ...] = (1, 7), atol: float = 1e-4, seed: int = 0) -> float:
    """Max |torch - onnxruntime| over every output on random inputs (the region outputs too when
    the file has them, against ``forward_regions``); ModelError above ``atol``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with_regions = set(REGION_OUTPUT_NAMES) <= {o.name for o in sess.get_outputs()}
    if with_regions and not _regions(model):
        raise ModelError(f"{onnx_path} has region outputs but the network is the plain one")
    names = [*OUTPUT_NAMES, *REGION_OUTPUT_NAMES] if with_regions else list(OUTPUT_NAMES)
    rng = np.random.default_rng(seed)
    worst = 0.0
    model = model.eval().cpu()
    for n in batches:
        x = rng.uniform(-1, 1, size=(n, 1, input_size, input_size)).astype(np.float32)
        ref = _reference(model, x, with_regions)
        got = sess.run(names, {INPUT_NAME: x})
        for name, r, o in zip(names, ref, got):
            if r.shape != o.shape:
                raise ModelError(f"ONNX output {name} shape {o.shape} differs from torch {r.shape} at batch {n}")
            worst = max(worst, float(np.abs(r - o).max()))
    if worst > atol:
        raise ModelError(f"ONNX Runtime differs from PyTorch by {worst:.2e} (> {atol:.0e}) in {onnx_path}")
    return worst
