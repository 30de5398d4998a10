"""The one assembly of a run: the models opened once from the config, and drive sessions over them.

``analyze``, ``batch`` (each fleet worker), ``evaluate`` (through ``analyze``), ``bench`` and the
dashboard all make a :class:`Runtime` and nothing else: it opens the face mesh, the emotion/AU
engine, the eye-state model and the phone detector the config asks for, once, and lends them to
every drive (a fleet worker's next drive, the dashboard's fresh pipeline after a seek). A
:class:`DriveSession` is one drive: a source and a fresh pipeline, whose results come from the one
frame loop (:func:`~driver_monitor.session.run_frames`): written as they come (``analyze``),
timed (``bench``), or taken one at a time by the dashboard's worker, paced by its playback
controller.

A new model-backed stage is opened here, in :meth:`Runtime._open_models`, and read in the
pipeline; nothing else changes.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterator

from .config import PROJECT_ROOT, CaptureConfig, Config
from .pipeline import Models, Pipeline
from .session import run_frames
from .types import Event, FrameResult

#: what a caller passes for a model to have it opened from the config (the default)
FROM_CONFIG: Any = "config"
#: the config sections the models are opened from: drives that agree on them can share a Runtime
MODEL_SECTIONS = ("face", "engine", "eyes", "phone")


def models_key(cfg: Config) -> tuple[Any, ...]:
    """What decides the models a config opens (its MODEL_SECTIONS): equal keys, the same models."""
    return tuple(getattr(cfg, name) for name in MODEL_SECTIONS)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _described(engine: Any) -> dict[str, Any]:
    """The selection of an engine given without one."""
    if engine is None:
        return {"backend": "none"}
    return {"backend": engine.name, "device": engine.device, "precision": engine.precision}


class Runtime:
    """The models of a run, opened once (:meth:`open`) from ``cfg`` and closed once (:meth:`close`).

    Any model may be given instead (an engine made for one backend by ``bench``, a test's
    scripted face detector); ``None`` switches that stage off. What is given is closed with the
    rest. ``log`` hears the engine's choice (one line; ``verbose``: with the reasons);
    ``open_source`` opens a source spec (tests inject fakes).
    """

    def __init__(self, cfg: Config, *, engine: Any = FROM_CONFIG, selection: dict[str, Any] | None = None,
                 detector: Any = FROM_CONFIG, eye_model: Any = FROM_CONFIG, phone_detector: Any = FROM_CONFIG,
                 log: Callable[[str], None] = _stderr, verbose: bool = False,
                 open_source: Callable[..., Any] | None = None) -> None:
        self.cfg = cfg
        self._given = {"engine": engine, "detector": detector, "eye_model": eye_model,
                       "phone_detector": phone_detector}
        self._selection = selection
        self._log = log
        self._verbose = verbose
        self._open_source = open_source
        self.models: Models | None = None
        self._lent = False  # whether a pipeline has had the models (the detector has tracked a stream)

    # ------------------------------------------------------------------ the models

    def open(self) -> "Runtime":
        """Open the models the config asks for (once; again a no-op). On an error, what was opened
        is closed and the error raised."""
        if self.models is None:
            self.models = self._open_models()
        return self

    def _open_models(self) -> Models:
        opened: list[Any] = []

        def take(name: str, make: Callable[[], Any]) -> Any:
            if self._given[name] is not FROM_CONFIG:
                return self._given[name]
            opened.append(make())
            return opened[-1]

        try:
            engine = take("engine", self._engine)  # first: a named engine that cannot load is said at once
            return Models(detector=take("detector", self._face_mesh), engine=engine,
                          selection=self._selection or _described(engine),
                          eye_model=take("eye_model", self._eye_model),
                          phone_detector=take("phone_detector", self._phone_detector))
        except BaseException:
            for model in opened:
                if model is not None:
                    model.close()
            raise

    def _engine(self) -> Any:
        from .engine.select import open_engine_or_none

        engine, self._selection = open_engine_or_none(self.cfg.engine, PROJECT_ROOT, warn=self._log,
                                                      verbose=self._verbose)
        return engine

    def _face_mesh(self) -> Any:
        from .face.mesh import FaceMeshDetector  # the only MediaPipe import, at the edge

        return FaceMeshDetector(self.cfg.face)

    def _eye_model(self) -> Any:
        from .engine.eye_state import open_eye_model

        return open_eye_model(self.cfg.eyes, PROJECT_ROOT)

    def _phone_detector(self) -> Any:
        from .engine.phone import open_phone_detector

        return open_phone_detector(self.cfg.phone, PROJECT_ROOT)

    @property
    def selection(self) -> dict[str, Any]:
        """The engine's selection as summary.json records it (before :meth:`open`: none)."""
        return self.models.selection if self.models is not None else {"backend": "none"}

    def pipeline(self, cfg: Config | None = None) -> Pipeline:
        """A fresh pipeline for a new drive (or a seek), over the open models; a face detector that
        tracked a stream before forgets it. ``cfg``: the drive's config (default the run's), which
        may differ from the run's in anything but the sections the models are opened from."""
        cfg = self._drive_config(cfg)
        models = self.open().models
        if self._lent:
            models.reset()
        self._lent = True
        return Pipeline(cfg, models)

    def _drive_config(self, cfg: Config | None) -> Config:
        if cfg is None:
            return self.cfg
        if models_key(cfg) != models_key(self.cfg):
            raise ValueError(f"a drive's config asks for other models than the run's (its "
                             f"{'/'.join(MODEL_SECTIONS)} sections differ); give it a Runtime of its own")
        return cfg

    def close(self) -> None:
        models, self.models, self._lent = self.models, None, False
        if models is not None:
            models.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ drives

    def open_source(self, spec: Any, capture: CaptureConfig | None = None) -> Any:
        """Open a source spec (a file, a camera index, a stream URL) with ``capture`` (default: the
        config's); raises SourceError with one line saying what is wrong."""
        if self._open_source is None:
            from .capture import open_source

            self._open_source = open_source
        return self._open_source(spec, capture if capture is not None else self.cfg.capture)

    def session(self, source: Any, cfg: Config | None = None) -> "DriveSession":
        """A drive over ``source`` (an open source, which the session then owns) with a fresh
        pipeline (``cfg``: the drive's config, see :meth:`pipeline`); the models open first if
        they are not yet."""
        try:
            return DriveSession(source, lambda: self.pipeline(cfg))
        except BaseException:
            source.close()
            raise


class DriveSession:
    """One drive: its source and its pipeline. :meth:`results` is the frame loop (a generator: a
    consumer takes a result when it wants one); :meth:`seek` starts afresh at another frame;
    :meth:`finish` closes the events still open at the end; :meth:`close` releases the source and
    the pipeline (not the models: the runtime's)."""

    def __init__(self, source: Any, new_pipeline: Callable[[], Pipeline]) -> None:
        self.source = source
        self._new_pipeline = new_pipeline
        self.pipeline = new_pipeline()

    def results(self, *, max_frames: int | None = None, should_stop: Callable[[], bool] = lambda: False,
                overlap: bool = True, idle_s: float | None = None) -> Iterator[FrameResult | None]:
        """Every result of the drive in order (session.run_frames: two stages when ``overlap``;
        ``idle_s``: None when no result came within that long, for a consumer that must stay
        responsive). Close the generator (or stop taking from it) before :meth:`seek`."""
        return run_frames(self.source, self.pipeline, max_frames=max_frames, should_stop=should_stop,
                          overlap=overlap, idle_s=idle_s)

    def seek(self, index: int) -> None:
        """Move the source to frame ``index`` and start the analysis afresh there: the state of the
        drive before a jump says nothing about the frames after it (the models are kept)."""
        self.source.seek(index)
        self.pipeline.close()
        self.pipeline = self._new_pipeline()

    def calibrate_now(self) -> None:
        self.pipeline.calibrate_now()

    def finish(self) -> list[Event]:
        return self.pipeline.finish()

    def close(self) -> None:
        """Release the source and stop the pipeline's own thread; each one is tried."""
        try:
            self.source.close()
        finally:
            self.pipeline.close()

    def __enter__(self) -> "DriveSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
