"""Every backend available here against the torch reference on the same crops.

Tolerances (max absolute difference on probabilities / intensities in [0, 1]):
* fp32 (ONNX Runtime, TensorRT fp32 plan): 1e-4 -- the same float32 arithmetic, different kernels;
* fp16 copy: 1e-2 -- float16 has an 11-bit mantissa (relative error ~5e-4 per op), and errors
  grow through the layers and the softmax;
* int8 QDQ copy: 0.1, plus top-1 agreement on at least 80% of crops -- 8-bit symmetric
  quantisation of activations and weights; accuracy on real data is measured by the evaluator
  (docs/benchmarks.md), this only catches a broken copy.
"""
from __future__ import annotations

import numpy as np
import pytest

from driver_monitor.model_contract import read_model_info
from driver_monitor.engine.onnxruntime_backend import OnnxRuntimeEngine
from driver_monitor.engine.precision import COPY_RECIPES, build_copy, model_for_precision
from driver_monitor.engine.torch_backend import TorchEngine
from driver_monitor.errors import DatasetError, ModelError

from .conftest import need_data
from .test_engine_model import PRECISION_TOL, export_tiny, random_crops, tiny_module, tiny_with_copies

TOL = PRECISION_TOL


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny fp32 model and its fp16 / int8 copies (int8 calibrated on synthetic crops)."""
    return tiny_with_copies(tmp_path_factory.mktemp("parity"), n_calib=64, seed=1)


@pytest.fixture(scope="module")
def reference():
    crops = random_crops(12, seed=7)
    from driver_monitor.preprocess import AUS, EMOTIONS, InputSpec

    with TorchEngine(tiny_module(), InputSpec(), EMOTIONS, AUS) as ref:
        out = ref.infer(crops)
    return crops, out


def _compare(out, ref, precision):
    tol = TOL[precision]
    np.testing.assert_allclose(out.emotion_probs, ref.emotion_probs, atol=tol, rtol=0)
    np.testing.assert_allclose(out.aus, ref.aus, atol=tol, rtol=0)
    np.testing.assert_allclose(out.emotion_probs.sum(axis=1), 1.0, atol=1e-3)
    agree = np.mean(out.emotion_probs.argmax(1) == ref.emotion_probs.argmax(1))
    assert agree >= (0.8 if precision == "int8" else 1.0)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_onnxruntime_cpu_matches_torch(models, reference, precision):
    crops, ref = reference
    info = model_for_precision(models["fp32"], precision, models["cache"])
    assert info.precision == precision
    with OnnxRuntimeEngine(info, device="cpu", max_batch=8) as eng:
        assert eng.description == f"onnxruntime CPU {precision}"
        out = eng.infer(crops)  # 12 crops: two runs (8 + 4) with max_batch 8
    assert out.emotion_names == ref.emotion_names and out.au_names == ref.au_names
    _compare(out, ref, precision)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_copies_keep_float32_io_and_metadata(models, precision):
    import onnx

    info = model_for_precision(models["fp32"], precision, models["cache"])
    m = onnx.load(str(info.path))
    elem = {v.name: v.type.tensor_type.elem_type for v in list(m.graph.input) + list(m.graph.output)}
    assert elem == {"face": onnx.TensorProto.FLOAT, "emotion_probs": onnx.TensorProto.FLOAT,
                    "au_intensity": onnx.TensorProto.FLOAT}
    fp32 = read_model_info(models["fp32"])
    assert info.emotion_names == fp32.emotion_names and info.spec == fp32.spec
    if precision != "fp32":
        assert info.source_sha256 == fp32.sha256
    ops = {n.op_type for n in m.graph.node}
    if precision == "int8":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ format for TensorRT


def test_int8_copy_is_symmetric_with_float_bias_and_heads(models):
    """What TensorRT's explicit quantisation builds: every zero point 0 (symmetric int8), no
    DequantizeLinear of an int32 initializer (its dequantize layer takes int8 / fp8 / int4 / fp4
    inputs only), and the heads' logits computed in float (no Q/DQ between them and Softmax / Sigmoid)."""
    import onnx
    from onnx import numpy_helper

    info = model_for_precision(models["fp32"], "int8", models["cache"])
    m = onnx.load(str(info.path))
    inits = {i.name: i for i in m.graph.initializer}
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zps = [numpy_helper.to_array(inits[n.input[2]]) for n in qdq if len(n.input) > 2 and n.input[2]]
    assert zps and len(zps) == len(qdq), "every Q/DQ carries an int8 zero point"
    for zp in zps:
        assert zp.dtype == np.int8 and not zp.any()
    int32_dq = [n.name for n in qdq if n.op_type == "DequantizeLinear" and n.input[0] in inits
                and inits[n.input[0]].data_type != onnx.TensorProto.INT8]
    assert int32_dq == []
    producer = {o: n for n in m.graph.node for o in n.output}
    for out in ("emotion_probs", "au_intensity"):
        act = producer[out]
        assert act.op_type in ("Softmax", "Sigmoid")
        head = producer[act.input[0]]
        assert head.op_type == "Gemm"  # fed directly, not through a DequantizeLinear
        assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in head.input[1:])
    assert info.metadata and dict(info.metadata)["dm.copy_recipe"] == COPY_RECIPES["int8"]


def test_copy_of_an_older_recipe_is_stale(models, tmp_path):
    """A copy made by an older recipe (no dm.copy_recipe, or another version) is refused with the
    command that rebuilds it; an fp16 copy without the key is recipe 1, still current."""
    import shutil

    import onnx

    fp32 = tmp_path / "m.onnx"
    shutil.copy(models["fp32"], fp32)
    cache = tmp_path / "cache"
    cache.mkdir()
    for precision, recipe in (("int8", None), ("int8", "1"), ("fp16", None)):
        m = onnx.load(str(models["cache"] / f"m.{precision}.onnx"))
        props = [(p.key, p.value) for p in m.metadata_props if p.key != "dm.copy_recipe"]
        if recipe is not None:
            props.append(("dm.copy_recipe", recipe))
        del m.metadata_props[:]
        for k, v in props:
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, str(cache / f"m.{precision}.onnx"))
        if precision == "fp16":
            assert model_for_precision(fp32, "fp16", cache).precision == "fp16"
        else:
            with pytest.raises(ModelError, match=r"made by copy recipe 1, this version makes recipe 2; it is stale: "
                                                 r"rebuild it with `driver-monitor engines build --precision int8"):
                model_for_precision(fp32, "int8", cache)


def test_copies_are_readable_by_other_users(models, tmp_path):
    """Copies get a new file's usual permissions (0666 less the umask), not a temporary file's 0600."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    out = build_copy(models["fp32"], "fp16", tmp_path / "shared")
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


@pytest.mark.parametrize("n", [1, 3, 8, 9, 17])
def test_batches_split_by_max_batch_match_one_by_one(models, n):
    crops = random_crops(n, seed=n)
    info = read_model_info(models["fp32"])
    with OnnxRuntimeEngine(info, max_batch=4) as eng:
        together = eng.infer(crops)
        single = [eng.infer(c) for c in crops]
    np.testing.assert_allclose(together.emotion_probs, np.concatenate([s.emotion_probs for s in single]), atol=1e-5)
    assert len(together) == n


def test_empty_batch_and_bad_crops(models):
    info = read_model_info(models["fp32"])
    with OnnxRuntimeEngine(info) as eng:
        assert len(eng.infer(np.zeros((0, 48, 48), np.uint8))) == 0
        with pytest.raises(ValueError, match="48, 48"):
            eng.infer(np.zeros((2, 40, 40), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            eng.infer(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(ModelError, match="after close"):
        eng.infer(np.zeros((1, 48, 48), np.uint8))


def test_stale_copy_is_refused(models, tmp_path):
    other = export_tiny(tmp_path / "m.onnx", seed=5)  # a different fp32 model, same name
    with pytest.raises(ModelError, match="stale"):
        model_for_precision(other, "fp16", models["cache"])


def test_int8_without_calibration_images(models, tmp_path):
    with pytest.raises(DatasetError, match="--calib-dir"):
        build_copy(models["fp32"], "int8", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no PNG/JPG"):
        build_copy(models["fp32"], "int8", tmp_path, calib_dir=tmp_path / "empty")


# --------------------------------------------------------------------------- the shipped model

def _shipped():
    from driver_monitor.config import PROJECT_ROOT

    path = PROJECT_ROOT / "engines" / "emotion_au.onnx"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout yet (the MODEL engineer ships it)")
    return path


def test_shipped_model_onnxruntime_matches_torch_checkpoint():
    """engines/emotion_au.onnx on ONNX Runtime vs its torch checkpoint (dm.torch_checkpoint), fp32 1e-4."""
    from driver_monitor.engine import torch_backend

    path = _shipped()
    info = read_model_info(path)
    crops = random_crops(16, size=info.spec.size, seed=3)
    with torch_backend.open_engine(info, device="cpu", max_batch=8, fp32_path=path) as ref, \
            OnnxRuntimeEngine(info, max_batch=8) as ort_eng:
        r, o = ref.infer(crops), ort_eng.infer(crops)
    np.testing.assert_allclose(o.emotion_probs, r.emotion_probs, atol=TOL["fp32"], rtol=0)
    np.testing.assert_allclose(o.aus, r.aus, atol=TOL["fp32"], rtol=0)


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_int8_calibration_methods(models, reference, tmp_path, method):
    crops, ref = reference
    build_copy(models["fp32"], "int8", tmp_path, calib_dir=models["calib"], calib_method=method)
    with OnnxRuntimeEngine(model_for_precision(models["fp32"], "int8", tmp_path)) as eng:
        _compare(eng.infer(crops), ref, "int8")


def test_unknown_calibration_method(models, tmp_path):
    with pytest.raises(DatasetError, match="calibration method 'median'"):
        build_copy(models["fp32"], "int8", tmp_path, calib_dir=models["calib"], calib_method="median")


def test_default_intra_op_threads_leave_the_face_mesh_a_core(monkeypatch) -> None:
    from driver_monitor.engine import onnxruntime_backend as ob

    for cores, want in ((1, 1), (2, 1), (8, 7)):
        monkeypatch.setattr(ob, "usable_cores", lambda c=cores: c)
        assert ob.default_threads() == want
        assert ob.session_options().intra_op_num_threads == want
    assert ob.session_options(3).intra_op_num_threads == 3


# --------------------------------------------------------------------------- the int8 copy for the CPU

def test_int8_on_the_cpu_is_the_cpu_copy_and_on_a_gpu_the_tensorrt_one(models):
    cpu = model_for_precision(models["fp32"], "int8", models["cache"], "cpu")
    gpu = model_for_precision(models["fp32"], "int8", models["cache"], "cuda")
    assert cpu.path.name == "m.int8cpu.onnx" and gpu.path.name == "m.int8.onnx"
    assert cpu.precision == gpu.precision == "int8"
    assert dict(cpu.metadata)["dm.copy_kind"] == "int8cpu"
    assert dict(cpu.metadata)["dm.copy_recipe"] == COPY_RECIPES["int8cpu"]


def test_cpu_int8_copy_matches_torch(models, reference):
    crops, ref = reference
    info = model_for_precision(models["fp32"], "int8", models["cache"], "cpu")
    with OnnxRuntimeEngine(info, device="cpu", max_batch=8) as eng:
        assert eng.description == "onnxruntime CPU int8"
        _compare(eng.infer(crops), ref, "int8")


def test_cpu_int8_copy_has_uint8_activations_7bit_weights_and_float_heads(models):
    """What ONNX Runtime's CPU kernels run fast (uint8 activations x int8 weights), with weights in
    7 bits so that the uint8 x int8 pair sums cannot saturate on CPUs without VNNI."""
    import onnx
    from onnx import numpy_helper

    from driver_monitor.engine.precision import head_nodes

    m = onnx.load(str(model_for_precision(models["fp32"], "int8", models["cache"], "cpu").path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    q_zero_points = [inits[n.input[2]] for n in m.graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2]
    assert q_zero_points and all(z.dtype == np.uint8 for z in q_zero_points)
    weights = [a for a in inits.values() if a.dtype == np.int8 and a.ndim >= 2]
    # 7 bits, symmetric: |w| <= 64, so a pair of uint8 x int8 products sums to at most 2 x 255 x 64 < 2^15
    assert weights and all(int(np.abs(a.astype(np.int16)).max()) <= 64 for a in weights)
    heads = [n for n in m.graph.node if n.name in head_nodes(m)]
    assert heads
    for head in heads:  # their weights are float initializers, read as they are
        assert head.input[1] in inits and inits[head.input[1]].dtype == np.float32, head.name


def test_a_tensorrt_int8_copy_in_the_cpu_copys_place_is_refused(models, tmp_path):
    import shutil

    shutil.copy(models["cache"] / "m.int8.onnx", tmp_path / "m.int8cpu.onnx")
    with pytest.raises(ModelError, match="expected the int8 copy for the CPU"):
        model_for_precision(models["fp32"], "int8", tmp_path, "cpu")


def test_the_cpu_copy_beside_the_model_is_found_when_the_cache_has_none(models, tmp_path):
    import shutil

    shutil.copy(models["fp32"], tmp_path / "m.onnx")
    shutil.copy(models["cache"] / "m.int8cpu.onnx", tmp_path / "m.int8cpu.onnx")
    info = model_for_precision(tmp_path / "m.onnx", "int8", tmp_path / "empty_cache", "cpu")
    assert info.path == tmp_path / "m.int8cpu.onnx"
    with pytest.raises(ModelError, match="does not exist"):  # the TensorRT copy is never looked for there
        model_for_precision(tmp_path / "m.onnx", "int8", tmp_path / "empty_cache", "cuda")


def test_shipped_cpu_int8_copy_is_current_and_reads_as_fp32_does():
    """engines/emotion_au.int8cpu.onnx, what the app runs on the CPU: made from the shipped model
    by the current recipe (a stale one is refused), and on real face crops within 0.1 of fp32 with
    the same top emotion on nearly all (accuracy on whole test sets: docs/engines.md)."""
    path = _shipped()
    info = model_for_precision(path, "int8", path.parent / "no-cache-here", "cpu")
    assert info.path == path.parent / "emotion_au.int8cpu.onnx"
    crops = _real_crops()
    with OnnxRuntimeEngine(read_model_info(path)) as ref, OnnxRuntimeEngine(info) as eng:
        a, b = ref.infer(crops), eng.infer(crops)
    assert float(np.abs(a.emotion_probs - b.emotion_probs).max()) <= 0.1
    assert float(np.abs(a.aus - b.aus).max()) <= 0.1
    assert np.mean(a.emotion_probs.argmax(1) == b.emotion_probs.argmax(1)) >= 0.9


def _real_crops():
    """Aligned crops of the shared clips' faces (a few from each), or a skip without the data."""
    import cv2

    from driver_monitor.config import load_config
    from driver_monitor.face.align import align_face
    from driver_monitor.face.mesh import FaceMeshDetector

    cfg = load_config(None)
    crops = []
    for name in ("single_face.mp4", "yawn_in_car.mp4", "head_turns.mp4"):
        cap = cv2.VideoCapture(str(need_data(f"videos/{name}")))
        with FaceMeshDetector(cfg.face) as det:
            for i in range(0, 60):
                ok, img = cap.read()
                if not ok:
                    break
                faces = det.detect(img)
                if faces and i % 6 == 0:
                    crops.append(align_face(img, faces[0], 48, cfg.face.align_margin).image)
        cap.release()
    return np.stack(crops)
