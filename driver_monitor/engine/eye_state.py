"""The eye-state model on ONNX Runtime's CPU provider: eye patches -> P(closed) per eye.

The file (``eyes.model``, shipped as ``engines/eye_state.onnx``) takes ``eye`` float32
``(N, 1, S, S)`` in [0, 1] (S = 32 in the shipped model) and gives ``p_closed`` float32 ``(N,)``;
its ``dm.*`` metadata says what it was trained on and how it measured (``docs/eye_state.md``). It
is small (two networks of about 50 k parameters): one thread, about 0.45 ms for both eyes of a
frame (0.32 ms for the int8 copy), so it runs beside the face mesh without a GPU. A missing or
broken file is a :class:`ModelError` naming it and what to do.

An int8 copy for the CPU lies beside the model (``eye_state.int8cpu.onnx``, :func:`make_int8`): the
convolutions, ReLUs and poolings in int8, the patch standardisation and the head in float32, the
engine's CPU recipe (uint8 activations, per-channel 7-bit int8 weights). It reads the eyes about
1.4x as fast with the same verdicts (docs/eye_state.md, section 2). ``eyes.precision``: ``auto``
runs the copy when it was made from the model as it is now (``dm.source_sha256``) and the model
otherwise; ``int8`` requires the copy; ``fp32`` runs the model itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from ..model_contract import file_sha256
from .onnxruntime_backend import cpu_session

INPUT_NAME = "eye"
OUTPUT_NAME = "p_closed"
PRECISIONS = ("auto", "fp32", "int8")
#: how the int8 copy is made (``dm.copy_recipe``); a copy of another recipe is stale.
#: 1: QDQ, uint8 activations, per-channel 7-bit int8 weights, Conv / Relu / MaxPool only.
INT8_RECIPE = "1"
INT8_OP_TYPES = ("Conv", "Relu", "MaxPool")
QUANTIZE_COMMAND = "python tools/train_eye_state.py quantize {model} --cew DIR_OF_CEW_PATCHES"


class EyeStateModel:
    """``p_closed(patches)``: ``(N, S, S)`` uint8 grey patches -> ``(N,)`` float32 in [0, 1]."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        self.path = Path(path)
        self._session: Any = cpu_session(
            self.path, "eye-state model",
            "restore engines/eye_state.onnx (git checkout engines/), point eyes.model at the file, or set "
            "eyes.model_enabled=false to judge the eyes by their aspect ratio alone", threads)
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelError(f"eye-state model {str(self.path)!r} has inputs {sorted(inputs)} and outputs "
                             f"{sorted(outputs)}; expected {INPUT_NAME!r} -> {OUTPUT_NAME!r} (an eye_state.onnx "
                             f"made by tools/train_eye_state.py)")
        shape = inputs[INPUT_NAME].shape
        self.size = int(shape[-1]) if isinstance(shape[-1], int) else 24
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.version = self.metadata.get("dm.model_version", "unknown")
        self.precision = self.metadata.get("dm.precision", "fp32")
        try:  # the patch framing the model was trained on (face.eyes.eye_patches' scale)
            self.scale = float(self.metadata.get("dm.patch_scale", "1.5"))
        except ValueError:
            raise ModelError(f"eye-state model {str(self.path)!r}: dm.patch_scale "
                             f"{self.metadata.get('dm.patch_scale')!r} is not a number") from None
        # one warm-up run: the first call of a session pays its allocations
        self.p_closed(np.zeros((2, self.size, self.size), np.uint8))

    def p_closed(self, patches: NDArray[np.uint8]) -> NDArray[np.float32]:
        if patches.ndim != 3 or patches.shape[1:] != (self.size, self.size):
            raise ValueError(f"eye patches must be (N, {self.size}, {self.size}), got {patches.shape}")
        x = patches.astype(np.float32)[:, None] * np.float32(1.0 / 255.0)
        out: Any = self._session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]
        return np.asarray(out, np.float32).reshape(-1)

    def close(self) -> None:
        self._session = None


def int8_path(model: str | Path) -> Path:
    """Where the int8 copy of ``model`` lies: beside it, ``<stem>.int8cpu.onnx``."""
    model = Path(model)
    return model.with_name(f"{model.stem}.int8cpu.onnx")


def copy_problem(model: Path, copy: Path) -> str | None:
    """Why ``copy`` is not a current int8 copy of ``model`` (one line), or None when it is."""
    if not copy.is_file():
        return f"the int8 copy {str(copy)!r} does not exist"
    import onnx

    meta = {m.key: m.value for m in onnx.load(str(copy), load_external_data=False).metadata_props}
    if meta.get("dm.precision") != "int8" or meta.get("dm.copy_recipe") != INT8_RECIPE:
        return (f"{str(copy)!r} is not an int8 copy of recipe {INT8_RECIPE} (dm.precision "
                f"{meta.get('dm.precision')!r}, dm.copy_recipe {meta.get('dm.copy_recipe')!r})")
    if not model.is_file():
        return f"eye-state model {str(model)!r} not found"
    if meta.get("dm.source_sha256") != file_sha256(model):
        return f"the int8 copy {str(copy)!r} was made from another {model.name}: it is stale"
    return None


def resolve_model(model: str | Path, precision: str) -> Path:
    """The file to run for ``eyes.model`` at ``eyes.precision`` (:data:`PRECISIONS`)."""
    model = Path(model)
    if precision not in PRECISIONS:
        raise ModelError(f"eyes.precision {precision!r} is unknown; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model
    copy = int8_path(model)
    problem = copy_problem(model, copy)
    if problem is None:
        return copy
    if precision == "auto":
        return model
    raise ModelError(f"{problem}; make it with `{QUANTIZE_COMMAND.format(model=model)}` or set "
                     f"eyes.precision=fp32")


def make_int8(model: str | Path, calibration: NDArray[np.uint8], out: str | Path | None = None) -> Path:
    """Write the int8 copy of the eye-state model ``model`` (default: :func:`int8_path`),
    calibrated on ``calibration`` (``(N, S, S)`` uint8 patches: CEW's training split in the tools),
    with the model's ``dm.*`` metadata and ``dm.precision``, ``dm.source_sha256``,
    ``dm.source_file``, ``dm.copy_recipe``; returns its path."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from .precision import CPU_INT8, int8_options, pre_processed, save_atomic, write_metadata

    model = Path(model)
    out = Path(out) if out is not None else int8_path(model)
    if calibration.ndim != 3 or len(calibration) == 0:
        raise ModelError(f"int8 calibration needs (N, S, S) eye patches, got shape {calibration.shape}")
    batches = [calibration[i:i + 32, None].astype(np.float32) / np.float32(255.0)
               for i in range(0, len(calibration), 32)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(batches)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            x = next(self._it, None)
            return None if x is None else {INPUT_NAME: x}

    out.parent.mkdir(parents=True, exist_ok=True)
    source_meta = {m.key: m.value for m in onnx.load(str(model)).metadata_props}
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        pre = pre_processed(model, Path(tmp) / "pre.onnx", lambda m: None)
        q = Path(tmp) / "q.onnx"
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        op_types_to_quantize=list(INT8_OP_TYPES), **int8_options(CPU_INT8))
        proto = onnx.load(str(q))
    meta = {**source_meta, "dm.precision": "int8", "dm.source_sha256": file_sha256(model),
            "dm.source_file": model.name, "dm.copy_recipe": INT8_RECIPE,
            "dm.calibration": f"{len(calibration)} eye patches"}
    write_metadata(proto, meta)
    save_atomic(proto, out)
    return out


def open_eye_model(cfg: Any, project_root: str | Path | None = None) -> EyeStateModel | None:
    """The model ``cfg`` (the ``eyes`` config section) names at ``cfg.precision``, or None when
    it is switched off."""
    if not cfg.model_enabled:
        return None
    from .base import project_path

    return EyeStateModel(resolve_model(project_path(cfg.model, project_root), cfg.precision))
