"""The eye-state model on ONNX Runtime's CPU provider: eye patches -> P(closed) per eye.

The file (``eyes.model``, shipped as ``engines/eye_state.onnx``) takes ``eye`` float32
``(N, 1, 24, 24)`` in [0, 1] and gives ``p_closed`` float32 ``(N,)``; its ``dm.*`` metadata says
what it was trained on and how it measured (``docs/eye_state.md``). It is small (about 50 k
parameters): one thread, about 0.1 ms for both eyes of a frame, so it runs on every frame beside
the face mesh without a GPU. A missing or broken file is a :class:`ModelError` naming it and what
to do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ModelError
from .onnxruntime_backend import cpu_session

INPUT_NAME = "eye"
OUTPUT_NAME = "p_closed"


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


def open_eye_model(cfg: Any, project_root: str | Path | None = None) -> EyeStateModel | None:
    """The model ``cfg`` (the ``eyes`` config section) names, or None when it is switched off."""
    if not cfg.model_enabled:
        return None
    from .base import project_path

    return EyeStateModel(project_path(cfg.model, project_root))
