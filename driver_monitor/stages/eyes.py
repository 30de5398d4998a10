"""The eye stage: the eye-state model's P(closed) for the driver's eyes on one frame."""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from ..config import EyesConfig
from ..face.eyes import eye_patches
from ..face.geometry import right_eye_weight
from ..types import Face, Frame, Signals

#: a reading of the eye-state model below this P(closed) is clearly open, one above the other is
#: clearly closed: either may be held for ``eyes.reread_s`` while the EAR stays where it was
EYE_REUSE_BELOW = 0.1
EYE_REUSE_ABOVE = 0.9
#: the EAR "stays" within a tenth of the reading's: falls no more for open eyes, rises no more
#: (and no more than this much, the EAR's jitter on shut lids) for closed ones
EYE_REUSE_EAR_JITTER = 0.01


class EyeModel(Protocol):
    """What the eye stage asks of an eye-state model (engine.eye_state.EyeStateModel): patches of
    ``size`` pixels cut at ``scale`` times the eye's width, and P(closed) for each."""

    size: int
    scale: float

    def p_closed(self, patches: np.ndarray) -> np.ndarray: ...
    def close(self) -> None: ...


class EyeStage:
    """``read(frame, face, signals)``: the signals with ``eye_closed_p``, the model's P(closed)
    weighted over the eyes like the EAR (the eye turned away from the camera counts less, beyond
    20 deg of yaw not at all).

    A clear reading is not taken again on every frame: while the last one said clearly open
    (P(closed) under ``EYE_REUSE_BELOW``) or clearly closed (over ``EYE_REUSE_ABOVE``) less than
    ``eyes.reread_s`` ago, and the EAR has not moved towards the other state since (a drop of a
    tenth for open eyes, a rise of a tenth and ``EYE_REUSE_EAR_JITTER`` for closed ones), it holds.
    A blink, a closure or an opening moves the lids, so the EAR's move makes the next frame a new
    reading; at 10 frames/s every frame is read."""

    def __init__(self, cfg: EyesConfig, model: EyeModel) -> None:
        self.cfg = cfg
        self.model = model
        self._last: tuple[float, float, float] | None = None  # the last reading: (t, P(closed), EAR)

    def reset(self) -> None:
        """The eyes were not read (hidden, no face, a lost frame): the next frame is read afresh."""
        self._last = None

    def read(self, frame: Frame, face: Face, signals: Signals) -> Signals:
        last = self._last
        t, ear = frame.time_s, signals.ear
        if last is not None and 0.0 <= t - last[0] < self.cfg.reread_s - 1e-6:
            p_last, ear_last = last[1], last[2]
            if ((p_last < EYE_REUSE_BELOW and ear >= 0.9 * ear_last)
                    or (p_last > EYE_REUSE_ABOVE and ear <= 1.1 * ear_last + EYE_REUSE_EAR_JITTER)):
                return replace(signals, eye_closed_p=p_last)
        patches = eye_patches(frame.image, face, self.model.size, self.model.scale)
        if patches is None:
            self._last = None
            return signals
        p = self._p_closed(patches, right_eye_weight(signals.yaw_deg))
        self._last = (t, p, ear)
        return replace(signals, eye_closed_p=p)

    def _p_closed(self, patches: Any, w: float) -> float:
        if w in (0.0, 1.0):  # one eye only counts (a head turned 20 deg or more): read that one
            return float(self.model.p_closed(patches[:1] if w else patches[1:])[0])
        p_right, p_left = self.model.p_closed(patches).tolist()
        return w * p_right + (1.0 - w) * p_left
