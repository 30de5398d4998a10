"""Temporal smoothing of per-frame signals and engine outputs (pure: the clock is passed in).

* :class:`OneEuroFilter` - the One-Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass
  filter whose cut-off rises with the signal's speed, so it is smooth at rest and lags little on
  fast moves (a blink, a head turn). Written from the paper's description.
* :class:`EmaFilter` - exponential moving average, either a fixed weight per sample or a time
  constant (so the smoothing does not depend on the frame rate).
* :class:`SignalSmoother` - one filter per field of :class:`~driver_monitor.types.Signals`.
* :class:`ProbSmoother` - EMA over an engine output vector (emotion probabilities, AU intensities).

Gaps: a filter restarts from the next sample when more than ``MAX_GAP_S`` passed since the last
one (the face was lost), when time goes backwards (replay seek), or after a NaN; the eye channels
also restart whenever the eyes were not visible, so a closure is never blended with a value
measured through sunglasses or at extreme yaw.

Angles (yaw / pitch / roll, degrees) are filtered on the unwrapped angle: each new sample is moved
by a multiple of 360 deg to be nearest the filter's state, and the output is wrapped back to
[-180, 180), so a roll going from +179 to -179 is a 2 deg step, not a 358 deg one.

Units: the One-Euro ``beta`` multiplies the signal's speed, so it depends on the signal's unit.
Every channel is filtered in a natural unit where 1 is a just-visible change: degrees for angles,
hundredths for EAR, MAR and gaze. One ``beta`` then behaves alike on all of them (a 150 ms blink
keeps most of its depth, see tests/test_filters.py).
"""
from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Callable

import numpy as np
from numpy.typing import NDArray

from ..config import SmoothingConfig
from ..types import Signals

# A filter restarts when the previous sample is older than this (s): after that long the old
# state says nothing about the new sample (the face was lost, frames were dropped).
MAX_GAP_S = 0.5

# Signal fields -> (scale to the natural unit, is an angle in degrees).
_CHANNELS: dict[str, tuple[float, bool]] = {
    "ear_left": (100.0, False),
    "ear_right": (100.0, False),
    "ear": (100.0, False),
    "mar": (100.0, False),
    "yaw_deg": (1.0, True),
    "pitch_deg": (1.0, True),
    "roll_deg": (1.0, True),
    "gaze_x": (100.0, False),
    "gaze_y": (100.0, False),
}
_EYE_CHANNELS = ("ear_left", "ear_right", "ear", "gaze_x", "gaze_y")


def _wrap_deg(a: float) -> float:
    """Angle in degrees wrapped to [-180, 180)."""
    return (a + 180.0) % 360.0 - 180.0


def _alpha(cutoff_hz: float, dt_s: float) -> float:
    """Smoothing factor of a first-order low-pass with this cut-off for a sample period dt."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class _ScalarFilter:
    """Base: gap / NaN / time-reversal handling shared by the scalar filters."""

    def __init__(self, angle: bool = False) -> None:
        self.angle = angle
        self._x: float | None = None  # filtered state (unwrapped for angles)
        self._t: float | None = None

    def reset(self) -> None:
        self._x = None
        self._t = None

    def __call__(self, x: float, t_s: float) -> float:
        if not math.isfinite(x):
            self.reset()
            return float(x)
        if self._x is None or self._t is None or t_s <= self._t or t_s - self._t > MAX_GAP_S:
            self._start(x, t_s)
            return float(x)
        if self.angle:
            x = self._x + _wrap_deg(x - self._x)  # unwrap next to the state
        dt = t_s - self._t
        self._x = self._step(x, dt)
        self._t = t_s
        return _wrap_deg(self._x) if self.angle else self._x

    def _start(self, x: float, t_s: float) -> None:
        self._x = float(x)
        self._t = t_s

    def _step(self, x: float, dt: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class OneEuroFilter(_ScalarFilter):
    """One-Euro filter for one scalar signal.

    min_cutoff_hz: cut-off at rest (lower = smoother, more lag); beta: how fast the cut-off rises
    with speed (in the signal's unit per second); d_cutoff_hz: cut-off of the speed estimate.
    """

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float, angle: bool = False) -> None:
        super().__init__(angle)
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.d_cutoff_hz = d_cutoff_hz
        self._dx = 0.0

    def _start(self, x: float, t_s: float) -> None:
        super()._start(x, t_s)
        self._dx = 0.0

    def _step(self, x: float, dt: float) -> float:
        prev = float(self._x)  # set by __call__ before _step
        raw_dx = (x - prev) / dt
        a_d = _alpha(self.d_cutoff_hz, dt)
        self._dx = a_d * raw_dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff_hz + self.beta * abs(self._dx)
        a = _alpha(cutoff, dt)
        return a * x + (1.0 - a) * prev


class EmaFilter(_ScalarFilter):
    """Exponential moving average: ``alpha`` weight of the newest sample, or, with a time constant
    ``tau_s``, ``alpha = 1 - exp(-dt / tau_s)`` (independent of the frame rate)."""

    def __init__(self, alpha: float | None = None, tau_s: float | None = None, angle: bool = False) -> None:
        super().__init__(angle)
        if (alpha is None) == (tau_s is None):
            raise ValueError("EmaFilter needs exactly one of alpha or tau_s")
        self.alpha = alpha
        self.tau_s = tau_s

    def _step(self, x: float, dt: float) -> float:
        a = self.alpha if self.alpha is not None else 1.0 - math.exp(-dt / float(self.tau_s))
        return a * x + (1.0 - a) * float(self._x)


class _Identity(_ScalarFilter):
    def _step(self, x: float, dt: float) -> float:
        return x


def _factory(cfg: SmoothingConfig) -> Callable[[bool], _ScalarFilter]:
    if cfg.signal_filter == "one_euro":
        return lambda angle: OneEuroFilter(cfg.one_euro_min_cutoff, cfg.one_euro_beta, cfg.one_euro_d_cutoff, angle)
    if cfg.signal_filter == "ema":
        return lambda angle: EmaFilter(alpha=cfg.ema_alpha, angle=angle)
    return lambda angle: _Identity(angle)


class SignalSmoother:
    """Smooths every field of :class:`Signals` with the configured filter, one state per field.

    ``update(s, t_s)`` returns a new ``Signals`` (``eyes_visible`` passed through). While the eyes
    are not visible the eye channels (EAR, gaze) are passed through raw and their filters restart
    when the eyes come back.
    """

    def __init__(self, cfg: SmoothingConfig) -> None:
        make = _factory(cfg)
        self._scale = {name: scale for name, (scale, _) in _CHANNELS.items()}
        self._filters = {name: make(angle) for name, (_, angle) in _CHANNELS.items()}
        names = {f.name for f in fields(Signals)}
        missing = set(_CHANNELS) - names
        if missing:  # a renamed Signals field must not be silently left unsmoothed
            raise RuntimeError(f"SignalSmoother: Signals has no field(s) {sorted(missing)}")

    def reset(self) -> None:
        for f in self._filters.values():
            f.reset()

    def update(self, s: Signals, t_s: float) -> Signals:
        out: dict[str, float] = {}
        for name, filt in self._filters.items():
            raw = float(getattr(s, name))
            if name in _EYE_CHANNELS and not s.eyes_visible:
                filt.reset()
                out[name] = raw
                continue
            k = self._scale[name]
            out[name] = filt(raw * k, t_s) / k
        return replace(s, **out)


class ProbSmoother:
    """EMA over a vector (emotion probabilities, AU intensities) with the configured time constant.

    A convex combination of probability vectors still sums to 1, so no renormalisation is needed.
    Restarts after a gap longer than ``MAX_GAP_S``, a time reversal, a shape change or a NaN.
    """

    def __init__(self, cfg: SmoothingConfig) -> None:
        self.enabled = cfg.prob_filter == "ema"
        self.tau_s = cfg.prob_time_constant_s
        self._x: NDArray[np.float32] | None = None
        self._t: float | None = None

    def reset(self) -> None:
        self._x = None
        self._t = None

    def update(self, x: NDArray[np.float32], t_s: float) -> NDArray[np.float32]:
        x = np.asarray(x, dtype=np.float32)
        if (not self.enabled or self._x is None or self._t is None or self._x.shape != x.shape
                or t_s <= self._t or t_s - self._t > MAX_GAP_S or not np.isfinite(x).all()):
            self._x = x.copy()
            self._t = t_s
            return x.copy()
        a = np.float32(1.0 - math.exp(-(t_s - self._t) / self.tau_s))
        self._x = a * x + (1.0 - a) * self._x  # float32: a float32 scalar and arrays
        self._t = t_s
        return self._x.copy()
