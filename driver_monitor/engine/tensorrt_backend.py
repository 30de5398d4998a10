"""TensorRT backend: a plan built from the ONNX file, run with pycuda buffers on a stream.

Follows the documented TensorRT 11 Python API, and keeps working on 10.12 and later 10.x where it
costs little. It has not been run on a GPU yet (none was available to test it); docs/engines.md
says what was verified where.

* TensorRT 11 builds strongly typed networks only: there are no FP16 / INT8 builder flags and
  no INT8 calibrator. Precision comes from the ONNX copy the plan is built from (fp32 as
  exported, the fp16 copy, the QDQ int8 copy; see ``precision.py``). On 10.x the network is
  created with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED`` so the same copies build the
  same way; on 11 that flag is deprecated and ignored, and no flag is passed.
* ``OnnxParser`` errors are all collected and raised with their node names.
* One optimisation profile: batch ``1..max_batch`` (optimum 1, the driver alone), input
  ``(N, 1, S, S)``; a 1 GiB workspace pool and optimisation level 3, both part of the plan key.
* ``build_serialized_network`` -> cached plan (``cache.py``: keyed by ONNX sha256, TensorRT
  version, GPU name + compute capability, precision, input shape, profile and builder settings;
  stored once it deserialized; a mismatched or undeserializable plan is rebuilt with a message).
* ``Runtime.deserialize_cuda_engine`` -> execution context; the plan's named I/O tensors are
  checked against the model (direction, float32, shapes, the profile's batch range) before any
  buffer is sized from them; ``set_tensor_address`` once, ``set_input_shape`` per run (and the
  output shapes it gives checked against the buffers); ``execute_async_v3`` on a pycuda stream
  with page-locked host buffers and async host<->device copies.
* CUDA context: the device's primary context (the one the CUDA runtime, and so TensorRT, ONNX
  Runtime and torch use) is retained once per process and never released by an engine; each
  engine pushes it around its own calls (open, every run, close) and pops it again, so the
  engine can be used from any thread. Everything an engine allocated (execution context,
  engine, runtime, device and page-locked memory, stream) is released while the context is
  pushed, on close and when opening fails half-way.
* Errors from TensorRT and pycuda (a ``TypeError`` from a constructor when CUDA cannot start,
  ``RuntimeError`` from shape calls, pycuda's own errors) leave this module as the product's
  errors, with the original as the cause: ``BackendUnavailableError`` when TensorRT cannot use
  the GPU, ``ModelError`` when a plan cannot be built or run. So ``backend: auto`` moves on to
  the next backend and says why.

The only module that imports tensorrt and pycuda, both inside functions.
"""
from __future__ import annotations

import collections
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendUnavailableError, DriverMonitorError, ModelError
from .backends import install_hint
from .base import Engine
from .cache import PlanKey, load_or_build
from ..model_contract import INPUT_NAME, OUTPUT_AUS, OUTPUT_PROBS, REGION_OUTPUT_NAMES, ModelInfo

WORKSPACE_BYTES = 1 << 30
OPT_LEVEL = 3  # TensorRT's default builder optimisation level, set explicitly: it is part of the plan key
MIN_VERSION = (10, 12)  # strongly typed networks complete; the gpu extra asks for it too
LOG_KEEP = 50  # logger messages kept for error messages

_PRIMARY: dict[int, Any] = {}  # device index -> its primary context, retained once per process
_PRIMARY_LOCK = threading.Lock()


def _import_trt() -> Any:
    import tensorrt as trt

    return trt


def _import_cuda() -> Any:
    import pycuda.driver as cuda

    cuda.init()
    return cuda


def _describe(exc: BaseException, logger: Any = None) -> str:
    """``"TypeError: ..."`` plus the logger's last messages, for an error message."""
    text = f"{exc.__class__.__name__}: {exc}"
    last = logger.last(2) if logger is not None else []
    return text + "".join(f"; {m}" for m in last if m not in text)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for p in str(text).split(".")[:2]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def probe(device: str) -> str | None:
    """None when TensorRT + pycuda + a CUDA GPU are here and TensorRT can start CUDA, else why not."""
    if device != "cuda":
        return "TensorRT runs on a CUDA GPU only"
    try:
        trt = _import_trt()
    except ImportError as exc:
        return f"tensorrt is not installed ({exc})"
    except Exception as exc:  # a broken install (missing libnvinfer) raises OSError and friends
        return f"tensorrt cannot be imported ({exc.__class__.__name__}: {exc})"
    version = str(getattr(trt, "__version__", "?"))
    if _version_tuple(version) < MIN_VERSION:
        return (f"TensorRT {version} is older than {'.'.join(map(str, MIN_VERSION))}, the first release whose "
                f"strongly typed networks build the fp16 / int8 copies")
    try:
        cuda = _import_cuda()
    except ImportError as exc:
        return f"pycuda is not installed ({exc})"
    except Exception as exc:  # pycuda's driver errors: no driver / no device
        return f"the CUDA driver cannot start ({exc.__class__.__name__}: {exc})"
    try:
        count = cuda.Device.count()
    except Exception as exc:
        return f"the CUDA driver cannot list GPUs ({exc.__class__.__name__}: {exc})"
    if count < 1:
        return "no CUDA GPU found"
    logger = _make_logger(trt)
    try:  # TensorRT brings its own CUDA runtime: a driver too old for it fails here, not in pycuda
        runtime = trt.Runtime(logger)
    except Exception as exc:
        return f"TensorRT {version} cannot start CUDA ({_describe(exc, logger)})"
    if runtime is None:
        return f"TensorRT {version} cannot start CUDA ({'; '.join(logger.last(2)) or 'no runtime'})"
    del runtime
    return None


def version() -> str:
    """The installed TensorRT's version (call after ``probe`` said it is usable)."""
    return str(_import_trt().__version__)


def gpu_identity(device_index: int = 0) -> tuple[str, str]:
    """(GPU name, compute capability "major.minor") of the GPU plans are built for."""
    cuda = _import_cuda()
    dev = cuda.Device(device_index)
    major, minor = dev.compute_capability()
    return dev.name(), f"{major}.{minor}"


def _primary_context(cuda: Any, device_index: int = 0) -> Any:
    """The device's primary context, retained on first use and kept for the life of the process.

    Releasing it is never right for one engine: the last release resets the context under every
    other user of the device (TensorRT's runtime, ONNX Runtime, torch), and pycuda's ``detach``
    pushes it before releasing, leaving a stale entry on the thread's context stack."""
    with _PRIMARY_LOCK:
        ctx = _PRIMARY.get(device_index)
        if ctx is None:
            ctx = cuda.Device(device_index).retain_primary_context()
            _PRIMARY[device_index] = ctx
        return ctx


def _make_logger(trt: Any) -> Any:
    """A TensorRT logger that keeps the last warnings and errors (they go into our error messages)."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.messages: collections.deque[str] = collections.deque(maxlen=LOG_KEEP)

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                self.messages.append(f"{getattr(severity, 'name', severity)}: {msg}")

        def last(self, n: int) -> list[str]:
            return list(self.messages)[-n:]

    return _Logger()


def _parser_errors(parser: Any) -> list[str]:
    out = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = getattr(err, "node_name", lambda: "")() or str(getattr(err, "node", lambda: -1)())
        op = getattr(err, "node_operator", lambda: "")()
        out.append(f"{err.desc()} (node {node}{' ' + op if op else ''}, code {err.code()})")
    return out


def _network_flags(trt: Any) -> int:
    """``1 << STRONGLY_TYPED`` on 10.x; 0 on 11 and later, where the flag is deprecated and ignored."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None or _version_tuple(trt.__version__) >= (11,):
        return 0
    return 1 << int(flag)


def _start(trt: Any, cls_name: str, *args: Any, logger: Any) -> Any:
    """``trt.<cls_name>(*args)``; a constructor that fails (TypeError when CUDA cannot start) is
    BackendUnavailableError."""
    try:
        obj = getattr(trt, cls_name)(*args)
    except Exception as exc:
        raise BackendUnavailableError(f"TensorRT cannot start CUDA: trt.{cls_name} failed "
                                      f"({_describe(exc, logger)})") from exc
    if obj is None:
        raise BackendUnavailableError(f"TensorRT cannot start CUDA: trt.{cls_name} returned None "
                                      f"({'; '.join(logger.last(2)) or 'no details'})")
    return obj


def build_plan(onnx_path: str | Path, *, input_size: int, max_batch: int, opt_batch: int = 1,
               workspace_bytes: int = WORKSPACE_BYTES, opt_level: int = OPT_LEVEL,
               log: Callable[[str], None] | None = None) -> bytes:
    """Parse ``onnx_path`` into a strongly typed network and build a serialized plan.

    Raises BackendUnavailableError when TensorRT cannot start CUDA, ModelError when the model
    does not parse or build (with the parser's / builder's messages and the original error)."""
    trt = _import_trt()
    log = log or (lambda msg: None)
    logger = _make_logger(trt)
    builder = _start(trt, "Builder", logger, logger=logger)
    name = repr(str(onnx_path))
    try:
        network = builder.create_network(_network_flags(trt))
        parser = _start(trt, "OnnxParser", network, logger, logger=logger)
        data = Path(onnx_path).read_bytes()
        if not parser.parse(data, str(onnx_path)):
            errors = _parser_errors(parser) or logger.last(5) or ["no details"]
            raise ModelError(f"TensorRT could not parse {name}: " + "; ".join(errors))
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
        config.builder_optimization_level = opt_level
        profile = builder.create_optimization_profile()
        shape = (1, input_size, input_size)
        profile.set_shape(INPUT_NAME, (1, *shape), (max(1, min(opt_batch, max_batch)), *shape), (max_batch, *shape))
        config.add_optimization_profile(profile)
        log(f"tensorrt {trt.__version__}: building {Path(onnx_path).name} for batch 1..{max_batch}")
        plan = builder.build_serialized_network(network, config)
    except DriverMonitorError:
        raise
    except Exception as exc:  # RuntimeError from set_shape, OSError reading the file, ...
        raise ModelError(f"TensorRT could not build a plan from {name}: {_describe(exc, logger)}") from exc
    if plan is None:
        raise ModelError(f"TensorRT could not build a plan from {name}: "
                         + ("; ".join(logger.last(5)) or "no details from the builder"))
    return bytes(plan)


def plan_key(model: ModelInfo, max_batch: int, opt_batch: int = 1) -> PlanKey:
    name, cc = gpu_identity()
    s = model.spec.size
    return PlanKey(onnx_sha256=model.sha256, trt_version=version(), gpu_name=name,
                   compute_capability=cc, precision=model.precision, input_shape=(1, s, s),
                   min_batch=1, opt_batch=opt_batch, max_batch=max_batch,
                   workspace_bytes=WORKSPACE_BYTES, opt_level=OPT_LEVEL)


def _dims(dims: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in dims)


class TensorRTEngine(Engine):
    """A deserialized plan with page-locked host buffers and device buffers for ``max_batch``."""

    name = "tensorrt"
    device = "cuda"

    def __init__(self, model: ModelInfo, *, cache_dir: Path, max_batch: int = 8,
                 log: Callable[[str], None] | None = None, force_rebuild: bool = False) -> None:
        super().__init__(model.spec, model.emotion_names, model.au_names, max_batch,
                         region_names=model.region_names, au_regions=model.au_region_map())
        self.precision = model.precision
        self.model = model
        self._ctx: Any = None
        self._lock = threading.Lock()
        self._logger: Any = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._stream: Any = None
        self._host: dict[str, np.ndarray] = {}
        self._dev: dict[str, Any] = {}
        # every output of the plan, in the order _run returns them (the region outputs last)
        self._widths = {OUTPUT_PROBS: len(self.emotion_names), OUTPUT_AUS: len(self.au_names),
                        **{name: len(self.region_names) for name in REGION_OUTPUT_NAMES if self.region_names}}
        problem = probe("cuda")
        if problem is not None:
            raise BackendUnavailableError(f"tensorrt cannot run here: {problem}. "
                                          f"To fix: {install_hint('tensorrt', 'cuda')}")
        try:
            trt = _import_trt()
            self._cuda = _import_cuda()
            self._ctx = _primary_context(self._cuda)
        except Exception as exc:
            raise BackendUnavailableError(f"tensorrt cannot use the GPU: {_describe(exc)}") from exc
        try:
            with self._pushed():
                try:
                    self._open(trt, cache_dir, log, force_rebuild)
                except BaseException:
                    self._release()  # still pushed: free what was allocated before the failure
                    raise
        except DriverMonitorError:
            self._ctx = None
            raise
        except Exception as exc:
            self._ctx = None
            raise BackendUnavailableError(f"tensorrt could not open {model.path.name} ({model.precision}): "
                                          f"{_describe(exc, self._logger)}") from exc

    @contextmanager
    def _pushed(self) -> Iterator[None]:
        """The primary context current on this thread for the block, popped after it."""
        self._ctx.push()
        try:
            yield
        finally:
            self._ctx.pop()

    def _open(self, trt: Any, cache_dir: Path, log: Callable[[str], None] | None, force: bool) -> None:
        """Runtime, plan (cached or built), checks, execution context and buffers; called pushed."""
        model, cuda = self.model, self._cuda
        self._logger = _make_logger(trt)
        self._runtime = _start(trt, "Runtime", self._logger, logger=self._logger)
        self.key = key = plan_key(model, self.max_batch)

        def deserialize(data: bytes) -> Any:
            engine = self._runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise RuntimeError("; ".join(self._logger.last(3)) or "deserialize_cuda_engine returned None")
            return engine

        stem = model.path.stem if model.precision == "fp32" else model.path.stem.rsplit(".", 1)[0]
        self._engine, self.plan_path, self.built = load_or_build(
            cache_dir, stem, key,
            build=lambda: build_plan(model.path, input_size=model.spec.size, max_batch=self.max_batch,
                                     workspace_bytes=key.workspace_bytes, opt_level=key.opt_level, log=log),
            deserialize=deserialize, log=log, force=force,
            extra={"onnx_file": model.path.name, "model_version": model.version})
        self._check_plan_io(trt)
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise ModelError(f"TensorRT could not create an execution context for {self.plan_path.name}: "
                             + ("; ".join(self._logger.last(3)) or "no details"))
        self._stream = cuda.Stream()
        s = model.spec.size
        for name in (INPUT_NAME, *self._widths):
            shape = (self.max_batch, 1, s, s) if name == INPUT_NAME else (self.max_batch, self._widths[name])
            self._host[name] = cuda.pagelocked_empty(shape, np.float32)
            self._dev[name] = cuda.mem_alloc(self._host[name].nbytes)
            self._context.set_tensor_address(name, int(self._dev[name]))

    def _check_plan_io(self, trt: Any) -> None:
        """The plan's I/O tensors and profile against the model's contract, before any buffer is
        sized from the metadata: a wider output than the metadata says would write past its buffer."""
        engine, plan, s = self._engine, self.plan_path.name, self.model.spec.size
        rebuild = "rebuild it with `driver-monitor engines build --force`"
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        expected = {INPUT_NAME, *self._widths}
        if set(names) != expected or len(names) != len(expected):
            raise ModelError(f"plan {plan} has I/O tensors {names}; expected {sorted(expected)}")
        for name in names:
            want_mode = trt.TensorIOMode.INPUT if name == INPUT_NAME else trt.TensorIOMode.OUTPUT
            mode = engine.get_tensor_mode(name)
            if mode != want_mode:
                raise ModelError(f"plan {plan}: tensor {name!r} is {getattr(mode, 'name', mode)}, expected "
                                 f"{getattr(want_mode, 'name', want_mode)}; {rebuild}")
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            if dtype != np.float32:
                raise ModelError(f"plan tensor {name!r} is {dtype}; the ONNX copies keep float32 I/O, "
                                 f"rebuild the copy with `driver-monitor engines build`")
            shape = _dims(engine.get_tensor_shape(name))
            want = (1, s, s) if name == INPUT_NAME else (self._widths[name],)
            if len(shape) != 1 + len(want) or shape[1:] != want:
                what = "the model's input is" if name == INPUT_NAME else "the model's metadata names"
                raise ModelError(f"plan {plan}: tensor {name!r} has shape {shape}, but {what} (N, "
                                 f"{', '.join(map(str, want))}); {rebuild}")
        if engine.num_optimization_profiles < 1:
            raise ModelError(f"plan {plan} has no optimisation profile; {rebuild}")
        lo, _, hi = (_dims(d) for d in engine.get_tensor_profile_shape(INPUT_NAME, 0))
        if lo[0] > 1 or hi[0] < self.max_batch or lo[1:] != (1, s, s) or hi[1:] != (1, s, s):
            raise ModelError(f"plan {plan}'s profile takes {INPUT_NAME!r} from {lo} to {hi}; this engine needs "
                             f"batch 1..{self.max_batch} of (1, {s}, {s}); {rebuild}")

    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        cuda = self._cuda
        n = x.shape[0]
        with self._lock, self._pushed():
            try:
                if not self._context.set_input_shape(INPUT_NAME, tuple(x.shape)):
                    raise ModelError(f"TensorRT refused input shape {tuple(x.shape)} (profile batch "
                                     f"1..{self.max_batch}): " + "; ".join(self._logger.last(2)))
                for name, width in self._widths.items():
                    shape = _dims(self._context.get_tensor_shape(name))
                    if shape != (n, width):
                        raise ModelError(f"TensorRT would write {name!r} as {shape} for a batch of {n}; its "
                                         f"buffer holds ({self.max_batch}, {width}). Rebuild the plan with "
                                         f"`driver-monitor engines build --force`")
                h_in = self._host[INPUT_NAME]
                np.copyto(h_in[:n], x)
                cuda.memcpy_htod_async(self._dev[INPUT_NAME], h_in[:n], self._stream)
                if not self._context.execute_async_v3(stream_handle=self._stream.handle):
                    raise ModelError("TensorRT execute_async_v3 failed: " + "; ".join(self._logger.last(3)))
                for name in self._widths:
                    cuda.memcpy_dtoh_async(self._host[name][:n], self._dev[name], self._stream)
                self._stream.synchronize()
                return tuple(self._host[name][:n].copy() for name in self._widths)
            except DriverMonitorError:
                raise
            except Exception as exc:  # pycuda / TensorRT errors
                raise ModelError(f"TensorRT run failed ({_describe(exc, self._logger)})") from exc

    def _release(self) -> list[str]:
        """Free everything this engine allocated, in reverse order; call with the context pushed.
        Returns what could not be freed (each step is tried)."""
        problems: list[str] = []

        def attempt(what: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except Exception as exc:
                problems.append(f"{what}: {exc.__class__.__name__}: {exc}")

        if self._stream is not None:
            attempt("stream", self._stream.synchronize)
        # TensorRT objects: execution context before engine before runtime
        self._context = None
        self._engine = None
        self._runtime = None
        for name, mem in self._dev.items():
            attempt(f"device buffer {name}", mem.free)
        self._dev.clear()
        for name, arr in self._host.items():
            free = getattr(getattr(arr, "base", None), "free", None)
            if free is not None:
                attempt(f"page-locked buffer {name}", free)
        self._host.clear()
        self._stream = None
        return problems

    def close(self) -> None:
        if self._closed:
            return
        problems: list[str] = []
        if self._ctx is not None:
            with self._lock:
                try:
                    with self._pushed():
                        problems = self._release()
                except Exception as exc:  # push / pop failed
                    problems.append(f"context: {exc.__class__.__name__}: {exc}")
                self._ctx = None
        super().close()
        if problems:
            raise ModelError("TensorRT engine closed, but freeing its GPU resources failed: " + "; ".join(problems))


def open_engine(model: ModelInfo, *, device: str, max_batch: int, fp32_path: Path | None = None,
                cache_dir: Path | None = None, log: Callable[[str], None] | None = None,
                force_rebuild: bool = False, cpu_threads: int = 0) -> Engine:
    if device != "cuda":
        raise BackendUnavailableError("tensorrt runs on a CUDA GPU only; use engine.device=cuda or auto")
    if cache_dir is None:
        cache_dir = model.path.parent
    return TensorRTEngine(model, cache_dir=Path(cache_dir), max_batch=max_batch, log=log,
                          force_rebuild=force_rebuild)
