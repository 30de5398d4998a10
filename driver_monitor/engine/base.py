"""The one engine interface, the model's metadata, and the ONE place a backend is chosen.

Every backend lives in its own module (``onnxruntime_backend``, ``torch_backend``,
``tensorrt_backend``) that imports its runtime inside itself; this module imports none of them
at import time. ``create_engine`` asks each backend module whether it can run here (``probe``)
and opens the first one that fits the request:

* ``backend: auto`` prefers TensorRT on a CUDA GPU, then ONNX Runtime's CUDA provider, then
  ONNX Runtime on the CPU; what it chose and why is the returned :class:`Selection`.
* an explicitly requested backend (or device) that cannot load raises
  :class:`BackendUnavailableError` with the install hint: never a silent GPU -> CPU fallback.

Third-party types never leave a backend module: engines return :class:`EngineOutput`.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendUnavailableError, ConfigError, ModelError
from ..preprocess import InputSpec, to_input
from ..types import EngineOutput

BACKENDS: tuple[str, ...] = ("tensorrt", "onnxruntime", "torch")

# backend name -> module (relative to this package) that implements it
_BACKEND_MODULES: dict[str, str] = {
    "tensorrt": ".tensorrt_backend",
    "onnxruntime": ".onnxruntime_backend",
    "torch": ".torch_backend",
}

# auto: the order backends / devices are tried in
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"),
    ("onnxruntime", "cuda"),
    ("onnxruntime", "cpu"),
)

INSTALL_HINTS: dict[tuple[str, str], str] = {
    ("tensorrt", "cuda"): 'install TensorRT and pycuda with `pip install -e ".[gpu]"` '
                          "(needs an NVIDIA GPU and driver)",
    ("onnxruntime", "cuda"): "install the GPU build of ONNX Runtime: `pip uninstall onnxruntime && "
                             "pip install onnxruntime-gpu` (needs an NVIDIA GPU, CUDA 12 and cuDNN 9)",
    ("onnxruntime", "cpu"): "install ONNX Runtime: `pip install onnxruntime`",
    ("torch", "cpu"): "install the CPU build of PyTorch: `pip install torch==2.13.0 --extra-index-url "
                      "https://download.pytorch.org/whl/cpu` (plain `pip install torch` pulls the CUDA build)",
    ("torch", "cuda"): "install a CUDA build of PyTorch (https://pytorch.org/get-started/) "
                       "on a machine with an NVIDIA GPU",
}

OUTPUT_PROBS = "emotion_probs"
OUTPUT_AUS = "au_intensity"
INPUT_NAME = "face"


# --------------------------------------------------------------------------- model metadata


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


# --------------------------------------------------------------------------- the interface


@dataclass(frozen=True, slots=True)
class Selection:
    """Which backend runs, on what, at which precision, and why (stored in summary.json)."""

    backend: str
    device: str
    precision: str
    reason: str

    def describe(self) -> str:
        """``"onnxruntime CPU fp32"``."""
        return f"{self.backend} {self.device.upper()} {self.precision}"

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "device": self.device, "precision": self.precision,
                "reason": self.reason, "description": self.describe()}


class Engine(ABC):
    """Emotion + action-unit network behind one interface.

    ``infer`` takes ``(N, S, S)`` uint8 grey aligned crops (S = ``spec.size``) and returns an
    :class:`EngineOutput`; batches larger than ``max_batch`` are split into several runs.
    Subclasses implement ``_run(x)`` on the normalised ``(n, 1, S, S)`` float32 input and return
    ``(emotion_probs (n, C), aus (n, K))`` as numpy float32.
    """

    name: str = "engine"
    device: str = "cpu"
    precision: str = "fp32"

    def __init__(self, spec: InputSpec, emotion_names: Sequence[str], au_names: Sequence[str],
                 max_batch: int = 8) -> None:
        if max_batch < 1:
            raise ConfigError(f"engine max_batch must be >= 1, got {max_batch}")
        self.spec = spec
        self.emotion_names = tuple(emotion_names)
        self.au_names = tuple(au_names)
        self.max_batch = int(max_batch)
        self._closed = False

    @property
    def description(self) -> str:
        return f"{self.name} {self.device.upper()} {self.precision}"

    def infer(self, crops: NDArray[np.uint8]) -> EngineOutput:
        if self._closed:
            raise ModelError(f"{self.description} engine was used after close()")
        arr = np.asarray(crops)
        if arr.dtype != np.uint8:
            raise ValueError(f"crops must be uint8, got {arr.dtype}")
        x = to_input(arr, self.spec)  # checks the (N, S, S) shape
        n = x.shape[0]
        if n == 0:
            return EngineOutput(np.zeros((0, len(self.emotion_names)), np.float32),
                                np.zeros((0, len(self.au_names)), np.float32),
                                self.emotion_names, self.au_names)
        probs, aus = [], []
        for start in range(0, n, self.max_batch):
            p, a = self._run(np.ascontiguousarray(x[start:start + self.max_batch]))
            probs.append(np.asarray(p, dtype=np.float32).reshape(-1, len(self.emotion_names)))
            aus.append(np.asarray(a, dtype=np.float32).reshape(-1, len(self.au_names)))
        return EngineOutput(np.concatenate(probs), np.concatenate(aus), self.emotion_names, self.au_names)

    @abstractmethod
    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(n, 1, S, S)`` float32 with 1 <= n <= max_batch -> (probs (n, C), aus (n, K))."""

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


# --------------------------------------------------------------------------- selection


def backend_module(name: str) -> ModuleType:
    """The module implementing ``name`` (imports only our adapter, not its runtime)."""
    if name not in _BACKEND_MODULES:
        raise ConfigError(f"engine backend {name!r} is unknown; use one of auto, {', '.join(BACKENDS)}")
    return importlib.import_module(_BACKEND_MODULES[name], __package__)


def install_hint(backend: str, device: str) -> str:
    return INSTALL_HINTS.get((backend, device), "")


def _project_path(value: str | Path, project_root: str | Path | None) -> Path:
    """A config path: absolute as given, else relative to ``project_root`` (default: the project)."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    if project_root is None:
        from ..config import PROJECT_ROOT
        project_root = PROJECT_ROOT
    return Path(project_root) / p


def resolve_model_path(cfg: Any, project_root: str | Path | None) -> Path:
    """The fp32 model named by ``cfg.model`` (relative to ``project_root``)."""
    return _project_path(cfg.model, project_root)


def resolve_cache_dir(cfg: Any, project_root: str | Path | None) -> Path:
    return _project_path(cfg.cache_dir, project_root)


Prober = Callable[[str, str], str | None]


def _probe(backend: str, device: str) -> str | None:
    """None when ``backend`` can run on ``device`` here, else why not (without the hint)."""
    return backend_module(backend).probe(device)


def _devices_for(backend: str, requested: str) -> tuple[str, ...]:
    if requested != "auto":
        return (requested,)
    return ("cuda",) if backend == "tensorrt" else ("cuda", "cpu")


def plan_selection(backend: str, device: str = "auto", precision: str = "fp32", *,
                   prober: Prober = _probe) -> list[tuple[str, str, str]]:
    """Candidates to try, in order: ``[(backend, device, why), ...]``.

    Raises BackendUnavailableError when an explicit request cannot be met here. ``why`` says
    which candidates were skipped before this one and why. ``prober`` is injectable for tests.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"engine device {device!r} is not allowed; use auto, cpu or cuda")
    if backend == "tensorrt" and device == "cpu":
        raise ConfigError("engine backend 'tensorrt' runs on a CUDA GPU only; use engine.device=cuda "
                          "(or auto), or backend onnxruntime for the CPU")
    if backend == "torch" and precision != "fp32":
        raise ConfigError(f"engine backend 'torch' is the fp32 reference; precision {precision!r} needs "
                          f"backend onnxruntime or tensorrt (they run the fp16 / int8 ONNX copies)")
    skipped: list[str] = []
    out: list[tuple[str, str, str]] = []
    if backend == "auto":
        order = [(b, d) for b, d in AUTO_ORDER if device in ("auto", d)]
        for b, d in order:
            problem = prober(b, d)
            if problem is None:
                why = "auto: " + ("; ".join(skipped) + "; " if skipped else "") + f"chose {b} {d.upper()}"
                out.append((b, d, why))
                skipped.append(f"{b} {d.upper()} failed to open")
            else:
                skipped.append(f"{b} {d.upper()} unavailable ({problem})")
        if not out:
            if device == "cuda":  # the GPU was asked for: say how to get a GPU backend, or drop the request
                raise BackendUnavailableError(
                    "engine.device is cuda but no backend can use a GPU here: " + "; ".join(skipped) + ". To fix: "
                    + install_hint("onnxruntime", "cuda") + ", or " + install_hint("tensorrt", "cuda")
                    + "; or set engine.device=auto (or cpu) to run on the CPU")
            raise BackendUnavailableError(
                "no inference backend can run here: " + "; ".join(skipped) + ". "
                + install_hint("onnxruntime", "cpu"))
        return out
    if backend not in BACKENDS:
        raise ConfigError(f"engine backend {backend!r} is unknown; use one of auto, {', '.join(BACKENDS)}")
    problems = []
    for d in _devices_for(backend, device):
        problem = prober(backend, d)
        if problem is None:
            why = f"requested backend {backend}"
            if device == "auto" and problems:
                why += f" (device auto: {'; '.join(problems)}; so using {d.upper()})"
            elif device == "auto":
                why += f" (device auto: using {d.upper()})"
            else:
                why += f" on {d.upper()}"
            return [(backend, d, why)]
        problems.append(f"{d.upper()}: {problem}" if device == "auto" else problem)
    d = _devices_for(backend, device)[-1]  # device auto: the hint for the most basic install
    raise BackendUnavailableError(
        f"engine backend {backend!r}" + (f" on {device}" if device != "auto" else "")
        + f" cannot run here: {'; '.join(problems)}. To fix: {install_hint(backend, d)}; or choose "
        f"another with --backend auto|onnxruntime|torch")


def create_engine(cfg: Any, *, project_root: str | Path | None = None,
                  log: Callable[[str], None] | None = None,
                  prober: Prober = _probe) -> tuple[Engine, Selection]:
    """Open the engine ``cfg`` (an EngineConfig) asks for. The ONE place a backend is chosen.

    Returns the engine and a Selection saying what runs and why. Raises ModelError when the model
    (or the requested precision's copy) is missing or stale, BackendUnavailableError when an
    explicitly requested backend cannot run here, ConfigError for impossible combinations.
    """
    from .precision import model_for_precision

    log = log or (lambda msg: None)
    backend = cfg.backend
    device = getattr(cfg, "device", "auto")
    precision = cfg.precision
    fp32_path = resolve_model_path(cfg, project_root)
    cache_dir = resolve_cache_dir(cfg, project_root)
    candidates = plan_selection(backend, device, precision, prober=prober)
    model = model_for_precision(fp32_path, precision, cache_dir)
    errors: list[str] = []
    for i, (b, d, why) in enumerate(candidates):
        try:
            engine = backend_module(b).open_engine(model, fp32_path=fp32_path, device=d,
                                                   max_batch=cfg.max_batch, cache_dir=cache_dir, log=log,
                                                   cpu_threads=int(getattr(cfg, "cpu_threads", 0)))
        except (BackendUnavailableError, ModelError) as exc:
            if backend != "auto" or i == len(candidates) - 1:
                raise
            errors.append(f"{b} {d.upper()}: {exc}")
            log(f"engine: {b} {d.upper()} could not open ({exc}); trying the next backend")
            continue
        if errors:
            why += " (after: " + "; ".join(errors) + ")"
        return engine, Selection(b, d, precision, why)
    raise BackendUnavailableError("no backend could open the model: " + "; ".join(errors))
