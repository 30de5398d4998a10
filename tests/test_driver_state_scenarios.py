"""Driver-state scenarios on synthetic drives: head pose before eyelids, distraction from the first
frame, far turns, a lost face after looking away, off-axis cameras, yawns with the engine, the
degraded alert. Each builds the signals a real drive of that kind gives (figures in the comments
are the measured ones the issue reports or the shared clips show) and checks the alerts."""
from __future__ import annotations

import numpy as np
import pytest

from driver_monitor.config import Config, load_config
from driver_monitor.monitor import DriverMonitor
from driver_monitor.monitor.calibration import MOUNTS
from driver_monitor.types import Level, Signals

FPS = 30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL
OPEN = 0.30


def sig(ear: float = OPEN, mar: float = 0.05, yaw: float = 0.0, pitch: float = 0.0, gy: float = 0.0,
        eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=mar, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=0.0, gaze_y=gy, eyes_visible=eyes_visible)


def drive(fn, seconds: float, cfg: Config | None = None, aus=lambda t: None, fps: int = FPS, person=lambda t: None,
          phone=lambda t: None):
    """fn(t) -> Signals | None; person(t): a person in view (the detector's look when no face);
    phone(t): the phone detector's score on that frame (None: it did not run).
    Returns ({t: state}, [ended or started events], {type: first t >= warning})."""
    m = DriverMonitor(cfg or Config())
    states, events = {}, []
    first: dict[str, float] = {}
    n = int(round(seconds * fps))
    for i in range(n):
        t = i / fps
        st, evs = m.update(t, fn(t), frame_index=i, aus=aus(t), person=person(t), phone=phone(t))
        states[round(t, 3)] = st
        events += evs
        for name, lvl in (("drowsiness", st.drowsiness), ("distraction", st.distraction)):
            if lvl >= W and name not in first:
                first[name] = round(t, 3)
    events += m.finish(n / fps, n)
    return states, events, first


def ended(events, *types):
    return [e for e in events if e.end_s is not None and e.type in types]


def settle(seconds: float, fn):
    """A drive that starts with ``seconds`` of attentive driving (the pose gets learned), then fn(t)."""
    return lambda t: sig(ear=OPEN if (t % 4.0) > 0.15 else 0.06) if t < seconds else fn(t - seconds)


# ---------------------------------------------------------------- head pose before eyelids

@pytest.mark.parametrize("pitch,ear,learned", [
    (-22.0, 0.10, True),   # a phone in the hand: 22 deg down, lids cover the eyes (EAR 0.05-0.13)
    (-30.0, 0.07, False),  # food on the lap, from the first second of the drive
    (-48.0, 0.05, True),   # a phone in the lap
    (-35.0, 0.13, False),  # a phone at the ear at night (infrared)
])
def test_looking_down_is_distraction_not_sleep(pitch, ear, learned):
    look = lambda t: sig(ear=ear, pitch=pitch, gy=0.8) if 1.0 <= t < 6.0 else sig()  # noqa: E731
    fn = settle(10.0, look) if learned else look
    t0 = 10.0 if learned else 0.0
    states, events, first = drive(fn, t0 + 8.0)
    assert "drowsiness" not in first
    assert not ended(events, "eyes_closed", "microsleep")
    assert not any(st.eyes_closed for t, st in states.items() if t >= t0)
    assert not any(st.lids_read for t, st in states.items() if t0 + 1.1 <= t < t0 + 6.0)
    limit_down = 18.0 if learned else 26.0
    if -pitch > limit_down:  # off road even before the pose is learned
        assert first["distraction"] == pytest.approx(t0 + 1.0 + 3.5 + 0.2, abs=1.5 / FPS)
    else:  # 22 deg down before learning: the lids are not read, and no alert either way
        assert "distraction" not in first


def test_nod_off_eyes_close_then_head_drops_is_a_microsleep():
    # eyes close at 11.0 s with the head in its pose; 0.7 s later the head drops 35 deg
    def fn(t):
        if t < 11.0:
            return sig()
        return sig(ear=0.06, pitch=-35.0 if t >= 11.7 else 0.0)
    states, events, first = drive(fn, 16.0)
    assert first["drowsiness"] == pytest.approx(12.2, abs=1.5 / FPS)  # 1 s microsleep + 0.2 s raise
    assert states[15.0].drowsiness == C
    assert "distraction" not in first  # asleep, not looking down
    ms = ended(events, "microsleep")
    assert ms and ms[0].start_s == pytest.approx(11.0) and ms[0].level == C


def test_blink_on_the_way_down_is_a_look_down_not_a_nod_off():
    # a blink accompanies the gaze shift: the lids drop 0.1 s before the head
    def fn(t):
        if t < 11.0:
            return sig()
        return sig(ear=0.06, pitch=-35.0 if t >= 11.1 else 0.0, gy=0.8) if t < 17.0 else sig()
    states, events, first = drive(fn, 19.0)
    assert "drowsiness" not in first and not ended(events, "microsleep")
    assert first["distraction"] == pytest.approx(11.1 + 3.5 + 0.2, abs=1.5 / FPS)


def test_head_tilted_back_does_not_read_lids():
    # head_turns.mp4, 10.1-11.9 s: chin up 24-43 deg with the eyes on the camera, EAR 0.16-0.19
    fn = settle(10.0, lambda t: sig(ear=0.17, pitch=35.0) if t < 2.0 else sig())
    states, events, first = drive(fn, 14.0)
    assert not ended(events, "eyes_closed", "microsleep", "blink") or all(
        e.type == "blink" and e.start_s < 10.0 for e in ended(events, "eyes_closed", "microsleep", "blink"))
    assert not any(st.eyes_closed for t, st in states.items() if t >= 10.0)
    assert not first  # looking up is never off road by default


# ---------------------------------------------------------------- off-axis cameras

@pytest.mark.parametrize("mount,seat", [("mirror", "left"), ("mirror", "right"), ("pillar", "left")])
def test_off_axis_camera_eyes_closed_in_the_road_pose_is_a_microsleep(mount, seat):
    yaw, pitch = MOUNTS[mount]
    yaw = -yaw if seat == "right" else yaw
    cfg = load_config(overrides=[f"calibration.mount={mount}", f"calibration.driver_seat={seat}"])
    # the driver looks at the road (30-35 deg to the camera) and falls asleep there at 12 s
    fn = lambda t: sig(ear=0.06 if t >= 12.0 else OPEN, yaw=yaw, pitch=pitch)  # noqa: E731
    states, events, first = drive(fn, 16.0, cfg=cfg)
    assert first["drowsiness"] == pytest.approx(13.2, abs=1.5 / FPS)
    assert "distraction" not in first
    assert states[11.0].calibrated  # the road pose learned meanwhile


def test_off_axis_camera_left_as_dashboard_still_gets_the_microsleep():
    # ir_driver_eyes_closed.avi: the camera sees the driver at yaw 27-28 deg; eyes half open for
    # 1.4 s, closed after; 10 fps; the mount is left at its default
    fn = lambda t: sig(ear=0.25 if t < 1.4 else 0.08, yaw=27.5, pitch=1.0)  # noqa: E731
    states, events, first = drive(fn, 5.7, fps=10)
    assert first["drowsiness"] == pytest.approx(1.4 + 1.0 + 0.2, abs=0.11)
    assert "distraction" not in first


def test_off_axis_camera_beyond_the_relaxed_limit_is_learned_within_seconds():
    # a pillar camera (35 deg) left as "dashboard": off road by the relaxed 28.9 deg limit at
    # first, the pose is learned after 5 s of it (clamped to 15 deg) and the glance ends
    fn = lambda t: sig(ear=0.06 if t % 4.0 < 0.15 else OPEN, yaw=-35.0, pitch=-5.0)  # noqa: E731
    states, events, first = drive(fn, 30.0, cfg=load_config(overrides=["calibration.mount=dashboard"]))
    learned_at = min(t for t, st in states.items() if st.calibrated)
    assert learned_at == pytest.approx(5.0, abs=0.5)
    assert states[learned_at].neutral_yaw_deg == -15.0  # clamped to the dashboard mount's range
    assert not any(st.off_road for t, st in states.items() if t > learned_at + 0.5)
    assert all(st.distraction == N for t, st in states.items() if t > learned_at + 2.0)


def test_off_axis_camera_a_glance_to_the_passenger_side_is_distraction():
    cfg = load_config(overrides=["calibration.mount=mirror"])
    road = MOUNTS["mirror"]
    fn = settle(0.0, lambda t: sig(yaw=road[0], pitch=road[1]) if not 8.0 <= t < 12.0
                else sig(yaw=-15.0, pitch=road[1]))
    _, _, first = drive(fn, 14.0, cfg=cfg)
    assert first["distraction"] == pytest.approx(8.0 + 3.5 + 0.2, abs=1.5 / FPS)


# ---------------------------------------------------------------- distraction from the first frame

@pytest.mark.parametrize("away,at,why", [
    (sig(yaw=-46.0), 2.5, "a 46-deg head turn 2.5 s into the drive"),
    (sig(yaw=55.0, eyes_visible=False), 0.5, "the side window at 55 deg: eyes not visible, still off road"),
    (sig(pitch=-35.0, ear=0.07), 1.0, "food on the lap at the start"),
])
def test_distraction_from_the_first_second(away, at, why):
    fn = lambda t: away if at <= t < at + 4.0 else sig()  # noqa: E731
    _, events, first = drive(fn, at + 6.0)
    assert first.get("distraction") == pytest.approx(at + 3.5 + 0.2, abs=1.5 / FPS), why
    assert "drowsiness" not in first


def test_a_driver_who_looks_away_at_the_start_does_not_become_the_neutral():
    # looks down at the phone (30 deg) for the first 8 s, then drives normally
    fn = lambda t: sig(pitch=-30.0, ear=0.08) if t < 8.0 else sig(pitch=2.0)  # noqa: E731
    states, _, first = drive(fn, 20.0)
    assert first["distraction"] == pytest.approx(3.7, abs=1.5 / FPS)
    assert states[19.0].calibrated and abs(states[19.0].neutral_pitch_deg - 2.0) < 0.5


def test_face_lost_after_turning_away_keeps_the_alert_raised():
    # turned 45 deg from 11 s; the mesh loses the face at 15 s (turned further / dodging the
    # camera); seen again on the road at 19 s
    fn = settle(10.0, lambda t: sig(yaw=45.0) if 1.0 <= t < 5.0 else (None if 5.0 <= t < 9.0 else sig()))
    states, events, first = drive(fn, 22.0)
    assert first["distraction"] == pytest.approx(14.7, abs=1.5 / FPS)
    assert all(states[round(t, 3)].distraction >= W for t in np.arange(14.8, 19.0, 0.1))
    assert states[17.5].distraction == C  # 11 + 6 s + 0.2 s: still judged through the gap
    assert states[17.5].off_road_reason == "face_lost"
    assert ended(events, "driver_absent")  # and the camera sees no driver: said as well


def test_driver_leaving_from_the_road_pose_is_absent_not_distracted():
    fn = settle(10.0, lambda t: None if t >= 1.0 else sig())
    states, events, first = drive(fn, 18.0)
    assert "distraction" not in first
    assert states[17.0].alert == W and states[17.0].degraded == W and states[17.0].level == N


def test_repeated_glances_raise_time_sharing():
    # reading a phone in 2.5 s glances with 1 s looks back at the road
    fn = settle(10.0, lambda t: sig(pitch=-30.0, ear=0.08) if (t % 3.5) < 2.5 else sig())
    states, events, first = drive(fn, 30.0)
    assert first["distraction"] == pytest.approx(10.0 + 3 * 3.5 + 2.5 + 0.2, abs=0.3)
    d = ended(events, "distraction")
    assert d and "time_sharing" in d[0].details["reasons"] and "long_glance" not in d[0].details["reasons"]
    assert ended(events, "time_sharing")


def test_mirror_checks_and_short_glances_raise_nothing():
    # a 1 s mirror check every 6 s, a 0.3 s glance at the speedometer every 4 s, blinks
    def fn(t):
        if t % 6.0 < 1.0:
            return sig(yaw=50.0, eyes_visible=False)
        if t % 4.0 < 0.3:
            return sig(pitch=-25.0, ear=0.12)
        return sig(ear=0.06 if t % 3.0 < 0.15 else OPEN)
    _, events, first = drive(fn, 120.0)
    assert not first, first


def test_indecisive_model_flickering_at_the_limit_stays_calm():
    rng = np.random.default_rng(3)
    yaws = 23.0 + rng.normal(0.0, 3.0, 60 * FPS)  # noisy pose right at the yaw limit
    fn = settle(10.0, lambda t: sig(yaw=float(yaws[min(int(t * FPS), len(yaws) - 1)])))
    states, events, first = drive(fn, 70.0)
    long = [g for g in ended(events, "glance") if g.end_s - g.start_s >= 3.5]
    # the filter joins runs separated by single on-road frames but the noise gives no 3.5 s glance
    assert all(st.distraction <= W for st in states.values())
    assert len(long) == 0 or first.get("distraction", 99) > 10.0


# ---------------------------------------------------------------- yawns

def yawn_drive(peak_mar: float, open_s: float, jaw: float | None):
    """A drowsy driver's yawn at 5 s: MAR rises to peak_mar, held open_s; AU26 = jaw while open."""
    def mar(t):
        d = t - 5.0
        if d < 0 or d > open_s + 0.6:
            return 0.04
        return peak_mar * min(1.0, d / 0.3, (open_s + 0.6 - d) / 0.3)
    fn = lambda t: sig(mar=mar(t))  # noqa: E731
    aus = ((lambda t: {"AU26": 0.03 + (jaw - 0.03) * min(1.0, mar(t) / peak_mar)}) if jaw is not None
           else (lambda t: None))
    return fn, aus


@pytest.mark.parametrize("peak,open_s,jaw,expected", [
    (0.56, 1.4, 0.35, 1),   # sleepy yawn: MAR 0.55-0.58 for 1.0-1.8 s, jaw drop clear -> found
    (0.56, 1.4, None, 0),   # the same without the engine: MAR alone, under 0.6 -> not a yawn
    (0.80, 2.5, None, 1),   # a wide yawn: found with MAR alone
    (0.80, 2.5, 0.30, 1),
    (0.50, 0.3, 0.06, 0),   # talking: short, no jaw drop
    (0.55, 1.5, 0.08, 0),   # laughing with the mouth open, the jaw not dropped beyond its baseline
])
def test_yawns_use_the_jaw_drop_when_the_engine_runs(peak, open_s, jaw, expected):
    fn, aus = yawn_drive(peak, open_s, jaw)
    _, events, _ = drive(fn, 10.0, aus=aus)
    assert len(ended(events, "yawn")) == expected


def test_talking_with_the_jaw_moving_is_no_yawn():
    # chewing / talking: MAR 0.3-0.5 at 3 Hz, AU26 up to 0.2 in the open phases
    fn = lambda t: sig(mar=0.3 + 0.2 * abs(np.sin(3 * np.pi * t)))  # noqa: E731
    aus = lambda t: {"AU26": 0.05 + 0.15 * abs(np.sin(3 * np.pi * t))}  # noqa: E731
    _, events, _ = drive(fn, 30.0, aus=aus)
    assert not ended(events, "yawn")


# ---------------------------------------------------------------- alert column

def test_alert_includes_degraded_states():
    fn = lambda t: sig() if t < 2.0 else None  # noqa: E731
    states, _, _ = drive(fn, 5.0)
    assert states[1.0].alert == N
    assert states[4.0].alert == W and states[4.0].level == N  # driver_absent is a warning


# ---------------------------------------------------------------- the learned eye state

def eyes(p: float, ear: float = OPEN, pitch: float = 0.0, gy: float = 0.0, yaw: float = 0.0) -> Signals:
    """Signals with the eye-state model's P(closed) ``p``."""
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=0.05, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=0.0, gaze_y=gy, eyes_visible=True, eye_closed_p=p)


def with_blinks(t: float, open_sig: Signals, blink: Signals, every_s: float = 4.0) -> Signals:
    return blink if (t % every_s) < 0.15 else open_sig


@pytest.mark.parametrize("pitch,ear,gy,why", [
    (-8.0, 0.09, 0.10, "a phone in the hand: head 8 deg down, lids lowered to EAR 0.09 over open eyes"),
    (-12.0, 0.12, 0.05, "food on the lap: head 12 deg down, EAR 0.12"),
    (-2.0, 0.20, 0.35, "the eyes alone 31 deg down, the head level: the gaze says so"),
])
def test_eyes_only_look_down_is_distraction_from_the_first_second(pitch, ear, gy, why):
    """The issue's drives: the eyes do the looking, the head barely moves; the model reads the eyes
    open (P(closed) 0.1). From the first second of a drive (the mount's pose, uncalibrated)."""
    look = lambda t: eyes(0.1, ear=ear, pitch=pitch, gy=gy) if 1.0 <= t < 6.0 else eyes(0.02)  # noqa: E731
    states, events, first = drive(look, 8.0)
    assert first.get("distraction", 99) <= 1.0 + 4.2, why
    assert "drowsiness" not in first, why
    assert not ended(events, "eyes_closed", "microsleep"), why
    assert not any(st.eyes_closed for st in states.values()), why
    assert any("eyes_down" in st.off_road_reason for st in states.values()), why


def test_narrow_eyed_driver_before_calibration_is_not_asleep():
    """Open eyes at EAR 0.15-0.17 under infrared (below the default closed EAR 0.28 x 0.65 = 0.18)
    that the model reads open; blinks every 4 s."""
    rng = np.random.default_rng(5)
    ears = 0.16 + rng.uniform(-0.01, 0.01, 40 * FPS)
    fn = lambda t: with_blinks(t, eyes(0.05, ear=float(ears[int(t * FPS)])), eyes(0.97, ear=0.05))  # noqa: E731
    states, events, first = drive(fn, 40.0)
    assert not first, first
    assert not ended(events, "eyes_closed", "microsleep")
    assert len(ended(events, "blink")) >= 9


def test_without_the_model_the_narrow_eyes_were_read_closed():
    """The same driver judged by the EAR alone (no model): the closures the issue reports."""
    fn = lambda t: sig(ear=0.16)  # noqa: E731
    _, events, first = drive(fn, 5.0)
    assert "drowsiness" in first and ended(events, "microsleep")


def test_squeezed_closures_then_open_eyes_raise_no_late_perclos_alarm():
    """A driver crying with the eyes squeezed shut (cheeks raised, AU6 0.7) for the first 5 s, then
    smiling with open eyes for a minute and a half: the closure is one (the road unseen), but it
    never counts for PERCLOS, and nothing is raised once the eyes are open."""
    fn = lambda t: eyes(0.96, ear=0.05) if t < 5.0 else with_blinks(t, eyes(0.03, ear=0.24), eyes(0.95, ear=0.05))  # noqa: E731
    aus = lambda t: {"AU6": 0.7 if t < 5.0 else 0.5, "AU26": 0.02}  # noqa: E731
    states, events, first = drive(fn, 90.0, aus=aus)
    assert all(st.perclos < 0.05 for t, st in states.items() if st.perclos == st.perclos)
    assert all(st.drowsiness == N for t, st in states.items() if t >= 5.0 + 1.5)


def test_perclos_alarm_clears_once_the_eyes_open():
    """Drowsy: eyes closed 0.8 s in every 4 s for a minute (PERCLOS 0.2), then awake. The PERCLOS
    alarm is up during the closures and gone within 1.5 s of the eyes opening for good."""
    fn = lambda t: eyes(0.97, ear=0.05) if t < 64.0 and (t % 4.0) < 0.8 else eyes(0.03)  # noqa: E731
    states, events, first = drive(fn, 75.0)
    assert 48.0 <= first["drowsiness"] < 50.0  # PERCLOS needs 80 % of its 60 s window
    alarms = ended(events, "drowsiness")
    assert alarms and all(e.details["reasons"] == ["perclos"] for e in alarms)
    # each alarm ends within 1.5 s of the closure it came with (0.5 s awake + the 1 s clearing hold)
    assert all((e.end_s % 4.0) <= 0.8 + 1.5 + 2.0 / FPS for e in alarms)
    assert all(st.drowsiness == N for t, st in states.items() if t >= 64.0 + 1.5)


@pytest.mark.parametrize("model", [True, False])
def test_asleep_with_the_head_tilted_back_is_read_with_the_model(model):
    """eye_closed_05/08/14/15: asleep against the headrest, chin up 21-26 deg. The model reads the
    lids at any raised pitch; the EAR alone ignored them (a raised chin lowers open lids too)."""
    fn = lambda t: (eyes(0.97, ear=0.05, pitch=24.0) if model else sig(ear=0.05, pitch=24.0))  # noqa: E731
    states, events, first = drive(fn, 4.0, fps=10)
    if model:
        assert first["drowsiness"] == pytest.approx(1.2, abs=0.11)
        assert ended(events, "microsleep")
    else:
        assert "drowsiness" not in first


def test_glasses_driver_whose_open_eyes_read_half_closed_adapts():
    """A driver whose open eyes the model reads at P(closed) 0.85-0.95 (thick frames, glare) while
    the EAR reads them open: after a second of such frames the threshold rises for this driver,
    and a real closure (P 0.999, EAR 0.05) is still a microsleep."""
    rng = np.random.default_rng(2)
    ps = rng.uniform(0.85, 0.95, 30 * FPS)
    fn = lambda t: eyes(0.999, ear=0.05) if 20.0 <= t < 22.5 else eyes(float(ps[int(t * FPS)]), ear=0.25)  # noqa: E731
    states, events, first = drive(fn, 25.0)
    assert not any(st.eyes_closed for t, st in states.items() if 1.5 <= t < 20.0)
    assert first["drowsiness"] == pytest.approx(21.2, abs=1.5 / FPS)


def test_mirror_camera_with_the_auto_mount_needs_no_setting():
    """A windscreen-mirror camera (road pose yaw +30, pitch -12) with calibration.mount=auto: the
    road pose is held from the first seconds, nothing is raised on it, and a 4 s glance to the
    passenger side at 8 s is a distraction."""
    cfg = load_config(overrides=["calibration.mount=auto"])
    road = MOUNTS["mirror"]
    fn = lambda t: eyes(0.02, yaw=-15.0, pitch=road[1]) if 8.0 <= t < 12.0 else eyes(0.02, yaw=road[0], pitch=road[1])  # noqa: E731
    states, _, first = drive(fn, 14.0, cfg=cfg)
    assert first.get("distraction") == pytest.approx(8.0 + 3.5 + 0.2, abs=1.5 / FPS)
    assert not any(st.off_road for t, st in states.items() if 1.2 <= t < 8.0)
    assert states[7.0].calibrated  # 5 s of it: learned


def test_mirror_camera_left_at_the_dashboard_default_raises_a_false_distraction():
    """The same drive with the default mount: the road pose (30 deg off the camera) is beyond the
    relaxed 28.9 deg limit until the pose is learned: what the auto mount avoids."""
    road = MOUNTS["mirror"]
    fn = lambda t: eyes(0.02, yaw=road[0] + 2.0, pitch=road[1])  # noqa: E731
    states, _, _ = drive(fn, 6.0, cfg=load_config(overrides=["calibration.mount=dashboard"]))
    assert states[1.0].off_road


def test_auto_mount_is_robust_to_a_look_down_at_the_start():
    """With the auto mount a driver who reads a phone in the lap (head 30 deg down) for the first
    3 s: that pose lies below the auto range and never becomes the road; the driver then drives."""
    cfg = load_config(overrides=["calibration.mount=auto"])
    fn = lambda t: eyes(0.1, ear=0.09, pitch=-30.0) if t < 3.0 else eyes(0.02, yaw=20.0, pitch=-5.0)  # noqa: E731
    states, _, first = drive(fn, 12.0, cfg=cfg)
    assert abs(states[11.0].neutral_pitch_deg - -5.0) < 1.0 and abs(states[11.0].neutral_yaw_deg - 20.0) < 1.0
    assert not any(st.off_road for t, st in states.items() if t >= 4.5)


def test_auto_mount_judges_a_look_down_from_the_first_frame():
    """Before the auto mount holds any pose it judges against the camera's axis with the auto range
    as the limits: a head 30 deg down at a phone from the first frame for 5 s is a distraction."""
    cfg = load_config(overrides=["calibration.mount=auto"])
    fn = lambda t: eyes(0.1, ear=0.1, pitch=-30.0) if t < 5.0 else eyes(0.02, pitch=-2.0)  # noqa: E731
    _, _, first = drive(fn, 8.0, cfg=cfg)
    assert first.get("distraction") == pytest.approx(3.5 + 0.2, abs=1.5 / FPS)
    assert "drowsiness" not in first


# ---------------------------------------------------------------- present but turned away

def test_a_driver_in_profile_is_a_look_away_not_absent():
    """look_sideway_02.avi: the driver looks out of the side window in profile from the first
    frame (no mesh); a person is in view. A look away from the first frame, not driver_absent."""
    states, events, first = drive(lambda t: None if t < 5.0 else sig(), 7.0, fps=10, person=lambda t: True)
    assert first["distraction"] == pytest.approx(3.5 + 0.2, abs=0.11)
    assert states[2.0].off_road_reason == "face_away" and str(states[2.0].status) == "eyes_not_visible"
    assert not [e for e in events if e.type == "driver_absent"]


def test_no_person_in_view_is_still_an_absent_driver():
    states, events, first = drive(lambda t: None, 4.0, fps=10, person=lambda t: False)
    assert "distraction" not in first
    assert [e.type for e in events if e.type == "driver_absent"] and states[3.0].alert == W


# ---------------------------------------------------------------- phone use

def detector(score_at, hz: float = 3.0):
    """The phone detector's readings at ``hz`` (every 10th frame at 30 frames/s): score_at(t) on
    those frames, None between."""
    step = int(round(FPS / hz))
    return lambda t: score_at(t) if int(round(t * FPS)) % step == 0 else None


def test_a_phone_at_the_ear_while_looking_ahead_is_phone_use_and_distraction():
    """10 s with a phone at the ear, head and eyes on the road (the detector sees it on two runs of
    three: the hand hides it on the third), then 4 s without."""
    seen = detector(lambda t: (0.0 if int(round(t * 3)) % 3 == 2 else 0.35) if 1.0 <= t < 11.0 else 0.0)
    states, events, first = drive(lambda t: sig(), 15.0, phone=seen)
    started = [e for e in events if e.type == "phone_use" and e.end_s is None]
    assert len(started) == 1 and 1.0 <= started[0].start_s <= 1.0 + 0.7  # two runs at 3 Hz
    # off the road from then on: a long-glance warning 3.5 s (+ the filter and the 0.2 s raise) later
    assert first["distraction"] == pytest.approx(started[0].start_s + 3.5 + 0.2, abs=0.35)
    assert max(s.distraction for s in states.values()) == C  # critical once it has gone on 6 s
    assert states[5.0].phone_use and states[5.0].off_road_reason == "phone"
    (over,) = ended(events, "phone_use")
    assert 11.0 <= over.end_s <= 11.0 + 1.1 and over.level == C  # no phone in three runs: over
    assert not states[14.9].phone_use and states[14.9].distraction == N
    assert "drowsiness" not in first


def test_a_phone_in_the_lap_with_glances_down_is_phone_use_throughout():
    """Looking down at a phone held low for 1.5 s every 3 s (the detector sees it only while the
    driver holds it up a little: every other run): the vote holds between sightings."""
    seen = detector(lambda t: 0.3 if int(round(t * 3)) % 2 == 0 else 0.05)
    look = lambda t: sig(pitch=-30.0, ear=0.1) if (t % 3.0) < 1.5 else sig()  # noqa: E731
    states, events, first = drive(look, 12.0, phone=seen)
    assert [e.type for e in events if e.type == "phone_use" and e.end_s is None] == ["phone_use"]
    assert all(s.phone_use for t, s in states.items() if t >= 1.0)
    assert "distraction" in first and "drowsiness" not in first


def test_one_phone_like_reading_is_no_phone_use():
    seen = detector(lambda t: 0.6 if 2.0 <= t < 2.2 else 0.0)  # one run sees something
    states, events, first = drive(lambda t: sig(), 6.0, phone=seen)
    assert not any(s.phone_use for s in states.values())
    assert not [e for e in events if e.type == "phone_use"] and "distraction" not in first
