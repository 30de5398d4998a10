"""The face stage: the face mesh (and its person check) on one frame, the frame loop's first stage."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..types import Face, Frame


class FaceDetector(Protocol):
    """What the pipeline asks of a face detector (face.mesh.FaceMeshDetector; tests script one).

    ``detect``: the faces on a frame; ``t_s`` its video time (a detector that searches for other
    faces on a schedule keeps it by that), ``prepared`` what :meth:`prepare` made of it ahead (None:
    the detector converts the frame itself). ``prepare``: the detector's own copy of a frame
    (the mesh: RGB), pure so a decoding thread may make it ahead; None when there is nothing to do.
    ``person_in_view``: after ``detect``, whether a person is in view (a face is one; without a
    face a detector that looks says; None when nothing looked). ``thread_ids``: the native threads
    the detector runs on (the frame loop keeps them on one core), None when it has none of its own.
    ``reset``: a new stream (forget what was tracked); ``close``: release it.
    """

    person_in_view: bool | None
    thread_ids: tuple[int, ...] | None

    def detect(self, image: np.ndarray, t_s: float | None = None, prepared: Any = None) -> list[Face]: ...
    def prepare(self, image: np.ndarray) -> Any: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Detected:
    """The face stage's result for frame ``index``: the faces and the milliseconds it took;
    ``person``: a person in view (see :attr:`FaceDetector.person_in_view`); ``phone``: the phone
    stage's run started with it (:meth:`~driver_monitor.stages.phone.PhoneStage.start`)."""

    index: int
    faces: tuple[Face, ...]
    mesh_ms: float
    person: bool | None = None
    phone: Any = None  # the phone detector's run started on this frame (stages.phone.PhoneRun), or None


class FaceStage:
    """Runs the detector on a frame; remembers whether it saw nobody (no face, and the person check
    saw no one), which the phone stage reads."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.nobody = False

    def prepare(self, frame: Frame) -> Any:
        return self.detector.prepare(frame.image)

    def detect(self, frame: Frame, prepared: Any = None, phone: Any = None) -> Detected:
        t0 = time.perf_counter()
        faces = self.detector.detect(frame.image, t_s=frame.time_s, prepared=prepared)
        person = self.detector.person_in_view
        self.nobody = not faces and person is False
        return Detected(frame.index, tuple(faces), (time.perf_counter() - t0) * 1e3, person, phone)
