"""Distraction rules: head turns (pitch downwards only) and eyes-only glances relative to the
reference pose, judged from the first frame; hysteresis; a lost face after looking away; long
distraction and attention time-sharing."""
from __future__ import annotations

import math

import pytest

from driver_monitor.config import CalibrationConfig, DistractionConfig
from driver_monitor.monitor.calibration import Calibration
from driver_monitor.monitor.distraction import DistractionDetector, learning_gate, pose_limits
from driver_monitor.types import Level, Signals

FPS = 30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL
LEARNED = Calibration(open_ear=0.3, calibrated=True)       # the driver's pose learned: 0 / 0
UNLEARNED = Calibration(open_ear=0.3)                       # the dashboard mount's 0 / 0, wider limits
DASHBOARD = CalibrationConfig(mount="dashboard")


def sig(yaw: float = 0.0, pitch: float = 0.0, gx: float = 0.0, gy: float = 0.0, eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=0.3, ear_right=0.3, ear=0.3, mar=0.05, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=gx, gaze_y=gy, eyes_visible=eyes_visible)


def glance(away: Signals | None, start: float, stop: float, home: Signals | None = None):
    home = home or sig()
    return lambda t: away if start - 1e-9 <= t < stop - 1e-9 else home


def run(fn, seconds: float, cal: Calibration = LEARNED, fps: int = FPS, ccfg: CalibrationConfig | None = None,
        asleep=lambda t: False, camera=lambda t: True, **cfg):
    dcfg = DistractionConfig(**cfg)
    lim = pose_limits(dcfg, ccfg or DASHBOARD, cal)
    det = DistractionDetector(dcfg)
    out, events = [], []
    for i in range(int(round(seconds * fps))):
        t = i / fps
        r, ev = det.update(t, fn(t), lim, asleep=asleep(t), camera_ok=camera(t), frame=i)
        out.append((round(t, 3), r))
        events += ev
    return out, events


def first_time(readings, pred):
    return next((t for t, r in readings if pred(r)), None)


def test_wider_limits_around_the_mount_until_the_pose_is_learned():
    d, c = DistractionConfig(), DASHBOARD
    learned = pose_limits(d, c, LEARNED)
    assert (learned.yaw_deg, learned.pitch_down_deg, learned.pitch_up_deg) == (23.0, 18.0, math.inf)
    early = pose_limits(d, c, UNLEARNED)
    assert (early.yaw_deg, early.pitch_down_deg) == (28.9, 25.7)  # openpilot's relaxed yaw, pre-calibration pitch
    assert early.lids_pitch_deg == learned.lids_pitch_deg == 18.0
    assert learning_gate(d, c) == (23.0 + 15.0, 18.0 + 8.0)


@pytest.mark.parametrize("away,reason", [
    (sig(yaw=30.0), "head"),          # owl: head turned to the driver's left
    (sig(yaw=-30.0), "head"),         # ... or right
    (sig(pitch=-25.0), "head"),       # looking down at a phone
    (sig(pitch=-25.0, gy=-0.3), "head"),  # ... with the eyes turned up: pose first
    (sig(gx=0.8), "gaze"),            # lizard: eyes only
    (sig(gx=0.5, gy=0.5), "gaze+eyes_down"),  # radial offset 0.71 > 0.6, the eyes 45 deg down
    (sig(yaw=30.0, gy=0.9), "head+gaze"),  # the head already off: the eyes add no reason
    (sig(gy=0.25), "eyes_down"),      # the eyes alone 22.5 deg down (gaze_pitch_gain_deg 90)
    (sig(pitch=-12.0, gy=0.1), "eyes_down"),  # head 12 + eyes 9 deg down: the line of sight 21 deg
])
def test_off_road_glance_warns_at_3_5_s_and_critical_at_6_s(away, reason):
    readings, events = run(glance(away, 1.0, 9.0), 10.0)
    # the hysteresis confirms the glance after the filter's time constant, timed from its onset
    assert first_time(readings, lambda r: r.off_road) == pytest.approx(1.267, abs=0.04)
    assert first_time(readings, lambda r: r.level == W) == 4.5  # 1.0 + ADDW 3.5 s
    assert first_time(readings, lambda r: r.level == C) == 7.0  # 1.0 + 6 s
    assert dict(readings)[5.0].reason == reason
    assert dict(readings)[5.0].off_road_s == pytest.approx(4.0)
    assert dict(readings)[9.5].off_road is False and dict(readings)[9.5].level == N
    g = [e for e in events if e.type == "glance"]
    assert [(e.start_s, e.end_s) for e in g] == [(1.0, None), (1.0, 9.0)]  # onset to the first frame back
    assert g[-1].level == C and g[-1].details["reason"] == reason


@pytest.mark.parametrize("away,why", [
    (sig(yaw=20.0), "within the 23 deg yaw limit"),
    (sig(pitch=-15.0), "within the 18 deg pitch-down limit"),
    (sig(pitch=30.0), "looking up is never off road by default (openpilot)"),
    (sig(gx=0.4, gy=0.1), "gaze 0.41 within 0.6, the line of sight 9 deg down"),
    (sig(pitch=10.0, gy=0.3), "chin 10 deg up, the eyes 27 deg down: 17 deg down, within 18"),
])
def test_within_limits_is_on_road(away, why):
    readings, _ = run(glance(away, 1.0, 9.0), 10.0)
    assert all(not r.off_road for _, r in readings), why


def test_upward_limit_when_configured():
    readings, _ = run(glance(sig(pitch=30.0), 1.0, 9.0), 10.0, pitch_up_limit_deg=25.0)
    assert first_time(readings, lambda r: r.level == W) == 4.5


def test_far_turn_with_hidden_eyes_is_off_road():
    # beyond ~40 deg the eyes cannot be measured; the head still says where the driver looks
    readings, _ = run(glance(sig(yaw=55.0, eyes_visible=False), 1.0, 9.0), 10.0)
    assert first_time(readings, lambda r: r.level == W) == 4.5


@pytest.mark.parametrize("away,judged", [
    (sig(yaw=46.0), True),      # a 46-deg head turn 2.5 s into the drive
    (sig(pitch=-30.0), True),   # a look down at food
    (sig(yaw=26.0), False),     # 26 deg: within the relaxed yaw limit (maybe an off-axis camera)
    (sig(gx=0.9), False),       # eyes only: the neutral gaze is not known yet
])
def test_judged_from_the_first_frame_against_the_mount(away, judged):
    readings, _ = run(glance(away, 2.5, 7.0), 8.0, cal=UNLEARNED)
    warned = first_time(readings, lambda r: r.level == W)
    assert warned == (6.0 if judged else None)  # 2.5 + 3.5 s


def test_off_axis_mount_is_the_road():
    # a mirror-mounted camera: looking at the road is yaw +30, pitch -12 to the camera
    cal = Calibration(open_ear=0.3, neutral_yaw_deg=30.0, neutral_pitch_deg=-12.0, calibrated=True)
    readings, _ = run(lambda t: sig(yaw=30.0, pitch=-12.0), 6.0, cal=cal)
    assert all(not r.off_road for _, r in readings)
    readings, _ = run(glance(sig(yaw=0.0, pitch=-12.0), 1.0, 6.0, home=sig(yaw=30.0, pitch=-12.0)), 7.0, cal=cal)
    assert first_time(readings, lambda r: r.level == W) == 4.5  # 30 deg from the road: a glance


def test_one_frame_neither_starts_nor_ends_a_glance():
    away = sig(yaw=40.0)
    # one on-road frame every second inside a 6 s glance: still one glance
    fn = lambda t: sig() if (1.0 <= t < 7.0 and abs(t % 1.0 - 0.5) < 0.5 / FPS) else (  # noqa: E731
        away if 1.0 <= t < 7.0 else sig())
    readings, events = run(fn, 9.0)
    assert first_time(readings, lambda r: r.level == W) == 4.5
    assert len([e for e in events if e.type == "glance" and e.end_s is not None]) == 1
    # one off-road frame every second: no glance at all
    fn = lambda t: away if abs(t % 1.0 - 0.5) < 0.5 / FPS else sig()  # noqa: E731
    readings, events = run(fn, 9.0)
    assert not any(r.off_road for _, r in readings) and not events


def test_short_glances_do_not_make_a_long_one():
    # 3 s away, 0.5 s back on the road, 3 s away: never 3.5 s in one glance
    fn = lambda t: sig(yaw=35.0) if (1.0 <= t < 4.0 or 4.5 <= t < 7.5) else sig()  # noqa: E731
    readings, events = run(fn, 9.0)
    assert all(not (set(r.reasons) & {"long_glance"}) for _, r in readings)
    assert len([e for e in events if e.type == "glance" and e.end_s is not None]) == 2


def test_attention_time_sharing_warns_at_10_s_within_30_s():
    # 2.5 s glances with 1 s back on the road: 10 s off road after the fourth glance
    fn = lambda t: sig(yaw=35.0) if (t % 3.5) < 2.5 else sig()  # noqa: E731
    readings, events = run(fn, 20.0)
    warned = first_time(readings, lambda r: "time_sharing" in r.reasons)
    assert warned == pytest.approx(3 * 3.5 + 2.5, abs=0.3)  # end of the fourth glance
    assert dict(readings)[round(warned, 3)].level == W
    assert "long_glance" not in {x for _, r in readings for x in r.reasons}
    assert [e.type for e in events if e.end_s is None].count("time_sharing") == 1


def test_two_seconds_on_the_road_reset_time_sharing():
    # 2.5 s glances with 2.2 s back on the road: the account resets after every glance
    fn = lambda t: sig(yaw=35.0) if (t % 4.7) < 2.5 else sig()  # noqa: E731
    readings, _ = run(fn, 40.0)
    assert all(r.level == N for _, r in readings)
    assert max(r.time_sharing_s for _, r in readings) < 3.0  # one glance (+ the filter's tail)


def test_face_lost_after_looking_away_is_maybe_distracted():
    # turned away at 1 s, the mesh loses the face at 2 s, back at 8 s
    fn = lambda t: sig(yaw=45.0) if 1.0 <= t < 2.0 else (None if 2.0 <= t < 8.0 else sig())  # noqa: E731
    readings, _ = run(fn, 10.0)
    assert first_time(readings, lambda r: r.level == W) == 4.5 and first_time(readings, lambda r: r.level == C) == 7.0
    assert dict(readings)[5.0].reason == "face_lost" and dict(readings)[5.0].off_road


def test_face_lost_while_on_the_road_is_not_distraction():
    readings, events = run(glance(None, 1.0, 9.0), 10.0)  # driver_absent is the monitor's business
    assert all(not r.off_road for _, r in readings) and not events


def test_camera_lost_counts_nothing():
    readings, _ = run(lambda t: sig(yaw=45.0) if t < 1.0 else None, 8.0, camera=lambda t: t < 1.0)
    assert all(r.level == N for _, r in readings)


def test_asleep_is_not_a_glance():
    # a nod-off: the head drops but the eyes closed first (judged by the drowsiness rules)
    readings, _ = run(glance(sig(pitch=-30.0), 1.0, 9.0), 10.0, asleep=lambda t: 1.0 <= t < 9.0)
    assert all(not r.off_road for _, r in readings)


def test_gaze_ignored_when_disabled_or_eyes_hidden():
    assert all(not r.off_road for _, r in run(lambda t: sig(gx=0.9), 5.0, use_gaze=False)[0])
    assert all(not r.off_road for _, r in run(lambda t: sig(gx=0.9, eyes_visible=False), 5.0)[0])


@pytest.mark.parametrize("fps", [10, 30])
def test_same_timing_at_10_and_30_fps(fps):
    readings, _ = run(glance(sig(yaw=40.0), 1.0, 8.0), 9.0, fps=fps)
    assert first_time(readings, lambda r: r.level == W) == pytest.approx(4.5, abs=1 / fps + 1e-6)


# ---------------------------------------------------------------------- the small parts


def test_glance_tracker_times_the_glance_from_raw_onset_to_raw_return():
    from driver_monitor.monitor.alerts import EventTracker
    from driver_monitor.monitor.distraction import GlanceTracker

    gt = GlanceTracker(DistractionConfig(), EventTracker())
    booked, events, levels = [], [], {}
    for i in range(int(6 * FPS)):
        t = i / FPS
        reason = ("head" if t < 2.0 else "head+gaze") if 1.0 - 1e-9 <= t < 5.0 - 1e-9 else ""
        b, ev = gt.update(t, 0.0 if i == 0 else 1 / FPS, reason, i)
        events += ev
        if b:
            booked.append((t, b))
        levels[round(t, 3)] = gt.long_glance(t)
    start, end = events
    assert (start.start_s, start.end_s, start.details) == (1.0, None, {"reason": "head"})
    assert end.start_s == 1.0 and end.end_s == pytest.approx(5.0) and end.details == {"reason": "head+gaze"}
    assert end.level == W  # the 4 s glance reached the 3.5 s warning
    # booked when confirmed: its time before confirmation; when ended: minus the filter's tail
    (t_on, before), (t_off, tail) = booked
    assert t_on > 1.0 and before == pytest.approx(t_on - 1.0 - 1 / FPS)
    assert t_off > 5.0 and tail == pytest.approx(-(t_off - 5.0))
    assert levels[4.467] == (pytest.approx(3.467, abs=1e-3), N) and levels[4.5][1] == W
    assert not gt.off and gt.long_glance(6.0) == (0.0, N)


def test_glance_tracker_without_time_constant_follows_the_raw_flag():
    from driver_monitor.monitor.alerts import EventTracker
    from driver_monitor.monitor.distraction import GlanceTracker

    gt = GlanceTracker(DistractionConfig(filter_time_constant_s=0.0), EventTracker())
    assert gt.update(0.0, 0.0, "", 0) == (0.0, [])
    _, ev = gt.update(0.1, 0.1, "head", 1)
    assert gt.off and [e.start_s for e in ev] == [0.1]
    _, ev = gt.update(0.2, 0.1, "", 2)
    assert not gt.off and [e.end_s for e in ev] == [0.2]


def test_time_sharing_account_books_holds_and_resets():
    from driver_monitor.monitor.alerts import EventTracker
    from driver_monitor.monitor.distraction import TimeSharingAccount

    cfg = DistractionConfig(time_sharing_s=2.0, time_sharing_window_s=5.0, time_sharing_reset_s=1.0)
    acc = TimeSharingAccount(cfg, EventTracker())
    acc.book(0.0, 1.5)  # e.g. a glance's time before it was confirmed
    level, ev = acc.update(0.0, 0.0, True)
    assert level == N and acc.seconds == 1.5 and ev == []
    level, ev = acc.update(0.5, 0.5, True)
    assert level == W and acc.seconds == 2.0 and [e.type for e in ev] == ["time_sharing"]
    level, _ = acc.update(1.0, 0.5, False)  # back on the road: the warning holds ...
    assert level == W and acc.seconds == 2.0
    level, ev = acc.update(2.0, 0.5, False)  # ... until the reset time, which empties the account
    assert level == N and acc.seconds == 0.0 and [e.end_s for e in ev] == [2.0]
    acc.book(3.0, 1.0)
    acc.update(3.0, 0.5, True)
    acc.update(8.5, 0.5, True)  # what was booked at 3.0 s has left the 5 s window
    assert acc.seconds == 0.5


@pytest.mark.parametrize("pitch,lowered,off", [
    (-6.0, True, True),     # lids lowered over open eyes, head tipped down: a look down
    (-3.0, True, False),    # lowered lids with the head level: squinting, narrow eyes
    (-6.0, False, False),   # head tipped 6 deg with the lids as usual
])
def test_lowered_lids_over_open_eyes_with_the_head_tipped_down_look_down(pitch, lowered, off):
    dcfg = DistractionConfig()
    lim = pose_limits(dcfg, CalibrationConfig(), LEARNED)
    det = DistractionDetector(dcfg)
    reason = det.off_road_reason(sig(pitch=pitch), lim, eyes_open=True, lids_lowered=lowered)
    assert (reason == "eyes_down") == off


def test_a_look_down_with_the_eyes_is_judged_from_the_first_frame():
    """Before the pose is learned (the mount's pose, the 25.7 deg pre-calibration limit) a head 8
    deg down with the eyes 22 deg further down is off the road from the start."""
    readings, _ = run(glance(sig(pitch=-8.0, gy=0.25), 0.0, 4.5), 6.0, cal=UNLEARNED)
    assert dict(readings)[0.5].off_road and dict(readings)[0.5].reason == "eyes_down"
    assert first_time(readings, lambda r: r.level == W) == 3.5


def test_the_auto_mount_judges_against_the_camera_axis_with_its_range_until_a_pose_is_held():
    auto = CalibrationConfig(mount="auto")
    d = DistractionConfig()
    before = pose_limits(d, auto, UNLEARNED)
    assert (before.ref_yaw_deg, before.yaw_deg, before.pitch_down_deg) == (0.0, 45.0, 18.0)
    held = pose_limits(d, auto, Calibration(open_ear=0.3, neutral_yaw_deg=30.0, neutral_pitch_deg=-12.0,
                                            provisional=True))
    assert (held.ref_yaw_deg, held.yaw_deg, held.pitch_down_deg) == (30.0, 28.9, 25.7)
