"""FP16 and INT8 copies of the ONNX model: precision lives in the ONNX file, not in builder flags.

TensorRT 11 builds only strongly typed networks (the FP16 / INT8 builder flags and the INT8
calibrator API are gone), so the precision of a plan is the precision of the ONNX it is built
from. ONNX Runtime runs the same copies on the CPU, so their accuracy and speed are measured
everywhere.

* fp32: the exported model, as is.
* fp16: ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``;
  inputs and outputs stay float32.
* int8: ``onnxruntime.quantization.quantize_static`` in QDQ format with symmetric int8
  activations and weights (zero points 0, what TensorRT's explicit quantization reads), float
  biases (``QuantizeBias: False``: TensorRT dequantizes int8 / fp8 / int4 / fp4 tensors only, an
  int32 bias would stop the build) and unquantized heads (the Gemm / MatMul nodes feeding the
  Softmax / Sigmoid outputs run in float32), calibrated on a folder of aligned grey face crops
  (PNG / JPG). Inputs and outputs stay float32.
* int8 for the CPU (kind ``int8cpu``): what ONNX Runtime's CPU kernels run fast. The symmetric
  copy above runs there at about half the fp32 speed; this one, QDQ with asymmetric uint8
  activations, per-channel int8 weights at 7 bits (``reduce_range``: no saturation in the
  uint8 x int8 multiply-adds of CPUs without VNNI), int32 biases and the same float heads and
  calibration, runs at about 1.8x the fp32 speed with FERPlus / CK+ figures within a few images
  of fp32 (docs/engines.md). ONNX Runtime on the CPU reads it for ``int8``, and for ``auto``
  when it is current; the project ships it beside the model.

Copies are written to the engine cache folder as ``<stem>.fp16.onnx`` / ``<stem>.int8.onnx`` /
``<stem>.int8cpu.onnx`` and carry the source's ``dm.*`` metadata plus ``dm.precision``,
``dm.copy_kind``, ``dm.source_sha256`` and ``dm.copy_recipe`` (:data:`COPY_RECIPES`); a copy whose
source hash does not match the current fp32 model, or that an older recipe made, is refused as
stale with the command that rebuilds it. The CPU copy is also looked for beside the fp32 model
(where the shipped one lies) when the cache folder has none.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from numpy.typing import NDArray

from ..errors import DatasetError, ModelError
from ..preprocess import InputSpec, to_input
from .cache import new_temp_file
from ..model_contract import INPUT_NAME, ModelInfo, read_model_info

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
#: the copies' kinds: an int8 copy for the CPU is made differently from the one for TensorRT
CPU_INT8 = "int8cpu"
#: each copy kind: (the precision it runs, the device whose copy it is)
COPY_KINDS: dict[str, tuple[str, str]] = {"fp16": ("fp16", "cuda"), "int8": ("int8", "cuda"), CPU_INT8: ("int8", "cpu")}
KIND_KEY = "dm.copy_kind"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: How each copy is made, as a version stored in the copy's ``dm.copy_recipe``; a copy made by
#: another version is stale. A copy without the key was made by version 1.
#: fp16 1: convert_float_to_float16(keep_io_types) + topological sort.
#: int8 1: symmetric QDQ with int32 biases and int8-quantized head inputs (TensorRT refuses the
#: int32 bias dequantization); int8 2: float biases, unquantized heads.
#: int8cpu 1: QDQ, uint8 activations, per-channel 7-bit int8 weights, int32 biases, float heads.
COPY_RECIPES: dict[str, str] = {"fp16": "1", "int8": "2", CPU_INT8: "1"}
RECIPE_KEY = "dm.copy_recipe"


def copy_kind(precision: str, device: str = "cuda") -> str:
    """Which copy runs ``precision`` on ``device``: int8 on the CPU is the CPU copy."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    return CPU_INT8 if precision == "int8" and device == "cpu" else precision


def copy_path(fp32_path: str | Path, precision: str, cache_dir: str | Path, device: str = "cuda") -> Path:
    """Where the copy that runs ``precision`` on ``device`` is made (fp32: the model itself)."""
    fp32_path = Path(fp32_path)
    kind = copy_kind(precision, device)
    if kind == "fp32":
        return fp32_path
    return Path(cache_dir) / f"{fp32_path.stem}.{kind}.onnx"


def find_copy(fp32_path: Path, precision: str, cache_dir: str | Path, device: str = "cuda") -> Path:
    """The copy in the cache folder, or the CPU copy shipped beside the model when the cache has none."""
    path = copy_path(fp32_path, precision, cache_dir, device)
    beside = fp32_path.parent / path.name
    if not path.is_file() and copy_kind(precision, device) == CPU_INT8 and beside.is_file():
        return beside
    return path


def model_for_precision(fp32_path: str | Path, precision: str, cache_dir: str | Path,
                        device: str = "cuda", *, fp32: ModelInfo | None = None) -> ModelInfo:
    """The ModelInfo to run at ``precision`` on ``device``; refuses a missing or stale copy with the fix.
    ``fp32``: the model's own ModelInfo when the caller has read it already (reading hashes the file)."""
    fp32 = fp32 if fp32 is not None else read_model_info(fp32_path)
    kind = copy_kind(precision, device)
    if kind == "fp32":
        return fp32
    path = find_copy(Path(fp32_path), precision, cache_dir, device)
    what = f"{precision} copy for the CPU" if kind == CPU_INT8 else f"{precision} copy"
    build = f"`driver-monitor engines build --precision {precision}" + (
        " --calib-dir DIR_OF_FACE_CROPS`" if precision == "int8" else "`")
    if not path.is_file():
        raise ModelError(f"the {what} of the model ({str(path)!r}) does not exist; make it with "
                         f"{build}, or use engine.precision=fp32")
    info = read_model_info(path)
    if info.precision != precision or dict(info.metadata).get(KIND_KEY, info.precision) != kind:
        raise ModelError(f"{str(path)!r} says dm.precision={info.precision!r}, expected the {what}; "
                         f"rebuild it with {build}")
    if info.source_sha256 != fp32.sha256:
        raise ModelError(f"the {what} {str(path)!r} was made from another model "
                         f"(source sha256 {str(info.source_sha256)[:12]}, current {fp32.sha256[:12]}); "
                         f"it is stale: rebuild it with {build}")
    recipe = copy_recipe(info)
    if recipe != COPY_RECIPES[kind]:
        raise ModelError(f"the {what} {str(path)!r} was made by copy recipe {recipe}, this version makes "
                         f"recipe {COPY_RECIPES[kind]}; it is stale: rebuild it with {build}")
    return info


def copy_recipe(info: ModelInfo) -> str:
    """The recipe version a copy was made with (``dm.copy_recipe``; "1" when absent)."""
    return dict(info.metadata).get(RECIPE_KEY, "1")


def _toposort(graph: "object") -> None:
    """Reorder ``graph.node`` in place so every node comes after the producers of its inputs."""
    nodes = list(graph.node)
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    ordered, pending = [], nodes
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ModelError("the fp16 conversion produced a graph with a cycle or a missing input "
                             f"({rest[0].op_type} {rest[0].name!r}); report this with the model file")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def write_metadata(model: Any, props: dict[str, str]) -> None:
    """Replace an ``onnx.ModelProto``'s metadata with ``props`` (sorted by key)."""
    del model.metadata_props[:]
    for k, v in sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def _set_metadata(model: "object", source: ModelInfo, kind: str) -> None:
    props = dict(source.metadata)
    props.update({"dm.precision": COPY_KINDS[kind][0], KIND_KEY: kind,
                  "dm.source_sha256": source.sha256, "dm.source_file": source.path.name,
                  RECIPE_KEY: COPY_RECIPES[kind]})
    write_metadata(model, props)


def save_atomic(model: "object", out_path: Path) -> None:
    """Write to a temporary file beside ``out_path`` (permissions of a new file) and rename."""
    import onnx

    fd, tmp = new_temp_file(out_path)
    os.close(fd)
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()


def make_fp16(fp32_path: str | Path, out_path: str | Path) -> Path:
    """Write an FP16 copy with float32 inputs / outputs; returns its path."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    src = read_model_info(fp32_path)
    model = onnx.load(str(fp32_path))
    half = convert_float_to_float16(model, keep_io_types=True)
    # the converter appends its input Casts at the end of the node list; ONNX Runtime does not
    # mind but the checker and TensorRT's parser want topological order
    _toposort(half.graph)
    _set_metadata(half, src, "fp16")
    onnx.checker.check_model(half)
    out = Path(out_path)
    save_atomic(half, out)
    return out


def list_calibration_images(calib_dir: str | Path) -> list[Path]:
    d = Path(calib_dir)
    if not d.is_dir():
        raise DatasetError(f"--calib-dir {str(d)!r} is not a folder; pass a folder of aligned grey face "
                           f"crops (PNG/JPG), e.g. an extracted FERPlus FER2013Train folder")
    files = sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetError(f"--calib-dir {str(d)!r} holds no PNG/JPG images; INT8 calibration needs "
                           f"aligned grey face crops")
    return files


def load_crops(files: list[Path], spec: InputSpec) -> NDArray[np.uint8]:
    """Grey ``(N, S, S)`` uint8 crops from image files (resized to the model's size)."""
    import cv2

    crops = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise DatasetError(f"calibration image {str(f)!r} cannot be decoded; remove it or re-export it")
        if img.shape != (spec.size, spec.size):
            img = cv2.resize(img, (spec.size, spec.size), interpolation=cv2.INTER_AREA)
        crops.append(img)
    return np.stack(crops).astype(np.uint8)


class _CropReader:
    """onnxruntime.quantization CalibrationDataReader over a stack of crops."""

    def __init__(self, crops: NDArray[np.uint8], spec: InputSpec, batch: int = 16) -> None:
        self._batches: Iterator[NDArray[np.float32]] = (
            to_input(crops[i:i + batch], spec) for i in range(0, len(crops), batch))

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        x = next(self._batches, None)
        return None if x is None else {INPUT_NAME: x}

    def rewind(self) -> None:  # not needed by MinMax; present for the reader protocol
        pass


CALIB_METHODS: tuple[str, ...] = ("minmax", "percentile", "entropy")
#: what the int8 copy quantizes (their inputs and outputs get Q/DQ pairs), except the heads
INT8_OP_TYPES: tuple[str, ...] = ("Conv", "Gemm", "MatMul", "Add", "Mul", "MaxPool", "AveragePool",
                                  "GlobalAveragePool", "Relu", "Clip", "Concat", "Reshape", "Flatten")
_HEAD_ACTIVATIONS = ("Softmax", "Sigmoid", "LogSoftmax")
_HEAD_LAYERS = ("Gemm", "MatMul", "Add")


def head_nodes(model: Any) -> list[str]:
    """Names of the layers that compute the outputs' logits: from each graph output produced by a
    Softmax / Sigmoid, back through the Gemm, or MatMul + bias Add, that feeds it."""
    producer = {out: node for node in model.graph.node for out in node.output}
    heads: list[str] = []
    for output in model.graph.output:
        act = producer.get(output.name)
        if act is None or act.op_type not in _HEAD_ACTIVATIONS:
            continue
        node = producer.get(act.input[0])
        while node is not None and node.op_type in _HEAD_LAYERS and node.name not in heads:
            heads.append(node.name)
            if node.op_type != "Add":
                break
            node = next((producer[i] for i in node.input if i in producer), None)
    return heads


def _calibration_crops(calib_dir: str | Path, spec: Any, limit: int, seed: int) -> Any:
    """Up to ``limit`` crops from ``calib_dir``, a seeded random choice when there are more."""
    files = list_calibration_images(calib_dir)
    if len(files) > limit:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in sorted(rng.choice(len(files), size=limit, replace=False))]
    return load_crops(files, spec)


def pre_processed(fp32_path: str | Path, pre: Path, log: Callable[[str], None]) -> Path:
    """ONNX Runtime's quantisation pre-processing of the model into ``pre``; the model itself when it fails."""
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        return pre
    except Exception as exc:  # pre-processing is an optimisation; quantise the raw model if it fails
        log(f"int8: pre-processing skipped ({exc.__class__.__name__}: {exc})")
        return Path(fp32_path)


def int8_options(kind: str) -> dict[str, Any]:
    """quantize_static's arguments for each int8 recipe (:data:`COPY_RECIPES`)."""
    from onnxruntime.quantization import QuantType

    if kind == CPU_INT8:
        # what ONNX Runtime's CPU kernels run fast: uint8 activations x int8 weights; 7-bit weights
        # keep the pairwise sums of the uint8 x int8 instruction from saturating on CPUs without VNNI
        return {"activation_type": QuantType.QUInt8, "weight_type": QuantType.QInt8, "reduce_range": True,
                "extra_options": {}}
    return {"activation_type": QuantType.QInt8, "weight_type": QuantType.QInt8, "extra_options": {
        "ActivationSymmetric": True, "WeightSymmetric": True,  # zero points 0
        # float biases: TensorRT's dequantize layer takes int8 / fp8 / int4 / fp4 inputs
        # only, so an int32 bias behind a DequantizeLinear stops the build
        "QuantizeBias": False,
    }}


def make_int8(fp32_path: str | Path, out_path: str | Path, calib_dir: str | Path, *,
              limit: int = 1000, seed: int = 0, method: str = "minmax", kind: str = "int8",
              log: Callable[[str], None] | None = None) -> Path:
    """Write an INT8 QDQ copy calibrated on up to ``limit`` crops from ``calib_dir``: ``kind``
    ``int8`` the symmetric one for TensorRT (float biases, unquantized heads), ``int8cpu`` the one
    for ONNX Runtime on the CPU (uint8 activations, 7-bit per-channel weights, unquantized heads).

    method: activation-range calibration, ``minmax`` (full observed range), ``percentile``
    (99.999th percentile: clips rare outliers) or ``entropy`` (KL-divergence thresholds).
    """
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static

    log = log or (lambda msg: None)
    if method not in CALIB_METHODS:
        raise DatasetError(f"calibration method {method!r} is unknown; use one of {', '.join(CALIB_METHODS)}")
    calib_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                    "entropy": CalibrationMethod.Entropy}[method]
    src = read_model_info(fp32_path)
    crops = _calibration_crops(calib_dir, src.spec, limit, seed)
    log(f"{kind}: calibrating ({method}) on {len(crops)} crops from {calib_dir}")

    class Reader(_CropReader, CalibrationDataReader):
        pass

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmpdir:
        source = pre_processed(fp32_path, Path(tmpdir) / "pre.onnx", log)
        import onnx

        heads = head_nodes(onnx.load(str(source), load_external_data=False))
        q = Path(tmpdir) / "q.onnx"
        quantize_static(
            str(source), str(q), Reader(crops, src.spec),
            quant_format=QuantFormat.QDQ, per_channel=True, calibrate_method=calib_method,
            op_types_to_quantize=list(INT8_OP_TYPES),
            # the heads (logits -> Softmax / Sigmoid) stay float32: two small layers, and the
            # outputs are then closer to fp32 than with int8 logits (docs/engines.md)
            nodes_to_exclude=heads, **int8_options(kind),
        )
        model = onnx.load(str(q))
        _set_metadata(model, src, kind)
        save_atomic(model, out)
    return out


def build_copy(fp32_path: str | Path, precision: str, cache_dir: str | Path, *, device: str = "cuda",
               calib_dir: str | Path | None = None, calib_limit: int = 1000, calib_method: str = "minmax",
               log: Callable[[str], None] | None = None) -> Path:
    """Make (or remake) the copy that runs ``precision`` on ``device`` in ``cache_dir``; fp32
    returns the model itself."""
    out = copy_path(fp32_path, precision, cache_dir, device)
    kind = copy_kind(precision, device)
    if kind == "fp32":
        read_model_info(fp32_path)
        return out
    if kind == "fp16":
        return make_fp16(fp32_path, out)
    if calib_dir is None:
        raise DatasetError("the int8 copy needs calibration crops: pass --calib-dir DIR (a folder of "
                           "aligned grey face crops, PNG/JPG)")
    return make_int8(fp32_path, out, calib_dir, limit=calib_limit, method=calib_method, kind=kind, log=log)
