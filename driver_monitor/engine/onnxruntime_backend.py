"""ONNX Runtime backend: the CPU provider everywhere, the CUDA provider with onnxruntime-gpu.

The only module that imports onnxruntime for inference. Session options are set for
latency at batch 1 on a small CPU: full graph optimisation, intra-op threads = the cores this
process may use less the face mesh's, one inter-op thread, sequential execution.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from ..cores import usable_cores
from ..errors import BackendUnavailableError, ModelError
from .backends import install_hint
from .base import Engine
from ..model_contract import INPUT_NAME, OUTPUT_AUS, OUTPUT_PROBS, REGION_OUTPUT_NAMES, ModelInfo

_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


def _import_ort() -> Any:
    import onnxruntime as ort

    return ort


def version() -> str:
    """The installed ONNX Runtime's version."""
    return str(_import_ort().__version__)


def probe(device: str) -> str | None:
    """None when ONNX Runtime can run on ``device`` here, else why not."""
    try:
        ort = _import_ort()
    except ImportError as exc:
        return f"onnxruntime is not installed ({exc})"
    provider = _PROVIDERS.get(device)
    if provider is None:
        return f"unknown device {device!r}"
    available = ort.get_available_providers()
    if provider not in available:
        if device == "cuda":
            return (f"{provider} is not in this onnxruntime build (providers: {', '.join(available)}); "
                    f"the CPU-only onnxruntime package is installed")
        return f"{provider} missing (providers: {', '.join(available)})"
    return None


def default_threads() -> int:
    """Intra-op threads when none are set (``engine.cpu_threads: 0``): every usable core but one,
    at least one. The frame loop runs the face mesh of the next frame beside the engine, on a
    core of its own; an engine thread on that core only takes turns with the mesh."""
    return max(1, usable_cores() - 1)


def session_options(threads: int | None = None, *, spinning: bool = False) -> Any:
    """Latency-oriented options. ``spinning=False``: worker threads sleep between runs instead of
    busy-waiting, so the CPU stages that run between engine calls (face mesh) keep the cores."""
    ort = _import_ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3  # errors only
    return so


def cpu_session(path: Path, what: str, fix: str, threads: int = 1,
                edit: Callable[[Any], None] | None = None) -> Any:
    """A CPU session of one of the small models that run beside the engine (the eye state, the
    phone detector), with :func:`session_options`; a missing or unloadable file is a
    :class:`ModelError` of one line: ``what`` names the model, ``fix`` says what to do. ``edit``
    changes the loaded graph (an ``onnx.ModelProto``) in memory before the session is made; the file
    is left as it is."""
    if not path.is_file():
        raise ModelError(f"{what} {str(path)!r} not found; {fix}")
    ort = _import_ort()
    try:
        model: Any = str(path)
        if edit is not None:
            import onnx

            proto = onnx.load(str(path))
            edit(proto)
            model = proto.SerializeToString()
        return ort.InferenceSession(model, sess_options=session_options(max(1, threads)),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own types
        raise ModelError(f"{what} {str(path)!r} could not be loaded: {exc.__class__.__name__}: "
                         f"{str(exc)[:200]}; {fix}") from None


def plain_cpu_session(path: Path | str, threads: int = 0) -> Any:
    """A CPU session of a model file with ONNX Runtime's default options (``threads`` intra-op
    threads, 0 = its default): what model-accuracy measurements read a model with
    (``engine.predict``)."""
    ort = _import_ort()
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, model: ModelInfo, device: str = "cpu", max_batch: int = 8,
                 threads: int | None = None) -> None:
        super().__init__(model.spec, model.emotion_names, model.au_names, max_batch,
                         region_names=model.region_names, au_regions=model.au_region_map())
        problem = probe(device)
        if problem is not None:
            raise BackendUnavailableError(f"onnxruntime on {device.upper()} cannot run here: {problem}. "
                                          f"To fix: {install_hint('onnxruntime', device)}")
        ort = _import_ort()
        self.device = device
        self.precision = model.precision
        self.model = model
        providers: list[Any] = [_PROVIDERS[device]]
        try:
            self._session = ort.InferenceSession(str(model.path), sess_options=session_options(threads),
                                                 providers=providers)
        except Exception as exc:  # ORT raises its own Fail / InvalidGraph / RuntimeError types
            raise ModelError(f"onnxruntime could not load {str(model.path)!r} on {device.upper()}: "
                             f"{exc.__class__.__name__}: {str(exc)[:300]}") from None
        active = self._session.get_providers()
        if not active or active[0] != _PROVIDERS[device]:
            raise BackendUnavailableError(
                f"onnxruntime did not start {_PROVIDERS[device]} (active: {active}); refusing to run on "
                f"another device silently. To fix: {install_hint('onnxruntime', device)}")
        self._outputs = [OUTPUT_PROBS, OUTPUT_AUS, *(REGION_OUTPUT_NAMES if self.region_names else ())]

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        return tuple(self._session.run(self._outputs, {INPUT_NAME: x}))

    def close(self) -> None:
        self._session = None
        super().close()


def open_engine(model: ModelInfo, *, device: str, max_batch: int, fp32_path: Path | None = None,
                cache_dir: Path | None = None, log: Callable[[str], None] | None = None,
                cpu_threads: int = 0) -> Engine:
    return OnnxRuntimeEngine(model, device=device, max_batch=max_batch, threads=cpu_threads or None)
