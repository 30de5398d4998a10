"""PyTorch backend: CPU or CUDA eager inference; the reference the other backends are checked against.

The only engine module that imports torch. The network comes from the checkpoint named by the
ONNX file's ``dm.torch_checkpoint`` metadata (beside the fp32 ONNX), loaded with
``driver_monitor.model.load_checkpoint``; tests hand in a module directly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendUnavailableError, ModelError
from ..preprocess import InputSpec
from .backends import install_hint
from .base import Engine
from ..model_contract import ModelInfo


def probe(device: str) -> str | None:
    try:
        import torch
    except ImportError as exc:
        return f"torch is not installed ({exc})"
    if device == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only torch build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            return f"torch.cuda.is_available() is False ({build}, torch {torch.__version__})"
        return None
    if device == "cpu":
        return None
    return f"unknown device {device!r}"


class TorchEngine(Engine):
    """Eager torch inference of a module with ``forward(x) -> (emotion_probs, au_intensity)``; a
    region-attention network (``region_names`` set) runs ``forward_regions`` for its four outputs."""

    name = "torch"
    precision = "fp32"

    def __init__(self, module: Any, spec: InputSpec, emotion_names: Sequence[str], au_names: Sequence[str],
                 *, device: str = "cpu", max_batch: int = 8,
                 au_regions: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(spec, emotion_names, au_names, max_batch,
                         region_names=tuple(getattr(module, "region_names", ()) or ()), au_regions=au_regions)
        problem = probe(device)
        if problem is not None:
            raise BackendUnavailableError(f"torch on {device.upper()} cannot run here: {problem}. "
                                          f"To fix: {install_hint('torch', device)}")
        import torch

        self._torch = torch
        self.device = device
        self._module = module.to(device).eval()

    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        torch = self._torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device)
            outs = self._module.forward_regions(t) if self.region_names else self._module(t)
            return tuple(o.float().cpu().numpy() for o in outs)

    def close(self) -> None:
        self._module = None
        super().close()


def checkpoint_path(model: ModelInfo, fp32_path: Path | None) -> Path:
    if not model.torch_checkpoint:
        raise ModelError(f"model {str(model.path)!r} names no torch checkpoint (dm.torch_checkpoint); "
                         f"the torch backend needs it: re-export with tools/export_onnx.py or use "
                         f"--backend onnxruntime")
    base = (fp32_path or model.path).parent
    return base / model.torch_checkpoint


def open_engine(model: ModelInfo, *, device: str, max_batch: int, fp32_path: Path | None = None,
                cache_dir: Path | None = None, log: Callable[[str], None] | None = None,
                cpu_threads: int = 0) -> Engine:
    problem = probe(device)
    if problem is not None:
        raise BackendUnavailableError(f"torch on {device.upper()} cannot run here: {problem}. "
                                      f"To fix: {install_hint('torch', device)}")
    ckpt = checkpoint_path(model, fp32_path)
    if not ckpt.is_file():
        raise ModelError(f"torch checkpoint {str(ckpt)!r} (named by {model.path.name}) does not exist; "
                         f"copy it beside the ONNX model or use --backend onnxruntime")
    try:
        from ..model import load_checkpoint
    except ImportError as exc:
        raise BackendUnavailableError(f"driver_monitor.model.load_checkpoint cannot be imported ({exc}). "
                                      f"To fix: {install_hint('torch', 'cpu')}") from None
    if cpu_threads > 0 and device == "cpu":
        import torch

        torch.set_num_threads(cpu_threads)  # process-wide: torch has no per-module thread pool
    module, meta = load_checkpoint(ckpt, map_location="cpu")
    engine = TorchEngine(module, model.spec, model.emotion_names, model.au_names, device=device,
                         max_batch=max_batch, au_regions=model.au_region_map())
    if engine.region_names != model.region_names:
        raise ModelError(f"torch checkpoint {str(ckpt)!r} has regions {list(engine.region_names)} but "
                         f"{model.path.name} lists {list(model.region_names)}; re-export both with "
                         f"tools/export_onnx.py")
    return engine
