"""Frame -> FrameResult: face mesh, driver pick, alignment, engine, geometry, smoothing, state.

The pipeline owns no thread and no clock: a caller (``analyze``, the UI worker, ``bench``) reads
frames from a VideoSource and hands them in. Each result carries per-stage milliseconds
(``decode`` is measured by the caller and passed in), so benchmarks read what the pipeline
measured instead of timing it from outside.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Collection, Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from .config import Config
from .cores import allowed_cores, pin
from .face.align import align_face
from .face.eyes import eye_patches
from .face.geometry import measure, right_eye_weight
from .face.select import pick_driver
from .face.visibility import eye_visibility
from .monitor.filters import ProbSmoother, SignalSmoother
from .monitor.monitor import DriverMonitor
from .monitor.phone import PhoneSchedule
from .preprocess import DEFAULT_INPUT
from .types import AlignedFace, Event, Face, Frame, FrameResult, Signals

if TYPE_CHECKING:  # pragma: no cover
    from .engine.base import Engine
    from .engine.eye_state import EyeStateModel
    from .engine.phone import PhoneDetector


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Detected:
    """The face mesh's result for frame ``index``: the faces and the milliseconds it took;
    ``person``: a person in view (a detector that looks when it finds no face; None otherwise);
    ``phone``: the phone detector's run started with it (:meth:`Pipeline.detect`)."""

    index: int
    faces: tuple[Face, ...]
    mesh_ms: float
    person: bool | None = None
    phone: Any = None  # the phone detector's run started on this frame (a Future), NOBODY, or None


class EngineReading(NamedTuple):
    """The engine's smoothed outputs for the driver's face (see FrameResult for each field)."""

    emotion_probs: dict[str, float] | None = None
    aus: dict[str, float] | None = None
    regions: dict[str, float] | None = None
    region_attention: dict[str, float] | None = None
    aus_hidden: tuple[str, ...] = ()
    regions_hidden: tuple[str, ...] = ()

    def visible_aus(self) -> dict[str, float] | None:
        """The AUs the driver state may use: a hidden one's intensity is a guess."""
        if self.aus is None or not self.aus_hidden:
            return self.aus
        return {k: v for k, v in self.aus.items() if k not in self.aus_hidden}


_NO_READING = EngineReading()


#: a hidden region shows again only once its visibility is this much above engine.min_region_visibility,
#: so a region hovering at the threshold (sunglasses that let the eyes show through) does not flicker
REGION_HYSTERESIS = 0.05


def hidden_regions(visibility: Mapping[str, float], threshold: float, was_hidden: Collection[str] = (),
                   margin: float = REGION_HYSTERESIS) -> frozenset[str]:
    """The regions below ``threshold``; one hidden on the last reading stays hidden until above
    ``threshold + margin``."""
    return frozenset(r for r, v in visibility.items() if v < (threshold + margin if r in was_hidden else threshold))


def hidden_aus(au_names: Sequence[str], au_regions: Mapping[str, Sequence[str]], visibility: Mapping[str, float],
               threshold: float, hidden: Collection[str] | None = None) -> tuple[str, ...]:
    """The AUs none of whose regions is visible (visibility below ``threshold``, or in ``hidden``
    when given: :func:`hidden_regions`); an AU read from several regions (AU6: eyes and either
    cheek) stays visible while any of them is. An AU without regions is never hidden."""
    gone = set(hidden) if hidden is not None else {r for r, v in visibility.items() if v < threshold}
    out = []
    for au in au_names:
        regions = [r for r in au_regions.get(au, ()) if r in visibility]
        if regions and all(r in gone for r in regions):
            out.append(au)
    return tuple(out)


#: a reading of the eye-state model below this P(closed) is clearly open, one above the other is
#: clearly closed: either may be held for ``eyes.reread_s`` while the EAR stays where it was
EYE_REUSE_BELOW = 0.1
EYE_REUSE_ABOVE = 0.9
#: the EAR "stays" within a tenth of the reading's: falls no more for open eyes, rises no more
#: (and no more than this much, the EAR's jitter on shut lids) for closed ones
EYE_REUSE_EAR_JITTER = 0.01

# a phone run starts with the face mesh of its frame (the first stage) and its reading is taken
# with the rest of the frame (the second), so the detector works beside both. Whether a run is
# due follows the readings of frames at least this many frames back: with two frames in the
# hand-off (session._HANDOFF) and one being analysed, those are always in when a frame's mesh
# starts, so the runs fall on the same frames however fast each stage is
PHONE_SCHEDULE_DELAY = 4
NOBODY = "nobody"  # a phone run due while nobody is in view: read as no phone, the detector rests

_LOST_IMAGE = np.zeros((1, 1), np.uint8)  # stands in for the frame that did not come; camera_ok=False says so


class Pipeline:
    """Per-frame analysis of one drive (one driver).

    cfg: the validated config. engine: an Engine, or None to skip emotions / action units.
    detector: injected face detector (tests); default MediaPipe FaceMesh in tracking mode.
    eye_model: injected eye-state model (tests); default the one ``eyes.model`` names when
    ``eyes.model_enabled`` (None then: the eyes are judged by their aspect ratio alone).
    phone_detector: injected phone detector (tests); default the one ``phone.model`` names when
    ``phone.enabled``: it runs on the whole frame when :class:`PhoneSchedule` says (``phone.rate_hz``,
    ``phone.busy_rate_hz``) and its best score goes to the monitor (phone use).
    """

    def __init__(self, cfg: Config, engine: "Engine | None" = None, *,
                 detector: FaceDetector | None = None, eye_model: "EyeStateModel | None | str" = "config",
                 phone_detector: "PhoneDetector | None | str" = "config") -> None:
        self.cfg = cfg
        self.engine = engine
        if isinstance(eye_model, str):
            from .engine.eye_state import open_eye_model

            eye_model = open_eye_model(cfg.eyes)
        self.eye_model = eye_model
        self.phone_detector = None
        try:
            if isinstance(phone_detector, str):
                from .engine.phone import open_phone_detector

                phone_detector = open_phone_detector(cfg.phone)
            self.phone_detector = phone_detector
            if detector is None:
                from .face.mesh import FaceMeshDetector  # the only MediaPipe import, at the edge

                detector = FaceMeshDetector(cfg.face)
        except BaseException:
            self.close_own_models()
            raise
        self.detector = detector
        # a detector that schedules its search for other faces wants the frame's video time
        params = inspect.signature(detector.detect).parameters
        self._detect_takes_time = "t_s" in params
        # a detector that converts the frame first may have that done ahead (session's decode thread)
        self._prepare = getattr(detector, "prepare", None) if "prepared" in params else None
        self.spec = engine.spec if engine is not None else DEFAULT_INPUT
        self.smoother = SignalSmoother(cfg.smoothing)
        self.prob_smoother = ProbSmoother(cfg.smoothing)
        self.au_smoother = ProbSmoother(cfg.smoothing)
        self.region_smoother = ProbSmoother(cfg.smoothing)
        self.monitor = DriverMonitor(cfg)
        self._last_frame: Frame | None = None
        self._lost_index = -1  # the last lost tick's frame number
        self._last_wall: float | None = None
        self._first_wall: float | None = None  # when the first tick came (a source may never deliver)
        self._last_t: float | None = None      # time of the last tick, lost ones included
        self._had_face = False
        self._held: EngineReading | None = None  # the engine's last smoothed outputs (engine.stride > 1)
        self._eye_last: tuple[float, float, float] | None = None  # the last eye reading: (t, P(closed), EAR)
        self._phone_schedule = PhoneSchedule(cfg.phone, PHONE_SCHEDULE_DELAY)  # when the phone detector runs
        self._phone_box: tuple[float, float, float, float] | None = None  # its latest phone at min_score
        self._phone_pool: Any = None  # the detector's own thread (made on its first run)
        self._nobody = False          # the last mesh saw no face and the person check no one
        self.mesh_core: int | None = None  # the core the mesh stage keeps to (session), if any
        self._since_engine = 0             # frames of the face since the engine last ran
        self._engine_t: float | None = None  # video time of the engine's last run

    # ------------------------------------------------------------------ info

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return tuple(self.engine.emotion_names) if self.engine is not None else ()

    @property
    def au_names(self) -> tuple[str, ...]:
        return tuple(self.engine.au_names) if self.engine is not None else ()

    @property
    def region_names(self) -> tuple[str, ...]:
        """The face regions a region-attention model reports on (``()`` otherwise)."""
        return tuple(getattr(self.engine, "region_names", ())) if self.engine is not None else ()

    @property
    def eye_model_description(self) -> dict[str, str]:
        """The eye-state model in use (summary.json), or why there is none."""
        if self.eye_model is None:
            return {"model": "none", "why": "eyes.model_enabled is false: the eyes are judged by their aspect ratio"}
        return {"model": str(self.eye_model.path), "version": self.eye_model.version}

    @property
    def backend_description(self) -> str:
        if self.engine is None:
            return "none"
        return f"{self.engine.name} {self.engine.device} {self.engine.precision}"

    # ------------------------------------------------------------------ per frame

    def prepare(self, frame: Frame) -> Any:
        """What the detector makes of the frame before it runs (the mesh: the RGB copy), or None.
        Touches nothing but the frame, so a decoding thread may do it ahead of :meth:`detect`."""
        return self._prepare(frame.image) if self._prepare is not None else None

    def detect(self, frame: Frame, prepared: Any = None) -> Detected:
        """The first stage: the face mesh on one frame (``prepared``: :meth:`prepare`'s result for
        it, when done ahead). Touches nothing but the detector, so it may run on another thread
        than :meth:`process`, one frame ahead (frames in order)."""
        phone = self._start_phone(frame)
        t0 = time.perf_counter()
        kw: dict[str, Any] = {}
        if self._detect_takes_time:
            kw["t_s"] = frame.time_s
        if prepared is not None:
            kw["prepared"] = prepared
        faces = self.detector.detect(frame.image, **kw)
        person = getattr(self.detector, "person_in_view", None)
        self._nobody = not faces and person is False
        return Detected(frame.index, tuple(faces), (time.perf_counter() - t0) * 1e3, person, phone)

    def process(self, frame: Frame | None, *, decode_ms: float | None = None,
                t_s: float | None = None, detected: Detected | None = None, index: int | None = None) -> FrameResult:
        """Analyse one frame. ``frame=None`` means the camera delivered nothing this tick; ``index``
        is then the tick's frame number (the source's ``lost_tick()``; default: one past the last).
        ``detected``: the frame's :meth:`detect` result when the mesh already ran (two stages)."""
        if self._first_wall is None:
            self._first_wall = time.monotonic()
        if frame is None:
            return self._lost(t_s, index)
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        if decode_ms is not None:
            timings["decode"] = float(decode_ms)
        if detected is None or detected.index != frame.index:
            detected = self.detect(frame)
        else:  # the mesh ran on the other thread: its time counts, not the wait for it
            t_start -= detected.mesh_ms / 1e3
        faces = list(detected.faces)
        timings["mesh"] = detected.mesh_ms

        driver_idx = pick_driver(faces, frame.image.shape[:2], self.cfg.face) if faces else None
        face = faces[driver_idx] if driver_idx is not None else None
        signals = aligned = None
        reading = _NO_READING
        if face is not None:
            signals, aligned, reading = self._read_face(frame, face, timings)

        phone, phone_reading = self._read_phone(frame, detected.phone, timings)
        t0 = time.perf_counter()
        smoothed = self._smooth(signals, face is not None, frame.time_s)
        state, events = self.monitor.update(frame.time_s, smoothed, camera_ok=True, frame_index=frame.index,
                                            aus=reading.visible_aus(), person=detected.person,
                                            phone=phone_reading)
        timings["state"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - t_start) * 1e3 + (decode_ms or 0.0)

        self._last_frame = frame
        self._last_wall = time.monotonic()
        self._last_t = frame.time_s
        return FrameResult(
            frame=frame, camera_ok=True, state=state, face=face, faces_count=len(faces),
            signals=signals, smoothed=smoothed, aligned=aligned,
            emotion_probs=reading.emotion_probs, aus=reading.aus, regions=reading.regions,
            region_attention=reading.region_attention, aus_hidden=reading.aus_hidden,
            regions_hidden=reading.regions_hidden, phone_score=phone, phone_box=self._phone_box,
            events=tuple(events), timings_ms=timings,
        )

    def _read_face(self, frame: Frame, face: Face, timings: dict[str, float]):
        """Geometry, the aligned crop and (with an engine) emotions / AUs of the driver's face."""
        t0 = time.perf_counter()
        vis = eye_visibility(frame.image, face)
        signals = measure(face, self.cfg.face, eye_visibility=vis)
        aligned = align_face(frame.image, face, self.spec.size, self.cfg.face.align_margin)
        timings["align"] = (time.perf_counter() - t0) * 1e3
        if self.eye_model is not None and signals.eyes_visible:
            t0 = time.perf_counter()
            signals = self._read_eyes(frame, face, signals)
            timings["eyes"] = (time.perf_counter() - t0) * 1e3
        else:
            self._eye_last = None
        reading = _NO_READING
        if self.engine is not None:
            t0 = time.perf_counter()
            if self._held is None or self._engine_due(frame.time_s):
                reading = self._held = self._run_engine(aligned, frame.time_s)
                self._since_engine, self._engine_t = 0, frame.time_s
                timings["engine"] = (time.perf_counter() - t0) * 1e3
            else:  # engine.stride: this frame holds the last outputs
                reading = self._held
                self._since_engine += 1
        return signals, aligned, reading

    def _engine_due(self, t: float) -> bool:
        """Whether the engine reads this frame of a face: ``engine.stride`` frames and
        1 / ``engine.rate_hz`` s of video since it last did (a rewind reads at once)."""
        if self._since_engine + 1 < self.cfg.engine.stride:
            return False
        rate, last = self.cfg.engine.rate_hz, self._engine_t
        return rate <= 0 or last is None or t < last or t - last >= 1.0 / rate - 1e-6

    def _read_eyes(self, frame: Frame, face: Face, signals: Signals) -> Signals:
        """The eye-state model's P(closed), weighted over the eyes like the EAR (the eye turned
        away from the camera counts less, beyond 20 deg of yaw not at all).

        A clear reading is not taken again on every frame: while the last one said clearly open
        (P(closed) under ``EYE_REUSE_BELOW``) or clearly closed (over ``EYE_REUSE_ABOVE``) less
        than ``eyes.reread_s`` ago, and the EAR has not moved towards the other state since (a drop
        of a tenth for open eyes, a rise of a tenth and ``EYE_REUSE_EAR_JITTER`` for closed ones),
        it holds. A blink, a closure or an opening moves the lids, so the EAR's move makes the next
        frame a new reading; at 10 frames/s every frame is read."""
        last = self._eye_last
        t, ear = frame.time_s, signals.ear
        if last is not None and 0.0 <= t - last[0] < self.cfg.eyes.reread_s - 1e-6:
            p_last, ear_last = last[1], last[2]
            if ((p_last < EYE_REUSE_BELOW and ear >= 0.9 * ear_last)
                    or (p_last > EYE_REUSE_ABOVE and ear <= 1.1 * ear_last + EYE_REUSE_EAR_JITTER)):
                return replace(signals, eye_closed_p=p_last)
        patches = eye_patches(frame.image, face, self.eye_model.size, self.eye_model.scale)
        if patches is None:
            self._eye_last = None
            return signals
        w = right_eye_weight(signals.yaw_deg)
        if w in (0.0, 1.0):  # one eye only counts (a head turned 20 deg or more): read that one
            p = float(self.eye_model.p_closed(patches[:1] if w else patches[1:])[0])
        else:
            p_right, p_left = self.eye_model.p_closed(patches).tolist()
            p = w * p_right + (1.0 - w) * p_left
        self._eye_last = (t, p, ear)
        return replace(signals, eye_closed_p=p)

    def _start_phone(self, frame: Frame) -> Any:
        """Start the phone detector on its own thread when a run is due on this frame
        (:class:`PhoneSchedule`: ``phone.rate_hz``, ``phone.busy_rate_hz`` after a phone-like
        score; a rewind runs it at once): its Future; NOBODY when the last mesh saw nobody in view
        (no face, and the person check saw no one: no driver to hold a phone, no run); else None."""
        if self.phone_detector is None or not self._phone_schedule.due(frame.time_s, frame.index):
            return None
        self._phone_schedule.start(frame.time_s)
        if self._nobody:
            return NOBODY
        if self._phone_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._phone_pool = ThreadPoolExecutor(1, thread_name_prefix="phone", initializer=self._phone_thread)
        return self._phone_pool.submit(self._detect_phone, frame.image)

    def _read_phone(self, frame: Frame, run: Any, timings: dict[str, float]) -> tuple[float | None, float | None]:
        """(the phone detector's best score, the reading the monitor gets) for the run started on
        this frame (waiting for it), 0.0 when it found none; nobody in view reads (None, 0.0); no
        run, (None, None). The reading is recorded for the schedule and the box kept."""
        if run is None:
            return None, None
        if run is NOBODY:
            self._phone_schedule.done(frame.index, 0.0)
            self._phone_box = None
            return None, 0.0
        found, ms = run.result()
        timings["phone"] = ms
        score = found[0].score if found else 0.0
        self._phone_schedule.done(frame.index, score)
        self._phone_box = found[0].box if found and score >= self.cfg.phone.min_score else None
        return score, score

    def _phone_thread(self) -> None:
        """The detector's thread keeps off the mesh stage's core (the frame loop's bottleneck)."""
        core = self.mesh_core
        others = allowed_cores() - {core} if core is not None else set()
        if others:
            pin((0,), others)

    def _detect_phone(self, image: Any) -> tuple[list[Any], float]:
        t0 = time.perf_counter()
        found = self.phone_detector.detect(image)
        return found, (time.perf_counter() - t0) * 1e3

    def _smooth(self, signals: Signals | None, has_face: bool, t_s: float) -> Signals | None:
        """Smoothed signals; the filters restart when the face comes back after a gap."""
        smoothed = None
        if signals is not None:
            if not self._had_face:
                self.smoother.reset()
            smoothed = self.smoother.update(signals, t_s)
        if not has_face and self._had_face:
            self._eye_last = None
            self.prob_smoother.reset()
            self.au_smoother.reset()
            self.region_smoother.reset()
            self._held = None
        self._had_face = has_face
        return smoothed

    def _run_engine(self, aligned: AlignedFace, t_s: float) -> EngineReading:
        out = self.engine.infer(aligned.image[None])
        probs = self.prob_smoother.update(out.emotion_probs[0], t_s)
        aus = self.au_smoother.update(out.aus[0], t_s)
        total = float(probs.sum())
        if total > 0:
            probs = probs / total
        reading = EngineReading(dict(zip(out.emotion_names, probs.tolist())), dict(zip(out.au_names, aus.tolist())))
        if out.region_visibility is None:
            return reading
        vis = self.region_smoother.update(out.region_visibility[0], t_s)
        regions = dict(zip(out.region_names, vis.tolist()))
        threshold = self.cfg.engine.min_region_visibility
        was = self._held.regions_hidden if self._held is not None else ()  # the last reading (hysteresis)
        gone = hidden_regions(regions, threshold, was)
        return reading._replace(
            regions=regions, region_attention=dict(zip(out.region_names, out.region_attention[0].tolist())),
            aus_hidden=hidden_aus(out.au_names, self.engine.au_regions, regions, threshold, gone),
            regions_hidden=tuple(r for r in out.region_names if r in gone))

    def _lost(self, t_s: float | None, index: int | None = None) -> FrameResult:
        last = self._last_frame
        if t_s is None:  # the wall clock goes on while nothing comes
            if last is not None and self._last_wall is not None:
                t_s = last.time_s + (time.monotonic() - self._last_wall)
            else:
                t_s = time.monotonic() - (self._first_wall or time.monotonic())
        self._last_t = float(t_s)
        if index is None:  # each lost tick a number of its own
            index = max(last.index if last is not None else -1, self._lost_index) + 1
        self._lost_index = index
        frame = Frame(image=_LOST_IMAGE, index=index, time_s=float(t_s))
        self.smoother.reset()
        self._had_face = False
        self._held = None
        self._eye_last = None
        state, events = self.monitor.update(float(t_s), None, camera_ok=False, frame_index=index)
        return FrameResult(frame=frame, camera_ok=False, state=state, events=tuple(events))

    # ------------------------------------------------------------------ control

    def calibrate_now(self) -> None:
        t = self._last_frame.time_s if self._last_frame is not None else 0.0
        self.monitor.calibrate_now(t)

    def finish(self) -> list[Event]:
        """Close the events still open at the end of the drive."""
        last = self._last_frame
        t = self._last_t if self._last_t is not None else 0.0  # lost ticks count: camera_lost ends there
        return self.monitor.finish(t, last.index if last is not None else None)

    def _stop_phone_thread(self) -> None:
        pool, self._phone_pool = getattr(self, "_phone_pool", None), None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def close_own_models(self) -> None:
        """Close what the pipeline opened from the config (the eye-state model, the phone detector
        and its thread), not the engine and face detector it was given (a fleet worker keeps those
        for its next drive)."""
        self._stop_phone_thread()
        for model in (self.eye_model, self.phone_detector):
            if model is not None:
                model.close()
        self.eye_model = self.phone_detector = None

    def hand_over_models(self) -> dict[str, Any]:
        """The eye-state model and the phone detector, for a pipeline that replaces this one (a
        seek in the dashboard): this one stops its phone thread and will not close them."""
        self._stop_phone_thread()
        models = {"eye_model": self.eye_model, "phone_detector": self.phone_detector}
        self.eye_model = self.phone_detector = None
        return models

    def close(self) -> None:
        self.detector.close()
        self.close_own_models()
        if self.engine is not None:
            self.engine.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
