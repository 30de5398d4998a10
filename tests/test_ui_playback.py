"""The dashboard's playback controller, without Qt: tables of requests and step outcomes.

``FileReplay`` plays the worker's part for a file of ``n`` frames (frame i at i / 30 s): it
carries out each plan (a seek moves its position), reads the next frame when the controller
wants one and reports it, or the end; ``shown`` lists the frames analysed and shown, in order.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from driver_monitor.ui.playback import (Commands, EndPlan, FramePlan, Pacer, Plan, Playback, PlaybackState,
                                        RecordTarget, Seek, merge_requests)

A, B = RecordTarget("/rec/a"), RecordTarget("/rec/b", video=False)


class FileReplay:
    def __init__(self, n: int = 10, *, start_paused: bool = True, speed: float | None = None) -> None:
        self.n = n
        self.ctl = Playback(live=False, frame_count=n, start_paused=start_paused, speed=speed)
        self.pos = 0  # the frame the source gives next
        self.shown: list[int] = []
        self.renewals = 0
        self.finishes = 0
        self.plans: list[Plan] = []

    def tick(self, *requests: tuple) -> bool:
        """One turn of the worker's loop; False when it would wait for a request."""
        plan = self.ctl.apply(merge_requests(requests))
        self.plans.append(plan)
        if plan.seek is not None:
            if plan.seek.renew:
                self.pos = plan.seek.index
                self.renewals += 1
            self.ctl.seeked(plan.seek.index)
        if not self.ctl.wants_frame:
            return False
        if self.pos >= self.n:
            self.finishes += self.ctl.on_end().finish
            return True
        i, self.pos = self.pos, self.pos + 1
        self.ctl.on_frame(i, i / 30, now=0.0)
        self.shown.append(i)
        return True

    def run(self, *requests: tuple, limit: int = 200) -> "FileReplay":
        """The requests in one drain, then turns until it waits."""
        busy = self.tick(*requests)
        for _ in range(limit):
            if not busy:
                return self
            busy = self.tick()
        raise AssertionError("the replay never came to rest")


# -------------------------------------------------------------------------- requests


@pytest.mark.parametrize("requests, expect", [
    ([], Commands()),
    ([("paused", True)], Commands(paused=True)),
    ([("toggle",), ("toggle",), ("toggle",)], Commands(toggle=3)),
    ([("toggle",), ("paused", False)], Commands(paused=False)),           # a later play / pause wins
    ([("paused", True), ("toggle",)], Commands(paused=True, toggle=1)),   # a later toggle applies after it
    ([("speed", 2.0), ("speed", None)], Commands(speed=(2.0, None))),
    ([("step", 2), ("step", 3)], Commands(step=5)),
    ([("step", 2), ("seek", 40), ("step", 1)], Commands(seek=40, step=1)),  # steps before a seek are dropped
    ([("seek", 40), ("seek", 7)], Commands(seek=7)),
    ([("calibrate",), ("calibrate",)], Commands(calibrate=True)),
    ([("record", A), ("record", None)], Commands(record=(A, None))),
])
def test_merge_requests(requests, expect):
    assert merge_requests(requests) == expect


def test_an_unknown_request_is_refused():
    with pytest.raises(ValueError, match="unknown playback request 'rewind'"):
        merge_requests([("rewind",)])


# -------------------------------------------------------------------------- plans for requests


@pytest.mark.parametrize("start, commands, plan, state", [
    # play / pause / toggle / speed: announced, nothing else to do
    (dict(start_paused=True), Commands(paused=False), Plan(announce=True), (False, 1.0)),
    (dict(start_paused=True), Commands(paused=True), Plan(), (True, 1.0)),       # no change: not announced
    (dict(), Commands(toggle=1), Plan(announce=True), (True, 1.0)),
    (dict(), Commands(toggle=2), Plan(), (False, 1.0)),
    (dict(), Commands(paused=True, toggle=1), Plan(announce=True), (False, 1.0)),
    (dict(), Commands(speed=(4.0, None)), Plan(announce=True), (False, None)),
    (dict(), Commands(calibrate=True), Plan(calibrate=True), (False, 1.0)),
    # a step forward pauses; a step back is a seek to the frame before the last one shown
    (dict(), Commands(step=3), Plan(announce=True), (True, 1.0)),
    (dict(), Commands(step=-1), Plan(seek=Seek(0, renew=False), announce=True), (False, 1.0)),
    # seeks are clamped to the file; the frame the next read gives is not sought again
    (dict(), Commands(seek=40), Plan(seek=Seek(40, renew=True), announce=True), (False, 1.0)),
    (dict(), Commands(seek=-5), Plan(seek=Seek(0, renew=False), announce=True), (False, 1.0)),
    (dict(), Commands(seek=10_000), Plan(seek=Seek(89, renew=True), announce=True), (False, 1.0)),
    (dict(frame_count=None), Commands(seek=10_000), Plan(seek=Seek(10_000, renew=True), announce=True),
     (False, 1.0)),
    # a live source cannot seek or step back
    (dict(live=True), Commands(seek=5, step=-1), Plan(), (False, 1.0)),
    (dict(live=True, start_paused=True), Commands(), Plan(), (False, 1.0)),      # never starts paused
    # recording: any request ends the current one; the last one, when a start, begins the next
    (dict(), Commands(record=(A,)), Plan(start_recording=A, announce=True), (False, 1.0)),
    (dict(), Commands(record=(A, B)), Plan(start_recording=B, announce=True), (False, 1.0)),
    (dict(), Commands(record=(None,)), Plan(announce=True), (False, 1.0)),
    (dict(recording="/rec/x"), Commands(record=(None,)), Plan(stop_recording=True, announce=True), (False, 1.0)),
    (dict(recording="/rec/x"), Commands(record=(A,)), Plan(stop_recording=True, start_recording=A, announce=True),
     (False, 1.0)),
    (dict(recording="/rec/x"), Commands(record=(A, None)), Plan(stop_recording=True, announce=True), (False, 1.0)),
])
def test_plan_for_requests(start, commands, plan, state):
    start = dict(start)
    recording = start.pop("recording", None)
    ctl = Playback(**{"live": False, "frame_count": 90, **start})
    if recording:
        ctl.recording_started(recording)
    assert ctl.apply(commands) == plan
    assert (ctl.state.paused, ctl.state.speed) == state


def test_recording_is_in_the_state_the_worker_reports():
    ctl = Playback(live=True)
    ctl.recording_started("/rec/a")
    assert ctl.state == PlaybackState(paused=False, at_end=False, speed=1.0, position=-1, recording="/rec/a")
    ctl.recording_stopped()
    assert ctl.state.recording is None


# -------------------------------------------------------------------------- a file, step by step


@pytest.mark.parametrize("script, shown, state", [
    # the paused start shows frame 0 and its results, then waits
    ([()], [0], (True, False, 0)),
    # a step shows n more frames, from the one shown
    ([(), (("step", 3),)], [0, 1, 2, 3], (True, False, 3)),
    # steps asked for before the first frame came go on from it
    ([(("step", 5),)], [0, 1, 2, 3, 4, 5], (True, False, 5)),
    # play runs to the end and pauses there
    ([(), (("toggle",),)], list(range(10)), (True, True, 9)),
    # a seek shows the frame asked for, paused; a step back the frame before the last one shown
    ([(), (("seek", 6),), (("step", -1),)], [0, 6, 5], (True, False, 5)),
    # past the end: the last frame
    ([(), (("seek", 10_000),)], [0, 9], (True, False, 9)),
    # at the end a seek back shows a frame, still paused
    ([(), (("toggle",),), (("seek", 3),)], list(range(10)) + [3], (True, False, 3)),
    # at the end play alone does not start over (the window seeks to 0 and plays)
    ([(), (("toggle",),), (("toggle",),)], list(range(10)), (False, True, 9)),
    ([(), (("toggle",),), (("seek", 0), ("paused", False))], list(range(10)) * 2, (True, True, 9)),
    # a step at the end shows nothing and stays at the end
    ([(), (("toggle",),), (("step", 1),)], list(range(10)), (True, True, 9)),
])
def test_file_replay(script, shown, state):
    replay = FileReplay(10)
    for requests in script:
        replay.run(*requests)
    assert replay.shown == shown
    st = replay.ctl.state
    assert (st.paused, st.at_end, st.position) == state


def test_a_started_file_plays_to_its_end_once_and_finishes_its_pipeline_once():
    replay = FileReplay(5, start_paused=False).run()
    assert replay.shown == [0, 1, 2, 3, 4] and replay.ctl.state.at_end and replay.finishes == 1
    replay.run(("step", 2))
    assert replay.finishes == 1  # the end again (a step): the pipeline was finished already
    replay.run(("seek", 0), ("paused", False))
    assert replay.shown == [0, 1, 2, 3, 4] * 2 and replay.finishes == 2 and replay.renewals == 1


@pytest.mark.parametrize("seek, renewals", [(1, 0), (4, 1), (0, 1)])
def test_a_seek_renews_the_pipeline_unless_the_frame_is_next_anyway(seek, renewals):
    replay = FileReplay(10).run()  # frame 0 shown, frame 1 next
    replay.run(("seek", seek))
    assert replay.shown == [0, seek] and replay.renewals == renewals


def test_a_seek_that_fails_changes_nothing():
    ctl = Playback(live=False, frame_count=10, start_paused=True)
    ctl.on_frame(0, 0.0, now=0.0)
    plan = ctl.apply(Commands(seek=5))
    assert plan.seek == Seek(5, renew=True)
    # the worker could not move the source, so it does not report seeked(5)
    assert not ctl.wants_frame and ctl.state.position == 0


def test_the_end_of_a_live_source_stops_the_session():
    ctl = Playback(live=True)
    assert ctl.on_end() == EndPlan(finish=True, stop=True, announce=False)


# -------------------------------------------------------------------------- pacing


@pytest.mark.parametrize("speed, frames, delays", [
    # (time_s in the video, now when analysed) -> the wait before showing it
    (1.0, [(0.0, 10.0), (1 / 30, 10.01), (2 / 30, 10.02)], [0.0, 1 / 30 - 0.01, 2 / 30 - 0.02]),
    (2.0, [(0.0, 10.0), (1.0, 10.1)], [0.0, 0.4]),
    (0.25, [(0.0, 10.0), (0.1, 10.0)], [0.0, 0.4]),
    (None, [(0.0, 10.0), (1.0, 10.0)], [0.0, 0.0]),                   # as fast as possible
    (1.0, [(0.0, 10.0), (0.1, 10.5), (0.2, 10.55)], [0.0, 0.0, 0.05]),  # late by > 0.25 s: re-anchored
])
def test_pacer(speed, frames, delays):
    pacer = Pacer()
    got = [pacer.delay(t, speed, now) for t, now in frames]
    assert got == pytest.approx(delays)


def test_playing_frames_are_paced_and_asked_for_frames_are_not():
    ctl = Playback(live=False, frame_count=90, start_paused=True, speed=1.0)
    assert ctl.on_frame(0, 0.0, now=5.0) == FramePlan(0.0, announce=True)  # the paused start
    ctl.apply(Commands(step=1))
    assert ctl.on_frame(1, 1 / 30, now=5.0) == FramePlan(0.0, announce=True)  # a step
    ctl.apply(Commands(paused=False))
    assert ctl.on_frame(2, 2 / 30, now=5.0) == FramePlan(0.0)  # anchors the clock
    assert ctl.on_frame(3, 3 / 30, now=5.0).delay_s == pytest.approx(1 / 30)
    ctl.apply(Commands(speed=(2.0,)))  # a new speed re-anchors
    assert ctl.on_frame(4, 4 / 30, now=5.1) == FramePlan(0.0)
    assert ctl.on_frame(5, 5 / 30, now=5.1).delay_s == pytest.approx(1 / 60)


def test_live_frames_are_never_paced():
    ctl = Playback(live=True, speed=0.25)
    assert [ctl.on_frame(i, i / 30, now=1.0).delay_s for i in range(3)] == [0.0, 0.0, 0.0]


def test_the_controller_needs_no_qt():
    code = ("import sys, driver_monitor.ui.playback; "
            "print(sorted(m for m in sys.modules if m.startswith(('PyQt', 'pyqtgraph'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
