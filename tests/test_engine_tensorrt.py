"""TensorRT backend.

Two kinds of tests:

* ``@pytest.mark.tensorrt`` tests run the real thing (TensorRT + pycuda + an NVIDIA GPU) and skip
  where any of them is missing: plans for fp32 / fp16 / int8 built from the tiny model, parity
  against torch (fp32 1e-4, fp16 1e-2, int8 0.1: see test_engine_parity.py), the cache reused on
  the second open, a corrupt plan rebuilt, and no CUDA context left current after engines close.
* Everywhere else, the backend's own code paths run against a stand-in of the TensorRT and pycuda
  APIs that "executes" a plan with ONNX Runtime (:class:`StandIn`). It follows the real APIs
  where our code depends on them: per-thread context stacks and the primary context's reference
  count (pycuda), constructors that fail when CUDA cannot start, ``set_shape`` that raises,
  ``build_serialized_network`` that returns None (for an int32 dequantization or a non-zero
  zero point, as TensorRT's explicit quantisation does), I/O modes and shapes and the profile
  read from the plan, and allocations that must be freed. It checks that our module uses the
  API it was written against consistently; it is NOT evidence that TensorRT accepts our models
  -- only the marked tests are.
"""
from __future__ import annotations

import collections
import enum
import json
import sys
import threading
import types
from types import SimpleNamespace

import numpy as np
import pytest

from driver_monitor.engine import tensorrt_backend as trt_b
from driver_monitor.engine.cache import list_cache
from driver_monitor.model_contract import read_model_info
from driver_monitor.engine.precision import model_for_precision
from driver_monitor.engine.torch_backend import TorchEngine
from driver_monitor.errors import BackendUnavailableError, ModelError
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec

from .test_engine_model import PRECISION_TOL, random_crops, tiny_module, tiny_with_copies

TOL = PRECISION_TOL
PLAN_MAGIC = b"FAKEPLAN"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    m = tiny_with_copies(tmp_path_factory.mktemp("trt"), n_calib=48, seed=2)
    return m["fp32"], m["cache"]


@pytest.fixture(scope="module")
def reference():
    crops = random_crops(10, seed=11)
    with TorchEngine(tiny_module(), InputSpec(), EMOTIONS, AUS) as ref:
        return crops, ref.infer(crops)


# --------------------------------------------------------------------------- stand-in runtime


class StandIn:
    """A stand-in ``tensorrt`` + ``pycuda.driver`` and what happened to them.

    calls: API calls in order. errors: misuse a real GPU would punish (a buffer written past its
    end, memory freed from a foreign thread, a kernel run with no context). retains / resets: the
    primary context's reference count (other users of the device included) and how often it
    dropped to 0 (a reset under everyone else). live: allocations not yet released, by kind.

    Options: version (``11.1.0``: STRONGLY_TYPED is 0 and ignored; ``10.12.0``: it is 1);
    cuda_starts=False: Builder / Runtime / OnnxParser log an error and raise TypeError, as when
    the driver is too old for TensorRT's CUDA; parse_ok=False: the parser reports an error;
    fail: {what: n} makes the n-th call of ``retain``, ``mem_alloc``, ``pagelocked_empty``,
    ``stream``, ``set_shape`` or ``deserialize`` fail; plan: what the deserialized plan reports
    instead of what the ONNX says (``shapes``, ``modes``, ``profile_max``, ``run_width``).
    """

    def __init__(self, version: str = "11.1.0", *, cuda_starts: bool = True, parse_ok: bool = True,
                 fail: dict[str, int] | None = None, plan: dict | None = None) -> None:
        self.version, self.cuda_starts, self.parse_ok = version, cuda_starts, parse_ok
        self.fail = dict(fail or {})
        self.plan = dict(plan or {})
        self.calls: list[str] = []
        self.errors: list[str] = []
        self.retains = 0
        self.resets = 0
        self.live: collections.Counter[str] = collections.Counter()
        self.configs: list = []
        self._stacks: dict[int, list] = {}
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self.modules = {"tensorrt": self._tensorrt()}
        self.modules.update(self._pycuda())

    # ---- bookkeeping
    def stack(self, thread: int | None = None) -> list:
        with self._lock:
            return self._stacks.setdefault(thread or threading.get_ident(), [])

    def stacks(self) -> dict[int, int]:
        """Thread -> depth of its context stack, for every thread that used one."""
        return {t: len(s) for t, s in self._stacks.items()}

    def current(self):
        st = self.stack()
        return st[-1] if st else None

    def failing(self, what: str) -> bool:
        self._counts[what] += 1
        return self.fail.get(what) == self._counts[what]

    def assert_clean(self) -> None:
        """Nothing left allocated, every context stack empty, the shared context never reset."""
        assert +self.live == collections.Counter(), f"not released: {dict(+self.live)}"
        assert all(d == 0 for d in self.stacks().values()), f"context stack depths {self.stacks()}"
        assert self.resets == 0 and self.errors == []
        assert "detach" not in self.calls

    # ---- pycuda.driver
    def _pycuda(self) -> dict[str, types.ModuleType]:
        state = self
        cuda = types.ModuleType("pycuda.driver")
        memory: dict[int, object] = {}

        class Error(Exception):
            pass

        class LogicError(Error):
            pass

        class MemoryError(Error):  # pycuda's name
            pass

        def need_context(what: str):
            ctx = state.current()
            if ctx is None or not ctx.valid:
                raise LogicError(f"{what} failed: invalid device context")
            return ctx

        def released(kind: str, ctx) -> None:
            """pycuda frees with the allocation's context made current, which it can do on the
            thread that retained it; from another thread, with no context current, it leaks."""
            if state.current() is not ctx and threading.get_ident() != ctx.thread:
                state.errors.append(f"{kind} freed on another thread with no context current: leaked")
                return
            state.live[kind] -= 1

        class Context:
            def __init__(self):
                self.thread, self.valid = threading.get_ident(), True

            def push(self):
                state.calls.append("push")
                if not self.valid:
                    raise LogicError("cuCtxPushCurrent failed: invalid device context")
                state.stack().append(self)

            @staticmethod
            def pop():
                state.calls.append("pop")
                st = state.stack()
                if not st:
                    raise LogicError("context::pop failed: cannot pop non-current context")
                st.pop()

            def detach(self):
                """Pushes the context unless it is current, then releases it: the release of a
                primary context does not pop it, so the push stays on the stack."""
                state.calls.append("detach")
                st = state.stack()
                if not (st and st[-1] is self):
                    st.append(self)
                state.retains -= 1
                if state.retains == 0:
                    state.resets += 1
                self.valid = False

        class Device:
            def __init__(self, index):
                self.index = index

            @staticmethod
            def count():
                return 1

            def name(self):
                return "Fake GPU"

            def compute_capability(self):
                return (9, 0)

            def retain_primary_context(self):
                state.calls.append("retain")
                if state.failing("retain"):
                    raise LogicError("cuDevicePrimaryCtxRetain failed: out of memory")
                state.retains += 1
                return Context()

        class DeviceAllocation:
            def __init__(self, nbytes):
                if state.failing("mem_alloc"):
                    raise MemoryError("cuMemAlloc failed: out of memory")
                self.ctx = need_context("cuMemAlloc")
                self.buf = np.zeros(nbytes, np.uint8)
                self.freed = False
                memory[id(self)] = self
                state.live["device memory"] += 1

            def __int__(self):
                return id(self)

            def free(self):
                state.calls.append("free")
                if self.freed:
                    raise LogicError("device_allocation::free failed: invalid resource handle")
                self.freed = True
                memory.pop(id(self), None)
                released("device memory", self.ctx)

            def __del__(self):
                if not getattr(self, "freed", True):  # (True: its __init__ failed)
                    self.freed = True
                    released("device memory", self.ctx)

        class HostAllocation:
            """Page-locked memory: the array pagelocked_empty returns has it as ``.base``."""

            def __init__(self, shape, dtype):
                self.ctx = need_context("cuMemHostAlloc")
                self._array = np.zeros(shape, dtype)
                self.__array_interface__ = self._array.__array_interface__
                self.freed = False
                state.live["page-locked memory"] += 1

            def free(self):
                state.calls.append("free_host")
                if self.freed:
                    raise LogicError("pagelocked_host_allocation::free failed: invalid value")
                self.freed = True
                released("page-locked memory", self.ctx)

            def __del__(self):
                if not getattr(self, "freed", True):
                    self.freed = True
                    released("page-locked memory", self.ctx)

        def pagelocked_empty(shape, dtype):
            if state.failing("pagelocked_empty"):
                raise MemoryError("cuMemHostAlloc failed: out of memory")
            return np.asarray(HostAllocation(shape, dtype))

        class Stream:
            def __init__(self):
                if state.failing("stream"):
                    raise LogicError("cuStreamCreate failed: invalid device context")
                self.ctx = need_context("cuStreamCreate")
                self.handle = id(self)
                state.live["stream"] += 1

            def synchronize(self):
                need_context("cuStreamSynchronize")
                state.calls.append("synchronize")

            def __del__(self):
                if hasattr(self, "ctx"):
                    released("stream", self.ctx)

        def htod(dev, host, stream):
            need_context("cuMemcpyHtoDAsync")
            b = np.ascontiguousarray(host).view(np.uint8).ravel()
            if b.size > dev.buf.size:
                state.errors.append(f"host->device copy of {b.size} bytes into {dev.buf.size}")
            dev.buf[:min(b.size, dev.buf.size)] = b[:dev.buf.size]

        def dtoh(host, dev, stream):
            need_context("cuMemcpyDtoHAsync")
            host[...] = dev.buf[:host.nbytes].view(host.dtype).reshape(host.shape)

        cuda.Error, cuda.LogicError, cuda.MemoryError = Error, LogicError, MemoryError
        cuda.init = lambda: None
        cuda.Context, cuda.Device = Context, Device
        cuda.Stream = Stream
        cuda.pagelocked_empty = pagelocked_empty
        cuda.mem_alloc = DeviceAllocation
        cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = htod, dtoh
        self.memory = memory
        pycuda = types.ModuleType("pycuda")
        pycuda.driver = cuda
        return {"pycuda": pycuda, "pycuda.driver": cuda}

    # ---- tensorrt
    def _tensorrt(self) -> types.ModuleType:
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        state = self
        trt = types.ModuleType("tensorrt")
        trt.__version__ = self.version
        major = int(self.version.split(".")[0])

        class _Severity(enum.IntEnum):
            INTERNAL_ERROR = 0
            ERROR = 1
            WARNING = 2
            INFO = 3
            VERBOSE = 4

        Severity = _Severity

        class ILogger:
            Severity = _Severity

            def __init__(self):
                pass

        class TensorIOMode(enum.IntEnum):
            NONE = 0
            INPUT = 1
            OUTPUT = 2

        trt.ILogger, trt.TensorIOMode = ILogger, TensorIOMode
        trt.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=0 if major >= 11 else 1)
        trt.MemoryPoolType = SimpleNamespace(WORKSPACE=0)
        trt.DataType = SimpleNamespace(FLOAT="float32", HALF="float16")
        trt.nptype = lambda dt: np.float32 if dt == "float32" else np.float16

        def start_cuda(logger) -> None:
            if not state.cuda_starts:
                logger.log(Severity.ERROR, "CUDA initialization failure with error: 35. Please check your "
                                           "CUDA installation")
                raise TypeError("pybind11::init(): factory function returned nullptr")

        class Tracked:
            kind = "tensorrt object"

            def _track(self):
                state.live[self.kind] += 1

            def __del__(self):
                state.live[self.kind] -= 1

        class Network:
            def __init__(self, flags):
                self.flags, self.onnx = flags, None

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                state.calls.append(f"set_shape({name},{lo},{opt},{hi})")
                ranks = {len(lo), len(opt), len(hi)}
                if state.failing("set_shape") or len(ranks) != 1 or not all(
                        0 <= a <= b <= c for a, b, c in zip(lo, opt, hi)):
                    raise RuntimeError("Shape provided for min is inconsistent with other shapes.")
                self.shapes[name] = [list(lo), list(opt), list(hi)]

        class Config:
            def __init__(self):
                self.pools, self.profiles, self.builder_optimization_level = {}, [], 3
                state.configs.append(self)

            def set_memory_pool_limit(self, pool, size):
                self.pools[pool] = size

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)
                return len(self.profiles) - 1

        def unbuildable(model, config) -> str | None:
            """What TensorRT's builder refuses in our models (None: it builds)."""
            inits = {i.name: i for i in model.graph.initializer}
            for node in model.graph.node:
                if node.op_type == "DequantizeLinear" and node.input[0] in inits \
                        and inits[node.input[0]].data_type == onnx.TensorProto.INT32:
                    return (f"{node.name}: IDequantizeLayer input is Int32: only activation types allowed as "
                            f"input to this layer")
                if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2 \
                        and node.input[2] in inits and numpy_helper.to_array(inits[node.input[2]]).any():
                    return f"{node.name}: non-zero zero point; only symmetric quantization is supported"
            inputs = [i.name for i in model.graph.input if i.name not in inits]
            if not config.profiles or any(n not in p.shapes for p in config.profiles for n in inputs):
                return "Network has dynamic or shape inputs, but no optimization profile has been defined."
            return None

        class Builder:
            def __init__(self, logger):
                start_cuda(logger)
                self.logger = logger

            def create_network(self, flags=0):
                state.calls.append(f"create_network({flags})")
                return Network(flags)

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                state.calls.append("build_serialized_network")
                model = onnx.load_from_string(network.onnx)
                problem = unbuildable(model, config)
                if problem is not None:
                    self.logger.log(Severity.ERROR, problem)
                    return None
                header = json.dumps({"profiles": [p.shapes for p in config.profiles],
                                     "workspace": config.pools.get(0),
                                     "opt_level": config.builder_optimization_level}).encode()
                return PLAN_MAGIC + len(header).to_bytes(4, "little") + header + network.onnx

        class ParserError:
            def desc(self):
                return "Unsupported operator FancyOp"

            def code(self):
                return 8

            def node_name(self):
                return "/head/FancyOp"

            def node_operator(self):
                return "FancyOp"

        class OnnxParser:
            def __init__(self, network, logger):
                start_cuda(logger)
                self.network, self.num_errors = network, 0

            def parse(self, data, path=None):
                state.calls.append("parse")
                if not state.parse_ok:
                    self.num_errors = 1
                    return False
                self.network.onnx = bytes(data)
                return True

            def get_error(self, i):
                return ParserError()

        def dims(value_info):
            return tuple(d.dim_value if d.HasField("dim_value") else -1
                         for d in value_info.type.tensor_type.shape.dim)

        class CudaEngine(Tracked):
            kind = "engine"

            def __init__(self, header, onnx_bytes):
                self._track()
                model = onnx.load_from_string(onnx_bytes)
                self.sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
                self.profiles = header["profiles"]
                self.inputs = [i.name for i in model.graph.input]
                self.names = self.inputs + [o.name for o in model.graph.output]
                self.shapes = {v.name: dims(v) for v in [*model.graph.input, *model.graph.output]}
                self.shapes.update({k: tuple(v) for k, v in state.plan.get("shapes", {}).items()})
                self.num_io_tensors = len(self.names)
                self.num_optimization_profiles = len(self.profiles)

            def get_tensor_name(self, i):
                return self.names[i]

            def get_tensor_mode(self, name):
                default = TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT
                return TensorIOMode(state.plan.get("modes", {}).get(name, default))

            def get_tensor_dtype(self, name):
                return "float32"

            def get_tensor_shape(self, name):
                return self.shapes[name]

            def get_tensor_profile_shape(self, name, profile_index):
                lo, opt, hi = (tuple(s) for s in self.profiles[profile_index][name])
                if "profile_max" in state.plan:
                    hi = (state.plan["profile_max"], *hi[1:])
                return [lo, opt, hi]

            def create_execution_context(self):
                return ExecutionContext(self)

        class ExecutionContext(Tracked):
            kind = "execution context"

            def __init__(self, engine):
                self._track()
                self.engine, self.addr, self.input_shapes = engine, {}, {}

            def set_input_shape(self, name, shape):
                lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                shape = tuple(shape)
                if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                    return False
                self.input_shapes[name] = shape
                return True

            def set_tensor_address(self, name, addr):
                self.addr[name] = addr

            def get_tensor_shape(self, name):
                if name in self.engine.inputs:
                    return self.input_shapes.get(name, self.engine.shapes[name])
                n = self.input_shapes[self.engine.inputs[0]][0]
                width = state.plan.get("run_width", {}).get(name, self.engine.shapes[name][1])
                return (n, width)

            def execute_async_v3(self, stream_handle):
                state.calls.append("execute_async_v3")
                if state.current() is None:
                    state.errors.append("execute_async_v3 with no CUDA context current")
                    return False
                name = self.engine.inputs[0]
                shape = self.input_shapes[name]
                x = state.memory[self.addr[name]].buf.view(np.float32)[:int(np.prod(shape))].reshape(shape)
                outs = self.engine.names[len(self.engine.inputs):]
                for out, value in zip(outs, self.engine.sess.run(outs, {name: x})):
                    dev = state.memory[self.addr[out]].buf
                    raw = np.ascontiguousarray(value, np.float32).view(np.uint8).ravel()
                    if raw.size > dev.size:
                        state.errors.append(f"{out}: wrote {raw.size} bytes into a {dev.size}-byte buffer")
                    dev[:min(raw.size, dev.size)] = raw[:dev.size]
                return True

        class Runtime(Tracked):
            kind = "runtime"

            def __init__(self, logger):
                start_cuda(logger)
                self._track()
                self.logger = logger

            def deserialize_cuda_engine(self, data):
                state.calls.append("deserialize_cuda_engine")
                data = bytes(data)
                if state.failing("deserialize") or not data.startswith(PLAN_MAGIC):
                    self.logger.log(Severity.ERROR, "1: [runtime.cpp::parsePlan] Error Code 1: Serialization "
                                                    "assertion plan->header.magicTag == rt::kPLAN_MAGIC_TAG failed.")
                    return None
                n = int.from_bytes(data[8:12], "little")
                return CudaEngine(json.loads(data[12:12 + n]), data[12 + n:])

        trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
        return trt


def _install(monkeypatch, stand_in: StandIn) -> StandIn:
    for name, mod in stand_in.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(trt_b, "_PRIMARY", {})  # a fresh process: nothing retained yet
    return stand_in


@pytest.fixture
def stand_in(monkeypatch):
    """Installs a stand-in built by the returned function (StandIn's options)."""
    return lambda **options: _install(monkeypatch, StandIn(**options))


@pytest.fixture
def fake_trt(stand_in):
    return stand_in()


# --------------------------------------------------------------------------- the module's code paths


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_backend_code_paths_with_stand_in_runtime(models, reference, fake_trt, tmp_path, precision):
    fp32, cache = models
    crops, ref = reference
    info = model_for_precision(fp32, precision, cache)
    logs: list[str] = []
    eng = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path, log=logs.append)
    assert eng.built and eng.plan_path.name.startswith(f"m.{precision}.")
    assert eng.description == f"tensorrt CUDA {precision}"
    assert "create_network(0)" in fake_trt.calls  # TensorRT 11: strongly typed is the only mode
    assert "set_shape(face,(1, 1, 48, 48),(1, 1, 48, 48),(8, 1, 48, 48))" in fake_trt.calls
    (config,) = fake_trt.configs
    assert config.pools == {0: trt_b.WORKSPACE_BYTES} and config.builder_optimization_level == trt_b.OPT_LEVEL
    out = eng.infer(crops)  # 10 crops: runs of 8 and 2
    assert fake_trt.calls.count("execute_async_v3") == 2
    np.testing.assert_allclose(out.emotion_probs, ref.emotion_probs, atol=TOL[precision])
    np.testing.assert_allclose(out.aus, ref.aus, atol=TOL[precision])
    eng.close()
    assert fake_trt.calls.count("free") == 3 and fake_trt.calls.count("free_host") == 3
    assert fake_trt.calls.count("push") == fake_trt.calls.count("pop")
    fake_trt.assert_clean()  # while `eng` is still referenced: close() released it all

    # second open: the cached plan is used, nothing is built
    fake_trt.calls.clear()
    eng2 = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path)
    assert not eng2.built and "build_serialized_network" not in fake_trt.calls
    eng2.close()
    eng2.close()  # twice is harmless
    fake_trt.assert_clean()
    (entry,) = [e for e in list_cache(tmp_path) if e.kind == "plan"]
    assert entry.key.gpu_name == "Fake GPU" and entry.key.compute_capability == "9.0"
    assert entry.key.trt_version == "11.1.0" and entry.key.precision == precision
    assert (entry.key.workspace_bytes, entry.key.opt_level) == (trt_b.WORKSPACE_BYTES, trt_b.OPT_LEVEL)


@pytest.mark.parametrize("version,flags", [("10.12.0", 2), ("10.13.3", 2), ("11.1.0", 0)])
def test_strongly_typed_flag_on_10x_only(models, stand_in, tmp_path, version, flags):
    fake = stand_in(version=version)
    trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=4, cache_dir=tmp_path).close()
    assert f"create_network({flags})" in fake.calls
    fake.assert_clean()


def test_tensorrt_older_than_10_12_is_refused(stand_in):
    stand_in(version="10.9.0")
    assert "TensorRT 10.9.0 is older than 10.12" in trt_b.probe("cuda")


def test_plan_that_does_not_deserialize_is_rebuilt_with_a_message(models, fake_trt, tmp_path):
    fp32, _ = models
    info = read_model_info(fp32)
    eng = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path)
    plan = eng.plan_path
    eng.close()
    # same size, recorded hash rewritten: only deserialization can tell it is broken
    import hashlib

    from driver_monitor.engine.cache import meta_path

    junk = b"X" * plan.stat().st_size
    plan.write_bytes(junk)
    meta = json.loads(meta_path(plan).read_text())
    meta["plan_sha256"] = hashlib.sha256(junk).hexdigest()
    meta_path(plan).write_text(json.dumps(meta))
    logs: list[str] = []
    eng = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path, log=logs.append)
    assert eng.built and any("does not deserialize" in m for m in logs)
    eng.close()
    fake_trt.assert_clean()


def test_fresh_plan_that_does_not_deserialize_is_not_cached(models, stand_in, tmp_path):
    fake = stand_in(fail={"deserialize": 1})
    with pytest.raises(ModelError, match=r"freshly built plan .* does not deserialize .*kPLAN_MAGIC_TAG.*not stored"):
        trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
    fake.assert_clean()


def test_parser_errors_are_reported(models, stand_in, tmp_path):
    fake = stand_in(parse_ok=False)
    with pytest.raises(ModelError,
                       match=r"could not parse .*Unsupported operator FancyOp \(node /head/FancyOp FancyOp"):
        trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)
    fake.assert_clean()


def test_missing_tensorrt_says_how_to_install(models, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    assert "tensorrt is not installed" in trt_b.probe("cuda")
    with pytest.raises(BackendUnavailableError, match=r'pip install -e "\.\[gpu\]"'):
        trt_b.TensorRTEngine(read_model_info(models[0]), cache_dir=tmp_path)


def test_tensorrt_is_cuda_only():
    assert "CUDA GPU only" in trt_b.probe("cpu")


# --------------------------------------------------------------------------- the int8 copy builds


def test_int8_copy_with_int32_bias_does_not_build(models, stand_in, tmp_path):
    """ONNX Runtime's default QDQ recipe dequantizes int32 biases, which TensorRT refuses; the
    project's int8 copy (float biases) builds, the default one does not, and nothing is cached."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from driver_monitor.engine.precision import _CropReader, _set_metadata

    fp32, cache = models
    src = read_model_info(fp32)

    class Reader(_CropReader, CalibrationDataReader):
        pass

    q = tmp_path / "q.onnx"
    quantize_static(str(fp32), str(q), Reader(random_crops(16, seed=4), src.spec), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    m = onnx.load(str(q))
    _set_metadata(m, src, "int8")
    onnx.save(m, str(tmp_path / "m.int8.onnx"))
    old = read_model_info(tmp_path / "m.int8.onnx")
    fake = stand_in()
    plans = tmp_path / "plans"
    with pytest.raises(ModelError, match="could not build a plan .*only activation types allowed"):
        trt_b.open_engine(old, device="cuda", max_batch=8, cache_dir=plans)
    assert not plans.exists() or list(plans.iterdir()) == []
    fake.assert_clean()
    current = model_for_precision(fp32, "int8", cache)
    trt_b.open_engine(current, device="cuda", max_batch=8, cache_dir=plans).close()
    fake.assert_clean()


# --------------------------------------------------------------------------- errors become the product's


def _engine_cfg(fp32, cache_dir, backend="auto"):
    return SimpleNamespace(backend=backend, device="auto", precision="fp32", model=str(fp32),
                           cache_dir=str(cache_dir), max_batch=8, cpu_threads=1, enabled=True)


def test_auto_runs_on_onnxruntime_when_tensorrt_cannot_start_cuda(models, stand_in, tmp_path):
    """TensorRT installed, pycuda working, but TensorRT's own CUDA cannot start (e.g. a driver too
    old for its CUDA): probe says so, auto moves on and says why, an explicit request is an error."""
    from driver_monitor.engine import create_engine

    fake = stand_in(cuda_starts=False)
    problem = trt_b.probe("cuda")
    assert problem.startswith("TensorRT 11.1.0 cannot start CUDA (TypeError: pybind11::init(): factory function "
                              "returned nullptr; ERROR: CUDA initialization failure with error: 35")
    engine, selection = create_engine(_engine_cfg(models[0], tmp_path))
    try:
        assert selection.backend == "onnxruntime"
        assert f"tensorrt CUDA unavailable ({problem})" in selection.reason
    finally:
        engine.close()
    with pytest.raises(BackendUnavailableError, match="cannot start CUDA"):
        create_engine(_engine_cfg(models[0], tmp_path, backend="tensorrt"))
    fake.assert_clean()


@pytest.mark.parametrize("fail,error,cause,message", [
    ({"retain": 1}, BackendUnavailableError, "LogicError", "cuDevicePrimaryCtxRetain failed"),
    ({"mem_alloc": 2}, BackendUnavailableError, "MemoryError", "cuMemAlloc failed: out of memory"),
    ({"pagelocked_empty": 3}, BackendUnavailableError, "MemoryError", "cuMemHostAlloc failed"),
    ({"stream": 1}, BackendUnavailableError, "LogicError", "cuStreamCreate failed"),
    ({"set_shape": 1}, ModelError, "RuntimeError", "Shape provided for min is inconsistent"),
])
def test_errors_while_opening_are_product_errors_and_free_everything(models, stand_in, tmp_path, fail, error,
                                                                     cause, message):
    fake = stand_in(fail=fail)
    with pytest.raises(error, match=message) as caught:
        trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)
    assert type(caught.value.__cause__).__name__ == cause
    fake.assert_clean()
    assert fake.retains <= 1
    # the same failure under backend: auto -> ONNX Runtime, and the reason says what happened
    from driver_monitor.engine import create_engine

    again = stand_in(fail=fail)
    engine, selection = create_engine(_engine_cfg(models[0], tmp_path / "auto"))
    engine.close()
    assert selection.backend == "onnxruntime"
    assert "(after: tensorrt CUDA: " in selection.reason and message in selection.reason
    again.assert_clean()


def test_errors_while_running_are_model_errors(models, fake_trt, tmp_path):
    eng = trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)

    def broken(*args, **kwargs):
        raise fake_trt.modules["pycuda.driver"].LogicError("cuMemcpyHtoDAsync failed: an illegal memory access")

    eng._cuda.memcpy_htod_async = broken
    with pytest.raises(ModelError, match="TensorRT run failed .*LogicError: cuMemcpyHtoDAsync failed") as caught:
        eng.infer(random_crops(2))
    assert type(caught.value.__cause__).__name__ == "LogicError"
    del caught  # its traceback holds the stream passed to the failing copy
    eng.close()
    fake_trt.assert_clean()


# --------------------------------------------------------------------------- the shared CUDA context


def test_engines_share_the_primary_context_and_release_everything(models, fake_trt, tmp_path):
    """`engines build` opens and closes one engine per precision; torch / ONNX Runtime may hold the
    same primary context. The context is retained once, never released (no reset under the others),
    no stale entry is left on the context stack, and each close frees all of its engine."""
    fp32, cache = models
    fake_trt.retains = 1  # another library's reference
    engines = []
    for precision in ("fp32", "fp16", "int8"):
        eng = trt_b.open_engine(model_for_precision(fp32, precision, cache), device="cuda", max_batch=8,
                                cache_dir=tmp_path)
        eng.infer(random_crops(3))
        eng.close()
        engines.append(eng)  # still referenced: close() itself must have released everything
        fake_trt.assert_clean()
    assert fake_trt.calls.count("retain") == 1 and fake_trt.retains == 2


def test_engine_opened_on_one_thread_runs_and_closes_on_others(models, fake_trt, tmp_path):
    """The UI opens the engine on one thread and runs it on its worker thread."""
    crops = random_crops(5, seed=3)
    eng = trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=4, cache_dir=tmp_path)
    here = eng.infer(crops)
    results, failures = [], []

    def work(fn):
        try:
            results.append(fn())
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)

    for fn in (lambda: eng.infer(crops), eng.close):
        t = threading.Thread(target=work, args=(fn,))
        t.start()
        t.join()
    assert failures == []
    np.testing.assert_allclose(results[0].emotion_probs, here.emotion_probs, atol=1e-6)
    assert len(fake_trt.stacks()) >= 2  # this thread and the workers (ids may be reused): all empty
    fake_trt.assert_clean()


def test_old_close_sequence_is_what_the_stand_in_catches():
    """The stand-in's pycuda keeps pycuda's semantics: popping and then detaching a primary context
    leaves it pushed on the stack, and the last release resets it."""
    fake = StandIn()
    cuda = fake.modules["pycuda.driver"]
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    ctx.pop()
    ctx.detach()
    assert fake.stacks() == {threading.get_ident(): 1} and fake.resets == 1
    with pytest.raises(cuda.LogicError, match="invalid device context"):
        cuda.mem_alloc(16)  # the stale entry is what is current now


# --------------------------------------------------------------------------- I/O against the plan


@pytest.mark.parametrize("plan,message", [
    ({"shapes": {"emotion_probs": (-1, 7)}}, r"'emotion_probs' has shape \(-1, 7\), but the model's metadata names "
                                            r"\(N, 8\)"),
    ({"shapes": {"au_intensity": (-1, 13, 1)}}, r"'au_intensity' has shape \(-1, 13, 1\)"),
    ({"shapes": {"face": (-1, 1, 40, 40)}}, r"'face' has shape \(-1, 1, 40, 40\), but the model's input is "
                                           r"\(N, 1, 48, 48\)"),
    ({"modes": {"face": 2}}, r"'face' is OUTPUT, expected INPUT"),
    ({"modes": {"emotion_probs": 1}}, r"'emotion_probs' is INPUT, expected OUTPUT"),
    ({"profile_max": 4}, r"profile takes 'face' from \(1, 1, 48, 48\) to \(4, 1, 48, 48\); this engine needs "
                         r"batch 1..8"),
])
def test_plan_io_is_checked_against_the_model(models, stand_in, tmp_path, plan, message):
    fake = stand_in(plan=plan)
    with pytest.raises(ModelError, match=message):
        trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)
    fake.assert_clean()


def test_output_shapes_are_checked_before_each_run(models, stand_in, tmp_path):
    fake = stand_in(plan={"run_width": {"au_intensity": 14}})
    eng = trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)
    with pytest.raises(ModelError, match=r"would write 'au_intensity' as \(2, 14\) for a batch of 2; its buffer "
                                         r"holds \(8, 13\)"):
        eng.infer(random_crops(2))
    assert "execute_async_v3" not in fake.calls
    eng.close()
    fake.assert_clean()


def test_input_shapes_follow_the_plan_profile(models, fake_trt, tmp_path):
    eng = trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=3, cache_dir=tmp_path)
    assert "set_shape(face,(1, 1, 48, 48),(1, 1, 48, 48),(3, 1, 48, 48))" in fake_trt.calls
    assert len(eng.infer(random_crops(7))) == 7  # 3 + 3 + 1
    assert fake_trt.calls.count("execute_async_v3") == 3
    assert not eng._context.set_input_shape("face", (4, 1, 48, 48))  # past the profile
    with pytest.raises(ModelError, match=r"refused input shape \(4, 1, 48, 48\)"):
        eng._run(np.zeros((4, 1, 48, 48), np.float32))
    eng.close()
    fake_trt.assert_clean()


def test_region_model_binds_and_returns_its_region_outputs(fake_trt, tmp_path):
    """A region-attention model's plan has four outputs: every one gets a buffer (TensorRT runs
    only when every I/O tensor has an address) and comes back, in the contract's order."""
    import torch

    from driver_monitor.preprocess import to_input

    from .test_engine_model import export_tiny_regions

    path, net = export_tiny_regions(tmp_path / "ra.onnx", seed=2)
    eng = trt_b.open_engine(read_model_info(path), device="cuda", max_batch=4, cache_dir=tmp_path)
    crops = random_crops(6)
    out = eng.infer(crops)  # 4 + 2
    with torch.no_grad():
        ref = [t.numpy() for t in net.forward_regions(torch.from_numpy(to_input(crops)))]
    for got, want in zip((out.emotion_probs, out.aus, out.region_attention, out.region_visibility), ref):
        np.testing.assert_allclose(got, want, atol=1e-4)
    assert out.region_names == eng.region_names and len(eng.region_names) == 6
    eng.close()
    assert fake_trt.calls.count("free") == 5 and fake_trt.calls.count("free_host") == 5
    fake_trt.assert_clean()


# --------------------------------------------------------------------------- smaller things


def test_logger_keeps_only_the_last_messages(fake_trt):
    trt = fake_trt.modules["tensorrt"]
    logger = trt_b._make_logger(trt)
    for i in range(1000):
        logger.log(trt.ILogger.Severity.ERROR, f"message {i}")
    logger.log(trt.ILogger.Severity.INFO, "not kept")
    assert len(logger.messages) == trt_b.LOG_KEEP
    assert logger.last(2) == ["ERROR: message 998", "ERROR: message 999"]


def test_gpu_extra_asks_for_tensorrt_10_12():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("gpu = ")]
    assert '"tensorrt>=10.12"' in line


# --------------------------------------------------------------------------- the real thing


def _need_trt():
    problem = trt_b.probe("cuda")
    if problem is not None:
        pytest.skip(f"TensorRT test needs TensorRT, pycuda and an NVIDIA GPU: {problem}")


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_real_tensorrt_matches_torch(models, reference, tmp_path, precision):
    _need_trt()
    fp32, cache = models
    crops, ref = reference
    info = model_for_precision(fp32, precision, cache)
    with trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path) as eng:
        assert eng.built
        out = eng.infer(crops)
    np.testing.assert_allclose(out.emotion_probs, ref.emotion_probs, atol=TOL[precision])
    np.testing.assert_allclose(out.aus, ref.aus, atol=TOL[precision])
    with trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path) as eng2:
        assert not eng2.built  # cached plan reused
        np.testing.assert_allclose(eng2.infer(crops).emotion_probs, out.emotion_probs, atol=1e-6)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_real_tensorrt_rebuilds_a_truncated_plan(models, tmp_path):
    _need_trt()
    info = read_model_info(models[0])
    with trt_b.open_engine(info, device="cuda", max_batch=4, cache_dir=tmp_path) as eng:
        plan = eng.plan_path
    plan.write_bytes(plan.read_bytes()[:100])
    logs: list[str] = []
    with trt_b.open_engine(info, device="cuda", max_batch=4, cache_dir=tmp_path, log=logs.append) as eng:
        assert eng.built
    assert any("truncated" in m for m in logs)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_real_tensorrt_leaves_no_context_current(models, tmp_path):
    """Open / run / close per precision (as `engines build` does) and a run on another thread:
    pycuda's context stack is empty on both threads afterwards, and each engine still runs after
    the previous ones closed (the shared primary context was not reset under it)."""
    _need_trt()
    import pycuda.driver as cuda

    fp32, cache = models
    crops = random_crops(3)

    def run_elsewhere(eng) -> list:
        seen: list = []
        t = threading.Thread(target=lambda: (eng.infer(crops), seen.append(cuda.Context.get_current())))
        t.start()
        t.join()
        return seen

    for precision in ("fp32", "fp16", "int8"):
        eng = trt_b.open_engine(model_for_precision(fp32, precision, cache), device="cuda", max_batch=4,
                                cache_dir=tmp_path)
        eng.infer(crops)
        assert run_elsewhere(eng) == [None]
        eng.close()
        assert cuda.Context.get_current() is None
