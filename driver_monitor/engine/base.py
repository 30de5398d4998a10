"""The one engine interface every backend implements, what a selection says, and config paths.

Every backend lives in its own module (``onnxruntime_backend``, ``torch_backend``,
``tensorrt_backend``, listed in ``backends.TABLE``) that imports its runtime inside itself; the
choice is made in ``select.py``; the model file's contract is ``driver_monitor.model_contract``.
Third-party types never leave a backend module: engines return :class:`EngineOutput`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError, ModelError
from ..preprocess import InputSpec, to_input
from ..types import EngineOutput

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
    ``(emotion_probs (n, C), aus (n, K))`` as numpy float32, followed by ``(region_attention (n, R),
    region_visibility (n, R))`` when the model has regions (``region_names``, from ``dm.regions``;
    ``au_regions``: AU name -> the regions it is read from).
    """

    name: str = "engine"
    device: str = "cpu"
    precision: str = "fp32"

    def __init__(self, spec: InputSpec, emotion_names: Sequence[str], au_names: Sequence[str],
                 max_batch: int = 8, *, region_names: Sequence[str] = (),
                 au_regions: Mapping[str, Sequence[str]] | None = None) -> None:
        if max_batch < 1:
            raise ConfigError(f"engine max_batch must be >= 1, got {max_batch}")
        self.spec = spec
        self.emotion_names = tuple(emotion_names)
        self.au_names = tuple(au_names)
        self.region_names = tuple(region_names)
        self.au_regions = {au: tuple(rs) for au, rs in (au_regions or {}).items()} if self.region_names else {}
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
        widths = [len(self.emotion_names), len(self.au_names)]
        if self.region_names:
            widths += [len(self.region_names)] * 2
        batches = [self._run_batch(np.ascontiguousarray(x[start:start + self.max_batch]), widths)
                   for start in range(0, x.shape[0], self.max_batch)]
        if len(batches) == 1:  # one batch (a frame's face): its outputs as they are
            arrays = batches[0]
        else:
            arrays = [np.concatenate([np.zeros((0, w), np.float32), *(b[i] for b in batches)])
                      for i, w in enumerate(widths)]
        regions = {}
        if self.region_names:
            regions = {"region_names": self.region_names, "region_attention": arrays[2],
                       "region_visibility": arrays[3]}
        return EngineOutput(arrays[0], arrays[1], self.emotion_names, self.au_names, **regions)

    def _run_batch(self, x: NDArray[np.float32], widths: list[int]) -> list[NDArray[np.float32]]:
        """One batch's outputs as float32 (n, width) arrays, checked against the expected count."""
        outs = self._run(x)
        if len(outs) != len(widths):
            raise ModelError(f"{self.description} engine returned {len(outs)} outputs, expected {len(widths)}")
        return [np.asarray(out, dtype=np.float32).reshape(-1, w) for out, w in zip(outs, widths)]

    def warm_up(self, runs: int = 2) -> None:
        """Run a blank crop ``runs`` times, so the first frames do not pay for the runtime's
        first-run work (allocations, kernel choice): on ONNX Runtime's CPU provider the first two
        runs took 5-6 ms against 1.2 ms after them. Outputs do not depend on it."""
        blank = np.zeros((1, self.spec.size, self.spec.size), np.uint8)
        for _ in range(runs):
            self.infer(blank)

    @abstractmethod
    def _run(self, x: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
        """``(n, 1, S, S)`` float32 with 1 <= n <= max_batch -> (probs (n, C), aus (n, K)), then
        (region attention (n, R), region visibility (n, R)) when the model has regions: arrays the
        caller keeps, never buffers the next run writes into."""

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


# --------------------------------------------------------------------------- paths


def project_path(value: str | Path, project_root: str | Path | None) -> Path:
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
    return project_path(cfg.model, project_root)


def resolve_cache_dir(cfg: Any, project_root: str | Path | None) -> Path:
    return project_path(cfg.cache_dir, project_root)
