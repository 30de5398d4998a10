"""Backend selection: auto order, explicit requests, install hints, no silent GPU -> CPU fallback."""
from __future__ import annotations

from dataclasses import replace

import pytest

from driver_monitor.config import EngineConfig
from driver_monitor.engine import backends, select
from driver_monitor.engine.base import Selection
from driver_monitor.engine.select import create_engine, plan_selection
from driver_monitor.errors import BackendUnavailableError, ConfigError, ModelError

from .test_engine_model import export_tiny, random_crops, tiny_with_copies


def prober_with(available: set[tuple[str, str]]):
    """A fake probe: only the (backend, device) pairs in ``available`` can run."""
    def probe(backend: str, device: str) -> str | None:
        return None if (backend, device) in available else f"{backend} {device} missing (test)"
    return probe


ALL = {("tensorrt", "cuda"), ("onnxruntime", "cuda"), ("onnxruntime", "cpu"), ("torch", "cuda"), ("torch", "cpu")}
CPU_ONLY = {("onnxruntime", "cpu"), ("torch", "cpu")}


@pytest.mark.parametrize("available,first", [
    (ALL, ("tensorrt", "cuda")),
    (ALL - {("tensorrt", "cuda")}, ("onnxruntime", "cuda")),
    (CPU_ONLY, ("onnxruntime", "cpu")),
    ({("onnxruntime", "cpu")}, ("onnxruntime", "cpu")),
])
def test_auto_prefers_tensorrt_then_ort_cuda_then_ort_cpu(available, first):
    cands = plan_selection("auto", "auto", "fp32", prober=prober_with(available))
    assert cands[0][:2] == first
    assert cands[0][2].startswith("auto:")
    # every later candidate is still in the documented order
    order = [c[:2] for c in cands]
    assert order == [bd for bd in backends.AUTO_ORDER if bd in available]


def test_auto_reason_says_what_was_skipped_and_why():
    (b, d, why), = plan_selection("auto", "auto", "fp32", prober=prober_with(CPU_ONLY))
    assert (b, d) == ("onnxruntime", "cpu")
    assert "tensorrt CUDA unavailable (tensorrt cuda missing (test))" in why
    assert "onnxruntime CUDA unavailable" in why
    assert why.endswith("chose onnxruntime CPU")


def test_auto_with_device_cpu_never_tries_the_gpu():
    cands = plan_selection("auto", "cpu", "fp32", prober=prober_with(ALL))
    assert [c[:2] for c in cands] == [("onnxruntime", "cpu")]


@pytest.mark.parametrize("backend,device,available,hint", [
    ("tensorrt", "auto", CPU_ONLY, 'pip install -e ".[gpu]"'),
    ("onnxruntime", "cuda", CPU_ONLY, "onnxruntime-gpu"),
    ("torch", "cuda", CPU_ONLY, "CUDA build of PyTorch"),
    ("torch", "auto", set(), "pip install torch==2.13.0"),
    ("onnxruntime", "auto", set(), "pip install onnxruntime"),
])
def test_explicit_backend_that_cannot_run_is_an_error_with_the_install_hint(backend, device, available, hint):
    with pytest.raises(BackendUnavailableError) as exc:
        plan_selection(backend, device, "fp32", prober=prober_with(available))
    msg = str(exc.value)
    assert hint in msg
    assert backend in msg


@pytest.mark.parametrize("backend,device,available,want", [
    ("onnxruntime", "auto", CPU_ONLY, ("onnxruntime", "cpu")),
    ("onnxruntime", "auto", ALL, ("onnxruntime", "cuda")),
    ("torch", "auto", CPU_ONLY, ("torch", "cpu")),
    ("torch", "cpu", ALL, ("torch", "cpu")),
])
def test_explicit_backend_device_auto(backend, device, available, want):
    (cand,) = plan_selection(backend, device, "fp32", prober=prober_with(available))
    assert cand[:2] == want
    assert cand[2].startswith(f"requested backend {backend}")


def test_explicit_device_auto_says_when_the_gpu_was_not_there():
    ((_, _, why),) = plan_selection("onnxruntime", "auto", "fp32", prober=prober_with(CPU_ONLY))
    assert "CUDA: onnxruntime cuda missing (test)" in why and "using CPU" in why


@pytest.mark.parametrize("backend,device,precision,message", [
    ("tensorrt", "cpu", "fp32", "CUDA GPU only"),
    ("torch", "auto", "fp16", "fp32 reference"),
    ("nonsense", "auto", "fp32", "unknown"),
    ("onnxruntime", "tpu", "fp32", "device 'tpu'"),
])
def test_impossible_combinations_are_config_errors(backend, device, precision, message):
    with pytest.raises(ConfigError, match=message):
        plan_selection(backend, device, precision, prober=prober_with(ALL))


def test_auto_with_nothing_available_says_so():
    with pytest.raises(BackendUnavailableError, match="no inference backend can run here"):
        plan_selection("auto", "auto", "fp32", prober=prober_with(set()))


# ----------------------------------------------------------------- on this machine, real runtimes


@pytest.fixture
def tiny_cfg(tmp_path):
    export_tiny(tmp_path / "m.onnx")
    return EngineConfig(model=str(tmp_path / "m.onnx"), cache_dir=str(tmp_path / "cache"))


def test_real_probe_reports_this_cpu_machine():
    assert select._probe("onnxruntime", "cpu") is None
    # this project's CI and dev machines have no GPU; where one exists this test says nothing
    if select._probe("tensorrt", "cuda") is not None:
        assert "tensorrt" in select._probe("tensorrt", "cuda") or "pycuda" in select._probe("tensorrt", "cuda") \
            or "CUDA" in select._probe("tensorrt", "cuda")


def test_create_engine_auto_on_this_machine(tiny_cfg):
    prober = prober_with({("onnxruntime", "cpu")})
    engine, sel = create_engine(tiny_cfg, prober=prober)
    with engine:
        assert isinstance(sel, Selection)
        assert (sel.backend, sel.device, sel.precision) == ("onnxruntime", "cpu", "fp32")
        assert sel.describe() == "onnxruntime CPU fp32"
        assert sel.to_dict()["reason"] == sel.reason
        out = engine.infer(random_crops(3))
        assert out.emotion_probs.shape == (3, 8) and out.aus.shape == (3, 13)


def test_create_engine_explicit_tensorrt_without_it_raises_with_hint(tiny_cfg):
    if select._probe("tensorrt", "cuda") is None:
        pytest.skip("TensorRT and a GPU are present here")
    with pytest.raises(BackendUnavailableError, match=r'pip install -e "\.\[gpu\]"'):
        create_engine(replace(tiny_cfg, backend="tensorrt"))


def test_create_engine_explicit_ort_cuda_without_gpu_build_raises(tiny_cfg):
    if select._probe("onnxruntime", "cuda") is None:
        pytest.skip("onnxruntime-gpu with CUDA is present here")
    with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
        create_engine(replace(tiny_cfg, backend="onnxruntime", device="cuda"))


def test_auto_falls_through_when_the_preferred_backend_fails_to_open(tiny_cfg, monkeypatch):
    """auto may move on when a probed backend then fails to open, and says so in the reason."""
    real = select.backend_module

    class Broken:
        @staticmethod
        def open_engine(*a, **k):
            raise BackendUnavailableError("plan build failed (test)")

    monkeypatch.setattr(select, "backend_module", lambda name: Broken if name == "tensorrt" else real(name))
    logs: list[str] = []
    engine, sel = create_engine(tiny_cfg, prober=prober_with({("tensorrt", "cuda"), ("onnxruntime", "cpu")}),
                                log=logs.append)
    engine.close()
    assert sel.backend == "onnxruntime"
    assert "plan build failed (test)" in sel.reason
    assert any("could not open" in m for m in logs)


def test_explicit_backend_that_fails_to_open_is_not_replaced(tiny_cfg, monkeypatch):
    class Broken:
        @staticmethod
        def open_engine(*a, **k):
            raise BackendUnavailableError("plan build failed (test)")

    monkeypatch.setattr(select, "backend_module", lambda name: Broken)
    with pytest.raises(BackendUnavailableError, match="plan build failed"):
        create_engine(replace(tiny_cfg, backend="tensorrt"), prober=prober_with(ALL))


def test_missing_precision_copy_names_the_build_command(tiny_cfg):
    with pytest.raises(Exception, match="engines build --precision fp16"):
        create_engine(replace(tiny_cfg, precision="fp16"), prober=prober_with({("onnxruntime", "cpu")}))


# ----------------------------------------------------------------- precision auto

def test_precision_auto_runs_the_cpu_int8_copy_on_the_cpu(tmp_path):
    models = tiny_with_copies(tmp_path)
    cfg = EngineConfig(model=str(models["fp32"]), cache_dir=str(models["cache"]))
    assert cfg.precision == "auto"
    engine, sel = create_engine(cfg, prober=prober_with({("onnxruntime", "cpu")}))
    with engine:
        assert sel.describe() == "onnxruntime CPU int8" and engine.model.path.name == "m.int8cpu.onnx"
        assert "precision auto: int8 copy for the CPU" in sel.reason
        assert engine.infer(random_crops(2)).emotion_probs.shape == (2, 8)


def test_precision_auto_without_the_cpu_copy_runs_fp32_and_says_why(tiny_cfg):
    engine, sel = create_engine(tiny_cfg, prober=prober_with({("onnxruntime", "cpu")}))
    engine.close()
    assert sel.precision == "fp32"
    assert "precision auto: fp32 (the int8 copy for the CPU of the model" in sel.reason
    assert "does not exist" in sel.reason


def test_precision_auto_does_not_run_a_stale_cpu_copy(tmp_path):
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    models = tiny_with_copies(tmp_path / "a")
    other = export_tiny(tmp_path / "b" / "m.onnx", seed=5)  # another model, same name
    shutil.copy(models["cache"] / "m.int8cpu.onnx", other.parent / "m.int8cpu.onnx")
    cfg = EngineConfig(model=str(other), cache_dir=str(tmp_path / "b" / "cache"))
    engine, sel = create_engine(cfg, prober=prober_with({("onnxruntime", "cpu")}))
    engine.close()
    assert sel.precision == "fp32" and "stale" in sel.reason


@pytest.mark.parametrize("backend,device", [("tensorrt", "cuda"), ("onnxruntime", "cuda"), ("torch", "cpu")])
def test_precision_auto_is_fp32_off_onnx_runtimes_cpu(tmp_path, backend, device):
    models = tiny_with_copies(tmp_path)
    info, note = select.model_for(models["fp32"], "auto", models["cache"], backend, device)
    assert info.precision == "fp32" and info.path == models["fp32"] and note == ""


def test_an_opened_engine_is_warmed_up_before_it_is_handed_out(tiny_cfg, monkeypatch):
    """The runtime's first-run work (5-6 ms on ONNX Runtime's CPU provider, 1.2 ms after) happens
    when the engine opens, not on the first frames; outputs do not depend on it."""
    from driver_monitor.engine.base import Engine

    calls: list[str] = []
    real = Engine.warm_up
    monkeypatch.setattr(Engine, "warm_up", lambda self, runs=2: (calls.append(self.description), real(self, runs)))
    engine, sel = create_engine(tiny_cfg, prober=prober_with({("onnxruntime", "cpu")}))
    with engine:
        assert calls == [sel.describe()]
        crops = random_crops(2)
        first = engine.infer(crops)
        engine.warm_up(runs=3)
        again = engine.infer(crops)
    assert (first.emotion_probs == again.emotion_probs).all() and (first.aus == again.aus).all()


def test_precision_auto_runs_fp32_when_the_cpu_copy_does_not_open(tmp_path):
    """A damaged int8 copy (current metadata, a graph ONNX Runtime refuses) costs the speed, not the engine."""
    import onnx

    models = tiny_with_copies(tmp_path)
    copy = models["cache"] / "m.int8cpu.onnx"
    m = onnx.load(str(copy))
    m.graph.node[0].op_type = "NoSuchOp"
    onnx.save(m, str(copy))
    logs: list[str] = []
    cfg = EngineConfig(model=str(models["fp32"]), cache_dir=str(models["cache"]))
    engine, sel = create_engine(cfg, prober=prober_with({("onnxruntime", "cpu")}), log=logs.append)
    with engine:
        assert sel.precision == "fp32" and engine.model.path == models["fp32"]
        assert "precision auto: fp32 (m.int8cpu.onnx did not open" in sel.reason
        assert any("running fp32" in m for m in logs)
    with pytest.raises(ModelError, match="m.int8cpu.onnx"):  # asked for int8 by name: an error
        create_engine(replace(cfg, precision="int8"), prober=prober_with({("onnxruntime", "cpu")}))


def test_an_engine_whose_first_run_fails_counts_as_not_opened(tiny_cfg, monkeypatch):
    """auto moves on (and says why) when an engine opens but cannot run; the failed one is closed."""
    real = select.backend_module
    closed: list[bool] = []

    class Broken:
        @staticmethod
        def open_engine(model, **kw):
            engine = real("onnxruntime").open_engine(model, **{**kw, "device": "cpu"})  # a stand-in that opens
            engine._run = lambda x: (_ for _ in ()).throw(RuntimeError("kernel failed (test)"))
            engine.close = lambda: closed.append(True)
            return engine

    monkeypatch.setattr(select, "backend_module", lambda name: Broken if name == "tensorrt" else real(name))
    engine, sel = create_engine(tiny_cfg, prober=prober_with({("tensorrt", "cuda"), ("onnxruntime", "cpu")}))
    engine.close()
    assert sel.backend == "onnxruntime" and closed == [True]
    assert "its first run failed: RuntimeError: kernel failed (test)" in sel.reason
