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

Optional, a region-attention network only (:data:`REGION_OUTPUT_NAMES`, :data:`REGION_META_KEYS`):
outputs ``region_attention`` float32 ``(N, R)`` (each region's attention weight, sigmoid, in [0, 1])
and ``region_visibility`` float32 ``(N, R)`` (the fraction of the region seen uncovered, in [0, 1]),
with ``dm.regions`` (JSON list: the R region names) and ``dm.au_regions`` (JSON object: AU name ->
the regions it is read from). Both outputs and both keys, or none of them: a plain model is
exactly the two-output contract above.

:func:`read_model_info` checks that the metadata describes the graph it travels with. Imports
``onnx`` only when a file is read.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ModelError
from .preprocess import InputSpec

INPUT_NAME = "face"
OUTPUT_PROBS = "emotion_probs"
OUTPUT_AUS = "au_intensity"
OUTPUT_NAMES = (OUTPUT_PROBS, OUTPUT_AUS)
OUTPUT_REGION_ATTENTION = "region_attention"
OUTPUT_REGION_VISIBILITY = "region_visibility"
REGION_OUTPUT_NAMES = (OUTPUT_REGION_ATTENTION, OUTPUT_REGION_VISIBILITY)
OPSET = 17
META_KEYS = (
    "dm.emotion_names", "dm.au_names", "dm.input_size", "dm.input_mean", "dm.input_std",
    "dm.model_version", "dm.training_data", "dm.metrics", "dm.torch_checkpoint",
)
#: present together, only in a region-attention model (with :data:`REGION_OUTPUT_NAMES`)
REGION_META_KEYS = ("dm.regions", "dm.au_regions")


def model_metadata(meta: dict[str, Any], *, torch_checkpoint: str, model_version: str | None = None,
                   metrics: dict[str, Any] | None = None, regions: Sequence[str] = (),
                   au_regions: Mapping[str, Sequence[str]] | None = None) -> dict[str, str]:
    """A checkpoint's meta (names, input size and normalisation, ...) -> the ``dm.*`` strings.

    ``regions`` / ``au_regions``: a region-attention network's region names and the regions each
    AU is read from (:data:`REGION_META_KEYS`); nothing is added for a plain network (``()``)."""
    props = {
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
    if regions:
        props.update(region_metadata(regions, au_regions or {}, meta["au_names"]))
    return props


def region_metadata(regions: Sequence[str], au_regions: Mapping[str, Sequence[str]],
                    au_names: Sequence[str]) -> dict[str, str]:
    """``dm.regions`` and ``dm.au_regions`` for a model with these regions: every AU of ``au_names``
    maps to the regions it is read from that the model has (an AU none of whose regions the model
    has maps to ``[]``: nothing can hide it). ModelError for duplicate or empty region names."""
    names = [str(r) for r in regions]
    if not names or len(set(names)) != len(names) or not all(names):
        raise ModelError(f"region names must be distinct and non-empty, got {names}")
    amap = {str(au): [r for r in au_regions.get(au, ()) if r in names] for au in au_names}
    return {"dm.regions": json.dumps(names), "dm.au_regions": json.dumps(amap)}


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
    region_names: a region-attention model's regions (``dm.regions``), in the order of its
    region outputs; ``()`` for a plain model. au_regions: ``(AU name, its regions)`` pairs from
    ``dm.au_regions`` (``()`` for a plain model); :meth:`au_region_map` as a dict.
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
    region_names: tuple[str, ...] = ()
    au_regions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def au_region_map(self) -> dict[str, tuple[str, ...]]:
        """AU name -> the regions it is read from (empty for a plain model)."""
        return dict(self.au_regions)


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


def _io_shapes(model) -> dict[str, list[int | None]]:
    return {v.name: _dims(v) for v in [*model.graph.input, *model.graph.output]}


def _raise_mismatch(p: Path, problems: list[str]) -> None:
    """The metadata must describe the graph it travels with: a mismatch found when the model is read
    is one line when the engine opens, not a crash on the first face."""
    if problems:
        raise ModelError(f"model {str(p)!r}: its metadata does not match its graph ({'; '.join(problems)}); "
                         f"re-export it with tools/export_onnx.py")


def _name_problems(shapes: dict[str, list[int | None]], spec: InputSpec, emotion_names: tuple[str, ...],
                   au_names: tuple[str, ...]) -> list[str]:
    """The input size, one emotion name per probability and one AU name per intensity."""
    problems = []
    face = shapes.get(INPUT_NAME, [])
    if len(face) == 4 and any(d is not None and d != spec.size for d in face[2:]):
        problems.append(f"dm.input_size is {spec.size} but the graph takes {face[2]}x{face[3]} faces")
    for name, names, key in ((OUTPUT_PROBS, emotion_names, "dm.emotion_names"), (OUTPUT_AUS, au_names, "dm.au_names")):
        dims = shapes.get(name, [])
        if len(dims) == 2 and dims[1] is not None and dims[1] != len(names):
            problems.append(f"{key} lists {len(names)} names but {name} has {dims[1]} values")
    return problems


def _region_problems(shapes: dict[str, list[int | None]], regions: tuple[str, ...]) -> list[str]:
    """The region outputs and ``dm.regions`` come together, one value per region in each output."""
    present = [n for n in REGION_OUTPUT_NAMES if n in shapes]
    if not regions:
        return [f"it has output {n!r} but no dm.regions" for n in present]
    problems = [f"dm.regions is set but output {n!r} is missing" for n in REGION_OUTPUT_NAMES if n not in present]
    for name in present:
        dims = shapes[name]
        if len(dims) != 2 or (dims[1] is not None and dims[1] != len(regions)):
            problems.append(f"dm.regions lists {len(regions)} regions but {name} has shape {dims}")
    return problems


def _region_meta(meta: dict[str, str], path: Path, au_names: tuple[str, ...]
                 ) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]:
    """``dm.regions`` and ``dm.au_regions`` (both or neither) -> (region names, AU -> regions pairs)."""
    have = [k for k in REGION_META_KEYS if k in meta]
    if not have:
        return (), ()
    if len(have) != len(REGION_META_KEYS):
        raise ModelError(f"model {str(path)!r} has {have[0]} without {[k for k in REGION_META_KEYS if k not in have]}; "
                         f"re-export it with tools/export_onnx.py")
    regions = _json_names(meta, "dm.regions", path)
    try:
        amap = json.loads(meta["dm.au_regions"])
    except json.JSONDecodeError:
        amap = None
    ok = isinstance(amap, dict) and all(
        au in au_names and isinstance(rs, list) and all(r in regions for r in rs) for au, rs in amap.items())
    if not ok or len(set(regions)) != len(regions):
        raise ModelError(f"model {str(path)!r}: dm.au_regions must map AU names of dm.au_names to lists of "
                         f"dm.regions names ({meta['dm.au_regions'][:80]!r}; regions {list(regions)}); "
                         f"re-export the model")
    return regions, tuple((au, tuple(amap[au])) for au in au_names if au in amap)


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
    shapes = _io_shapes(model)
    _raise_mismatch(p, _name_problems(shapes, spec, emotion_names, au_names))  # first: the region map reads them
    regions, au_regions = _region_meta(meta, p, au_names)
    _raise_mismatch(p, _region_problems(shapes, regions))
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
        region_names=regions,
        au_regions=au_regions,
    )
