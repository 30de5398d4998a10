"""Distraction rules: head turns and eyes-only glances relative to the neutral pose, ADDW timing."""
from __future__ import annotations

import pytest

from driver_monitor.config import DistractionConfig
from driver_monitor.monitor.calibration import Calibration
from driver_monitor.monitor.distraction import DistractionDetector
from driver_monitor.types import Level, Signals

FPS = 30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL
NEUTRAL = Calibration(open_ear=0.3)


def sig(yaw: float = 0.0, pitch: float = 0.0, gx: float = 0.0, gy: float = 0.0, eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=0.3, ear_right=0.3, ear=0.3, mar=0.05, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=gx, gaze_y=gy, eyes_visible=eyes_visible)


def glance(away: Signals, start: float, stop: float):
    return lambda t: away if start - 1e-9 <= t < stop - 1e-9 else sig()


def run(fn, seconds: float, cal: Calibration = NEUTRAL, active=lambda t: True, **cfg):
    det = DistractionDetector(DistractionConfig(**cfg))
    return [(round(i / FPS, 3), det.update(i / FPS, fn(i / FPS), cal, active(i / FPS)))
            for i in range(int(round(seconds * FPS)))]


def first_time(readings, pred):
    return next((t for t, r in readings if pred(r)), None)


@pytest.mark.parametrize("away,reason", [
    (sig(yaw=30.0), "head"),          # owl: head turned to the driver's left
    (sig(yaw=-30.0), "head"),         # ... or right
    (sig(pitch=-25.0), "head"),       # looking down at a phone
    (sig(pitch=20.0), "head"),
    (sig(gx=0.8), "gaze"),            # lizard: eyes only
    (sig(gx=0.5, gy=0.5), "gaze"),    # radial offset 0.71 > 0.6
    (sig(yaw=30.0, gy=0.9), "head+gaze"),
])
def test_off_road_glance_warns_at_3_5_s_and_critical_at_6_s(away, reason):
    readings = run(glance(away, 1.0, 9.0), 10.0)
    assert first_time(readings, lambda r: r.off_road) == 1.0
    assert first_time(readings, lambda r: r.level == W) == 4.5  # 1.0 + ADDW 3.5 s
    assert first_time(readings, lambda r: r.level == C) == 7.0  # 1.0 + 6 s
    assert dict(readings)[5.0].reason == reason
    assert dict(readings)[5.0].off_road_s == pytest.approx(4.0)
    assert dict(readings)[9.0].off_road is False and dict(readings)[9.0].level == N


@pytest.mark.parametrize("away,why", [
    (sig(yaw=20.0), "within the 23 deg yaw limit"),
    (sig(pitch=-15.0), "within the 18 deg pitch limit"),
    (sig(gx=0.4, gy=0.3), "gaze 0.5 within 0.6"),
    (sig(yaw=60.0, eyes_visible=False), None),  # counts: head far away even when eyes are hidden
])
def test_within_limits_is_on_road(away, why):
    readings = run(glance(away, 1.0, 9.0), 10.0)
    if why is None:
        assert first_time(readings, lambda r: r.level == W) == 4.5
    else:
        assert all(not r.off_road for _, r in readings), why


def test_short_glances_do_not_add_up():
    # 3 s away, 0.5 s back on the road, 3 s away: never 3.5 s in one glance
    fn = lambda t: sig(yaw=35.0) if (1.0 <= t < 4.0 or 4.5 <= t < 7.5) else sig()  # noqa: E731
    assert all(r.level == N for _, r in run(fn, 9.0))


def test_limits_are_relative_to_the_neutral_pose():
    # a camera mounted off-axis: the driver's straight-ahead is yaw 15, pitch -10
    cal = Calibration(open_ear=0.3, neutral_yaw_deg=15.0, neutral_pitch_deg=-10.0, neutral_gaze_x=0.3)
    on_road = run(lambda t: sig(yaw=30.0, pitch=-25.0, gx=0.6), 5.0, cal=cal)
    assert all(not r.off_road for _, r in on_road)
    off = run(lambda t: sig(yaw=-10.0), 5.0, cal=cal)  # 25 deg from neutral
    assert all(r.off_road for _, r in off)


def test_gaze_ignored_when_disabled_or_eyes_hidden():
    assert all(not r.off_road for _, r in run(lambda t: sig(gx=0.9), 5.0, use_gaze=False))
    assert all(not r.off_road for _, r in run(lambda t: sig(gx=0.9, eyes_visible=False), 5.0))


@pytest.mark.parametrize("gap", ["no_face", "inactive"])
def test_no_face_or_calibrating_ends_the_glance(gap):
    away = sig(yaw=40.0)
    if gap == "no_face":
        readings = run(lambda t: None if 3.0 <= t < 3.5 else away, 8.0)
    else:
        readings = run(lambda t: away, 8.0, active=lambda t: not (3.0 <= t < 3.5))
    assert dict(readings)[3.2].off_road is False
    assert first_time(readings, lambda r: r.level == W) == 7.0  # timer restarted at 3.5 s
