"""The model contract: what an ONNX model file of this project is and says about itself.

Defined once, used by the engines (to open a model), the exporter (to write one) and the evaluation
tool (to read one):

* input ``face``: float32 ``(N, 1, S, S)``, dynamic batch axis ``N`` (``preprocess.to_input``);
* outputs ``emotion_probs`` float32 ``(N, C)`` (softmax) and ``au_intensity`` float32 ``(N, K)`` in
  [0, 1]; opset 17;
* ``metadata_props`` (strings, :data:`META_KEYS`): ``dm.emotion_names`` / ``dm.au_names`` (JSON
  lists: C and K names), ``dm.input_size``, ``dm.input_mean``, ``dm.input_std``,
  ``dm.model_version``, ``dm.training_data``, ``dm.metrics`` (JSON), ``dm.torch_checkpoint``;
  precision copies add ``dm.precision`` and ``dm.source_sha256``.

:func:`read_model_info` checks that the metadata describes the graph it travels with. Imports
``onnx`` only when a file is read.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..preprocess import InputSpec

INPUT_NAME = "face"
OUTPUT_PROBS = "emotion_probs"
OUTPUT_AUS = "au_intensity"
OUTPUT_NAMES = (OUTPUT_PROBS, OUTPUT_AUS)
OPSET = 17
META_KEYS = (
    "dm.emotion_names", "dm.au_names", "dm.input_size", "dm.input_mean", "dm.input_std",
    "dm.model_version", "dm.training_data", "dm.metrics", "dm.torch_checkpoint",
)


def model_metadata(meta: dict[str, Any], *, torch_checkpoint: str, model_version: str | None = None,
                   metrics: dict[str, Any] | None = None) -> dict[str, str]:
    """A checkpoint's meta (names, input size and normalisation, ...) -> the ``dm.*`` strings."""
    return {
        "dm.emotion_names": json.dumps(list(meta["emotion_names"])),
        "dm.au_names": json.dumps(list(meta["au_names"])),
        "dm.input_size": str(int(meta["input_size"])),
        "dm.input_mean": repr(float(meta["input_mean"])),
        "dm.input_std": repr(float(meta["input_std"])),
        "dm.model_version": str(model_version or meta.get("model_version", "unversioned")),
        "dm.training_data": str(meta.get("training_data", "unknown")),
        "dm.metrics": json.dumps(metrics if metrics is not None else meta.get("metrics", {}), sort_keys=True),
        "dm.torch_checkpoint": torch_checkpoint,
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``dm.*`` properties of an ONNX file; ModelError when the file or a key is missing."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"ONNX model {path} not found; export one with tools/export_onnx.py")
    proto = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in proto.metadata_props}
    missing = [k for k in META_KEYS if k not in props]
    if missing:
        raise ModelError(f"ONNX model {path} lacks metadata {missing}; re-export it with tools/export_onnx.py")
    return props


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What an ONNX model file says about itself (its ``dm.*`` metadata).

    path: the ONNX file. sha256: hex digest of its bytes (engine cache key).
    spec: input size and normalisation. precision: ``fp32`` for the exported model,
    ``fp16`` / ``int8`` for the copies made by ``engines build`` (``dm.precision``).
    source_sha256: for a copy, the sha256 of the fp32 model it was made from.
    torch_checkpoint: file name of the matching torch checkpoint (beside the fp32 model), or None.
    """

    path: Path
    sha256: str
    emotion_names: tuple[str, ...]
    au_names: tuple[str, ...]
    spec: InputSpec
    precision: str = "fp32"
    version: str = ""
    source_sha256: str | None = None
    torch_checkpoint: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _json_names(meta: dict[str, str], key: str, path: Path) -> tuple[str, ...]:
    raw = meta.get(key)
    if raw is None:
        raise ModelError(f"model {str(path)!r} has no {key} metadata; re-export it with the project's "
                         f"exporter (tools/export_onnx.py), which writes dm.emotion_names and dm.au_names")
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"model {str(path)!r}: {key} is not a JSON list ({raw[:60]!r}); re-export the model") from None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelError(f"model {str(path)!r}: {key} must be a non-empty JSON list of strings, got {raw[:60]!r}")
    return tuple(names)


def _dims(value_info) -> list[int | None]:
    """Static sizes of a graph input / output (None for a symbolic or unknown dimension)."""
    return [d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim]


def _check_contract(p: Path, model, spec: InputSpec, emotion_names: tuple[str, ...],
                    au_names: tuple[str, ...]) -> None:
    """The metadata must describe the graph it travels with: the input size, one emotion name per
    probability and one AU name per intensity. A mismatch found here is one line when the engine
    opens, not a crash on the first face."""
    shapes = {v.name: _dims(v) for v in [*model.graph.input, *model.graph.output]}
    problems = []
    face = shapes.get(INPUT_NAME, [])
    if len(face) == 4 and any(d is not None and d != spec.size for d in face[2:]):
        problems.append(f"dm.input_size is {spec.size} but the graph takes {face[2]}x{face[3]} faces")
    for name, names, key in ((OUTPUT_PROBS, emotion_names, "dm.emotion_names"), (OUTPUT_AUS, au_names, "dm.au_names")):
        dims = shapes.get(name, [])
        if len(dims) == 2 and dims[1] is not None and dims[1] != len(names):
            problems.append(f"{key} lists {len(names)} names but {name} has {dims[1]} values")
    if problems:
        raise ModelError(f"model {str(p)!r}: its metadata does not match its graph ({'; '.join(problems)}); "
                         f"re-export it with tools/export_onnx.py")


def read_model_info(path: str | Path) -> ModelInfo:
    """Read and check the ``dm.*`` metadata of an ONNX file (raises ModelError with what to do)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"model file {str(p)!r} does not exist; train and export it (tools/train.py, "
                         f"tools/export_onnx.py) or set engine.model to the right path")
    try:
        import onnx

        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError / OSError variants
        raise ModelError(f"model file {str(p)!r} is not a readable ONNX model ({exc.__class__.__name__}: "
                         f"{str(exc)[:120]}); re-export it") from None
    meta = {prop.key: prop.value for prop in model.metadata_props}
    emotion_names = _json_names(meta, "dm.emotion_names", p)
    au_names = _json_names(meta, "dm.au_names", p)
    try:
        spec = InputSpec(size=int(meta.get("dm.input_size", "48")),
                         mean=float(meta.get("dm.input_mean", "0.5")),
                         std=float(meta.get("dm.input_std", "0.5")))
    except ValueError as exc:
        raise ModelError(f"model {str(p)!r}: bad input metadata ({exc}); re-export the model") from None
    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if INPUT_NAME not in inputs or OUTPUT_PROBS not in outputs or OUTPUT_AUS not in outputs:
        raise ModelError(f"model {str(p)!r} has inputs {inputs} and outputs {outputs}; expected input "
                         f"{INPUT_NAME!r} and outputs {OUTPUT_PROBS!r}, {OUTPUT_AUS!r}")
    _check_contract(p, model, spec, emotion_names, au_names)
    return ModelInfo(
        path=p,
        sha256=file_sha256(p),
        emotion_names=emotion_names,
        au_names=au_names,
        spec=spec,
        precision=meta.get("dm.precision", "fp32"),
        version=meta.get("dm.model_version", ""),
        source_sha256=meta.get("dm.source_sha256"),
        torch_checkpoint=meta.get("dm.torch_checkpoint") or None,
        metadata=tuple(sorted(meta.items())),
    )
