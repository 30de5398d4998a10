"""Pictures of a drive's alerts: the annotated frame at each alert's peak, small, in the drive folder.

For every event that ends at ``warning`` or above, and every phone use (a violation in itself,
whatever level the distraction rules gave it), ``events/NNN.jpg`` (NNN: the event's line in
events.jsonl, from 001) holds the frame where the event was worst, with the overlays of
:func:`driver_monitor.annotate.annotate`, shrunk to ``WIDTH`` pixels wide; ``events/pictures.jsonl``
says, per picture, which line it belongs to (type, level and start, so a reader can check the match)
and the time of the frame shown. The fleet report embeds them, so it needs only the drive folder.

Cost: per frame, one comparison per open event (the frame itself is only referenced); one JPEG is
encoded per alert, when it ends.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2

from .annotate import annotate
from .errors import OutputError
from .types import Event, FrameResult, Level

WIDTH = 320
JPEG_QUALITY = 80
MIN_LEVEL = Level.WARNING
ALWAYS = ("phone_use",)  # pictured at any level
FOLDER = "events"
INDEX = "pictures.jsonl"

# which of the state's levels follows an event of this type (others: the overall level)
_LEVEL_OF = {"drowsiness": "drowsiness", "microsleep": "drowsiness", "eyes_closed": "drowsiness",
             "distraction": "distraction", "glance": "distraction", "time_sharing": "distraction",
             "phone_use": "distraction"}


def picture_name(line: int) -> str:
    """The picture of events.jsonl's line ``line`` (from 1)."""
    return f"{line:03d}.jpg"


def peak_key(type_: str, result: FrameResult) -> tuple[int, float]:
    """How bad the frame is for an event of this type: its level, then how far it has gone (closure
    or glance length, mouth opening, phone score); the frame with the highest key is the picture."""
    st = result.state
    which = _LEVEL_OF.get(type_)
    level = int(getattr(st, which) if which else st.level)
    if type_ in ("eyes_closed", "microsleep"):
        amount = st.eyes_closed_s
    elif type_ in ("glance", "distraction", "time_sharing"):
        amount = st.off_road_s
    elif type_ == "yawn":
        amount = result.smoothed.mar if result.smoothed is not None else 0.0
    elif type_ == "phone_use":
        amount = result.phone_score or 0.0
    else:
        amount = 0.0  # the first frame at the event's highest level
    return level, float(amount) if amount == amount else 0.0


def encode(result: FrameResult, width: int = WIDTH, quality: int = JPEG_QUALITY) -> bytes:
    """The annotated frame, ``width`` pixels wide, as JPEG bytes."""
    img = annotate(result)
    h, w = img.shape[:2]
    if w > width:
        img = cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise OutputError("OpenCV could not encode an event picture as JPEG")
    return buf.tobytes()


class EventPictures:
    """Follows the open events frame by frame and writes a picture for each alert when it ends."""

    def __init__(self, out_dir: str | Path) -> None:
        self.folder = Path(out_dir) / FOLDER
        self._peak: dict[str, tuple[tuple[int, float], FrameResult]] = {}
        self.written = 0
        self.error: str | None = None  # why pictures stopped (the results go on without them)
        self._last: FrameResult | None = None
        try:
            self._clear()
        except OSError as exc:
            self.error = f"old pictures in {str(self.folder)!r} cannot be removed ({exc.strerror or exc})"

    def _clear(self) -> None:
        """Remove the pictures of an earlier run of this folder (they would match other lines)."""
        if not self.folder.is_dir():
            return
        for p in self.folder.iterdir():
            if p.name == INDEX or re.fullmatch(r"\d{3,}\.jpg", p.name):
                p.unlink()

    def update(self, result: FrameResult, ended: list[tuple[int, Event]]) -> None:
        """One frame: ``ended`` are the (events.jsonl line, event) written for it."""
        for line, event in ended:
            self.end(line, event, result)
        for event in result.events:
            if event.end_s is None:
                self._peak[event.type] = (peak_key(event.type, result), result)
        for type_, (key, _) in self._peak.items():
            new = peak_key(type_, result)
            if new > key:
                self._peak[type_] = (new, result)
        self._last = result

    def close(self, ended: list[tuple[int, Event]]) -> None:
        """The events ended at the end of the drive (after the last frame)."""
        for line, event in ended:
            self.end(line, event, self._last)
        self._peak.clear()
        self._last = None

    def end(self, line: int, event: Event, last: FrameResult | None) -> None:
        """An event written at ``line``: its picture when it reached ``MIN_LEVEL`` or is one of
        ``ALWAYS`` (the frame ``last`` when no frame of it was seen open)."""
        peak = self._peak.pop(event.type, None)
        result = peak[1] if peak is not None else last
        if (event.level < MIN_LEVEL and event.type not in ALWAYS) or result is None or result.frame is None \
                or self.error is not None:
            return
        try:
            self.folder.mkdir(exist_ok=True)
            (self.folder / picture_name(line)).write_bytes(encode(result))
            entry: dict[str, Any] = {"line": line, "file": picture_name(line), "type": event.type,
                                     "level": str(event.level), "start_s": round(event.start_s, 3),
                                     "peak_s": round(result.time_s, 3), "peak_frame": result.index}
            with open(self.folder / INDEX, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
        except (OSError, OutputError) as exc:
            # a picture is not worth the drive's results: note why, write no more pictures, go on
            self.error = (f"the picture of events.jsonl line {line} could not be written in {str(self.folder)!r} "
                          f"({getattr(exc, 'strerror', None) or exc}); later alerts have no picture")
            return
        self.written += 1
