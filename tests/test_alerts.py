"""Alert hysteresis, cooldown and the interval-event bookkeeping."""
from __future__ import annotations

import pytest

from driver_monitor.config import AlertsConfig
from driver_monitor.monitor.alerts import AlertFilter, EventTracker
from driver_monitor.types import Level

FPS = 30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL


def timeline(segments: list[tuple[float, Level]], end_s: float, fps: int = FPS) -> list[tuple[float, Level]]:
    """Raw levels at ``fps``: segments are (start_s, level), each lasting until the next one."""
    out = []
    for i in range(int(round(end_s * fps))):
        t = i / fps
        lvl = N
        for start, level in segments:
            if t >= start - 1e-9:
                lvl = level
        out.append((t, lvl))
    return out


def run(raw: list[tuple[float, Level]], **cfg) -> list[tuple[float, Level]]:
    f = AlertFilter(AlertsConfig(**{"raise_after_s": 0.2, "clear_after_s": 1.0, "cooldown_s": 5.0, **cfg}))
    return [(t, f.update(lvl, t)) for t, lvl in raw]


def changes(out: list[tuple[float, Level]]) -> list[tuple[float, Level]]:
    """(time, new level) at each change of the filtered level, times rounded to the frame."""
    res, prev = [], N
    for t, lvl in out:
        if lvl != prev:
            res.append((round(t, 3), lvl))
            prev = lvl
    return res


@pytest.mark.parametrize("segments,end_s,cfg,expected", [
    # one noisy warning frame raises nothing
    ([(1.0, W), (1.0 + 1 / FPS, N)], 4.0, {}, []),
    # warning held 0.2 s -> raised exactly 0.2 s after it began; cleared 1.0 s after it stopped
    ([(1.0, W), (2.0, N)], 5.0, {}, [(1.2, W), (3.0, N)]),
    # one noisy clear frame inside a warning does not clear it
    ([(1.0, W), (2.0, N), (2.0 + 1 / FPS, W), (3.0, N)], 6.0, {}, [(1.2, W), (4.0, N)]),
    # straight to critical: raised to critical after the hold, steps down via warning
    ([(1.0, C), (2.0, W), (4.0, N)], 7.0, {}, [(1.2, C), (3.0, W), (5.0, N)]),
    # warning -> critical escalation after its own hold
    ([(1.0, W), (2.0, C), (3.0, N)], 6.0, {}, [(1.2, W), (2.2, C), (4.0, N)]),
    # cooldown: a warning 1 s after clearing is muted until 5 s after the clear
    ([(1.0, W), (2.0, N), (4.0, W)], 10.0, {}, [(1.2, W), (3.0, N), (8.0, W)]),
    # ... but a higher level than the one that cleared goes through at once
    ([(1.0, W), (2.0, N), (4.0, C)], 6.0, {}, [(1.2, W), (3.0, N), (4.2, C)]),
    # after the cooldown the same level may sound again
    ([(1.0, W), (2.0, N), (9.0, W)], 10.0, {}, [(1.2, W), (3.0, N), (9.2, W)]),
    # no hysteresis: every raw change goes straight through
    ([(1.0, W), (2.0, N), (3.0, W)], 4.0, {"raise_after_s": 0.0, "clear_after_s": 0.0, "cooldown_s": 0.0},
     [(1.0, W), (2.0, N), (3.0, W)]),
])
def test_hysteresis_and_cooldown(segments, end_s, cfg, expected):
    assert changes(run(timeline(segments, end_s), **cfg)) == expected


def test_flickering_raw_level_never_raises():
    raw = [(i / FPS, W if i % 2 else N) for i in range(300)]  # warning every other frame for 10 s
    assert all(lvl == N for _, lvl in run(raw))


def test_event_tracker_reports_start_and_peak_on_end():
    tr = EventTracker()
    started = tr.step("microsleep", True, W, 1.0, 30, start_s=0.5, start_frame=15)
    assert [(e.type, e.level, e.start_s, e.end_s, e.start_frame) for e in started] == [("microsleep", W, 0.5, None, 15)]
    assert tr.step("microsleep", True, C, 2.0, 60) == []  # escalation: nothing new to report
    assert tr.step("microsleep", True, W, 2.5, 75) == []
    ended = tr.step("microsleep", False, N, 3.0, 90)
    assert [(e.level, e.start_s, e.end_s, e.end_frame, e.duration_s) for e in ended] == [(C, 0.5, 3.0, 90, 2.5)]
    assert not tr.is_open("microsleep")
    assert tr.step("microsleep", False, N, 3.1, 93) == []


def test_event_tracker_end_all():
    tr = EventTracker()
    tr.start("a", N, 0.0)
    tr.start("b", W, 1.0)
    assert tr.start("a", W, 2.0) is None  # one open event per type
    ended = tr.end_all(5.0, 150, {"ended_by": "end_of_drive"})
    assert sorted((e.type, e.end_s, e.details["ended_by"]) for e in ended) == [
        ("a", 5.0, "end_of_drive"), ("b", 5.0, "end_of_drive")]
    assert tr.open_types() == ()
