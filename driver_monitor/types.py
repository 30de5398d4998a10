"""Immutable per-frame data that flows through the pipeline.

Pure module: imports numpy only. Shapes and units are in each docstring and checked on
construction, so a wrong array fails where it is made, not three stages later.

Conventions used everywhere:

* Images are ``uint8``; colour frames are BGR ``(H, W, 3)`` (OpenCV order), grey ``(H, W)``.
* Pixel coordinates: x to the right, y down, origin top-left of the full frame.
* Head pose angles in degrees, camera frame, the driver seen by the camera:
  ``yaw > 0`` the driver turns the head to **their own left** (the face turns towards the image's
  right side), ``pitch > 0`` the head tilts **up** (chin up), ``roll > 0`` the head tilts
  towards the driver's own left shoulder (clockwise in the image). 0/0/0 is looking straight
  into the camera.
* Gaze: ``gaze_x > 0`` the eyes look towards the image's right, ``gaze_y > 0`` they look down,
  both in units of the eye's half-width / half-height (about -1..1).
* Times in seconds from the start of the drive (replay: frame index / fps).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

NUM_LANDMARKS = 478  # MediaPipe face mesh with refined iris landmarks


def _check_array(name: str, arr: Any, shape: tuple[int | None, ...], dtype: Any) -> None:
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype != np.dtype(dtype):
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {arr.dtype}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")


class Level(enum.IntEnum):
    """Alert level. Ordered, so ``max(levels)`` is the most severe."""

    NONE = 0
    WARNING = 1
    CRITICAL = 2

    def __str__(self) -> str:  # "warning", as written to CSV / JSONL
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    image: ``(H, W, 3)`` BGR uint8 or ``(H, W)`` grey uint8 (IR cameras).
    index: 0-based frame number in the source (replay: position in the file).
    time_s: seconds since the start of the source.
    captured_at: a live frame's arrival, ``time.perf_counter()`` (the latency from capture); None
    for a file.
    """

    image: NDArray[np.uint8]
    index: int
    time_s: float
    captured_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray) or self.image.dtype != np.uint8:
            raise TypeError("Frame.image must be a uint8 numpy array")
        if self.image.ndim not in (2, 3) or (self.image.ndim == 3 and self.image.shape[2] != 3):
            raise ValueError(f"Frame.image must be (H, W) or (H, W, 3), got {self.image.shape}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face.

    bbox: ``(4,)`` float32 ``x0, y0, x1, y1`` in pixels (tight box around the mesh).
    landmarks: ``(478, 3)`` float32, x and y in pixels, z in pixels relative to the face centre
        (MediaPipe's depth scaled by the image width; smaller = closer to the camera).
    score: detection / tracking confidence in [0, 1] (1.0 when the detector gives none).
    """

    bbox: NDArray[np.float32]
    landmarks: NDArray[np.float32]
    score: float = 1.0

    def __post_init__(self) -> None:
        _check_array("Face.bbox", self.bbox, (4,), np.float32)
        _check_array("Face.landmarks", self.landmarks, (NUM_LANDMARKS, 3), np.float32)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = (float(v) for v in self.bbox)
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = (float(v) for v in self.bbox)
        return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


@dataclass(frozen=True, slots=True)
class AlignedFace:
    """A face crop ready for the engine.

    image: ``(S, S)`` uint8 grey, eye line level, S from the model's input spec.
    angle_deg: rotation applied to level the eye line (image plane, degrees).
    matrix: ``(2, 3)`` float32 affine map from frame pixels to crop pixels.
    """

    image: NDArray[np.uint8]
    angle_deg: float
    matrix: NDArray[np.float32]

    def __post_init__(self) -> None:
        if self.image.dtype != np.uint8 or self.image.ndim != 2 or self.image.shape[0] != self.image.shape[1]:
            raise ValueError(f"AlignedFace.image must be square (S, S) uint8, "
                             f"got {self.image.shape} {self.image.dtype}")
        _check_array("AlignedFace.matrix", self.matrix, (2, 3), np.float32)


@dataclass(frozen=True, slots=True)
class Signals:
    """Geometry measured on one face in one frame (raw, before smoothing).

    ear_left / ear_right: eye aspect ratio per eye (unitless, about 0.05 closed .. 0.35 open);
        the driver's own left / right eye.
    ear: mean of the two, or the more reliable eye when the head is turned.
    mar: mouth aspect ratio (inner lip opening / mouth width; about 0 closed, > 0.6 yawn).
    yaw_deg / pitch_deg / roll_deg: head pose, see the module docstring for signs.
    gaze_x / gaze_y: iris offset in the eye, see the module docstring.
    eyes_visible: False when the eyes cannot be measured reliably (extreme pose, occlusion).
    eye_closed_p: the eye-state model's probability that the eyes are closed (0..1; the eyes the
        camera sees, weighted like ``ear``), NaN when no model runs.
    """

    ear_left: float
    ear_right: float
    ear: float
    mar: float
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    gaze_x: float
    gaze_y: float
    eyes_visible: bool = True
    eye_closed_p: float = float("nan")


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """Engine results for a batch of N aligned faces.

    emotion_probs: ``(N, C)`` float32, rows sum to 1, C = len(emotion_names).
    aus: ``(N, K)`` float32 intensities in [0, 1], K = len(au_names).
    region_names: a region-attention model's face regions (``()`` for a plain model); then
    region_attention / region_visibility: ``(N, R)`` float32 in [0, 1], R = len(region_names):
    how much each region weighed in the reading, and the fraction of it the network sees uncovered.
    """

    emotion_probs: NDArray[np.float32]
    aus: NDArray[np.float32]
    emotion_names: tuple[str, ...]
    au_names: tuple[str, ...]
    region_names: tuple[str, ...] = ()
    region_attention: NDArray[np.float32] | None = None
    region_visibility: NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        _check_array("EngineOutput.emotion_probs", self.emotion_probs, (None, len(self.emotion_names)), np.float32)
        n = self.emotion_probs.shape[0]
        _check_array("EngineOutput.aus", self.aus, (n, len(self.au_names)), np.float32)
        for name in ("region_attention", "region_visibility"):
            arr = getattr(self, name)
            if (arr is None) != (not self.region_names):
                raise ValueError(f"EngineOutput.{name} must be given exactly when region_names is")
            if arr is not None:
                _check_array(f"EngineOutput.{name}", arr, (n, len(self.region_names)), np.float32)

    def __len__(self) -> int:
        return int(self.emotion_probs.shape[0])


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened over an interval of the drive.

    type: e.g. ``microsleep``, ``eyes_closed``, ``yawn``, ``drowsiness``, ``distraction``,
        ``driver_absent``, ``eyes_not_visible``, ``camera_lost``, ``blink``.
    level: alert level of the event (its peak level once it has ended).
    start_s / end_s: seconds from the start of the drive; ``end_s`` is None while it is going on.
    """

    type: str
    level: Level
    start_s: float
    end_s: float | None = None
    start_frame: int | None = None
    end_frame: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "level": str(self.level),
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "duration_s": None if self.end_s is None else round(self.end_s - self.start_s, 3),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            **({"details": dict(self.details)} if self.details else {}),
        }


class Status(str, enum.Enum):
    """What the monitor can see right now (the degraded states a DMS must report, not guess)."""

    OK = "ok"
    CALIBRATING = "calibrating"
    DRIVER_ABSENT = "driver_absent"
    EYES_NOT_VISIBLE = "eyes_not_visible"
    CAMERA_LOST = "camera_lost"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class DriverState:
    """The driver-state logic's view after one frame (all durations in seconds).

    perclos: fraction of the PERCLOS window with the eyes closed (0..1), NaN until enough data.
    blink_rate_per_min: blinks per minute over the PERCLOS window.
    eyes_closed_s / off_road_s: how long the current closure / glance away has lasted (0 if none).
    lids_read: the eyelids were judged this frame (eyes visible and the head in the driver's usual
        pitch, or a closure that began there); eyes_closed is False when they were not.
    off_road_reason: why this frame is off road ("head", "gaze", "face_lost", joined by "+").
    time_sharing_s: off-road time in the attention time-sharing account.
    phone_use: the driver is using a phone (the phone detector's readings, voted: monitor.phone).
    degraded: level of the open degraded-state events (camera_lost, driver_absent: warning).
    open_ear / neutral_yaw_deg / neutral_pitch_deg: the calibration in use (the mount's pose and
        the default EAR until learned); yaw_limit_deg / pitch_limit_deg: the off-road limits in use
        around it (pitch: downwards; wider until the pose is learned).
    """

    t_s: float
    status: Status = Status.OK
    eyes_closed: bool = False
    eyes_closed_s: float = 0.0
    perclos: float = float("nan")
    blink_count: int = 0
    blink_rate_per_min: float = 0.0
    yawning: bool = False
    yawn_count: int = 0
    off_road: bool = False
    off_road_s: float = 0.0
    off_road_reason: str = ""
    time_sharing_s: float = 0.0
    lids_read: bool = False
    phone_use: bool = False
    drowsiness: Level = Level.NONE
    distraction: Level = Level.NONE
    degraded: Level = Level.NONE
    calibrated: bool = False
    calibration_progress: float = 0.0
    open_ear: float = float("nan")
    closed_ear_threshold: float = float("nan")
    neutral_yaw_deg: float = 0.0
    neutral_pitch_deg: float = 0.0
    yaw_limit_deg: float = float("nan")
    pitch_limit_deg: float = float("nan")

    @property
    def level(self) -> Level:
        """The driver-state alert: drowsiness or distraction."""
        return max(self.drowsiness, self.distraction)

    @property
    def alert(self) -> Level:
        """Every open alert, degraded states (camera lost, driver absent) included."""
        return max(self.drowsiness, self.distraction, self.degraded)


@dataclass(frozen=True, slots=True)
class EngineReading:
    """The engine's smoothed outputs for the driver's face on one frame (the engine stage's part of
    a :class:`FrameResult`); every field empty when no engine runs or no face is seen.

    emotion_probs / aus: keyed by class / AU name. regions / region_attention: with a
        region-attention model, the visible (uncovered) fraction of each face region and the weight
        the reading gave it, keyed by region name (else None).
    aus_hidden: the AUs none of whose regions is visible (``engine.min_region_visibility``): their
        intensity is a guess, shown greyed and left out of the driver state; ``()`` when all are seen.
    regions_hidden: the face regions counted as hidden (below ``engine.min_region_visibility``, or
        hidden on the last reading and not yet clearly above it: ``monitor.hidden.hidden_regions``).
    """

    emotion_probs: Mapping[str, float] | None = None
    aus: Mapping[str, float] | None = None
    regions: Mapping[str, float] | None = None
    region_attention: Mapping[str, float] | None = None
    aus_hidden: tuple[str, ...] = ()
    regions_hidden: tuple[str, ...] = ()

    def visible_aus(self) -> Mapping[str, float] | None:
        """The AUs the driver state may use: a hidden one's intensity is a guess."""
        if self.aus is None or not self.aus_hidden:
            return self.aus
        return {k: v for k, v in self.aus.items() if k not in self.aus_hidden}


NO_READING = EngineReading()


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the pipeline knows about one frame; what the UI draws and the CSV writes.

    face: the driver's face (None when not found); faces_count counts every face seen.
    signals: raw geometry of the driver's face; smoothed: after the configured filters.
    engine: the engine's smoothed outputs for the driver's face (:class:`EngineReading`), also read
        as ``emotion_probs``, ``aus``, ``regions``, ``region_attention``, ``aus_hidden`` and
        ``regions_hidden``.
    phone_score: the phone detector's best score on this frame when it ran on it (``phone.enabled``).
    phone_box: the box ``(x0, y0, x1, y1)`` in frame pixels of the phone the detector's latest run
        found at ``phone.min_score`` or more, kept until a run finds none (what the overlays draw).
    events: events that started or ended on this frame (ended ones have end_s set).
    timings_ms: per-stage milliseconds, e.g. ``{"decode": 1.2, "mesh": 4.1, "align": 0.2,
        "engine": 1.0, "state": 0.1, "total": 6.8}``.
    """

    frame: Frame
    camera_ok: bool
    state: DriverState
    face: Face | None = None
    faces_count: int = 0
    signals: Signals | None = None
    smoothed: Signals | None = None
    aligned: AlignedFace | None = None
    engine: EngineReading = NO_READING
    phone_score: float | None = None
    phone_box: tuple[float, float, float, float] | None = None
    events: tuple[Event, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.frame.index

    @property
    def time_s(self) -> float:
        return self.frame.time_s

    @property
    def face_detected(self) -> bool:
        return self.face is not None

    @property
    def emotion_probs(self) -> Mapping[str, float] | None:
        return self.engine.emotion_probs

    @property
    def aus(self) -> Mapping[str, float] | None:
        return self.engine.aus

    @property
    def regions(self) -> Mapping[str, float] | None:
        return self.engine.regions

    @property
    def region_attention(self) -> Mapping[str, float] | None:
        return self.engine.region_attention

    @property
    def aus_hidden(self) -> tuple[str, ...]:
        return self.engine.aus_hidden

    @property
    def regions_hidden(self) -> tuple[str, ...]:
        return self.engine.regions_hidden

    @property
    def emotion(self) -> str | None:
        if not self.emotion_probs:
            return None
        return max(self.emotion_probs.items(), key=lambda kv: kv[1])[0]
