"""config.yaml -> typed, validated, frozen config objects.

Each section is a frozen dataclass; a field's ``metadata`` says what is allowed
(``ge``/``le``/``gt``/``lt`` bounds, ``choices``, ``unit``). Loading refuses an unknown key, a wrong
type or an out-of-range value with a message that names the key path, the value and what is
allowed. Overrides come as ``section.key=value`` strings (``--set`` on the command line); the
value is parsed as YAML, so ``--set engine.backend=onnxruntime`` and
``--set drowsiness.perclos_window_s=30`` both work.

Pure module: no Qt, no MediaPipe, no runtimes.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import ConfigError

# Top-level folder of a source checkout (config.yaml and engines/ live there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


def _f(default: Any, unit: str = "", **rules: Any) -> Any:
    """A config field: default value, unit (for docs) and validation rules."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"unit": unit, **rules})
    return field(default=default, metadata={"unit": unit, **rules})


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True)
class CaptureConfig:
    source: Any = _f(0)  # camera index (int), file path or stream URL (str)
    width: int = _f(0, "px", ge=0)  # 0 = the camera's default
    height: int = _f(0, "px", ge=0)
    fps: float = _f(0.0, "fps", ge=0, le=1000)  # a file's frame rate; 0 = the rate the file gives
    fallback_fps: float = _f(30.0, "fps", gt=0, le=1000)  # when a file gives none, or an implausible one
    read_timeout_s: float = _f(2.0, "s", gt=0, le=60)  # live: no frame for this long = camera lost
    reconnect_interval_s: float = _f(1.0, "s", gt=0, le=60)
    reconnect_attempts: int = _f(5, ge=0, le=1000)  # live sources; 0 = never retry
    # a file's decoder threads (FFmpeg); 0 = the decoder's default, one per core. The frame loop
    # decodes a file ahead on a thread of its own, where one decoder thread keeps up and leaves
    # the other cores to the face mesh and the engine
    decode_threads: int = _f(1, ge=0, le=64)


@dataclass(frozen=True, slots=True)
class FaceConfig:
    max_faces: int = _f(3, ge=1, le=10)
    # with one face in view, track it alone and count the faces this often (video time); 0 = follow
    # max_faces faces on every frame (MediaPipe then runs its face detector on every frame)
    search_interval_s: float = _f(0.5, "s", ge=0, le=10)
    # threads of MediaPipe's graph (its calculators); 0 = MediaPipe's default pool. One keeps the
    # mesh on one core beside the frame loop's other stage, with the same landmarks
    mesh_threads: int = _f(1, ge=0, le=64)
    # the frame loop's two stages: the mesh's threads (the stage's and MediaPipe's graph) share one
    # core, the core that stage starts on (Linux); false = the OS places them
    pin_mesh: bool = _f(True)
    min_detection_confidence: float = _f(0.5, ge=0, le=1)
    min_tracking_confidence: float = _f(0.5, ge=0, le=1)
    driver_rule: str = _f("largest", choices=("largest", "seat_region"))
    # seat_region: normalised x0, y0, x1, y1 of the image where the driver sits (left-hand drive
    # cab seen from the windscreen: the image's left half)
    seat_region: list = _f([0.0, 0.0, 0.5, 1.0], "fraction of width/height")
    # crop side = face width x (1 + 2 x align_margin); 0.14 matches FERPlus framing (face/align.py)
    align_margin: float = _f(0.14, "fraction of face width", ge=0, le=1)
    # eyes are not measured when the head is turned further than this (blink detection fails)
    max_eye_yaw_deg: float = _f(40.0, "deg", gt=0, le=90)
    # eyes are "not visible" when face.visibility scores them below this (dark sunglasses)
    min_eye_visibility: float = _f(0.5, ge=0, le=1)
    # no face in the mesh: is a person still in view (a head in profile, turned away)? MediaPipe's
    # person segmentation at this rate while no face is seen (0 = never: no face is an absent driver)
    person_check_hz: float = _f(2.0, "Hz", ge=0, le=60)
    # ... a person is in view when this fraction of the image is segmented as one
    person_min_fraction: float = _f(0.1, "fraction of the image", gt=0, le=1)


@dataclass(frozen=True, slots=True)
class EyesConfig:
    # the learned eye-state model (engines/eye_state.onnx) reads each eye's patch; false = the
    # eye aspect ratio alone, as before it (docs/eye_state.md)
    model_enabled: bool = _f(True)
    model: str = _f("engines/eye_state.onnx", "path")
    # auto: the int8 copy beside the model (eye_state.int8cpu.onnx) when it was made from the model as
    # it is, else the model; int8: the copy or an error; fp32: the model itself
    precision: str = _f("auto", choices=("auto", "fp32", "int8"))
    # the eyes are closed when the model's P(closed) reaches this ...
    closed_p: float = _f(0.5, "probability", gt=0, lt=1)
    # ... or, for a driver whose open eyes the model reads as half closed (glasses, an unusual eye),
    # this many logits above its reading of their open eyes (frames the EAR reads open) ...
    adapt_margin: float = _f(8.0, "logit", ge=0, le=20)
    # ... but never more than this
    adapt_max_p: float = _f(0.97, "probability", gt=0, lt=1)
    # clearly open or closed eyes (P(closed) < 0.1 or > 0.9) whose EAR stays within a tenth are read
    # again after this (every frame below 10 frames/s; 0 = every frame); a blink's EAR drop and an
    # opening's rise are read at once
    reread_s: float = _f(0.1, "s", ge=0, le=1)
    # the model reads the eyes open while the EAR is below this fraction of the open-eye EAR: lids
    # lowered over eyes that look down (a look away, never a closure)
    lowered_lid_ratio: float = _f(0.5, "fraction of the open-eye EAR", gt=0, lt=1)
    # closed eyes with the engine's cheek raiser (AU6) at least this high are squeezed shut in an
    # expression (laughing, crying) or a yawn: a closure, but none of PERCLOS's
    squeeze_au6: float = _f(0.5, "AU intensity", gt=0, le=1)


@dataclass(frozen=True, slots=True)
class SmoothingConfig:
    # continuous signals (EAR, MAR, pose, gaze): one_euro | ema | none
    signal_filter: str = _f("one_euro", choices=("one_euro", "ema", "none"))
    one_euro_min_cutoff: float = _f(1.0, "Hz", gt=0, le=100)
    one_euro_beta: float = _f(0.05, gt=0, le=10)
    one_euro_d_cutoff: float = _f(1.0, "Hz", gt=0, le=100)
    ema_alpha: float = _f(0.5, gt=0, le=1)
    # engine probabilities / intensities: exponential moving average with this time constant
    prob_filter: str = _f("ema", choices=("ema", "none"))
    prob_time_constant_s: float = _f(0.5, "s", gt=0, le=60)


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    # where the camera sits: sets the driver's default road-facing pose until it is learned
    # (calibration.MOUNTS: dashboard, steering_column, mirror, pillar; custom = mount_*_deg)
    mount: str = _f("auto", choices=("auto", "dashboard", "steering_column", "mirror", "pillar", "custom"))
    # the driver's seat; a right-hand-drive car mirrors the mount's yaw
    driver_seat: str = _f("left", choices=("left", "right"))
    mount_yaw_deg: float = _f(0.0, "deg", ge=-60, le=60)     # custom mount: road-facing yaw as the camera sees it
    mount_pitch_deg: float = _f(0.0, "deg", ge=-40, le=40)   # custom mount: road-facing pitch
    # the learned neutral pose is clamped to the mount's pose +- these (drivers' seats and heights)
    max_yaw_offset_deg: float = _f(15.0, "deg", ge=0, le=45)
    max_pitch_offset_deg: float = _f(8.0, "deg", ge=0, le=30)
    # auto: the camera's road pose learned from the drive, anywhere within these of the camera's
    # axis (every mount's road pose lies inside; a look down at a phone or the lap lies below)
    auto_yaw_deg: float = _f(45.0, "deg", gt=0, le=90)
    auto_pitch_down_deg: float = _f(18.0, "deg", ge=0, le=60)
    auto_pitch_up_deg: float = _f(25.0, "deg", ge=0, le=60)
    # auto: the pose held this long (densest +-5 deg window) is the reference until duration_s is
    auto_provisional_s: float = _f(0.3, "s", gt=0, le=60)
    # seconds of steady, eyes-open, road-facing frames before the learned pose replaces the mount's
    duration_s: float = _f(5.0, "s", ge=0, le=600)
    # running statistic's memory: older frames fade out once this much has been seen (openpilot: 6 min)
    memory_s: float = _f(360.0, "s", gt=0, le=7200)
    min_samples: int = _f(30, ge=1, le=10000)
    default_open_ear: float = _f(0.28, "EAR", gt=0, le=1)
    # open-eye EAR = this percentile of the EARs of road-facing frames (blinks do not drag it down)
    open_ear_percentile: float = _f(80.0, "percent", ge=50, le=100)
    # a calibrated open EAR below this is implausible (eyes closed from the start): keep the default
    min_open_ear: float = _f(0.22, "EAR", gt=0, le=1)


@dataclass(frozen=True, slots=True)
class DrowsinessConfig:
    # eyes closed when EAR < closed_ratio * calibrated open EAR (and < closed_ear_max)
    closed_ratio: float = _f(0.65, gt=0, lt=1)
    closed_ear_max: float = _f(0.22, "EAR", gt=0, le=1)
    blink_max_s: float = _f(0.5, "s", gt=0, le=5)
    # eyes open again for no longer than this do not end a closure (one noisy frame, a flicker)
    reopen_min_s: float = _f(0.1, "s", ge=0, le=2)
    microsleep_s: float = _f(1.0, "s", gt=0, le=30)
    long_closure_critical_s: float = _f(2.0, "s", gt=0, le=60)
    perclos_window_s: float = _f(60.0, "s", gt=0, le=3600)
    # PERCLOS needs this much of its window read (e-candeloro's Driver-State-Detection: 80 %)
    perclos_min_coverage: float = _f(0.8, "fraction of window", gt=0, le=1)
    # the PERCLOS alarm drops once the eyes have stayed open this long (and rises at the next closure)
    perclos_clear_open_s: float = _f(0.5, "s", gt=0, le=600)
    perclos_warning: float = _f(0.15, "fraction", gt=0, le=1)
    perclos_critical: float = _f(0.30, "fraction", gt=0, le=1)
    yawn_mar: float = _f(0.6, "MAR", gt=0, le=5)
    yawn_min_s: float = _f(0.8, "s", gt=0, le=30)
    # with the engine: a mouth opened at least this wide counts as yawning when the jaw drop (AU26)
    # is yawn_jaw_drop above the driver's own baseline (sleepy yawns open less than 0.6)
    yawn_mar_with_jaw_drop: float = _f(0.45, "MAR", gt=0, le=5)
    yawn_jaw_drop: float = _f(0.15, "AU intensity", gt=0, le=1)
    yawns_warning: int = _f(3, ge=1, le=100)  # yawns within yawn_window_s raise a warning
    yawn_window_s: float = _f(300.0, "s", gt=0, le=3600)


@dataclass(frozen=True, slots=True)
class DistractionConfig:
    # limits from the driver's neutral pose (openpilot: yaw 23, pitch 18 downwards only) ...
    yaw_limit_deg: float = _f(23.0, "deg", gt=0, le=90)
    pitch_down_limit_deg: float = _f(18.0, "deg", gt=0, le=90)
    # ... and from the mount's pose until the driver's own is learned (openpilot: its relaxed yaw
    # limit 28.9 deg, its pitch limit before calibration 25.7 deg)
    uncalibrated_yaw_limit_deg: float = _f(28.9, "deg", gt=0, le=90)
    uncalibrated_pitch_down_limit_deg: float = _f(25.7, "deg", gt=0, le=90)
    pitch_up_limit_deg: float = _f(0.0, "deg", ge=0, le=90)  # 0 = looking up is never off road
    gaze_limit: float = _f(0.6, "eye half-widths", gt=0, le=5)
    use_gaze: bool = _f(True)
    # the line of sight's pitch = the head's pitch less this many degrees per unit of the iris's
    # offset (gaze_y) below the driver's neutral: a look down with the eyes counts like a head
    # pitched down (head_turns.mp4: chin up 43 deg with the eyes kept on the camera moves gaze_y
    # by +0.54, chin down 38 deg by -0.30: 80-127 deg per unit)
    gaze_pitch_gain_deg: float = _f(90.0, "deg per unit of gaze_y", ge=0, le=300)
    # lids lowered over open eyes (eyes.lowered_lid_ratio) with the head at least this far below
    # its reference pitch: the eyes look down, off the road
    lowered_lid_min_pitch_deg: float = _f(5.0, "deg", ge=0, le=90)
    # off-road flag: first-order filter with hysteresis (openpilot: 0.25 s, 0.37 / 0.63)
    filter_time_constant_s: float = _f(0.25, "s", ge=0, le=5)
    attentive_below: float = _f(0.37, gt=0, lt=1)
    distracted_above: float = _f(0.63, gt=0, lt=1)
    # long distraction: EU ADDW (2023/2590) 3.5 s above 50 km/h, within Euro NCAP's 3 s (+1 s)
    warning_s: float = _f(3.5, "s", gt=0, le=60)
    critical_s: float = _f(6.0, "s", gt=0, le=120)
    # visual attention time-sharing (Euro NCAP): off road this long within the window, reset after
    # time_sharing_reset_s continuously on the road; 0 = off
    time_sharing_s: float = _f(10.0, "s", ge=0, le=600)
    time_sharing_window_s: float = _f(30.0, "s", gt=0, le=3600)
    time_sharing_reset_s: float = _f(2.0, "s", gt=0, le=60)


@dataclass(frozen=True, slots=True)
class PhoneConfig:
    # a phone is in use when at least `votes` of the phone detector's last `runs` readings (a few a
    # second) score `min_score` or more, and over when none of them does (docs/phone_eval.md: 2 of
    # 3 at 0.1 on the whole frame, the busy rate after a 0.15, chosen on the other drivers, found
    # 10 of 11 phone clips of held-out drivers within 2 s and no phone on the phone-free ones).
    # Phone use is off the road for the distraction rules whatever the head does (Euro NCAP: a
    # case of long distraction and time-sharing): a phone at the ear while looking ahead raises
    # distraction like a long glance.
    min_score: float = _f(0.1, "score", gt=0, lt=1)
    votes: int = _f(2, ge=1, le=20)
    runs: int = _f(3, ge=1, le=20)
    # the phone detector (engines/phone/, YOLOX-Nano) runs on the whole frame `rate_hz` times a
    # second of video, `busy_rate_hz` while one of its last `runs` scores reached `wake_score`
    # (docs/phone_eval.md: one run a second on a drive without a phone, the vote at the busy rate
    # once something phone-like is seen)
    enabled: bool = _f(True)
    model: str = _f("engines/phone/yolox_nano.onnx", "path")
    rate_hz: float = _f(1.0, "Hz", gt=0, le=30)
    busy_rate_hz: float = _f(3.0, "Hz", gt=0, le=30)
    wake_score: float = _f(0.15, "score", gt=0, lt=1)
    size: int = _f(0, "px", ge=0, le=1024)  # the detector's input side (a multiple of 32); 0 = the file's


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    # an alert level must hold this long before it is raised / cleared (hysteresis); driver_absent
    # and eyes_not_visible events also end only after the face / eyes have been back clear_after_s
    raise_after_s: float = _f(0.2, "s", ge=0, le=10)
    clear_after_s: float = _f(1.0, "s", ge=0, le=60)
    # after an alert clears, the same alert is not raised again for this long
    cooldown_s: float = _f(5.0, "s", ge=0, le=600)
    driver_absent_s: float = _f(1.0, "s", ge=0, le=60)
    eyes_not_visible_s: float = _f(1.0, "s", ge=0, le=60)  # face seen, eyes not measurable this long


@dataclass(frozen=True, slots=True)
class EngineConfig:
    enabled: bool = _f(True)
    backend: str = _f("auto", choices=("auto", "tensorrt", "onnxruntime", "torch"))
    device: str = _f("auto", choices=("auto", "cpu", "cuda"))  # auto: CUDA when the backend can use it
    cpu_threads: int = _f(0, ge=0, le=256)  # CPU engines' intra-op threads; 0 = usable cores less one (the mesh's)
    model: str = _f("engines/emotion_au.onnx", "path")
    # auto: the int8 copy made for the CPU on ONNX Runtime's CPU provider (shipped; fp32 when it is
    # missing or stale), fp32 on GPUs; fp16 / int8 on a GPU need `driver-monitor engines build`
    precision: str = _f("auto", choices=("auto", "fp32", "fp16", "int8"))
    max_batch: int = _f(8, ge=1, le=64)
    cache_dir: str = _f("engines", "path")
    # run the network on every k-th frame of a face, holding its smoothed outputs between
    stride: int = _f(1, "frames", ge=1, le=30)
    # and at most this many times a second of video (0 = on every frame): its outputs are smoothed
    # over `smoothing.prob_time_constant_s` (0.5 s) anyway, and at 15 reads a second a 30 frames/s
    # drive leaves the CPU time the phone detector takes (docs/benchmarks.md)
    rate_hz: float = _f(15.0, "Hz", ge=0, le=1000)
    # a region-attention model: an AU none of whose face regions shows at least this fraction uncovered
    # is hidden (greyed, left out of the driver state); 0.8 = a fifth of the region covered
    min_region_visibility: float = _f(0.8, "fraction", gt=0, lt=1)


@dataclass(frozen=True, slots=True)
class OutputConfig:
    flush_every: int = _f(1, "frames", ge=1, le=10000)
    decimals: int = _f(4, ge=0, le=10)


@dataclass(frozen=True, slots=True)
class UIConfig:
    plot_window_s: float = _f(30.0, "s", gt=0, le=600)
    redraw_fps: float = _f(30.0, "fps", gt=0, le=240)
    sound: bool = _f(True)


@dataclass(frozen=True, slots=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    eyes: EyesConfig = field(default_factory=EyesConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    drowsiness: DrowsinessConfig = field(default_factory=DrowsinessConfig)
    distraction: DistractionConfig = field(default_factory=DistractionConfig)
    phone: PhoneConfig = field(default_factory=PhoneConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    ui: UIConfig = field(default_factory=UIConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- validation


def _describe(rules: Mapping[str, Any], typ: Any) -> str:
    parts = [getattr(typ, "__name__", str(typ))]
    if "choices" in rules:
        parts = ["one of " + ", ".join(repr(c) for c in rules["choices"])]
    for k, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if k in rules:
            parts.append(f"{sym} {rules[k]}")
    return " ".join(parts)


def _coerce(path: str, value: Any, typ: Any, rules: Mapping[str, Any]) -> Any:
    allowed = _describe(rules, typ)
    bad = ConfigError(f"config {path}: {value!r} is not allowed; expected {allowed}")
    if typ is bool:
        if not isinstance(value, bool):
            raise bad
    elif typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif typ is str:
        if not isinstance(value, str):
            raise bad
    elif typ is list:
        if not isinstance(value, list):
            raise bad
    # typ Any: anything scalar
    elif value is not None and not isinstance(value, (int, float, str)):
        raise bad
    if "choices" in rules and value not in rules["choices"]:
        raise bad
    for k, ok in (("ge", lambda v, b: v >= b), ("gt", lambda v, b: v > b),
                  ("le", lambda v, b: v <= b), ("lt", lambda v, b: v < b)):
        if k in rules and not ok(value, rules[k]):
            raise bad
    return value


def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {path or '(top level)'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"config {where}{unknown[0]}: unknown key; allowed keys{' in ' + path if path else ''}: "
            + ", ".join(sorted(fields))
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        typ = hints[name]
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, value, key)
        else:
            if isinstance(typ, types.UnionType) or typing.get_origin(typ) is typing.Union:
                typ = Any
            kwargs[name] = _coerce(key, value, typ, fields[name].metadata)
    obj = cls(**kwargs)
    _cross_checks(obj, path)
    return obj


def _cross_checks(obj: Any, path: str) -> None:
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(f"config {path}: {msg}")

    if isinstance(obj, DrowsinessConfig):
        need(obj.perclos_warning < obj.perclos_critical,
             f"perclos_warning ({obj.perclos_warning}) must be below perclos_critical ({obj.perclos_critical})")
        need(obj.blink_max_s < obj.microsleep_s,
             f"blink_max_s ({obj.blink_max_s}) must be below microsleep_s ({obj.microsleep_s})")
    elif isinstance(obj, DistractionConfig):
        need(obj.warning_s < obj.critical_s,
             f"warning_s ({obj.warning_s}) must be below critical_s ({obj.critical_s})")
        need(obj.uncalibrated_yaw_limit_deg >= obj.yaw_limit_deg
             and obj.uncalibrated_pitch_down_limit_deg >= obj.pitch_down_limit_deg,
             "the uncalibrated_* limits must not be tighter than yaw_limit_deg / pitch_down_limit_deg")
        need(obj.attentive_below <= obj.distracted_above,
             f"attentive_below ({obj.attentive_below}) must not be above distracted_above ({obj.distracted_above})")
        need(obj.time_sharing_s <= obj.time_sharing_window_s,
             f"time_sharing_s ({obj.time_sharing_s}) must not exceed time_sharing_window_s "
             f"({obj.time_sharing_window_s})")
    elif isinstance(obj, FaceConfig):
        r = obj.seat_region
        ok = (len(r) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
              and 0 <= r[0] < r[2] <= 1 and 0 <= r[1] < r[3] <= 1)
        need(ok, f"seat_region {r!r} must be [x0, y0, x1, y1] with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"drowsiness.perclos_window_s=30"`` -> (["drowsiness", "perclos_window_s"], 30)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set drowsiness.perclos_window_s=30")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: the key is empty; use SECTION.KEY=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc.__class__.__name__})") from None
    return parts, value


def _apply_override(data: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {text!r}: {p} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def yaml_problem(exc: Exception) -> str:
    """A YAML parser error on one line: what, and where (line and column, 1-based)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{problem}{where}" + (f" ({context})" if context else "")


def read_yaml(path: str | Path, what: str, missing_hint: str) -> Any:
    """The YAML document in ``path``; a missing, unreadable or invalid file is a ConfigError that
    names ``what`` (e.g. "config file") and the path, with ``missing_hint`` when it does not exist."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {str(p)!r} is a folder, not a file; a {what} is needed{_yaml_in(p)}: "
                          f"{missing_hint}")
    if not p.is_file():
        raise ConfigError(f"{what} {str(p)!r} does not exist; {missing_hint}")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {str(p)!r} is not valid YAML: {yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{what} {str(p)!r} cannot be read: {exc}") from None


def _yaml_in(folder: Path) -> str:
    """", e.g. 'DIR/config.yaml' there": the YAML files a folder given for a file holds (at most three)."""
    try:
        names = sorted(str(x) for x in folder.iterdir() if x.suffix in (".yaml", ".yml") and x.is_file())[:3]
    except OSError:
        return ""
    return f", e.g. {' or '.join(repr(n) for n in names)} there" if names else ""


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Load ``path`` (default: the project's config.yaml if it exists), apply overrides, validate."""
    data: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is not None:
        p = Path(path)
        loaded = read_yaml(p, "config file", "pass --config FILE with a valid path or leave it out to use the defaults")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(p)!r}: the top level must be a mapping of sections")
        data = loaded
    for text in overrides:
        parts, value = parse_override(text)
        _apply_override(data, parts, value, text)
    return _build(Config, data, "")


def config_reference() -> list[tuple[str, Any, str]]:
    """(key path, default, unit) for every setting: used by docs and the config.yaml test."""
    rows: list[tuple[str, Any, str]] = []
    defaults = Config()
    for sec in dataclasses.fields(Config):
        obj = getattr(defaults, sec.name)
        for f in dataclasses.fields(obj):
            rows.append((f"{sec.name}.{f.name}", getattr(obj, f.name), f.metadata.get("unit", "")))
    return rows
