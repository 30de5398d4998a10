"""Scenario clips built from a marked clip by re-ordering its frames, with their truth file
(``tools/make_scenario_clips.py``).

No real clip in ../shared holds a glance away long enough for the long-distraction rule (the
longest is 3.0 s), so these clips rearrange the real frames of ``head_turns.mp4``: a turn whose
held part is played back and forth (ping-pong) until the glance lasts 4.5-5.8 s, a look down held
the same way, a turn after which the face slides out of the picture (a driver who dodges the
camera), and a run of 2.1-2.8 s glances with 1.2 s looks back (attention time-sharing). Every
frame is a real frame, so the face mesh, the pose and the eyes are measured as on the source;
each output frame keeps the label a person marked on its source frame in the source truth file,
and the truth file written beside the clips says what each run must raise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import yaml

from ..config import Config
from ..errors import DriverMonitorError
from ..scenarios import load_truth

SOURCE = "head_turns"  # the clip in the source truth file the recipes are written for
OUT_OF_VIEW = -1       # a frame index meaning: the source frame slid out of the picture


def pingpong(a: int, b: int, n: int) -> list[int]:
    """n frames going a..b..a..b (a real head held still, with its small natural motion)."""
    cycle = list(range(a, b + 1)) + list(range(b - 1, a, -1))
    return [cycle[i % len(cycle)] for i in range(n)]


def span(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


# name -> (frame list, note). Frame numbers are head_turns.mp4's (30.08 fps); see its marks in
# scenarios/shared_clips.yaml: looking_aside 48-137 (right, yaw to -47) and 179-253 (left, to +50),
# looking_down 387-441 (pitch to -39), attentive 0-46, 139-177, 254-290, 442-622.
RECIPES: dict[str, tuple[list[int], str]] = {
    "held_turn_right": (span(0, 89) + pingpong(90, 124, 120) + span(125, 177) + span(254, 285),
                        "a head turn to the right (yaw -45 deg) held 5.8 s, 1.6 s into the drive"),
    "held_turn_left": (span(150, 199) + pingpong(200, 240, 120) + span(241, 290),
                       "a head turn to the left (yaw +48 deg) held 5.1 s, 1 s into the drive"),
    "held_look_down": (span(254, 285) + span(370, 395) + pingpong(396, 430, 120) + span(431, 500),
                       "a look down (pitch -38 deg) held 4.7 s, 1.5 s into the drive"),
    "turn_then_out_of_view": (span(0, 95) + [OUT_OF_VIEW] * 75 + span(126, 177) + span(254, 285),
                              "a head turn to the right, then the face slides out of the picture for 2.5 s "
                              "(a driver dodging the camera), then back"),
    "glances_time_sharing": (span(0, 46) + (span(48, 177) + span(179, 285)) * 2 + span(48, 177)
                             + span(442, 622),
                             "five glances of 2.1-2.8 s to either side with 1.2 s looks back at the road"),
}


def read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    ok, img = cap.read()
    while ok:
        frames.append(img)
        ok, img = cap.read()
    cap.release()
    if not frames:
        raise DriverMonitorError(f"{path} could not be decoded; pass --video-dir with the shared videos")
    return frames


def slid_out(img: np.ndarray, k: int, n: int) -> np.ndarray:
    """The image moved sideways by (k+1)/n of its width (edge pixels fill the gap): after n frames
    the face is out of the picture and only the replicated background edge remains."""
    w = img.shape[1]
    shift = int(round(w * min(1.0, (k + 1) / n)))
    m = np.float32([[1, 0, -shift], [0, 1, 0]])
    return cv2.warpAffine(img, m, (w, img.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def label_runs(labels: list[str], fps: float) -> list[tuple[str, float, float]]:
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((labels[start], round(start / fps, 2), round((i - 1) / fps, 2)))
            start = i
    return runs


def _labeller(src: Any, fps: float) -> Callable[[int], str]:
    """The label of every source frame: the interval (not eyes_hidden) that holds its time."""
    marks = [iv for iv in src.intervals if iv.label != "eyes_hidden"]

    def label_of(i: int) -> str:
        t = i / fps
        hits = [iv.label for iv in marks if iv.start_s - 0.5 / fps <= t <= iv.end_s + 0.5 / fps]
        return hits[0] if hits else "unmarked"

    return label_of


def write_clip(path: Path, seq: list[int], frames: list[np.ndarray], fps: float,
               label_of: Callable[[int], str]) -> list[str]:
    """The frames ``seq`` (OUT_OF_VIEW: the last frame sliding out of the picture) as an mp4 at
    ``path``; returns each output frame's label."""
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not vw.isOpened():
        raise DriverMonitorError(f"cannot write {path}: OpenCV has no mp4v encoder here")
    labels, last, k = [], 0, 0
    for i in seq:
        if i == OUT_OF_VIEW:
            n_slide = 8
            img = slid_out(frames[last], k, n_slide)
            k += 1
            labels.append(labels[-1] if labels else "attentive")
        else:
            img = frames[i]
            last, k = i, 0
            labels.append(label_of(i))
        vw.write(img)
    vw.release()
    return labels


def time_sharing_intervals(labels: list[str], fps: float) -> list:
    """One stretch from the first glance to the end of the last: the marked glances add up to more
    than the time-sharing limit, none is long enough for a long distraction, so the warning is due
    by the end of the last glance (+ the alert's raise time and the marking tolerance). Not earlier:
    the marks start where the turn becomes visible (15-20 deg), the rule counts from its limit (23
    deg, 28.9 before the pose is learned)."""
    cfg = Config()
    runs = label_runs(labels, fps)
    glances = [r for r in runs if r[0] == "looking_aside"]
    total = sum(b - a for _, a, b in glances)
    if total < cfg.distraction.time_sharing_s or max(b - a for _, a, b in glances) >= cfg.distraction.warning_s:
        raise DriverMonitorError("the time-sharing recipe must mark over time_sharing_s of short glances")
    start, end = glances[0][1], glances[-1][2]
    within = round(end - start + cfg.alerts.raise_after_s + 0.5, 2)
    intervals: list = [list(r) for r in runs if r[2] < start]
    intervals.append({"label": "glances", "start_s": start, "end_s": end,
                      "note": f"{len(glances)} glances, {total:.1f} s marked, the longest "
                              f"{max(b - a for _, a, b in glances):.1f} s; back on the road 1.2 s between",
                      "expect": {"alert": "distraction", "level": "warning", "within_s": within},
                      "forbid": ["drowsiness", "microsleep"]})
    intervals += [list(r) for r in runs if r[1] > end and r[0] != "unmarked"]
    return intervals


def _truth_text(clips: list[dict], source: str, truth: str, out: str) -> str:
    header = ("# Written by tools/make_scenario_clips.py: the clips rearrange the frames of "
              f"{source};\n# each interval keeps the label marked on its source frames in "
              f"{Path(truth).name}.\n")
    return header + yaml.safe_dump({"video_dir": ".", "note": (
        f"The clips were built by `python tools/make_scenario_clips.py --out {out}`: they "
        f"rearrange real frames of {source} (a held turn or look down played back and "
        f"forth, the picture slid sideways until the face leaves it, short glances strung "
        f"together); each interval keeps the label marked on its source frames in "
        f"{Path(truth).name}."), "clips": clips}, sort_keys=False, width=110, default_flow_style=None)


def make_clips(truth: str, video_dir: str | None, out: str, log: Callable[[str], None] = print) -> int:
    """Every recipe's clip and ``derived_clips.yaml`` under ``out``; returns the number of clips."""
    clips = {c.name: c for c in load_truth(truth, lambda extra: Config(), video_dir)}
    if SOURCE not in clips:
        raise DriverMonitorError(f"{truth} has no clip named {SOURCE!r}; the recipes are written for it")
    src = clips[SOURCE]
    frames = read_frames(src.video)
    cap = cv2.VideoCapture(str(src.video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    label_of = _labeller(src, fps)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    truth_clips = []
    for name, (seq, note) in RECIPES.items():
        path = folder / f"{name}.mp4"
        labels = write_clip(path, seq, frames, fps, label_of)
        if name == "glances_time_sharing":
            intervals = time_sharing_intervals(labels, fps)
        else:
            intervals = [list(r) for r in label_runs(labels, fps) if r[0] != "unmarked"]
        truth_clips.append({"name": name, "video": path.name, "note": note + f" (from {src.video.name})",
                            "intervals": intervals})
        log(f"{path}: {len(seq)} frames, {len(seq) / fps:.1f} s")
    (folder / "derived_clips.yaml").write_text(_truth_text(truth_clips, src.video.name, truth, out), encoding="utf-8")
    log(f"{folder / 'derived_clips.yaml'}: truth for {len(truth_clips)} clips")
    return len(truth_clips)
