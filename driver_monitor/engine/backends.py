"""The one table of inference backends: for each, where it lives, what it runs on, at which
precisions, how to install it, and where ``auto`` tries it. Selection (``select.py``), ``bench``
and the error messages read it; nothing else lists backends.

Each backend module imports its runtime inside itself; this module imports none of them.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from ..errors import ConfigError

DEVICES = ("cuda", "cpu")


@dataclass(frozen=True, slots=True)
class Backend:
    """name: as in config (engine.backend); module: its adapter, relative to this package;
    devices: what it can run on, in the order ``device: auto`` tries them; precisions: the model
    copies it runs; install: device -> how to get it; auto: device -> place in ``backend: auto``'s
    order (lower first; a device missing here is never chosen by auto)."""

    name: str
    module: str
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    install: dict[str, str] = field(default_factory=dict)
    auto: dict[str, int] = field(default_factory=dict)


TABLE: tuple[Backend, ...] = (
    Backend("tensorrt", ".tensorrt_backend", ("cuda",), ("fp32", "fp16", "int8"),
            install={"cuda": 'install TensorRT and pycuda with `pip install -e ".[gpu]"` '
                             "(needs an NVIDIA GPU and driver)"},
            auto={"cuda": 0}),
    Backend("onnxruntime", ".onnxruntime_backend", ("cuda", "cpu"), ("fp32", "fp16", "int8"),
            install={"cuda": "install the GPU build of ONNX Runtime: `pip uninstall onnxruntime && "
                             "pip install onnxruntime-gpu` (needs an NVIDIA GPU, CUDA 12 and cuDNN 9)",
                     "cpu": "install ONNX Runtime: `pip install onnxruntime`"},
            auto={"cuda": 1, "cpu": 2}),
    Backend("torch", ".torch_backend", ("cuda", "cpu"), ("fp32",),
            install={"cuda": "install a CUDA build of PyTorch (https://pytorch.org/get-started/) "
                             "on a machine with an NVIDIA GPU",
                     "cpu": "install the CPU build of PyTorch: `pip install torch==2.13.0 --extra-index-url "
                            "https://download.pytorch.org/whl/cpu` (plain `pip install torch` pulls the CUDA build)"}),
)
BY_NAME: dict[str, Backend] = {b.name: b for b in TABLE}
BACKENDS: tuple[str, ...] = tuple(BY_NAME)
# backend: auto tries these (backend, device) pairs in this order
AUTO_ORDER: tuple[tuple[str, str], ...] = tuple(
    (b, d) for _, b, d in sorted((rank, b.name, d) for b in TABLE for d, rank in b.auto.items()))


def backend(name: str) -> Backend:
    if name not in BY_NAME:
        raise ConfigError(f"engine backend {name!r} is unknown; use one of auto, {', '.join(BACKENDS)}")
    return BY_NAME[name]


def backend_module(name: str) -> ModuleType:
    """The module implementing ``name`` (imports only our adapter, not its runtime)."""
    return importlib.import_module(backend(name).module, __package__)


def install_hint(name: str, device: str) -> str:
    b = BY_NAME.get(name)
    return b.install.get(device, "") if b is not None else ""
