"""Annotated video of a drive: the frame with the face box, levels and eye state burnt in.

OpenCV drawing on a copy of the frame (no Qt); the session recorder writes it beside the results.
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from .errors import DriverMonitorError
from .types import FrameResult, Level

_LEVEL_BGR = {Level.NONE: (58, 220, 61), Level.WARNING: (7, 193, 255), Level.CRITICAL: (48, 59, 255)}


def annotate(result: FrameResult, size: tuple[int, int] | None = None) -> np.ndarray:
    """A BGR copy of the result's frame with overlays; ``size`` (w, h) for camera-lost ticks."""
    img = result.frame.image
    if not result.camera_ok or img.size <= 1:
        w, h = size or (640, 480)
        out = np.zeros((h, w, 3), np.uint8)
        cv2.putText(out, "CAMERA LOST", (20, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (80, 80, 255), 2, cv2.LINE_AA)
        return out
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img.copy()
    st = result.state
    colour = _LEVEL_BGR[st.level]
    if result.face is not None:
        x0, y0, x1, y1 = (int(round(float(v))) for v in result.face.bbox)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2, cv2.LINE_AA)
    _draw_phone(out, result)
    lines = [f"t {result.time_s:7.2f} s  #{result.index}",
             f"drowsiness {st.drowsiness}  distraction {st.distraction}  ({st.status})"]
    if st.eyes_closed:
        lines.append(f"eyes closed {st.eyes_closed_s:.1f} s")
    if st.off_road:
        lines.append(f"eyes off road {st.off_road_s:.1f} s")
    if st.phone_use:
        lines.append("phone in use")
    if not math.isnan(st.perclos):
        lines.append(f"PERCLOS {st.perclos:.0%}")
    if result.emotion:
        lines.append(f"emotion {result.emotion}")
    lines.extend(_hidden_lines(result))
    scale = max(0.4, out.shape[1] / 1280)
    for i, text in enumerate(lines):
        y = int((22 + 22 * i) * scale * 1.4)
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale * 1.4, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale * 1.4,
                    colour if i == 1 else (255, 255, 255), 1, cv2.LINE_AA)
    return out


PHONE_BGR = (255, 160, 0)  # the phone's box: blue while only seen, the distraction's colour in use


def _draw_phone(out: np.ndarray, result: FrameResult) -> None:
    """The box of the phone the detector last found (``FrameResult.phone_box``), labelled as the
    dashboard labels it: "phone", "phone in use" once the vote says so, in the distraction level's
    colour once that level is up (ui/video_view.py)."""
    if result.phone_box is None:
        return
    x0, y0, x1, y1 = (int(round(float(v))) for v in result.phone_box)
    st = result.state
    colour = _LEVEL_BGR[st.distraction] if st.phone_use and st.distraction != Level.NONE else PHONE_BGR
    cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2, cv2.LINE_AA)
    label = "phone in use" if st.phone_use else "phone"
    cv2.putText(out, label, (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


def _hidden_lines(result: FrameResult) -> list[str]:
    """What the network could not see (a region-attention model): the face regions counted as
    hidden and how many action units were therefore not read, as the dashboard greys them."""
    if not result.regions_hidden:
        return []
    text = f"hidden: {', '.join(r.replace('_', ' ') for r in result.regions_hidden)}"
    if result.aus_hidden:
        text += f" ({len(result.aus_hidden)} AUs not read)"
    return [text]


class AnnotatedVideoWriter:
    """Writes ``annotated.mp4`` (mp4v) at ``fps``; opened on the first frame (its size fixes the video's)."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, result: FrameResult) -> None:
        img = annotate(result, self._size)
        h, w = img.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                raise DriverMonitorError(f"cannot write the annotated video {str(self.path)!r} (OpenCV could not "
                                         f"open an mp4v writer); record results only or pick another folder")
        if (w, h) != self._size:
            img = cv2.resize(img, self._size)
        self._writer.write(img)
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
