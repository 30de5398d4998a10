"""Frame -> FrameResult: the stages of one frame wired in order, and the driver state.

face (the mesh; :mod:`.stages.face`) -> the driver's face picked, its geometry measured and the
face aligned -> eyes (:mod:`.stages.eyes`) -> engine (:mod:`.stages.engine_reader`) -> phone
(:mod:`.stages.phone`) -> the signals smoothed -> the driver state (``monitor``). Each stage keeps
its own state and policy; the pipeline only passes each frame along. A stage whose model is off
(None in :class:`Models`) is left out.

The pipeline owns no thread and no clock of its own: a caller (runtime.DriveSession) reads frames
from a VideoSource and hands them in, and times a camera-lost tick (session.LostClock). Each
result carries per-stage milliseconds (``decode`` is measured by the caller and passed in), so
benchmarks read what the pipeline measured.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import Config
from .face.align import align_face
from .face.geometry import measure
from .face.select import pick_driver
from .face.visibility import eye_visibility
from .monitor.filters import SignalSmoother
from .monitor.monitor import DriverMonitor
from .preprocess import DEFAULT_INPUT
from .stages.engine_reader import EngineStage
from .stages.eyes import EyeModel, EyeStage
from .stages.face import Detected, FaceDetector, FaceStage
from .stages.phone import PhoneDetector, PhoneRun, PhoneStage
from .types import NO_READING, AlignedFace, EngineReading, Event, Face, Frame, FrameResult, Signals

if TYPE_CHECKING:  # pragma: no cover
    from .engine.base import Engine

__all__ = ["Detected", "Models", "Pipeline"]


@dataclass(frozen=True, slots=True)
class Ahead:
    """:meth:`Pipeline.prepare`'s result for a frame: ``face``, what the face detector made of it;
    ``phone``, the phone detector's run started on it (a Future), or None."""

    face: Any
    phone: Any = None


@dataclass(slots=True)
class Models:
    """The models a drive's pipeline borrows: the face detector (required), the emotion/AU engine
    and its selection, the eye-state model and the phone detector (None: that stage is off).
    Their owner (runtime.py's :class:`~driver_monitor.runtime.Runtime`, or a test) closes them."""

    detector: FaceDetector
    engine: "Engine | None" = None
    selection: dict[str, Any] | None = None
    eye_model: EyeModel | None = None
    phone_detector: PhoneDetector | None = None

    def reset(self) -> None:
        """A new stream: the detector forgets what it tracked (a new drive, a seek)."""
        self.detector.reset()

    def close(self) -> None:
        """Close every model (each one is tried, the first error raised after); what they are
        stays readable (a summary written after the run names them)."""
        first: BaseException | None = None
        for model in (self.detector, self.eye_model, self.phone_detector, self.engine):
            try:
                if model is not None:
                    model.close()
            except BaseException as exc:  # the others still close
                first = first or exc
        if first is not None:
            raise first


_LOST_IMAGE = np.zeros((1, 1), np.uint8)  # stands in for the frame that did not come; camera_ok=False says so


class Pipeline:
    """Per-frame analysis of one drive (one driver), with the models it borrows (:class:`Models`).

    The pipeline opens no model and closes none: the run's assembly (runtime.py) opens them once
    from the config and lends them to each drive's pipeline. A fresh pipeline starts a drive
    afresh (filters, the stages' state, the driver-state machines); the caller resets the face
    detector's tracking between drives (:meth:`Models.reset`).
    """

    def __init__(self, cfg: Config, models: Models) -> None:
        self.cfg = cfg
        self.models = models
        self.face = FaceStage(models.detector)
        self.eyes = EyeStage(cfg.eyes, models.eye_model) if models.eye_model is not None else None
        self.engine = EngineStage(cfg.engine, cfg.smoothing, models.engine) if models.engine is not None else None
        self.phone = PhoneStage(cfg.phone, models.phone_detector) if models.phone_detector is not None else None
        self.spec = models.engine.spec if models.engine is not None else DEFAULT_INPUT
        self.smoother = SignalSmoother(cfg.smoothing)
        self.monitor = DriverMonitor(cfg)
        self._last_frame: Frame | None = None
        self._lost_index = -1  # the last lost tick's frame number
        self._last_t: float | None = None      # time of the last tick, lost ones included
        self._had_face = False

    # ------------------------------------------------------------------ info

    @property
    def detector(self) -> FaceDetector:
        return self.models.detector

    @property
    def mesh_core(self) -> int | None:
        """The core the face stage keeps to (the frame loop sets it), which other stages keep off."""
        return self.phone.mesh_core if self.phone is not None else None

    @mesh_core.setter
    def mesh_core(self, core: int | None) -> None:
        if self.phone is not None:
            self.phone.mesh_core = core

    @property
    def emotion_names(self) -> tuple[str, ...]:
        return tuple(self.models.engine.emotion_names) if self.models.engine is not None else ()

    @property
    def au_names(self) -> tuple[str, ...]:
        return tuple(self.models.engine.au_names) if self.models.engine is not None else ()

    @property
    def region_names(self) -> tuple[str, ...]:
        """The face regions a region-attention model reports on (``()`` otherwise)."""
        return tuple(getattr(self.models.engine, "region_names", ())) if self.models.engine is not None else ()

    @property
    def eye_model_description(self) -> dict[str, str]:
        """The eye-state model in use (summary.json), or why there is none."""
        model = self.models.eye_model
        if model is None:
            return {"model": "none", "why": "eyes.model_enabled is false: the eyes are judged by their aspect ratio"}
        return {"model": str(model.path), "version": model.version,
                "precision": getattr(model, "precision", "fp32")}

    @property
    def backend_description(self) -> str:
        engine = self.models.engine
        if engine is None:
            return "none"
        return f"{engine.name} {engine.device} {engine.precision}"

    # ------------------------------------------------------------------ per frame

    def prepare(self, frame: Frame) -> Ahead:
        """What the stages make of the frame before its face stage: the mesh's RGB copy, and the
        phone detector's run started when one is due. A file's decoding thread does it ahead of
        :meth:`detect`, on every frame in order (one thread a stream)."""
        return Ahead(self.face.prepare(frame), self.phone.start(frame) if self.phone is not None else None)

    def detect(self, frame: Frame, prepared: Ahead | None = None) -> Detected:
        """The first stage: the face mesh on one frame (``prepared``: :meth:`prepare`'s result for
        it, when done ahead; otherwise the phone detector's run starts here when one is due).
        Touches nothing but these two, so it may run on another thread than :meth:`process`, one
        frame ahead (frames in order)."""
        if prepared is None:
            prepared = Ahead(None, self.phone.start(frame) if self.phone is not None else None)
        run = PhoneRun(prepared.phone, self.face.nobody) if prepared.phone is not None else None
        return self.face.detect(frame, prepared.face, run)

    def process(self, frame: Frame | None, *, decode_ms: float | None = None,
                t_s: float | None = None, detected: Detected | None = None, index: int | None = None) -> FrameResult:
        """Analyse one frame. ``frame=None`` means the camera delivered nothing this tick: ``t_s`` is
        then its time (session.LostClock; default: the last tick's) and ``index`` its frame number
        (the source's ``lost_tick()``; default: one past the last). ``detected``: the frame's
        :meth:`detect` result when the mesh already ran (two stages)."""
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
        reading = NO_READING
        if face is not None:
            signals, aligned, reading = self._read_face(frame, face, timings)

        phone, phone_reading = (self.phone.read(frame, detected.phone, timings) if self.phone is not None
                                else (None, None))
        t0 = time.perf_counter()
        smoothed = self._smooth(signals, face is not None, frame.time_s)
        state, events = self.monitor.update(frame.time_s, smoothed, camera_ok=True, frame_index=frame.index,
                                            aus=reading.visible_aus(), person=detected.person,
                                            phone=phone_reading)
        timings["state"] = (time.perf_counter() - t0) * 1e3
        timings["total"] = (time.perf_counter() - t_start) * 1e3 + (decode_ms or 0.0)

        self._last_frame = frame
        self._last_t = frame.time_s
        return FrameResult(
            frame=frame, camera_ok=True, state=state, face=face, faces_count=len(faces),
            signals=signals, smoothed=smoothed, aligned=aligned, engine=reading, phone_score=phone,
            phone_box=self.phone.box if self.phone is not None else None,
            events=tuple(events), timings_ms=timings,
        )

    def _read_face(self, frame: Frame, face: Face,
                   timings: dict[str, float]) -> tuple[Signals, AlignedFace, EngineReading]:
        """Geometry, the aligned crop, the eyes and (with an engine) emotions / AUs of the driver's face."""
        t0 = time.perf_counter()
        vis = eye_visibility(frame.image, face)
        signals = measure(face, self.cfg.face, eye_visibility=vis)
        aligned = align_face(frame.image, face, self.spec.size, self.cfg.face.align_margin)
        timings["align"] = (time.perf_counter() - t0) * 1e3
        if self.eyes is not None and signals.eyes_visible:
            t0 = time.perf_counter()
            signals = self.eyes.read(frame, face, signals)
            timings["eyes"] = (time.perf_counter() - t0) * 1e3
        elif self.eyes is not None:
            self.eyes.reset()
        reading = NO_READING
        if self.engine is not None:
            t0 = time.perf_counter()
            reading = self.engine.read(aligned, frame.time_s)
            if self.engine.ran:
                timings["engine"] = (time.perf_counter() - t0) * 1e3
        return signals, aligned, reading

    def _smooth(self, signals: Signals | None, has_face: bool, t_s: float) -> Signals | None:
        """Smoothed signals; the filters restart when the face comes back after a gap."""
        smoothed = None
        if signals is not None:
            if not self._had_face:
                self.smoother.reset()
            smoothed = self.smoother.update(signals, t_s)
        if not has_face and self._had_face:
            if self.eyes is not None:
                self.eyes.reset()
            if self.engine is not None:
                self.engine.face_gone()
        self._had_face = has_face
        return smoothed

    def _lost(self, t_s: float | None, index: int | None = None) -> FrameResult:
        last = self._last_frame
        if t_s is None:
            t_s = self._last_t if self._last_t is not None else 0.0
        self._last_t = float(t_s)
        if index is None:  # each lost tick a number of its own
            index = max(last.index if last is not None else -1, self._lost_index) + 1
        self._lost_index = index
        frame = Frame(image=_LOST_IMAGE, index=index, time_s=float(t_s))
        self.smoother.reset()
        self._had_face = False
        if self.engine is not None:
            self.engine.frame_lost()
        if self.eyes is not None:
            self.eyes.reset()
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

    def close(self) -> None:
        """Stop the phone stage's thread; the models stay open (their owner closes them)."""
        if self.phone is not None:
            self.phone.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
