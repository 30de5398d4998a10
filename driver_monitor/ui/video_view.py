"""The live view: the frame with toggleable overlays.

The frame is wrapped in a ``QImage`` that points at the numpy buffer (no copy; the array is kept
alive beside it) and drawn scaled into the widget; overlays are painted in frame pixel
coordinates through the same transform. Grey (IR) frames use ``Format_Grayscale8``.

Overlays: face box, mesh points, head-pose axes, gaze direction, eye state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPolygonF
from PyQt6.QtWidgets import QSizePolicy, QWidget

from ..types import FrameResult, Level, Status

# MediaPipe face-mesh indices (refined model: 478 points, iris centres 468 / 473).
NOSE_TIP = 1
EYE_CONTOURS = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))
IRIS_CENTRES = (468, 473)

OVERLAYS: tuple[str, ...] = ("face_box", "mesh", "head_pose", "gaze", "eye_state", "phone")
OVERLAY_LABELS: dict[str, str] = {
    "face_box": "Face box", "mesh": "Mesh points", "head_pose": "Head-pose axes",
    "gaze": "Gaze direction", "eye_state": "Eye state", "phone": "Phone box",
}
PHONE_SEEN = "#00a0ff"  # the phone's box while it is only seen; in use it takes the distraction's colour
LEVEL_COLOURS = {Level.NONE: "#3ddc84", Level.WARNING: "#ffc107", Level.CRITICAL: "#ff3b30"}


def qimage_view(image: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A QImage over ``image``'s memory (no pixel copy) and the array that must outlive it.

    Only a non-contiguous array is made contiguous first (one copy, unavoidable for Qt).
    """
    arr = image if image.flags.c_contiguous else np.ascontiguousarray(image)
    h, w = arr.shape[:2]
    if arr.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    else:
        fmt = QImage.Format.Format_BGR888
    qimg = QImage(arr.data, w, h, int(arr.strides[0]), fmt)
    return qimg, arr


def head_pose_axes(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """``(3, 2)`` image-plane directions (x right, y down) of the head's x, up and forward axes.

    Follows driver_monitor.types: yaw > 0 turns the face towards the image's right, pitch > 0 tilts
    the chin up, roll > 0 is clockwise in the image. Orthographic projection, unit length.
    """
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))

    def rx(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])

    def ry(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])

    def rz(a: float) -> np.ndarray:
        c, s = math.cos(a), math.sin(a)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])

    rot = rz(r) @ ry(-y) @ rx(-p)
    axes = rot @ np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]).T  # columns: x, up, forward
    return axes[:2].T.copy()


# Eye-state label colours, drawn on LABEL_BACKDROP (black, 80 % opaque): each keeps a contrast of at
# least 4.5:1 (WCAG AA) against it whether the frame behind is white or black.
EYE_LABEL_COLOURS = {"not_visible": "#e0e0e0", "closed": "#ff6b60", "open": "#3ddc84"}
LABEL_BACKDROP = (0, 0, 0, 204)


def eye_state_label(eyes_visible: bool, eyes_closed: bool, eyes_closed_s: float) -> tuple[str, str]:
    """(text, colour) of the eye-state overlay label."""
    if not eyes_visible:
        return "eyes not visible", EYE_LABEL_COLOURS["not_visible"]
    if eyes_closed:
        return f"eyes CLOSED {eyes_closed_s:.1f} s", EYE_LABEL_COLOURS["closed"]
    return "eyes open", EYE_LABEL_COLOURS["open"]


def contrast_ratio(a: str | QColor, b: str | QColor) -> float:
    """WCAG contrast ratio of two opaque colours (1 to 21)."""
    def lum(c: QColor) -> float:
        def ch(v: float) -> float:
            return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * ch(c.redF()) + 0.7152 * ch(c.greenF()) + 0.0722 * ch(c.blueF())

    la, lb = sorted((lum(QColor(a)), lum(QColor(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def over(backdrop: tuple[int, int, int, int], behind: str) -> QColor:
    """The opaque colour of ``backdrop`` (RGBA) painted over ``behind``."""
    bg = QColor(behind)
    a = backdrop[3] / 255.0
    return QColor(*(round(c * a + b * (1 - a)) for c, b in zip(backdrop[:3], (bg.red(), bg.green(), bg.blue()))))


@dataclass
class OverlaySettings:
    enabled: dict[str, bool] = field(default_factory=lambda: {k: True for k in OVERLAYS})


class VideoView(QWidget):
    """Draws the latest :class:`FrameResult` (frame + overlays), keeping the aspect ratio."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.overlays = OverlaySettings()
        self.result: FrameResult | None = None
        self._qimage: QImage | None = None
        self._array: np.ndarray | None = None  # keeps the QImage's memory alive
        self.frames_drawn = 0
        self.placeholder = "no video"

    def set_overlay(self, name: str, on: bool) -> None:
        if name not in self.overlays.enabled:
            raise KeyError(f"unknown overlay {name!r}; known: {', '.join(OVERLAYS)}")
        self.overlays.enabled[name] = bool(on)
        self.update()

    def show_result(self, result: FrameResult | None) -> None:
        self.result = result
        if result is not None and result.camera_ok and result.frame.image.size > 1:
            self._qimage, self._array = qimage_view(result.frame.image)
        self.update()

    # -------------------------------------------------------------- painting

    def _image_rect(self, w: int, h: int) -> QRectF:
        scale = min(self.width() / w, self.height() / h)
        dw, dh = w * scale, h * scale
        return QRectF((self.width() - dw) / 2, (self.height() - dh) / 2, dw, dh)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#111111"))
        if self._qimage is None:
            p.setPen(QColor("#bbbbbb"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            p.end()
            return
        img = self._qimage
        target = self._image_rect(img.width(), img.height())
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.drawImage(target, img)
        r = self.result
        if r is not None and not r.camera_ok:
            p.fillRect(target, QColor(0, 0, 0, 150))
            p.setPen(QColor("#ff8080"))
            f = QFont(p.font())
            f.setPointSize(f.pointSize() + 8)
            p.setFont(f)
            p.drawText(target, Qt.AlignmentFlag.AlignCenter, "camera lost: retrying")
        elif r is not None and (r.face is not None or r.phone_box is not None):
            p.save()
            p.translate(target.x(), target.y())
            s = target.width() / img.width()
            p.scale(s, s)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            if self.overlays.enabled["phone"]:
                self._draw_phone(p, r, 1.0 / s)
            if r.face is not None:
                self._draw_overlays(p, r, 1.0 / s)
            p.restore()
        p.end()
        self.frames_drawn += 1

    def _draw_phone(self, p: QPainter, r: FrameResult, px: float) -> None:
        """The box of the phone the detector last found, labelled "phone" ("phone in use" once
        the vote says so, in the distraction level's colour)."""
        if r.phone_box is None:
            return
        x0, y0, x1, y1 = (float(v) for v in r.phone_box)
        st = r.state
        in_use = st.phone_use and st.distraction != Level.NONE
        col = QColor(LEVEL_COLOURS[st.distraction] if in_use else PHONE_SEEN)
        p.setPen(QPen(col, 2.5 * px))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        text = "phone in use" if st.phone_use else "phone"
        _label(p, text, col, QPointF(x0, max(14 * px, y0 - 5 * px)), px, 13, bold=False)

    def _draw_overlays(self, p: QPainter, r: FrameResult, px: float) -> None:
        """Paint in frame pixels; ``px`` = one screen pixel in frame pixels (pen widths)."""
        face = r.face
        on = self.overlays.enabled
        lm = face.landmarks
        x0, y0, x1, y1 = (float(v) for v in face.bbox)
        fw = max(1.0, x1 - x0)
        st = r.state
        level_col = QColor(LEVEL_COLOURS[st.level])
        if on["mesh"]:
            p.setPen(QPen(QColor(0, 220, 255, 170), 2.0 * px))
            p.drawPoints(QPolygonF([QPointF(float(x), float(y)) for x, y in lm[:, :2]]))
        if on["face_box"]:
            p.setPen(QPen(level_col, 2.5 * px))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        s = r.smoothed or r.signals
        if on["head_pose"] and s is not None:
            ax = head_pose_axes(s.yaw_deg, s.pitch_deg, s.roll_deg) * (0.45 * fw)
            nx, ny = float(lm[NOSE_TIP, 0]), float(lm[NOSE_TIP, 1])
            for (dx, dy), col in zip(ax, ("#ff4040", "#40ff40", "#4090ff")):
                p.setPen(QPen(QColor(col), 3.0 * px))
                p.drawLine(QPointF(nx, ny), QPointF(nx + float(dx), ny + float(dy)))
        eyes_visible = s is not None and s.eyes_visible and st.status != Status.EYES_NOT_VISIBLE
        if on["gaze"] and s is not None and eyes_visible:
            p.setPen(QPen(QColor("#ff40ff"), 2.5 * px))
            length = 0.35 * fw
            for idx in IRIS_CENTRES:
                cx, cy = float(lm[idx, 0]), float(lm[idx, 1])
                p.drawLine(QPointF(cx, cy), QPointF(cx + s.gaze_x * length, cy + s.gaze_y * length))
                p.drawEllipse(QPointF(cx, cy), 2.5 * px, 2.5 * px)
        if on["eye_state"]:
            text, col = eye_state_label(eyes_visible, st.eyes_closed, st.eyes_closed_s)
            p.setPen(QPen(QColor(col), 2.0 * px))
            p.setBrush(Qt.BrushStyle.NoBrush)
            for contour in EYE_CONTOURS:
                p.drawPolygon(QPolygonF([QPointF(float(lm[i, 0]), float(lm[i, 1])) for i in contour]))
            _label(p, text, QColor(col), QPointF(x0, max(16 * px, y0 - 6 * px)), px, 14, bold=True)


def _label(p: QPainter, text: str, colour: QColor, base: QPointF, px: float, size: int, *, bold: bool) -> None:
    """``text`` at ``base`` (frame pixels), ``size`` screen pixels high, on a dark backdrop so it
    reads on any frame (a white wall, a sunlit face)."""
    f = QFont(p.font())
    f.setPixelSize(max(8, int(size * px)))
    f.setBold(bold)
    p.setFont(f)
    box = QFontMetricsF(f).tightBoundingRect(text).translated(base).adjusted(-3 * px, -3 * px, 3 * px, 3 * px)
    p.fillRect(box, QColor(*LABEL_BACKDROP))
    p.setPen(colour)
    p.drawText(base, text)
