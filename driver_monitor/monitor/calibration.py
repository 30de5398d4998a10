"""Per-driver calibration as a running statistic: neutral pose, neutral gaze, open-eye EAR and the
jaw's resting action-unit level (pure, clock passed in).

Nothing waits for calibration. Until the driver's own pose is learned, the monitor judges against
the **mount's** default pose (where a driver looking at the road appears for that camera position,
:data:`MOUNTS`) with limits widened by the clamp range; once learned, against the learned pose.
This is openpilot's scheme: default offsets and a looser pitch limit until its running statistic
of the driver's pose has enough good frames.

The statistics are decaying histograms (:class:`RunningHistogram`): every frame adds its duration;
once ``memory_s`` of frames have been seen, older ones fade so the total stays at ``memory_s``
(openpilot stops de-weighting new data after 6 minutes, its "short term memory"). From them:

* neutral yaw / pitch: the pose the driver **holds most of the time** (the densest
  ``POSE_WINDOW_DEG``-wide window of the histogram, then the mean inside it), not the mean, so the
  glances away do not pull it. The caller feeds only road-plausible frames with open eyes, so a
  driver who looks down or aside at the start never becomes the neutral. The result is clamped to
  the mount's pose +- ``max_yaw_offset_deg`` / ``max_pitch_offset_deg``. It is used once
  ``duration_s`` of frames lie in that densest window (``Calibration.calibrated``) and keeps
  adapting after;
* neutral gaze: the median iris offset of the same frames while the eyes are visible;
* open-eye EAR: the ``open_ear_percentile`` of the EARs of frames with the head in its usual pose
  and visible eyes (blinks, about 5 % of the time, do not drag it down); taken once ``min_samples``
  frames were seen and only if it is at least ``min_open_ear`` (an "open" EAR lower than that means
  the eyes were closed: a driver asleep from the first frame);
* jaw baseline: the median AU26 (jaw drop) of the engine while the face is seen, so a yawn is
  judged against this driver's own resting jaw.

``restart()`` (the dashboard's "calibrate now") forgets everything; judging goes on against the
mount's pose meanwhile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..config import CalibrationConfig
from ..types import Signals

_MAX_SAMPLE_DT_S = 0.5  # a single frame never counts for more than this (dropped frames, gaps)

# Pose (yaw, pitch in degrees, signs as in driver_monitor.types) of a driver in the LEFT seat looking
# at the road, as each camera position sees it. From the cabin geometry of each mount, not
# measured on a car: the learned pose replaces them, within the clamp range.
#   dashboard: ahead of the driver at about eye height (phone holders, webcams on the dash);
#   steering_column: below the eye line, looking up at the face, so the road-facing head
#       looks chin-up (about 15 deg at 25 cm below the eyes, 70 cm away);
#   mirror: windscreen centre by the rear-view mirror, right of and above the driver: looking at
#       the road is a head turned about 30 deg to the driver's own left of the camera and
#       about 12 deg down (openpilot's device sits here);
#   pillar: the driver-side A-pillar, left of and above the driver: about 35 deg to the right.
MOUNTS: dict[str, tuple[float, float]] = {
    "dashboard": (0.0, 0.0),
    "steering_column": (0.0, 15.0),
    "mirror": (30.0, -12.0),
    "pillar": (-35.0, -10.0),
}
POSE_WINDOW_DEG = 5.0  # half-width of the "pose held most of the time" window
EYE_REFERENCE_MIN_S = 1.0  # s of open-eye frames before the eye-state model's reference is used
# the eye-state model's reading of a driver's open eyes: this low percentile of its logits on the
# frames whose EAR reads open (a low one: a closure the EAR misreads as open, behind glasses, barely
# moves it; chosen on the held-out drivers, docs/eye_state.md)
EYE_REFERENCE_PERCENTILE = 10.0


def mount_pose(cfg: CalibrationConfig) -> tuple[float, float]:
    """(yaw, pitch) of the road for the configured mount and seat (``auto``: the camera's axis,
    until the road pose is learned from the drive)."""
    if cfg.mount == "auto":
        return 0.0, 0.0
    if cfg.mount == "custom":
        return float(cfg.mount_yaw_deg), float(cfg.mount_pitch_deg)
    yaw, pitch = MOUNTS[cfg.mount]
    return (-yaw if cfg.driver_seat == "right" else yaw), pitch


def pose_range(cfg: CalibrationConfig) -> tuple[tuple[float, float], tuple[float, float]]:
    """((yaw lo, hi), (pitch lo, hi)) a learned road pose may take: the mount's pose +- the clamp
    offsets, or, with ``auto``, the camera's axis +- the auto range."""
    if cfg.mount == "auto":
        return ((-cfg.auto_yaw_deg, cfg.auto_yaw_deg), (-cfg.auto_pitch_down_deg, cfg.auto_pitch_up_deg))
    m_yaw, m_pitch = mount_pose(cfg)
    return ((m_yaw - cfg.max_yaw_offset_deg, m_yaw + cfg.max_yaw_offset_deg),
            (m_pitch - cfg.max_pitch_offset_deg, m_pitch + cfg.max_pitch_offset_deg))


class RunningHistogram:
    """A histogram over [lo, hi) whose total weight is capped at ``memory``: adding weight w to a
    full histogram first scales the old weights by (1 - w / memory), an exponential forgetting
    with a time constant of ``memory`` (in the unit of the weights, here seconds)."""

    def __init__(self, lo: float, hi: float, width: float, memory: float) -> None:
        self.lo, self.width, self.memory = lo, width, memory
        self.w = np.zeros(int(round((hi - lo) / width)), np.float64)
        self.wx = np.zeros_like(self.w)  # weighted sum of the values in each bin: unbiased means
        self.total = 0.0
        # what mode() / percentile() last gave, by their arguments, valid while the weights stay
        # as they were: a frame that teaches nothing new reads the same values again
        self._version = 0
        self._memo: dict[tuple[str, float], tuple[int, Any]] = {}

    def clear(self) -> None:
        self.w[:] = 0.0
        self.wx[:] = 0.0
        self.total = 0.0
        self._version += 1

    def add(self, x: float, weight: float) -> None:
        if weight <= 0 or not math.isfinite(x):
            return
        i = min(max(int((x - self.lo) // self.width), 0), len(self.w) - 1)
        if self.total + weight > self.memory:
            keep = max(0.0, 1.0 - weight / self.memory)
            self.w *= keep
            self.wx *= keep
            self.total *= keep
        self.w[i] += weight
        self.wx[i] += weight * x
        self.total += weight
        self._version += 1

    def _remembered(self, key: tuple[str, float], compute: Callable[[], Any]) -> Any:
        """``compute()``, or its value from the last call with this key if no weight changed since
        (the weights change only through add() and clear())."""
        hit = self._memo.get(key)
        if hit is not None and hit[0] == self._version:
            return hit[1]
        value = compute()
        self._memo[key] = (self._version, value)
        return value

    def centre(self, i: int | np.ndarray) -> float | np.ndarray:
        return self.lo + (np.asarray(i) + 0.5) * self.width

    def percentile(self, q: float) -> float:
        return self._remembered(("percentile", q), lambda: self._percentile(q))

    def _percentile(self, q: float) -> float:
        if self.total <= 0:
            return math.nan
        c = np.cumsum(self.w)
        i = int(np.searchsorted(c, q / 100.0 * c[-1], side="left"))
        return float(self.centre(min(i, len(self.w) - 1)))

    def mode(self, half_width: float) -> tuple[float, float]:
        """(value, weight) of the densest window of +-half_width: start at the window with the most
        weight, then move the window to the mean of what it holds until it settles (mean shift), so
        a remnant of an older pose at the window's edge does not pull the value; returns that mean
        and the weight inside the final window."""
        return self._remembered(("mode", half_width), lambda: self._mode(half_width))

    def _mode(self, half_width: float) -> tuple[float, float]:
        if self.total <= 0:
            return math.nan, 0.0
        k = max(0, int(round(half_width / self.width)))
        box = np.convolve(self.w, np.ones(2 * k + 1), mode="same")
        i = int(np.argmax(box))
        mean, mass = math.nan, 0.0
        for _ in range(8):
            a, b = max(0, i - k), min(len(self.w), i + k + 1)
            mass = float(self.w[a:b].sum())
            if mass <= 0:
                break
            mean = float(self.wx[a:b].sum() / mass)
            j = min(max(int((mean - self.lo) // self.width), 0), len(self.w) - 1)
            if j == i:
                break
            i = j
        return mean, mass


@dataclass(frozen=True, slots=True)
class Calibration:
    """The calibration in use.

    open_ear: open-eye EAR (unitless); neutral_*: the pose (deg) and gaze (eye half-widths) of this
    driver looking at the road, the mount's until learned; mount_*: the mount's pose;
    calibrated: the neutral pose is learned (else the mount's, with wider limits);
    ear_calibrated: open_ear is this driver's (else the default); jaw_baseline: the driver's
    resting AU26 (NaN without the engine); *_source: "calibrated" | "mount ..." | "default (...)";
    eye_open_logit: the eye-state model's reading of this driver's open eyes: the
    ``EYE_REFERENCE_PERCENTILE`` of the logits of its P(closed) on frames whose EAR reads open, NaN
    until ``EYE_REFERENCE_MIN_S`` of them were seen;
    provisional: the ``auto`` mount's reference is the pose held so far (not yet ``calibrated``).
    """

    open_ear: float
    neutral_yaw_deg: float = 0.0
    neutral_pitch_deg: float = 0.0
    neutral_gaze_x: float = 0.0
    neutral_gaze_y: float = 0.0
    calibrated: bool = False
    ear_calibrated: bool = False
    mount_yaw_deg: float = 0.0
    mount_pitch_deg: float = 0.0
    jaw_baseline: float = math.nan
    open_ear_source: str = "default"
    pose_source: str = "mount"
    eye_open_logit: float = math.nan
    provisional: bool = False


class Calibrator:
    """Running per-driver statistics. ``update(t_s, signals, learn_pose=..., learn_ear=..., au26=...)``;
    read ``.result`` (the :class:`Calibration` in use) and ``.progress`` (0..1 towards a learned
    pose). Which frames may teach what is the caller's policy (the monitor's)."""

    def __init__(self, cfg: CalibrationConfig) -> None:
        self.cfg = cfg
        self.mount = mount_pose(cfg)
        mem = cfg.memory_s
        self._yaw = RunningHistogram(-90.0, 90.0, 1.0, mem)
        self._pitch = RunningHistogram(-90.0, 90.0, 1.0, mem)
        self._gx = RunningHistogram(-2.0, 2.0, 0.02, mem)
        self._gy = RunningHistogram(-2.0, 2.0, 0.02, mem)
        self._ear = RunningHistogram(0.0, 0.6, 0.0025, mem)
        self._jaw = RunningHistogram(0.0, 1.0, 0.01, mem)
        self._eye = RunningHistogram(-12.0, 12.0, 0.1, mem)  # logit P(closed) on open eyes
        self.restart(None)

    def restart(self, t_s: float | None = None) -> None:
        """Forget everything learned: back to the mount's pose and the default open EAR."""
        for h in (self._yaw, self._pitch, self._gx, self._gy, self._ear, self._jaw, self._eye):
            h.clear()
        self._t_prev: float | None = None
        self._ear_frames = 0
        self._pose_latched = self.cfg.duration_s <= 0
        self._pose_mass = 0.0
        self.result = self._compute()

    @property
    def progress(self) -> float:
        if self._pose_latched:
            return 1.0
        return min(1.0, self._pose_mass / self.cfg.duration_s)

    @property
    def done(self) -> bool:
        """The driver's own pose is in use (progress reached 1)."""
        return self._pose_latched

    def update(self, t_s: float, signals: Signals | None, *, learn_pose: bool = False,
               learn_ear: bool = False, au26: float | None = None, learn_eye: bool = False) -> Calibration:
        dt = 0.0 if self._t_prev is None else min(max(t_s - self._t_prev, 0.0), _MAX_SAMPLE_DT_S)
        self._t_prev = t_s
        if signals is not None and dt > 0:
            if learn_pose and math.isfinite(signals.yaw_deg) and math.isfinite(signals.pitch_deg):
                self._yaw.add(signals.yaw_deg, dt)
                self._pitch.add(signals.pitch_deg, dt)
                if signals.eyes_visible:
                    self._gx.add(signals.gaze_x, dt)
                    self._gy.add(signals.gaze_y, dt)
            if learn_ear and signals.eyes_visible and math.isfinite(signals.ear):
                self._ear.add(signals.ear, dt)
                self._ear_frames += 1
            if au26 is not None and math.isfinite(au26):
                self._jaw.add(au26, dt)
            p = signals.eye_closed_p
            if learn_eye and math.isfinite(p):
                p = min(max(p, 1e-5), 1.0 - 1e-5)
                self._eye.add(math.log(p / (1.0 - p)), dt)
        self.result = self._compute()
        return self.result

    def _compute(self) -> Calibration:
        cfg = self.cfg
        m_yaw, m_pitch = self.mount
        yaw, yaw_mass = self._yaw.mode(POSE_WINDOW_DEG)
        pitch, pitch_mass = self._pitch.mode(POSE_WINDOW_DEG)
        self._pose_mass = min(yaw_mass, pitch_mass)
        if not self._pose_latched and cfg.duration_s > 0 and self._pose_mass >= cfg.duration_s - 1e-9:
            self._pose_latched = True
        mount_src = f"mount {cfg.mount} ({m_yaw:+.0f}, {m_pitch:+.0f} deg)"
        auto = cfg.mount == "auto"
        provisional = auto and self._pose_mass >= min(cfg.auto_provisional_s, cfg.duration_s) - 1e-9
        if (self._pose_latched or provisional) and math.isfinite(yaw) and math.isfinite(pitch):
            (y_lo, y_hi), (p_lo, p_hi) = pose_range(cfg)
            ny, npi = min(max(yaw, y_lo), y_hi), min(max(pitch, p_lo), p_hi)
            clamped = (ny, npi) != (yaw, pitch)
            pose_src = "calibrated" + (f" (clamped to the {cfg.mount} mount's range)" if clamped else "")
            if not self._pose_latched:
                pose_src = f"auto: the pose held for {self._pose_mass:.1f} s, until {cfg.duration_s:g} s are learned"
            gx, gy = self._gx.percentile(50.0), self._gy.percentile(50.0)
            gx, gy = (gx if math.isfinite(gx) else 0.0), (gy if math.isfinite(gy) else 0.0)
            calibrated = self._pose_latched
        else:
            ny, npi, gx, gy, pose_src, calibrated = m_yaw, m_pitch, 0.0, 0.0, mount_src, False

        open_ear, ear_cal = cfg.default_open_ear, False
        if self._ear_frames >= cfg.min_samples:
            ear = self._ear.percentile(cfg.open_ear_percentile)
            if ear >= cfg.min_open_ear:
                open_ear, ear_cal, ear_src = ear, True, "calibrated"
            else:
                ear_src = f"default (calibrated {ear:.3f} < min_open_ear {cfg.min_open_ear}: eyes closed?)"
        else:
            ear_src = f"default ({self._ear_frames} frames with visible open eyes < {cfg.min_samples})"
        jaw = self._jaw.percentile(50.0) if self._jaw.total >= 1.0 else math.nan
        eye = (self._eye.percentile(EYE_REFERENCE_PERCENTILE) if self._eye.total >= EYE_REFERENCE_MIN_S - 1e-9
               else math.nan)
        return Calibration(open_ear=open_ear, neutral_yaw_deg=ny, neutral_pitch_deg=npi, neutral_gaze_x=gx,
                           neutral_gaze_y=gy, eye_open_logit=eye, provisional=provisional and not calibrated,
                           calibrated=calibrated, ear_calibrated=ear_cal,
                           mount_yaw_deg=m_yaw, mount_pitch_deg=m_pitch, jaw_baseline=jaw,
                           open_ear_source=ear_src, pose_source=pose_src)
