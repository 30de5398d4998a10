"""Streaming per-drive output: frames.csv, events.jsonl, summary.json.

Rows are written as they are produced and flushed (every ``output.flush_every`` frames, default
every frame), events as soon as they end, so a crash or Ctrl-C keeps what was analysed. The
summary is written last (``complete: false`` plus the reason when the drive did not finish).

Pure module: no Qt, no MediaPipe, no runtimes.
"""
from __future__ import annotations

import csv
import functools
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .config import Config
from .errors import OutputError
from .types import Event, FrameResult

STAGES: tuple[str, ...] = ("decode", "mesh", "align", "eyes", "engine", "phone", "state", "total")

# frame_row() lists each row's values in this order: a column added, moved or renamed here changes
# there too (tests/test_recording.py reads every column back by name)
BASE_COLUMNS: tuple[str, ...] = (
    "frame", "time_s", "camera_ok", "face_detected", "faces", "status",
    "yaw_deg", "pitch_deg", "roll_deg", "ear", "ear_left", "ear_right", "ear_raw", "mar", "mar_raw",
    "gaze_x", "gaze_y", "eyes_visible", "eye_closed_p", "eyes_closed", "eyes_closed_s", "perclos", "blinks",
    "blink_rate_per_min", "yawning", "yawns", "off_road", "off_road_s", "off_road_reason", "time_sharing_s",
    "drowsiness", "distraction", "alert", "calibrated", "phone_use", "phone_score",
)


def frame_columns(emotion_names: Sequence[str] = (), au_names: Sequence[str] = (),
                  region_names: Sequence[str] = ()) -> list[str]:
    """The header of frames.csv for an engine with these class and AU names (none: no engine) and,
    for a region-attention model, regions: ``vis_<region>`` (probability the region is visible),
    ``att_<region>`` (its attention weight) and ``aus_hidden`` (the AUs whose regions are hidden,
    space-separated)."""
    cols = list(BASE_COLUMNS)
    if emotion_names:
        cols.append("emotion")
        cols += [f"p_{name}" for name in emotion_names]
    cols += [name.lower() for name in au_names]  # AU12 -> au12
    if region_names:
        cols += [f"vis_{name}" for name in region_names] + [f"att_{name}" for name in region_names]
        cols.append("aus_hidden")
    cols += [f"ms_{stage}" for stage in STAGES]
    return cols


@functools.lru_cache(maxsize=None)
def _formatter(decimals: int) -> Callable[[float | None], str]:
    """value -> its text with ``decimals`` decimals; "" for None and NaN."""
    spec = f".{decimals}f"

    def text(value: float | None) -> str:
        if value is None:
            return ""
        v = float(value)
        return "" if v != v else format(v, spec)  # v != v: NaN
    return text


def frame_row(result: FrameResult, emotion_names: Sequence[str], au_names: Sequence[str],
              decimals: int = 4, region_names: Sequence[str] = ()) -> list[Any]:
    """One frames.csv row (strings and ints) for a FrameResult, in :func:`frame_columns` order."""
    s, raw, st = result.smoothed, result.signals, result.state
    n = _formatter(decimals)
    eyes = s is not None and s.eyes_visible
    row: list[Any] = [
        result.index, _formatter(4)(result.time_s), int(result.camera_ok), int(result.face_detected),
        result.faces_count, str(st.status),
        n(s.yaw_deg) if s else "", n(s.pitch_deg) if s else "", n(s.roll_deg) if s else "",
        n(s.ear) if eyes else "", n(s.ear_left) if eyes else "", n(s.ear_right) if eyes else "",
        n(raw.ear) if raw else "", n(s.mar) if s else "", n(raw.mar) if raw else "",
        n(s.gaze_x) if eyes else "", n(s.gaze_y) if eyes else "", int(s.eyes_visible) if s else "",
        n(raw.eye_closed_p) if raw and eyes else "", int(st.eyes_closed) if st.lids_read else "",
        n(st.eyes_closed_s), n(st.perclos), st.blink_count,
        n(st.blink_rate_per_min), int(st.yawning), st.yawn_count, int(st.off_road), n(st.off_road_s),
        st.off_road_reason, n(st.time_sharing_s), str(st.drowsiness), str(st.distraction), str(st.alert),
        int(st.calibrated), int(st.phone_use), n(result.phone_score) if result.phone_score is not None else "",
    ]
    if emotion_names:
        probs = result.emotion_probs or {}
        row.append(result.emotion or "")
        row += [n(probs.get(name)) for name in emotion_names] if probs else [""] * len(emotion_names)
    aus = result.aus or {}
    row += [n(aus.get(name)) for name in au_names] if aus else [""] * len(au_names)
    if region_names:
        vis, att = result.regions or {}, result.region_attention or {}
        row += [n(vis.get(r)) for r in region_names] if vis else [""] * len(region_names)
        row += [n(att.get(r)) for r in region_names] if att else [""] * len(region_names)
        row.append(" ".join(au.lower() for au in result.aus_hidden))
    ms = _formatter(3)
    row += [ms(result.timings_ms.get(stage)) for stage in STAGES]
    return row


RESULT_FILES = ("frames.csv", "events.jsonl", "summary.json")


def existing_results(out_dir: str | os.PathLike) -> list[str]:
    """The result files already in ``out_dir`` (none when it does not exist)."""
    d = Path(out_dir)
    return [name for name in RESULT_FILES if (d / name).exists()]


class ResultWriter:
    """Writes one drive's results into ``out_dir`` as they come.

    frames.csv: one row per frame (header from :func:`frame_columns`).
    events.jsonl: one JSON object per ended event (``type, level, start_s, end_s, ...``).
    summary.json: written first with ``complete: false`` (so a folder whose run died, or whose disk
    filled up, says so), replaced by :meth:`close` with the real summary.

    A write that fails (disk full, no permission) raises :class:`OutputError` with one line; the
    frames.csv rows flushed before are kept whole (a half-written row is cut off) and summary.json
    keeps saying the folder is incomplete.
    """

    def __init__(self, out_dir: str | os.PathLike, cfg: Config | None = None, *,
                 emotion_names: Sequence[str] = (), au_names: Sequence[str] = (),
                 region_names: Sequence[str] = ()) -> None:
        self.out_dir = Path(out_dir)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"output folder {str(self.out_dir)!r} cannot be created ({exc.strerror}); "
                f"pass --out with a writable folder") from None
        self.cfg = cfg or Config()
        self.emotion_names = tuple(emotion_names)
        self.au_names = tuple(au_names)
        self.region_names = tuple(region_names)
        self.columns = frame_columns(self.emotion_names, self.au_names, self.region_names)
        self._decimals = self.cfg.output.decimals
        self._flush_every = self.cfg.output.flush_every
        self.frames_written = 0
        self.events_written = 0  # lines in events.jsonl
        self.event_counts: Counter[str] = Counter()
        self.level_counts: Counter[str] = Counter()
        self._first_t: float | None = None
        self._last_t: float | None = None
        self._closed = False
        self._failed: str | None = None
        self._rows_flushed = 0  # frames.csv rows known to be on disk whole
        # the marker first: a folder that cannot take it is refused before anything is touched
        self._write_summary({"complete": False, "reason": "the analysis is running, or stopped before it "
                                                          "could write its summary"})
        try:
            self._frames_fh = open(self.out_dir / "frames.csv", "w", newline="", encoding="utf-8")
            self._events_fh = open(self.out_dir / "events.jsonl", "w", encoding="utf-8")
            self._csv = csv.writer(self._frames_fh)
            self._csv.writerow(self.columns)
            self._frames_fh.flush()
            self._good_size = self._frames_fh.tell()
        except OSError as exc:
            raise OutputError(
                f"cannot write results into {str(self.out_dir)!r} ({exc.strerror}); "
                f"pass --out with a writable folder") from None

    # ------------------------------------------------------------------ streaming

    def _fail(self, exc: OSError, what: str) -> OutputError:
        """Keep the rows flushed before whole, and say what happened on one line."""
        self._failed = f"{what} failed ({exc.strerror or exc})"
        for fh in (self._frames_fh, self._events_fh):
            try:
                fh.close()
            except OSError:
                pass  # its buffer could not be written either; the file is cut back below
        try:
            os.truncate(self.out_dir / "frames.csv", self._good_size)
        except OSError:
            pass
        self._closed = True
        return OutputError(f"cannot write to {str(self.out_dir)!r}: {self._failed}; the "
                           f"{self._rows_flushed} frames written before are kept and summary.json "
                           f"marks the folder incomplete; free some space or pass --out with another folder")

    def write(self, result: FrameResult) -> list[tuple[int, Event]]:
        """Write a frame's row and the events that ended on it; returns those events with their
        line in events.jsonl (from 1)."""
        if self._closed:
            raise OutputError(f"the results in {str(self.out_dir)!r} are closed; nothing more can be written")
        try:
            self._csv.writerow(frame_row(result, self.emotion_names, self.au_names, self._decimals,
                                         self.region_names))
            self.frames_written += 1
            if self._first_t is None:
                self._first_t = result.time_s
            self._last_t = result.time_s
            if self.frames_written % self._flush_every == 0:
                self._frames_fh.flush()
                self._good_size = self._frames_fh.tell()
                self._rows_flushed = self.frames_written
        except OSError as exc:
            raise self._fail(exc, "writing frames.csv") from None
        return self.write_events(e for e in result.events if e.end_s is not None)

    def write_events(self, events: Iterable[Event]) -> list[tuple[int, Event]]:
        """Append the ended events to events.jsonl; returns them with their line (from 1)."""
        if self._closed:
            return []
        written: list[tuple[int, Event]] = []
        try:
            for event in events:
                if event.end_s is None:
                    continue
                self._events_fh.write(json.dumps(event.to_dict(), sort_keys=False) + "\n")
                self.event_counts[event.type] += 1
                self.level_counts[str(event.level)] += 1
                self.events_written += 1
                written.append((self.events_written, event))
            if written:
                self._events_fh.flush()
        except OSError as exc:
            raise self._fail(exc, "writing events.jsonl") from None
        return written

    # ------------------------------------------------------------------ end

    def _write_summary(self, data: Mapping[str, Any]) -> None:
        tmp = self.out_dir / "summary.json.tmp"
        try:
            tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
            os.replace(tmp, self.out_dir / "summary.json")
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise OutputError(f"cannot write summary.json in {str(self.out_dir)!r} ({exc.strerror or exc}); "
                              f"pass --out with a writable folder that has free space") from None

    def close(self, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Flush and close the streams and write summary.json; returns the summary written. After a
        write error the summary says so (``complete: false``) if it can still be written."""
        if self._closed and self._failed is None:
            return {}
        error: OutputError | None = None
        if not self._closed:
            self._closed = True
            try:
                self._frames_fh.close()
                self._rows_flushed = self.frames_written
            except OSError as exc:
                error = self._fail(exc, "writing frames.csv")
            try:
                self._events_fh.close()
            except OSError as exc:
                error = error or self._fail(exc, "writing events.jsonl")
        duration = 0.0 if self._first_t is None else float(self._last_t - self._first_t)
        out: dict[str, Any] = {
            "frames": self.frames_written if self._failed is None else self._rows_flushed,
            "duration_s": round(duration, 3),
            "events": dict(sorted(self.event_counts.items())),
            "events_by_level": dict(sorted(self.level_counts.items())),
        }
        out.update(summary or {})
        if self._failed is not None:
            out["complete"] = False
            out["reason"] = f"{self._failed}; rows after frame {self._rows_flushed} were lost"
        self._failed = None
        self._write_summary(out)
        if error is not None:
            raise error
        return out

    def __enter__(self) -> "ResultWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close({"complete": False, "reason": "writer closed by an error"} if exc[0] else None)
