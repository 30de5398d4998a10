"""MediaPipe FaceMesh adapter: with face/hands.py and training/landmarker.py the only code that imports mediapipe.

Legacy ``mp.solutions.face_mesh`` with ``refine_landmarks=True`` (478 points, iris included) and
``static_image_mode=False`` (tracking between video frames). Its normalised output becomes our
:class:`~driver_monitor.types.Face`: x, y in pixels, z in pixels (MediaPipe's depth is in the same
scale as x, i.e. a fraction of the image width).
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from typing import Any, Iterator

import numpy as np
from numpy.typing import NDArray

from ..config import FaceConfig
from ..errors import ModelError, SourceError
from ..types import NUM_LANDMARKS, Face


# Wire layout of a NormalizedLandmarkList whose landmarks carry exactly x, y, z (what FaceMesh
# gives): per landmark, tag 0x0a + length 15, then 0x0d x(float32) 0x15 y 0x1d z.
_WIRE_RECORD = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                         ("tz", "u1"), ("z", "<f4")])
_WIRE_TAGS = (0x0A, 15, 0x0D, 0x15, 0x1D)


_WIRE_WANT = np.array(_WIRE_TAGS, np.uint8)
_WIRE_TAG_BYTES = [_WIRE_RECORD.fields[name][1] for name in ("tag", "len", "tx", "ty", "tz")]  # their offsets


def _landmark_array(landmarks: Any) -> NDArray[np.float32]:
    """(N, 3) float32 normalised landmarks from a NormalizedLandmarkList or its serialized bytes.
    Reads the wire bytes directly (about 20x faster than touching 478 Python objects); falls back
    to the objects when the layout differs."""
    raw = landmarks if isinstance(landmarks, bytes) else landmarks.SerializeToString()
    if len(raw) % _WIRE_RECORD.itemsize == 0:
        tags = np.frombuffer(raw, np.uint8).reshape(-1, _WIRE_RECORD.itemsize)[:, _WIRE_TAG_BYTES]
        if (tags == _WIRE_WANT).all():
            rec = np.frombuffer(raw, dtype=_WIRE_RECORD)
            out = np.empty((len(rec), 3), np.float32)
            out[:, 0], out[:, 1], out[:, 2] = rec["x"], rec["y"], rec["z"]
            return out
    if isinstance(landmarks, bytes):
        from mediapipe.framework.formats import landmark_pb2

        landmarks = landmark_pb2.NormalizedLandmarkList.FromString(landmarks)
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float32)


def _mesh_landmarks(mesh: Any, rgb: NDArray[np.uint8]) -> list[Any]:
    """The landmark lists of one frame from a FaceMesh solution, as serialized bytes.

    The same graph call as ``FaceMesh.process`` (the same packet, timestamps and outputs) without
    the wrapper's per-call costs: it builds a new named-tuple class every frame, parses the
    landmarks into protobuf objects that would be serialized again here. About 0.3-0.4 ms a frame
    (a tenth of the mesh). Falls back to ``process`` when the solution lacks the members it uses."""
    found = _graph_call(mesh, rgb, "multi_face_landmarks")
    return list(mesh.process(rgb).multi_face_landmarks or []) if found is None else found


def _count_detections(finder: Any, rgb: NDArray[np.uint8]) -> int:
    """How many faces a FaceDetection solution finds in one frame: the graph call of
    :func:`_mesh_landmarks`, counting the serialized detections (``process`` as the fallback)."""
    found = _graph_call(finder, rgb, "detections")
    return len(finder.process(rgb).detections or []) if found is None else len(found)


def _graph_call(solution: Any, rgb: NDArray[np.uint8], output: str) -> list[bytes] | None:
    """``solution.process(rgb)``'s graph call, its ``output`` stream as serialized protos (none:
    []); None when the solution lacks the members this needs (call ``process`` then)."""
    lean = _LEAN.get(type(solution))
    if lean is None:
        lean = _LEAN[type(solution)] = all(hasattr(solution, a) for a in _LEAN_MEMBERS) and _lean_api() is not None
    if not lean:
        return None
    create, fmt, serialized = _lean_api()
    solution._graph_outputs.clear()
    solution._simulated_timestamp += 33333  # the solution's own step in process(): 30 fps video time
    stream = next(iter(solution._input_stream_type_info))
    solution._graph.add_packet_to_input_stream(stream=stream,
                                               packet=create(rgb, image_format=fmt).at(solution._simulated_timestamp))
    solution._graph.wait_until_idle()
    packet = solution._graph_outputs.get(output)
    return [] if packet is None or packet.is_empty() else list(serialized(packet))


_LEAN: dict[type, bool] = {}
_LEAN_MEMBERS = ("_graph", "_graph_outputs", "_simulated_timestamp", "_input_stream_type_info")


@functools.lru_cache(maxsize=1)
def _lean_api() -> tuple[Any, Any, Any] | None:
    try:
        from mediapipe.python import packet_creator
        from mediapipe.python._framework_bindings import _packet_getter, image_frame
    except ImportError:  # pragma: no cover - another mediapipe layout
        return None
    getter = getattr(_packet_getter, "_get_serialized_proto_list", None)
    if getter is None:  # pragma: no cover
        return None
    return packet_creator.create_image_frame, image_frame.ImageFormat.SRGB, getter


_GRAPH_LOCK = threading.Lock()


@contextlib.contextmanager
def graph_threads(threads: int) -> Iterator[None]:
    """MediaPipe solutions made inside this block run their graph's calculators on ``threads``
    threads (0: MediaPipe's default, a pool as large as the machine). The mesh of one frame is a
    chain of calculators, so one thread takes about the same time alone (3.3-3.7 against 3.3-3.6 ms
    a frame on yawn_in_car) and, beside the frame loop's other stage, leaves the other core to it
    instead of waking a pool thread there. The landmarks are the same. The solution API has no setting
    for it, so the graph config is changed as the solution builds its graph."""
    from mediapipe.python import solution_base

    module = getattr(solution_base, "calculator_graph", None)
    if threads <= 0 or module is None or not hasattr(module, "CalculatorGraph"):
        yield
        return
    with _GRAPH_LOCK:
        build = module.CalculatorGraph

        def with_threads(*args: Any, graph_config: Any = None, **kw: Any) -> Any:
            if graph_config is not None:
                _set_graph_threads(graph_config, threads)
            return build(*args, graph_config=graph_config, **kw)

        module.CalculatorGraph = with_threads
        try:
            yield
        finally:
            module.CalculatorGraph = build


def _thread_ids() -> set[int]:
    """Native ids of this process's threads (Linux); empty where they cannot be listed."""
    try:
        return {int(t) for t in os.listdir("/proc/self/task")}
    except (OSError, ValueError):
        return set()


def _comm(tid: int) -> str | None:
    try:
        with open(f"/proc/self/task/{tid}/comm", encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:  # the thread ended, or no /proc
        return None


def _await_thread_names(tids: set[int], timeout_s: float = 0.5) -> None:
    """A new thread carries its creator's name until it names itself (MediaPipe's: just after they
    start, later on a busy machine); wait, at most ``timeout_s``, until none of ``tids`` does, so
    that :attr:`FaceMeshDetector.thread_ids` is complete once the detector is made."""
    mine = _comm(threading.get_native_id())
    end = time.monotonic() + timeout_s
    while mine is not None and time.monotonic() < end and any(_comm(t) == mine for t in tids):
        time.sleep(0.001)


def _is_graph_thread(tid: int) -> bool:
    """A live MediaPipe graph thread (Linux: MediaPipe names them ``mediapipe/<id>``)."""
    name = _comm(tid)
    return name is not None and name.startswith("mediapipe")


def _set_graph_threads(config: Any, threads: int) -> None:
    """The default executor's thread count: in its ThreadPoolExecutor options when the graph
    declares that executor, else the graph's own ``num_threads``."""
    from mediapipe.framework import thread_pool_executor_pb2

    default = [e for e in config.executor if not e.name]
    if not default:
        config.num_threads = threads
        return
    for e in default:
        if e.type in ("", "ThreadPoolExecutor"):
            e.options.Extensions[thread_pool_executor_pb2.ThreadPoolExecutorOptions.ext].num_threads = threads


def _landmarks_to_face(landmarks: Any, width: int, height: int) -> Face:
    pts = _landmark_array(landmarks)
    if pts.shape != (NUM_LANDMARKS, 3):
        raise ModelError(f"MediaPipe returned {pts.shape[0]} landmarks, expected {NUM_LANDMARKS}; "
                         f"the face mesh must run with refine_landmarks=True")
    pts[:, 0] *= width
    pts[:, 1] *= height
    pts[:, 2] *= width
    xy = pts[:, :2]
    bbox = np.concatenate([xy.min(axis=0), xy.max(axis=0)]).astype(np.float32)
    return Face(bbox=bbox, landmarks=pts)


WARM_UP_SHAPE = (480, 640, 3)  # the blank frame the graphs first run on


def warm_up(*graphs: Any) -> None:
    """Run each MediaPipe graph once on a blank frame and forget it: the first run of a graph
    sets up its models (tens of milliseconds), which would otherwise fall on the first frame of a
    drive. A blank frame holds no face, so no tracking state is left behind."""
    blank = np.zeros(WARM_UP_SHAPE, np.uint8)
    for g in graphs:
        if g is None:
            continue
        g.process(blank)
        if hasattr(g, "reset"):
            g.reset()


class FaceMeshDetector:
    """478-point face mesh on BGR or grey uint8 frames; ``detect(image) -> list[Face]``.

    One instance per video stream (it tracks); call ``close()`` (or use ``with``) when done.

    Tracking mode tracks the driver alone and looks for other faces on a schedule: a mesh that
    tracks ``max_faces`` faces runs MediaPipe's face detector on every frame while fewer are in
    view (the common case: one driver), which costs about a third of the frame rate. So, with
    ``search_interval_s`` > 0 and ``max_faces`` > 1, one face is tracked per frame and a face
    detector counts the faces every ``search_interval_s`` of video time and when the tracked face
    is found again after a loss. While it sees more than one face the detector follows all of them
    on every frame (as with the interval at 0), until a search sees one again. The face count is
    therefore exact on every frame with several faces in view, and a second face that enters is
    counted within ``search_interval_s``.

    Every graph (both meshes, the face search) is made and warmed up (:func:`warm_up`) with the
    detector, so the first frame of a drive costs what a later one does, less the first run of the
    landmark model (a blank frame has no face to run it on): on the near-infrared clip the first
    frame's mesh took 55 ms before, 23 ms with the warm-up.
    """

    def __init__(self, cfg: FaceConfig, *, static_image_mode: bool = False) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - mediapipe is a core dependency
            raise ModelError(f"mediapipe is not installed ({exc}); install the project with pip install -e .") from None
        self.cfg = cfg
        self._mp = mp
        self._static = static_image_mode
        self._interval = float(getattr(cfg, "search_interval_s", 0.0))
        self._graph_threads = int(getattr(cfg, "mesh_threads", 0))  # MediaPipe's graph threads (0: its pool)
        self._thread_ids: set[int] = set()  # the native threads of this detector's graphs
        self._scheduled = not static_image_mode and self._interval > 0 and int(cfg.max_faces) > 1
        self._all = self._face_mesh(int(cfg.max_faces))  # follows every face (up to max_faces)
        self._one = self._face_mesh(1) if self._scheduled else None  # follows the driver alone
        self._finder = self._face_finder() if self._scheduled else None  # counts the faces on a search
        self._person_hz = float(getattr(cfg, "person_check_hz", 0.0))
        self._people = self._person_finder() if self._person_hz > 0 and not static_image_mode else None
        self._following_all = not self._scheduled
        self._next_search: float | None = None
        self._next_person: float | None = None
        self._had_face = False
        self._calls = 0
        self.searches = 0  # how many times the faces were counted (tests, benchmarks)
        # a person in view on the last frame (a face is one; without a face, MediaPipe's person
        # segmentation says, at person_check_hz); None when nothing looks
        self.person_in_view: bool | None = None
        self._cv2 = __import__("cv2")
        warm_up(self._all, self._one, self._finder, self._people)

    def _face_mesh(self, max_faces: int) -> Any:
        return self._graph(functools.partial(
            self._mp.solutions.face_mesh.FaceMesh,
            static_image_mode=self._static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=float(self.cfg.min_detection_confidence),
            min_tracking_confidence=float(self.cfg.min_tracking_confidence),
        ))

    def _graph(self, make: Any) -> Any:
        """A MediaPipe solution made with this detector's graph threads; its threads are noted."""
        before = _thread_ids()
        with graph_threads(self._graph_threads):
            made = make()
        new = _thread_ids() - before
        _await_thread_names(new)
        self._thread_ids |= new
        return made

    @property
    def thread_ids(self) -> tuple[int, ...]:
        """Native ids of the threads this detector's graphs run on (Linux; empty elsewhere), so the
        frame loop can keep them on the core of the thread that calls :meth:`detect`."""
        return tuple(sorted(t for t in self._thread_ids if _is_graph_thread(t)))

    def prepare(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The RGB copy of a BGR or grey frame the mesh reads; pure, so it may run ahead of
        :meth:`detect` on another thread.

        The copy is made read-only: MediaPipe then lends a read-only array to its graphs as it is
        instead of copying it into an image of its own for every graph that runs on the frame (a
        1280x960 frame: 0.10 ms a copy, two on a search frame). The pixels the graphs read are
        the same, so are the landmarks."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"image must be (H, W) or (H, W, 3) uint8, got {getattr(image, 'shape', image)!r}")
        cv2 = self._cv2
        rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        return rgb

    def detect(self, image: NDArray[np.uint8], t_s: float | None = None,
               prepared: NDArray[np.uint8] | None = None) -> list[Face]:
        """Faces in a BGR ``(H, W, 3)`` or grey ``(H, W)`` uint8 image (may be empty). ``t_s``: the
        frame's video time, for the search schedule (default: frames at 30 fps). ``prepared``:
        :meth:`prepare`'s result for this image, when it was made ahead."""
        if self._all is None:
            raise ModelError("FaceMeshDetector.detect() called after close(); create a new detector")
        rgb = self.prepare(image) if prepared is None else prepared
        h, w = rgb.shape[:2]
        t = self._calls / 30.0 if t_s is None else float(t_s)
        self._calls += 1
        found = self._run(rgb, t)
        self._had_face = bool(found)
        self._look_for_person(rgb, t, bool(found))
        return [_landmarks_to_face(lm, w, h) for lm in found]

    def _look_for_person(self, rgb: NDArray[np.uint8], t: float, face: bool) -> None:
        """With no face in the mesh, whether a person is still in view (a head in profile or turned
        away): the person segmentation's share of the image, looked at ``person_check_hz`` times a
        second of video and held between (a face found again says yes at once)."""
        if self._people is None:
            return
        if face:
            self.person_in_view, self._next_person = True, None
            return
        if self._next_person is not None and t < self._next_person:
            return
        self._next_person = t + 1.0 / self._person_hz
        mask = self._people.process(rgb).segmentation_mask
        share = float((mask > 0.5).mean()) if mask is not None else 0.0
        self.person_in_view = share >= float(self.cfg.person_min_fraction)

    def _run(self, rgb: NDArray[np.uint8], t: float) -> list[Any]:
        """The landmarks of this frame, from the mesh that follows one face or the one that follows all."""
        due = self._next_search is None or t >= self._next_search
        if not self._following_all:
            found = _mesh_landmarks(self._one, rgb)
            if not (due or (found and not self._had_face)):
                return list(found)
            if self._count_faces(rgb, t) <= 1:
                return list(found)
            self._following_all = True  # several faces: follow them all from this frame on
            self._all.reset()
            return _mesh_landmarks(self._all, rgb)
        found = _mesh_landmarks(self._all, rgb)
        if self._scheduled and due:
            self._next_search = t + self._interval
            if len(found) <= 1:  # one face again: the next frame tracks it alone
                self._following_all = False
                self._one.reset()
        return list(found)

    def _face_finder(self) -> Any:
        return self._graph(functools.partial(
            self._mp.solutions.face_detection.FaceDetection,
            model_selection=0, min_detection_confidence=float(self.cfg.min_detection_confidence)))

    def _person_finder(self) -> Any:
        return self._graph(functools.partial(self._mp.solutions.selfie_segmentation.SelfieSegmentation,
                                             model_selection=0))

    def _count_faces(self, rgb: NDArray[np.uint8], t: float) -> int:
        self.searches += 1
        self._next_search = t + self._interval
        return _count_detections(self._finder, rgb)

    @property
    def following_all(self) -> bool:
        """True while every face in view is followed on every frame (several faces, or no schedule)."""
        return self._following_all

    def reset(self) -> None:
        """Forget the tracked faces: the next frame starts a new stream, as with a new detector."""
        if self._all is None:
            return
        self._all.reset()
        if self._one is not None:
            self._one.reset()
        self._following_all = not self._scheduled
        self._next_search = None
        self._next_person = None
        self.person_in_view = None
        self._had_face = False
        self._calls = 0

    def close(self) -> None:
        for m in (self._all, self._one, self._finder, self._people):
            if m is not None:
                m.close()
        self._all = self._one = self._finder = self._people = None
        self._thread_ids.clear()

    def __enter__(self) -> "FaceMeshDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bare_mesh_loop(path: str, *, max_frames: int | None = None) -> tuple[int, float, float]:
    """Decode a video and run MediaPipe FaceMesh (one face, refined landmarks, tracking) on every
    frame, and nothing else: the floor cost of any MediaPipe-based monitor, the reference of
    ``driver-monitor bench --side-by-side``. Returns (frames, seconds, CPU seconds of the process
    over those seconds); the mesh is made and warmed up (:func:`warm_up`, as the detector of
    ``analyze`` is) before the clocks start and closed after they stop."""
    import cv2
    import mediapipe as mp

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SourceError(f"{path!r} cannot be read as a video; pass a video file")
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True)
    frames = 0
    try:
        warm_up(mesh)  # as analyze's detector is, before its clock starts
        t0, cpu0 = time.perf_counter(), time.process_time()
        while max_frames is None or frames < max_frames:
            ok, image = cap.read()
            if not ok:
                break
            mesh.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
            frames += 1
        return frames, time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        mesh.close()
        cap.release()
