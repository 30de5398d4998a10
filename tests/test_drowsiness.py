"""Drowsiness rules on synthetic sequences: blinks, closures, microsleep, PERCLOS, yawns."""
from __future__ import annotations

import math

import pytest

from driver_monitor.config import DrowsinessConfig
from driver_monitor.monitor.drowsiness import DrowsinessDetector
from driver_monitor.types import Level

FPS = 30
OPEN, CLOSED, THRESHOLD = 0.30, 0.06, 0.195  # threshold = 0.65 x 0.30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL


def closed_between(*spans: tuple[float, float]):
    """EAR function: closed inside any [a, b) span, open elsewhere."""
    return lambda t: CLOSED if any(a - 1e-9 <= t < b - 1e-9 for a, b in spans) else OPEN


def run(ear_fn, seconds: float, mar_fn=lambda t: 0.05, fps: int = FPS, **cfg):
    """Feed the detector; return (readings, events) with events as (type, level, start, end, reported_at)."""
    det = DrowsinessDetector(DrowsinessConfig(**cfg))
    readings, events = [], []
    n = int(round(seconds * fps))
    for i in range(n):
        t = i / fps
        r, evs = det.update(t, ear_fn(t), mar_fn(t), THRESHOLD, frame=i)
        readings.append(r)
        events += [(e.type, e.level, round(e.start_s, 3), None if e.end_s is None else round(e.end_s, 3), round(t, 3))
                   for e in evs]
    events += [(e.type, e.level, round(e.start_s, 3), round(e.end_s, 3), "finish")
               for e in det.finish(n / fps, n)]
    return readings, events


# a closure's end is confirmed once the eyes stayed open > reopen_min_s (0.1 s): 4 frames later
LATE = 4 / FPS


def at(t: float) -> float:
    return round(t, 3)


@pytest.mark.parametrize("span,expected", [
    # 5 frames closed: a blink, reported once its end is confirmed, end_s at the first open frame
    ((1.0, 1.0 + 5 / FPS), [("blink", N, 1.0, 1.167, at(1.167 + LATE))]),
    # exactly blink_max_s (0.5 s) is still a blink
    ((1.0, 1.5), [("blink", N, 1.0, 1.5, at(1.5 + LATE))]),
    # 16 frames (0.533 s): longer than a blink, but only known when the eyes open: both copies then
    ((1.0, 1.0 + 16 / FPS), [("eyes_closed", N, 1.0, None, at(1.0 + 16 / FPS + LATE)),
                             ("eyes_closed", N, 1.0, 1.533, at(1.0 + 16 / FPS + LATE))]),
    # closed from the first frame: the onset is unknown, so a short closure is no blink
    ((0.0, 0.2), []),
    # 0.6 s: an eyes_closed event (level none), recognised past 0.5 s, back-dated to the onset
    ((1.0, 1.6), [("eyes_closed", N, 1.0, None, 1.533), ("eyes_closed", N, 1.0, 1.6, at(1.6 + LATE))]),
    # 1.5 s: microsleep warning from 1.0 s of closure
    ((1.0, 2.5), [("eyes_closed", N, 1.0, None, 1.533), ("microsleep", W, 1.0, None, 2.0),
                  ("eyes_closed", W, 1.0, 2.5, at(2.5 + LATE)), ("microsleep", W, 1.0, 2.5, at(2.5 + LATE))]),
    # 2.5 s: critical from 2.0 s of closure; ended copies carry the peak level
    ((1.0, 3.5), [("eyes_closed", N, 1.0, None, 1.533), ("microsleep", W, 1.0, None, 2.0),
                  ("eyes_closed", C, 1.0, 3.5, at(3.5 + LATE)), ("microsleep", C, 1.0, 3.5, at(3.5 + LATE))]),
    # closed at the end of the drive: finish() closes it, no blink
    ((4.0, 9.0), [("eyes_closed", N, 4.0, None, 4.533), ("microsleep", W, 4.0, None, 5.0),
                  ("eyes_closed", W, 4.0, 5.5, "finish"), ("microsleep", W, 4.0, 5.5, "finish")]),
    # the drive ends while a reopening awaits confirmation: it ends where the eyes opened
    ((4.0, 5.5 - 2 / FPS), [("eyes_closed", N, 4.0, None, 4.533), ("microsleep", W, 4.0, None, 5.0),
                            ("eyes_closed", W, 4.0, 5.433, "finish"), ("microsleep", W, 4.0, 5.433, "finish")]),
    # one open frame inside a closure is noise: one closure, not two
    ((1.0, 2.0), [("eyes_closed", N, 1.0, None, 1.533), ("microsleep", W, 1.0, None, 2.0)]),
])
def test_closure_events(span, expected):
    ear = closed_between(span)
    if expected and expected[-1][3] is None:  # the flicker case: closed 1.0-3.0 s but open at 1.7 s
        ear = lambda t: OPEN if abs(t - 1.7) < 0.5 / FPS or not 1.0 <= t < 3.0 else CLOSED  # noqa: E731
        expected = expected + [("eyes_closed", C, 1.0, 3.0, at(3.0 + LATE)),
                               ("microsleep", C, 1.0, 3.0, at(3.0 + LATE))]
    readings, events = run(ear, 5.5)
    assert events == expected


def test_closure_level_and_duration_per_frame():
    readings, _ = run(closed_between((1.0, 3.5)), 4.0)
    at = {round(i / FPS, 3): r for i, r in enumerate(readings)}
    assert at[0.5].eyes_closed is False and at[0.5].level == N
    assert at[1.0].eyes_closed and at[1.0].eyes_closed_s == 0.0
    assert at[1.967].level == N and at[1.967].eyes_closed_s == pytest.approx(0.967, abs=1e-3)
    assert at[2.0].level == W and at[2.0].reasons == ("microsleep",)
    assert at[3.0].level == C
    assert at[3.5].eyes_closed is False and at[3.5].level == C  # reopening not yet confirmed
    assert at[3.633].eyes_closed is False and at[3.633].level == N and at[3.633].eyes_closed_s == 0.0


def test_blink_count_and_rate():
    spans = [(t, t + 0.2) for t in range(2, 60, 4)]  # a 0.2 s blink every 4 s: 15 blinks/min
    readings, events = run(closed_between(*spans), 60.0, perclos_window_s=60.0, perclos_min_coverage=0.25)
    assert sum(1 for e in events if e[0] == "blink") == len(spans)
    assert readings[-1].blink_count == len(spans)
    assert readings[-1].blink_rate_per_min == pytest.approx(15.0, rel=0.05)
    assert math.isnan(readings[int(14.5 * FPS)].blink_rate_per_min)  # < 15 s of eyes seen yet


@pytest.mark.parametrize("hidden,closed,blinks", [
    # closed 1.0-1.8 s, eyes unmeasurable 1.2-1.3 s (a hand, extreme yaw): the first part is dropped,
    # the second has no seen onset: neither is a blink
    ((1.2, 1.3), (1.0, 1.8), 0),
    # hidden 1.0-1.3 s, then a short closure starting as the eyes come back: onset unknown, no blink
    ((1.0, 1.3), (1.3, 1.5), 0),
    # hidden earlier, open again, then a real blink: counted
    ((1.0, 1.3), (1.6, 1.8), 1),
])
def test_unmeasurable_eyes_drop_the_closure(hidden, closed, blinks):
    ear = lambda t: None if hidden[0] <= t < hidden[1] else closed_between(closed)(t)  # noqa: E731
    readings, events = run(ear, 3.0)
    assert [e[0] for e in events] == ["blink"] * blinks
    assert readings[-1].blink_count == blinks


def test_unmeasurable_eyes_end_an_open_closure_event():
    ear = lambda t: None if t >= 2.0 else CLOSED  # noqa: E731
    _, events = run(ear, 3.0)
    assert events == [("eyes_closed", N, 0.0, None, 0.533), ("microsleep", W, 0.0, None, 1.0),
                      ("eyes_closed", W, 0.0, 2.0, 2.0), ("microsleep", W, 0.0, 2.0, 2.0)]


@pytest.mark.parametrize("closed_s_per_5s,expected_level", [
    (0.25, N),   # PERCLOS 0.05
    (1.0, W),    # PERCLOS 0.20 >= 0.15
    (2.0, C),    # PERCLOS 0.40 >= 0.30 (these closures are also microsleeps)
])
def test_perclos_value_and_level(closed_s_per_5s, expected_level):
    spans = [(t + 1.0, t + 1.0 + closed_s_per_5s) for t in range(0, 120, 5)]
    readings, _ = run(closed_between(*spans), 120.0)
    last = readings[-1]
    assert last.perclos == pytest.approx(closed_s_per_5s / 5.0, abs=0.01)
    assert readings[int(47 * FPS)].perclos != readings[int(47 * FPS)].perclos  # NaN: < 80 % of 60 s read
    assert not math.isnan(readings[int(49 * FPS)].perclos)
    # the PERCLOS part of the level (microsleeps come and go; take a frame with the eyes open)
    open_frames = [r for r in readings[-5 * FPS:] if not r.eyes_closed]
    assert max(r.level for r in open_frames) == expected_level


def test_perclos_counts_only_time_with_visible_eyes():
    # 30 s of sunglasses (eyes not measurable), then 60 s of eyes closed 1 s in every 5 s
    spans = [(t + 1.0, t + 2.0) for t in range(30, 90, 5)]
    ear = lambda t: None if t < 30.0 else closed_between(*spans)(t)  # noqa: E731
    readings, _ = run(ear, 90.0)
    assert math.isnan(readings[int(77 * FPS)].perclos)  # 47 s of visible eyes < 80 % of 60 s
    assert readings[int(79 * FPS)].perclos == pytest.approx(0.2, abs=0.02)  # not diluted by the hidden 30 s


@pytest.mark.parametrize("wide_s,is_yawn", [(0.5, False), (0.75, False), (0.8, True), (2.5, True)])
def test_yawn_needs_wide_mouth_for_yawn_min_s(wide_s, is_yawn):
    mar = lambda t: 0.8 if 2.0 <= t < 2.0 + wide_s - 1e-9 else 0.2  # noqa: E731
    readings, events = run(lambda t: OPEN, 6.0, mar_fn=mar)
    yawns = [e for e in events if e[0] == "yawn"]
    if is_yawn:
        assert yawns == [("yawn", N, 2.0, None, 2.8), ("yawn", N, 2.0, round(2.0 + wide_s, 3), round(2.0 + wide_s, 3))]
        assert readings[-1].yawn_count == 1
    else:
        assert yawns == [] and readings[-1].yawn_count == 0


def test_three_yawns_in_window_raise_a_warning():
    starts = (5.0, 20.0, 40.0)
    mar = lambda t: 0.9 if any(s <= t < s + 2.0 for s in starts) else 0.1  # noqa: E731
    readings, _ = run(lambda t: OPEN, 60.0, mar_fn=mar, yawn_window_s=300.0)
    at = lambda t: readings[int(round(t * FPS))]  # noqa: E731
    assert at(39.0).level == N and at(39.0).yawn_count == 2
    assert at(40.8).level == W and at(40.8).reasons == ("yawns",) and at(40.8).yawning
    assert at(59.0).level == W  # still within the 300 s window


def test_yawns_leave_the_window():
    starts = (1.0, 5.0, 9.0)
    mar = lambda t: 0.9 if any(s <= t < s + 1.0 for s in starts) else 0.1  # noqa: E731
    readings, _ = run(lambda t: OPEN, 30.0, mar_fn=mar, yawn_window_s=20.0)
    assert readings[int(10 * FPS)].level == W
    assert readings[int(21.5 * FPS)].level == N  # the first yawn (started 1.0 s) left the 20 s window


@pytest.mark.parametrize(("mar_during", "marked"), [(0.8, True), (0.2, False)])
def test_closure_during_a_yawn_is_marked_not_excused(mar_during: float, marked: bool) -> None:
    """Eyes squeezed shut for 2 s while the mouth is yawning-wide: still a microsleep (the driver
    cannot see the road), and the ended events say it happened during a yawn."""
    from driver_monitor.config import DrowsinessConfig
    from driver_monitor.monitor.drowsiness import DrowsinessDetector

    det = DrowsinessDetector(DrowsinessConfig())
    ended = []
    for i in range(120):
        t = i / 30
        closed = 1.0 <= t < 3.0
        _, ev = det.update(t, 0.08 if closed else 0.3, mar_during if 0.9 <= t < 2.5 else 0.1, 0.18, i)
        ended += [e for e in ev if e.end_s is not None and e.type in ("eyes_closed", "microsleep")]
    assert {e.type for e in ended} == {"eyes_closed", "microsleep"}
    assert all(e.level.name == "CRITICAL" for e in ended)
    assert all(bool(e.details.get("during_yawn")) is marked for e in ended)


# ---------------------------------------------------------------------- the small parts


def test_time_window_counts_sums_and_drains_at_the_boundary():
    from driver_monitor.monitor.window import TimeWindow

    w = TimeWindow(10.0, sums=2)
    for t in (0.0, 1.0, 2.0):
        w.add(t, 0.5, 0.25 if t == 1.0 else 0.0)
    w.drain(10.0)  # the entry stamped exactly window_s ago has left
    assert len(w) == 2 and w.totals == [1.0, 0.25] and w.total == 1.0
    w.drain(11.5)
    assert len(w) == 1 and w.totals == [0.5, 0.0]
    w.clear()
    assert len(w) == 0 and w.totals == [0.0, 0.0]
    with pytest.raises(ValueError):
        w.add(12.0, 1.0)


def test_time_window_counting_only_and_floored_at_zero():
    from driver_monitor.monitor.window import TimeWindow

    stamps = TimeWindow(5.0)
    for t in (1.0, 2.0, 3.0):
        stamps.add(t)
    stamps.drain(6.5)
    assert len(stamps) == 2 and stamps.totals == []
    account = TimeWindow(5.0, sums=1, nonnegative=True)
    account.add(0.0, 1.0)
    account.add(1.0, -1.5)  # a correction larger than what was booked
    account.drain(1.0)
    assert account.total == 0.0


def test_closure_tracker_blink_noise_and_unread_lids():
    from driver_monitor.monitor.alerts import EventTracker
    from driver_monitor.monitor.drowsiness import ClosureTracker

    ct = ClosureTracker(DrowsinessConfig(), EventTracker())
    frames = [False] * 3 + [True] * 5 + [False] * 6  # 30 fps: a 5-frame blink
    out = []
    for i, closed in enumerate(frames):
        level, ev = ct.update(i / FPS, closed, i)
        out += ev
        assert level == N
        if i == 8:  # the first open frame: the reopening is not confirmed yet
            assert ct.closure_s(i / FPS) is None and ct.held_s(i / FPS) == pytest.approx(5 / FPS)
    assert [(e.type, e.start_frame, e.end_frame) for e in out] == [("blink", 3, 8)]
    # a long closure whose lids stop being read: dropped, its events ended with the reason
    ct.update(1.0, False, 30)
    out = []
    for i in range(31, 31 + 40):
        out += ct.update(i / FPS, True, i)[1]
    assert ct.closure_s(70 / FPS) == pytest.approx(39 / FPS)
    out += ct.update(71 / FPS, None, 71, unread="head_pose")[1]
    ended = [e for e in out if e.end_s is not None]
    assert {e.type for e in ended} == {"eyes_closed", "microsleep"}
    assert all(e.details == {"ended_by": "head_pose"} for e in ended)
    assert ct.held_s(72 / FPS) == 0.0 and ct.finish() == []


def test_perclos_tracker_counts_read_time_only():
    from driver_monitor.monitor.drowsiness import PerclosTracker

    pt = PerclosTracker(DrowsinessConfig(perclos_window_s=10.0, perclos_min_coverage=0.5))
    for i in range(int(4 * FPS)):  # 4 s read, then 4 s unread: 40 % < 50 % coverage
        perclos, rate, level = pt.update(i / FPS, i % 2 == 0)
    for i in range(int(4 * FPS), int(8 * FPS)):
        perclos, rate, level = pt.update(i / FPS, None)
    assert math.isnan(perclos) and math.isnan(rate) and level == N
    pt.add_blink(8.0)
    for i in range(int(8 * FPS), int(10 * FPS)):  # 2 s more, closed half the frames
        perclos, rate, level = pt.update(i / FPS, i % 2 == 0)
    assert perclos == pytest.approx(0.5, abs=0.02) and level == C
    assert rate == pytest.approx(60.0 / 6.0, rel=0.05)  # one blink in 6 s of read time


def test_yawn_tracker_counts_and_warns_within_the_window():
    from driver_monitor.monitor.alerts import EventTracker
    from driver_monitor.monitor.drowsiness import YawnTracker, mouth_wide

    cfg = DrowsinessConfig(yawns_warning=2, yawn_window_s=20.0)
    yt = YawnTracker(cfg, EventTracker())
    levels, events = {}, []
    for i in range(int(40 * FPS)):
        t = i / FPS
        wide = any(s <= t < s + 1.0 for s in (2.0, 10.0))
        level, ev = yt.update(t, wide, i)
        levels[round(t, 3)] = level
        events += [(e.type, round(e.start_s, 3), e.end_s is not None) for e in ev]
    assert events == [("yawn", 2.0, False), ("yawn", 2.0, True), ("yawn", 10.0, False), ("yawn", 10.0, True)]
    assert yt.count == 2 and not yt.yawning
    assert levels[10.0] == N and levels[10.8] == W and levels[21.967] == W and levels[22.0] == N
    assert mouth_wide(cfg, 0.7, None) and not mouth_wide(cfg, 0.5, None) and mouth_wide(cfg, 0.5, 0.2)
    assert not mouth_wide(cfg, None, 0.5) and not mouth_wide(cfg, math.nan, None)


def test_perclos_alarm_clears_when_the_eyes_stay_open():
    """Closed 2 s of every 5 s for a minute, then awake: the PERCLOS alarm (the window still holds
    the old closures) drops after perclos_clear_open_s of open eyes and rises again at a closure."""
    spans = [(t + 1.0, t + 3.0) for t in range(0, 60, 5)] + [(80.0, 80.4)]
    readings, _ = run(closed_between(*spans), 82.0, perclos_clear_open_s=10.0)
    at = lambda t: readings[int(round(t * FPS))]  # noqa: E731
    assert at(58.5).level == C and at(58.5).reasons == ("perclos",)   # eyes open, alarm still up
    assert at(62.9).level == C                  # open since 58 s: not yet perclos_clear_open_s
    assert at(68.5).level == N and at(68.5).perclos >= 0.3   # awake 10 s: cleared, PERCLOS still high
    assert at(80.2).level >= W and "perclos" in at(80.2).reasons  # a new closure: raised again


@pytest.mark.parametrize("squeezed", [False, True])
def test_squeezed_closures_do_not_count_for_perclos(squeezed):
    """The eyes squeezed shut 2 s of every 10 s (laughing, crying): the closures count as closures,
    not for PERCLOS."""
    from driver_monitor.monitor.drowsiness import DrowsinessDetector

    det = DrowsinessDetector(DrowsinessConfig())
    spans = [(t + 1.0, t + 3.0) for t in range(0, 70, 10)]
    readings = []
    for i in range(int(70 * FPS)):
        t = i / FPS
        closed = any(a <= t < b for a, b in spans)
        r, _ = det.update(t, 0.1 if closed else 0.3, 0.0, 0.2, i, squeezed=squeezed and closed)
        readings.append(r)
    assert readings[-1].perclos == pytest.approx(0.0 if squeezed else 0.2, abs=0.02)
    assert max(r.level for r in readings) == C  # 2 s closures are microsleeps either way
    perclos_raised = any("perclos" in r.reasons for r in readings)
    assert perclos_raised != squeezed
