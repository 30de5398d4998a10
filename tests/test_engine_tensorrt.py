"""TensorRT backend.

Two kinds of tests:

* ``@pytest.mark.tensorrt`` tests run the real thing (TensorRT + pycuda + an NVIDIA GPU) and skip
  where any of them is missing: plans for fp32 / fp16 / int8 built from the tiny model, parity
  against torch (fp32 1e-4, fp16 1e-2, int8 0.1: see test_engine_parity.py), the cache reused on
  the second open and a corrupt plan rebuilt.
* Everywhere else, the backend's own code paths (builder / parser / profile calls, named-tensor
  I/O, pinned buffers, async copies, the cache around them) run against a small stand-in of the
  TensorRT and pycuda APIs that "executes" a plan with ONNX Runtime. It checks that our module
  calls the API it was written against consistently; it is NOT evidence that TensorRT accepts our
  models -- only the marked tests are.
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from driver_monitor.engine import tensorrt_backend as trt_b
from driver_monitor.engine.contract import read_model_info
from driver_monitor.engine.cache import list_cache
from driver_monitor.engine.precision import model_for_precision
from driver_monitor.engine.torch_backend import TorchEngine
from driver_monitor.errors import BackendUnavailableError, ModelError
from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec

from .test_engine_model import PRECISION_TOL, random_crops, tiny_module, tiny_with_copies

TOL = PRECISION_TOL


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


def _fake_runtime(calls: list[str], *, parse_ok: bool = True):
    """Minimal tensorrt + pycuda.driver modules with the calls our backend makes."""
    import enum

    import onnxruntime as ort

    trt = types.ModuleType("tensorrt")
    trt.__version__ = "11.0.0-fake"

    class _Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3

    class ILogger:
        Severity = _Severity

        def __init__(self):
            pass

    trt.ILogger = ILogger
    trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=5)
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE=0)
    trt.DataType = types.SimpleNamespace(FLOAT="float32")
    trt.nptype = lambda dt: np.float32 if dt == "float32" else np.float16

    class Network:
        def __init__(self, flags):
            calls.append(f"create_network({flags})")
            self.onnx = None

    class Profile:
        def set_shape(self, name, lo, opt, hi):
            calls.append(f"set_shape({name},{lo},{opt},{hi})")
            self.shapes = (name, lo, opt, hi)

    class Config:
        def set_memory_pool_limit(self, pool, size):
            calls.append("set_memory_pool_limit")

        def add_optimization_profile(self, p):
            self.profile = p
            calls.append("add_optimization_profile")

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            calls.append("build_serialized_network")
            return b"FAKEPLAN" + network.onnx

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
            self.network = network
            self.num_errors = 0

        def parse(self, data, path=None):
            calls.append("parse")
            if not parse_ok:
                self.num_errors = 1
                return False
            self.network.onnx = data
            return True

        def get_error(self, i):
            return ParserError()

    memory: dict[int, np.ndarray] = {}

    class Context:
        def __init__(self, sess):
            self.sess, self.addr, self.shape = sess, {}, None

        def set_input_shape(self, name, shape):
            self.shape = tuple(shape)
            return 1 <= shape[0] <= 8

        def set_tensor_address(self, name, addr):
            self.addr[name] = addr

        def execute_async_v3(self, stream_handle):
            calls.append("execute_async_v3")
            n = int(np.prod(self.shape))
            x = memory[self.addr["face"]].view(np.float32)[:n].reshape(self.shape)
            p, a = self.sess.run(["emotion_probs", "au_intensity"], {"face": x})
            memory[self.addr["emotion_probs"]].view(np.float32)[:p.size] = p.ravel()
            memory[self.addr["au_intensity"]].view(np.float32)[:a.size] = a.ravel()
            return True

    class CudaEngine:
        def __init__(self, onnx_bytes):
            self.sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
            self.num_io_tensors = 3

        def get_tensor_name(self, i):
            return ["face", "emotion_probs", "au_intensity"][i]

        def get_tensor_dtype(self, name):
            return "float32"

        def create_execution_context(self):
            return Context(self.sess)

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append("deserialize_cuda_engine")
            if not bytes(data).startswith(b"FAKEPLAN"):
                return None
            return CudaEngine(bytes(data)[8:])

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime

    cuda = types.ModuleType("pycuda.driver")

    class Ctx:
        def push(self):
            calls.append("push")

        def pop(self):
            calls.append("pop")

        def detach(self):
            calls.append("detach")

    class Device:
        def __init__(self, i):
            pass

        @staticmethod
        def count():
            return 1

        def name(self):
            return "Fake GPU"

        def compute_capability(self):
            return (9, 0)

        def retain_primary_context(self):
            return Ctx()

    class DevMem:
        def __init__(self, nbytes):
            self.buf = np.zeros(nbytes, np.uint8)
            memory[id(self)] = self.buf

        def __int__(self):
            return id(self)

        def free(self):
            calls.append("free")

    def htod(dev, host, stream):
        b = np.ascontiguousarray(host).view(np.uint8).ravel()
        dev.buf[:b.size] = b

    def dtoh(host, dev, stream):
        host[...] = dev.buf[:host.nbytes].view(host.dtype).reshape(host.shape)

    cuda.init = lambda: None
    cuda.Device = Device
    cuda.Stream = lambda: types.SimpleNamespace(handle=1, synchronize=lambda: calls.append("synchronize"))
    cuda.pagelocked_empty = lambda shape, dtype: np.empty(shape, dtype)
    cuda.mem_alloc = DevMem
    cuda.memcpy_htod_async = htod
    cuda.memcpy_dtoh_async = dtoh
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    return {"tensorrt": trt, "pycuda": pycuda, "pycuda.driver": cuda}


@pytest.fixture
def fake_trt(monkeypatch):
    calls: list[str] = []
    for name, mod in _fake_runtime(calls).items():
        monkeypatch.setitem(sys.modules, name, mod)
    return calls


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_backend_code_paths_with_stand_in_runtime(models, reference, fake_trt, tmp_path, precision):
    fp32, cache = models
    crops, ref = reference
    info = model_for_precision(fp32, precision, cache)
    logs: list[str] = []
    eng = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path, log=logs.append)
    assert eng.built and eng.plan_path.name.startswith(f"m.{precision}.")
    assert eng.description == f"tensorrt CUDA {precision}"
    assert "create_network(32)" in fake_trt  # 1 << STRONGLY_TYPED
    assert "set_shape(face,(1, 1, 48, 48),(1, 1, 48, 48),(8, 1, 48, 48))" in fake_trt
    out = eng.infer(crops)  # 10 crops: runs of 8 and 2
    assert fake_trt.count("execute_async_v3") == 2
    np.testing.assert_allclose(out.emotion_probs, ref.emotion_probs, atol=TOL[precision])
    np.testing.assert_allclose(out.aus, ref.aus, atol=TOL[precision])
    eng.close()
    assert fake_trt.count("free") == 3 and "detach" in fake_trt
    assert fake_trt.count("push") == fake_trt.count("pop")

    # second open: the cached plan is used, nothing is built
    fake_trt.clear()
    eng2 = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path)
    assert not eng2.built and "build_serialized_network" not in fake_trt
    eng2.close()
    (entry,) = [e for e in list_cache(tmp_path) if e.kind == "plan"]
    assert entry.key.gpu_name == "Fake GPU" and entry.key.compute_capability == "9.0"
    assert entry.key.trt_version == "11.0.0-fake" and entry.key.precision == precision


def test_plan_that_does_not_deserialize_is_rebuilt_with_a_message(models, fake_trt, tmp_path):
    fp32, _ = models
    info = read_model_info(fp32)
    eng = trt_b.open_engine(info, device="cuda", max_batch=8, cache_dir=tmp_path)
    plan = eng.plan_path
    eng.close()
    # same size, recorded hash rewritten: only deserialization can tell it is broken
    import hashlib
    import json

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


def test_parser_errors_are_reported(models, monkeypatch, tmp_path):
    calls: list[str] = []
    for name, mod in _fake_runtime(calls, parse_ok=False).items():
        monkeypatch.setitem(sys.modules, name, mod)
    with pytest.raises(ModelError,
                       match=r"could not parse .*Unsupported operator FancyOp \(node /head/FancyOp FancyOp"):
        trt_b.open_engine(read_model_info(models[0]), device="cuda", max_batch=8, cache_dir=tmp_path)


def test_missing_tensorrt_says_how_to_install(models, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    assert "tensorrt is not installed" in trt_b.probe("cuda")
    with pytest.raises(BackendUnavailableError, match=r'pip install -e "\.\[gpu\]"'):
        trt_b.TensorRTEngine(read_model_info(models[0]), cache_dir=tmp_path)


def test_tensorrt_is_cuda_only():
    assert "CUDA GPU only" in trt_b.probe("cpu")


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
