"""The dashboard's playback as a pure controller: what the worker does next.

:class:`Playback` holds the replay state (paused, at the end, speed, the frame asked for by a seek
or a paused start, frames still to step, the recording folder) and turns what happens into plans:

* ``apply(commands)``: the requests drained from the worker's queue (:func:`merge_requests`)
  -> a :class:`Plan` (calibrate, stop / start recording, seek, announce the new state);
* ``wants_frame``: whether to read the next frame now, or wait for a request;
* ``on_frame(index, time_s, now)``: a frame was read and analysed -> a
  :class:`FramePlan` (how long to wait before showing it, at the replay speed; announce);
* ``on_end()``: the source has ended -> an :class:`EndPlan` (finish the pipeline, stop or pause).

The worker carries a plan out and reports back what it did (``seeked``, ``recording_started`` /
``recording_stopped``). No Qt, no thread and no clock inside: ``now`` is passed in
(``time.perf_counter()`` in the worker), so tables of commands and outcomes test it exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

SPEEDS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, None)  # None = as fast as possible


@dataclass(frozen=True, slots=True)
class PlaybackState:
    """What the window shows of the replay: ``position`` is the last frame analysed (-1: none
    yet), ``recording`` the folder being recorded to."""

    paused: bool
    at_end: bool
    speed: float | None
    position: int = -1
    recording: str | None = None


@dataclass(frozen=True, slots=True)
class RecordTarget:
    """Record into ``out_dir``; ``video``: an annotated video too."""

    out_dir: str
    video: bool = True


@dataclass(frozen=True, slots=True)
class Commands:
    """The requests of one drain of the queue, merged (:func:`merge_requests`).

    ``paused``: the last play / pause (a toggle before it is overridden by it); ``toggle``: toggles
    after it; ``speed``: every speed asked for, in order; ``seek``: the last seek (steps before it
    are dropped); ``step``: frames to step after it (negative: back); ``record``: each start
    (a :class:`RecordTarget`) or stop (None), in order.
    """

    paused: bool | None = None
    toggle: int = 0
    speed: tuple[float | None, ...] = ()
    seek: int | None = None
    step: int = 0
    calibrate: bool = False
    record: tuple[RecordTarget | None, ...] = ()


def merge_requests(requests: Iterable[tuple]) -> Commands:
    """Merge the worker's queued requests, in the order they came: ``("paused", bool)``,
    ``("toggle",)``, ``("speed", float | None)``, ``("seek", int)``, ``("step", int)``,
    ``("calibrate",)``, ``("record", RecordTarget | None)``."""
    paused, toggle, speed, seek, step, calibrate, record = None, 0, [], None, 0, False, []
    for req in requests:
        kind = req[0]
        if kind == "paused":
            paused, toggle = bool(req[1]), 0
        elif kind == "toggle":
            toggle += 1
        elif kind == "speed":
            speed.append(req[1])
        elif kind == "seek":
            seek, step = int(req[1]), 0
        elif kind == "step":
            step += int(req[1])
        elif kind == "calibrate":
            calibrate = True
        elif kind == "record":
            record.append(req[1])
        else:
            raise ValueError(f"unknown playback request {kind!r}")
    return Commands(paused, toggle, tuple(speed), seek, step, calibrate, tuple(record))


@dataclass(frozen=True, slots=True)
class Seek:
    """Move the source to frame ``index``; ``renew``: seek the source and start a fresh pipeline
    (False when the next frame read is that frame already), then report ``seeked(index)``."""

    index: int
    renew: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do for one batch of requests, in this order: calibrate, stop recording, start
    recording, seek; then emit the state if ``announce``."""

    calibrate: bool = False
    stop_recording: bool = False
    start_recording: RecordTarget | None = None
    seek: Seek | None = None
    announce: bool = False


@dataclass(frozen=True, slots=True)
class FramePlan:
    """Wait ``delay_s`` (replay pacing), show the frame, then emit the state if ``announce``."""

    delay_s: float = 0.0
    announce: bool = False


@dataclass(frozen=True, slots=True)
class EndPlan:
    """The source has ended: close the pipeline's open events (``finish``); ``stop`` the session
    (a live source that is gone) or stay, paused at the end, and emit the state (``announce``)."""

    finish: bool
    stop: bool
    announce: bool


@dataclass
class Pacer:
    """Frames at ``time_s / speed`` of wall time from an anchor; re-anchors when late (processing
    slower than real time does not try to catch up) and after ``reset()``."""

    max_lag_s: float = 0.25
    anchor_wall: float | None = None
    anchor_media: float = 0.0

    def reset(self) -> None:
        self.anchor_wall = None

    def delay(self, media_t: float, speed: float | None, now: float) -> float:
        if speed is None:
            return 0.0
        if self.anchor_wall is None:
            self.anchor_wall, self.anchor_media = now, media_t
            return 0.0
        due = self.anchor_wall + (media_t - self.anchor_media) / speed
        if now - due > self.max_lag_s:
            self.anchor_wall, self.anchor_media = now, media_t
            return 0.0
        return max(0.0, due - now)


class Playback:
    """The replay state of one session and the decisions that follow from it.

    ``live``: a camera or stream (no seeking, stepping back or pacing; its frames are shown as they
    come). ``frame_count``: a file's frames (seeks are clamped to it), None when unknown.
    ``start_paused``: a file shows its first frame, analysed, then waits. (When a live source is
    "camera lost" is the frame loop's to say: session.LostClock.)
    """

    def __init__(self, *, live: bool, frame_count: int | None = None, start_paused: bool = False,
                 speed: float | None = 1.0) -> None:
        self.live = bool(live)
        self.frame_count = frame_count
        self.paused = bool(start_paused) and not self.live
        self.speed = speed
        self.at_end = False
        self.show_one = self.paused  # the frame asked for by a seek or the paused start
        self.steps = 0               # frames still to show, one by one, after it
        self.next_index = 0          # the frame the next read gives
        self.last_index = -1         # the last frame analysed
        self.recording: str | None = None
        self.pacer = Pacer()

    @property
    def state(self) -> PlaybackState:
        return PlaybackState(self.paused, self.at_end, self.speed, self.last_index, self.recording)

    @property
    def wants_frame(self) -> bool:
        """Read the next frame now (playing, or a frame asked for); else wait for a request."""
        return not ((self.paused or self.at_end) and not self.show_one and self.steps == 0)

    # -------------------------------------------------------------- requests

    def apply(self, c: Commands) -> Plan:
        changed = self._apply_play(c)
        stop_recording, start_recording = self._plan_recording(c.record)
        changed = changed or bool(c.record)
        seek = c.seek
        if c.step < 0 and not self.live:
            seek = max(0, self.last_index + c.step)  # a step back is a seek to the frame before
        elif c.step > 0:
            self.steps += c.step
            self.paused, changed = True, True
        plan_seek = None
        if seek is not None and not self.live:
            plan_seek = self._plan_seek(seek)
            self.pacer.reset()
            changed = True
        return Plan(c.calibrate, stop_recording, start_recording, plan_seek, changed)

    def _apply_play(self, c: Commands) -> bool:
        """Play / pause / toggle / speed; True when one was asked for (the pacer re-anchors)."""
        changed = False
        if c.paused is not None and c.paused != self.paused:
            self.paused, changed = c.paused, True
        if c.toggle % 2:
            self.paused, changed = not self.paused, True
        if c.speed:
            self.speed, changed = c.speed[-1], True
        if changed:
            self.pacer.reset()
        return changed

    def _plan_recording(self, record: tuple[RecordTarget | None, ...]) -> tuple[bool, RecordTarget | None]:
        """Any record request ends the current recording; the last one, when a start, begins the next."""
        if not record:
            return False, None
        return self.recording is not None, record[-1]

    def _plan_seek(self, index: int) -> Seek:
        target = max(0, index)
        if self.frame_count:
            target = min(target, self.frame_count - 1)
        return Seek(target, renew=target != self.next_index or self.at_end)

    def seeked(self, index: int) -> None:
        """The source was moved to ``index`` (or already was there): show that frame next."""
        self.next_index, self.at_end, self.show_one = index, False, True

    def recording_started(self, out_dir: str) -> None:
        self.recording = out_dir

    def recording_stopped(self) -> None:
        self.recording = None

    # -------------------------------------------------------------- outcomes of a step

    def on_frame(self, index: int, time_s: float, *, now: float) -> FramePlan:
        """Frame ``index`` (at ``time_s`` in the video) was analysed by ``now``."""
        self.last_index, self.next_index = index, index + 1
        asked = self.show_one or self.steps > 0
        delay = 0.0
        if not self.live and not asked:
            delay = self.pacer.delay(time_s, self.speed, now)
        if not asked:
            return FramePlan(delay, False)
        if self.show_one:
            self.show_one = False  # steps asked for go on from this frame
        else:
            self.steps -= 1
        self.pacer.reset()
        return FramePlan(delay, True)

    def on_end(self) -> EndPlan:
        """The source has no more frames. A file stays paused at its end (a seek back shows a frame)."""
        finish = not self.at_end  # once per pass: the pipeline is renewed by the seek that leaves the end
        if self.live:
            return EndPlan(finish, stop=True, announce=False)
        self.at_end, self.show_one, self.steps, self.paused = True, False, 0, True
        return EndPlan(finish, stop=False, announce=True)
