"""TensorRT backend: a plan built from the ONNX file, run with pycuda buffers on a stream.

Follows the documented TensorRT 11 Python API, and keeps working on 10.x where it costs little.
It has not been run on a GPU yet (none was available to test it); docs/engines.md says what was
verified where.

* TensorRT 11 builds strongly typed networks only: there are no FP16 / INT8 builder flags and
  no INT8 calibrator. Precision comes from the ONNX copy the plan is built from (fp32 as
  exported, the fp16 copy, the QDQ int8 copy; see ``precision.py``). On 10.x the network is
  created with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` so the same copies build the
  same way; on 11 that flag is accepted and ignored (strong typing is the only mode).
* ``OnnxParser`` errors are all collected and raised with their node names.
* One optimisation profile: batch ``1..max_batch`` (optimum 1, the driver alone), input
  ``(N, 1, S, S)``.
* ``build_serialized_network`` -> cached plan (``cache.py``: keyed by ONNX sha256, TensorRT
  version, GPU name + compute capability, precision, input shape and profile; written atomically;
  a mismatched or undeserializable plan is rebuilt with a message).
* ``Runtime.deserialize_cuda_engine`` -> execution context; named I/O tensors with
  ``set_tensor_address`` / ``set_input_shape``; ``execute_async_v3`` on a pycuda stream with
  page-locked host buffers and async host<->device copies.

The only module that imports tensorrt and pycuda, both inside functions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendUnavailableError, ModelError
from .backends import install_hint
from .base import Engine
from .contract import INPUT_NAME, OUTPUT_AUS, OUTPUT_PROBS, ModelInfo
from .cache import PlanKey, load_or_build

WORKSPACE_BYTES = 1 << 30


def _import_trt() -> Any:
    import tensorrt as trt

    return trt


def _import_cuda() -> Any:
    import pycuda.driver as cuda

    cuda.init()
    return cuda


def probe(device: str) -> str | None:
    """None when TensorRT + pycuda + a CUDA GPU are here, else why not."""
    if device != "cuda":
        return "TensorRT runs on a CUDA GPU only"
    try:
        _import_trt()
    except ImportError as exc:
        return f"tensorrt is not installed ({exc})"
    except Exception as exc:  # a broken install (missing libnvinfer) raises OSError and friends
        return f"tensorrt cannot be imported ({exc.__class__.__name__}: {exc})"
    try:
        cuda = _import_cuda()
    except ImportError as exc:
        return f"pycuda is not installed ({exc})"
    except Exception as exc:  # pycuda._driver.Error: no driver / no device
        return f"the CUDA driver cannot start ({exc.__class__.__name__}: {exc})"
    if cuda.Device.count() < 1:
        return "no CUDA GPU found"
    return None


def version() -> str:
    """The installed TensorRT's version (call after ``probe`` said it is usable)."""
    import tensorrt as trt

    return str(trt.__version__)


def gpu_identity(device_index: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of the GPU plans are built for."""
    cuda = _import_cuda()
    dev = cuda.Device(device_index)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


def _make_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps warnings and errors (they go into our error messages)."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                self.messages.append(f"{getattr(severity, 'name', severity)}: {msg}")

    return _Logger()


def _parser_errors(parser: Any) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = getattr(err, "node_name", lambda: "")() or str(getattr(err, "node", lambda: -1)())
        op = getattr(err, "node_operator", lambda: "")()
        out.append(f"{err.desc()} (node {node}{' ' + op if op else ''}, code {err.code()})")
    return out


def build_plan(onnx_path: str | Path, *, input_size: int, max_batch: int, opt_batch: int = 1,
               log: Callable[[str], None] | None = None) -> bytes:
    """Parse ``onnx_path`` into a strongly typed network and build a serialized plan."""
    trt = _import_trt()
    log = log or (lambda msg: None)
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    flags = 0
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed is not None:  # needed on 10.x, accepted (and implied) on 11.x
        flags |= 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    data = Path(onnx_path).read_bytes()
    if not parser.parse(data, str(onnx_path)):
        errors = _parser_errors(parser) or logger.messages[-5:] or ["no details"]
        raise ModelError(f"TensorRT could not parse {str(onnx_path)!r}: " + "; ".join(errors))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    shape = (1, input_size, input_size)
    profile.set_shape(INPUT_NAME, (1, *shape), (max(1, min(opt_batch, max_batch)), *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    log(f"tensorrt {trt.__version__}: building {Path(onnx_path).name} for batch 1..{max_batch}")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"TensorRT could not build a plan from {str(onnx_path)!r}: "
                         + ("; ".join(logger.messages[-5:]) or "no details from the builder"))
    return bytes(plan)


def plan_key(model: ModelInfo, max_batch: int, opt_batch: int = 1) -> PlanKey:
    trt = _import_trt()
    name, cc = gpu_identity()
    s = model.spec.size
    return PlanKey(onnx_sha256=model.sha256, trt_version=str(trt.__version__), gpu_name=name,
                   compute_capability=cc, precision=model.precision, input_shape=(1, s, s),
                   min_batch=1, opt_batch=opt_batch, max_batch=max_batch)


class TensorRTEngine(Engine):
    """A deserialized plan with page-locked host buffers and device buffers for ``max_batch``."""

    name = "tensorrt"
    device = "cuda"

    def __init__(self, model: ModelInfo, *, cache_dir: Path, max_batch: int = 8,
                 log: Callable[[str], None] | None = None, force_rebuild: bool = False) -> None:
        super().__init__(model.spec, model.emotion_names, model.au_names, max_batch)
        problem = probe("cuda")
        if problem is not None:
            raise BackendUnavailableError(f"tensorrt cannot run here: {problem}. "
                                          f"To fix: {install_hint('tensorrt', 'cuda')}")
        trt = _import_trt()
        cuda = _import_cuda()
        self.precision = model.precision
        self.model = model
        self._cuda = cuda
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        try:
            self._logger = _make_logger(trt)
            self._runtime = trt.Runtime(self._logger)
            key = plan_key(model, max_batch)
            self.key = key

            def deserialize(data: bytes) -> Any:
                engine = self._runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise RuntimeError("; ".join(self._logger.messages[-3:]) or "deserialize_cuda_engine returned None")
                return engine

            self._engine, self.plan_path, self.built = load_or_build(
                cache_dir, model.path.stem if model.precision == "fp32" else model.path.stem.rsplit(".", 1)[0],
                key,
                build=lambda: build_plan(model.path, input_size=model.spec.size, max_batch=max_batch, log=log),
                deserialize=deserialize, log=log, force=force_rebuild,
                extra={"onnx_file": model.path.name, "model_version": model.version})
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise ModelError(f"TensorRT could not create an execution context for {self.plan_path.name}")
            self._stream = cuda.Stream()
            self._host: dict[str, np.ndarray] = {}
            self._dev: dict[str, Any] = {}
            names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
            expected = {INPUT_NAME, OUTPUT_PROBS, OUTPUT_AUS}
            if set(names) != expected:
                raise ModelError(f"plan {self.plan_path.name} has I/O tensors {names}; expected {sorted(expected)}")
            widths = {INPUT_NAME: None, OUTPUT_PROBS: len(self.emotion_names), OUTPUT_AUS: len(self.au_names)}
            for name in names:
                dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
                if dtype != np.float32:
                    raise ModelError(f"plan tensor {name!r} is {dtype}; the ONNX copies keep float32 I/O, "
                                     f"rebuild the copy with `driver-monitor engines build`")
                shape = (max_batch, 1, model.spec.size, model.spec.size) if name == INPUT_NAME \
                    else (max_batch, widths[name])
                self._host[name] = cuda.pagelocked_empty(shape, dtype)
                self._dev[name] = cuda.mem_alloc(self._host[name].nbytes)
                self._context.set_tensor_address(name, int(self._dev[name]))
        finally:
            self._ctx.pop()

    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        cuda = self._cuda
        n = x.shape[0]
        self._ctx.push()
        try:
            if not self._context.set_input_shape(INPUT_NAME, tuple(x.shape)):
                raise ModelError(f"TensorRT refused input shape {tuple(x.shape)} (profile batch 1..{self.max_batch})")
            h_in = self._host[INPUT_NAME]
            np.copyto(h_in[:n], x)
            cuda.memcpy_htod_async(self._dev[INPUT_NAME], h_in[:n], self._stream)
            if not self._context.execute_async_v3(stream_handle=self._stream.handle):
                raise ModelError("TensorRT execute_async_v3 failed: " + "; ".join(self._logger.messages[-3:]))
            for name in (OUTPUT_PROBS, OUTPUT_AUS):
                cuda.memcpy_dtoh_async(self._host[name][:n], self._dev[name], self._stream)
            self._stream.synchronize()
            return self._host[OUTPUT_PROBS][:n].copy(), self._host[OUTPUT_AUS][:n].copy()
        finally:
            self._ctx.pop()

    def close(self) -> None:
        if getattr(self, "_ctx", None) is not None and not self._closed:
            self._ctx.push()
            try:
                for mem in self._dev.values():
                    mem.free()
                self._dev.clear()
                self._context = None
                self._engine = None
            finally:
                self._ctx.pop()
                self._ctx.detach()
                self._ctx = None
        super().close()


def open_engine(model: ModelInfo, *, device: str, max_batch: int, fp32_path: Path | None = None,
                cache_dir: Path | None = None, log: Callable[[str], None] | None = None,
                force_rebuild: bool = False, cpu_threads: int = 0) -> Engine:
    if device != "cuda":
        raise BackendUnavailableError("tensorrt runs on a CUDA GPU only; use engine.device=cuda or auto")
    if cache_dir is None:
        cache_dir = model.path.parent
    return TensorRTEngine(model, cache_dir=Path(cache_dir), max_batch=max_batch, log=log,
                          force_rebuild=force_rebuild)
