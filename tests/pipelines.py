"""A pipeline for a test: its models opened through the run's assembly (runtime.Runtime), any of
them given (a scripted face detector, a stand-in engine), and closed with the pipeline."""
from __future__ import annotations

from typing import Any

from driver_monitor.pipeline import Pipeline
from driver_monitor.runtime import FROM_CONFIG, Runtime


class OwningPipeline(Pipeline):
    """Closes its models when it closes (in the app the runtime owns them)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.models.close()


def make_pipeline(cfg: Any, engine: Any = None, *, detector: Any = FROM_CONFIG, eye_model: Any = FROM_CONFIG,
                  phone_detector: Any = FROM_CONFIG, cls: type = OwningPipeline) -> Any:
    """``cls(cfg, models)``: the engine given (None: none), the rest given or opened from ``cfg``."""
    runtime = Runtime(cfg, engine=engine, detector=detector, eye_model=eye_model, phone_detector=phone_detector,
                      log=lambda m: None).open()
    return cls(cfg, runtime.models)


class FakeDetector:
    """A face detector with what the pipeline's FaceDetector protocol asks, finding no face;
    a test's detector scripts ``faces(image)``."""

    person_in_view: bool | None = None
    thread_ids: tuple[int, ...] | None = None

    def detect(self, image: Any, t_s: float | None = None, prepared: Any = None) -> list[Any]:
        return self.faces(image)

    def faces(self, image: Any) -> list[Any]:
        return []

    def prepare(self, image: Any) -> None:
        return None

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
