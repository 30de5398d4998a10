"""A trained checkpoint made into the shipped model (``tools/export_onnx.py``): the ONNX file with
its ``dm.*`` metadata and the slim torch checkpoint beside it (weights + meta, no optimiser state),
checked for parity between ONNX Runtime and PyTorch."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..model_contract import model_metadata
from .checkpoint import load_checkpoint, save_checkpoint
from .export import check_parity, export_onnx
from .regions import AU_REGIONS


@dataclass(frozen=True)
class Release:
    """What was written: the ONNX file, the slim checkpoint, the parity error, the model's regions."""

    onnx: Path
    checkpoint: Path
    max_abs_diff: float
    region_names: tuple[str, ...]


def _metrics(meta: dict, path: str | None) -> dict:
    """The figures stored as ``dm.metrics``: the ``summary`` of tools/evaluate.py's metrics.json when
    given, else the checkpoint's own."""
    if not path:
        return meta.get("metrics", {})
    mpath = Path(path)
    if not mpath.is_file():
        raise ModelError(f"metrics file {mpath} not found; run tools/evaluate.py first")
    return json.loads(mpath.read_text()).get("summary", {})


def release_checkpoint(checkpoint: str, out: str | Path, *, pt_out: str | Path | None = None,
                       metrics: str | None = None, version: str = "1.0.0", training_data: str | None = None,
                       atol: float = 1e-4, flip_tta: bool = False) -> Release:
    """Write ``out`` (ONNX) and ``pt_out`` (default: ``out`` with ``.pt``); ``flip_tta`` bakes
    mirror-image averaging into the model. Raises ModelError when ONNX Runtime and PyTorch differ
    by more than ``atol``."""
    model, meta = load_checkpoint(checkpoint)
    if flip_tta:
        model.set_flip_tta()
    out = Path(out)
    pt_out = Path(pt_out) if pt_out else out.with_suffix(".pt")
    stored = _metrics(meta, metrics)
    meta = {**meta, "model_version": version, "metrics": stored}
    if training_data:
        meta["training_data"] = training_data
    save_checkpoint(pt_out, model, meta)
    props = model_metadata(meta, torch_checkpoint=pt_out.name, model_version=version, metrics=stored,
                           regions=model.region_names, au_regions=AU_REGIONS)
    export_onnx(model, out, props, input_size=int(meta["input_size"]))
    err = check_parity(model, out, input_size=int(meta["input_size"]), atol=atol)
    return Release(out, pt_out, err, tuple(model.region_names))
