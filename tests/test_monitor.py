"""DriverMonitor end to end on synthetic drives: events, levels, degraded states, calibration."""
from __future__ import annotations

import numpy as np
import pytest

from driver_monitor.config import Config, load_config
from driver_monitor.monitor import DriverMonitor
from driver_monitor.types import Level, Signals, Status

FPS = 30
N, W, C = Level.NONE, Level.WARNING, Level.CRITICAL


def sig(ear: float = 0.30, mar: float = 0.05, yaw: float = 0.0, pitch: float = 0.0,
        eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=mar, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=0.0, gaze_y=0.0, eyes_visible=eyes_visible)


def drive(fn, seconds: float, cfg: Config | None = None, camera=lambda t: True, monitor: DriverMonitor | None = None,
          fps: int = FPS):
    """Run a monitor over fn(t) -> Signals | None. Returns (monitor, [(t, state)], [(reported_at, event)])."""
    m = monitor or DriverMonitor(cfg or Config())
    states, events = [], []
    n = int(round(seconds * fps))
    for i in range(n):
        t = i / fps
        st, evs = m.update(t, fn(t), camera_ok=camera(t), frame_index=i)
        states.append((round(t, 3), st))
        events += [(round(t, 3), e) for e in evs]
    events += [("finish", e) for e in m.finish(n / fps, n)]
    return m, states, events


def summary(events, types=None):
    return [(at, e.type, e.level, round(e.start_s, 3), None if e.end_s is None else round(e.end_s, 3))
            for at, e in events if types is None or e.type in types]


def test_config_yaml_defaults_load():
    assert isinstance(DriverMonitor(load_config()), DriverMonitor)


def test_asleep_from_the_first_frame_like_driver_eyes_closed_glasses():
    """driver_eyes_closed_glasses.mp4: EAR 0.04-0.13 from frame 0 (measured); 7.6 s at 30 fps."""
    rng = np.random.default_rng(1)
    ears = rng.uniform(0.04, 0.13, int(7.6 * FPS))
    m, states, events = drive(lambda t: sig(ear=float(ears[int(round(t * FPS))])), 7.6)
    closed = [st.eyes_closed for _, st in states]
    assert sum(closed) / len(closed) >= 0.8
    first_alerting = next(e for at, e in events if e.type in ("eyes_closed", "microsleep") and e.level >= W)
    assert first_alerting.start_s <= 2.5
    assert summary(events, ("microsleep",)) == [(1.0, "microsleep", W, 0.0, None),
                                                ("finish", "microsleep", C, 0.0, 7.6)]
    assert summary(events, ("drowsiness",)) == [(1.2, "drowsiness", W, 1.2, None),
                                                ("finish", "drowsiness", C, 1.2, 7.6)]
    st = dict(states)
    # closed eyes teach nothing: the mount's pose and the default open EAR stay in use
    assert st[7.5].drowsiness == C and not st[7.5].calibrated
    assert st[7.5].open_ear == pytest.approx(0.28)
    assert st[7.5].closed_ear_threshold == pytest.approx(0.182)


def test_frontal_face_with_a_blink_like_single_face_raises_nothing():
    """single_face.mp4: open eyes (EAR 0.21-0.33), one blink about 0.5-0.7 s, 2.4 s."""
    fn = lambda t: sig(ear=0.06 if 0.5 <= t < 0.7 else 0.30)  # noqa: E731
    _, states, events = drive(fn, 2.4)
    assert all(st.drowsiness == N and st.distraction == N for _, st in states)
    assert [e.type for _, e in events] == ["blink"]
    assert all(st.status == Status.CALIBRATING for _, st in states)


@pytest.mark.parametrize("face,expected", [
    # no_face.mp4: never a face
    (lambda t: None, [(1.0, "driver_absent", W, 0.0, None), ("finish", "driver_absent", W, 0.0, 4.0)]),
    # face_then_noface: the face leaves at 2.0 s
    (lambda t: sig() if t < 2.0 else None, [(3.0, "driver_absent", W, 2.0, None),
                                            ("finish", "driver_absent", W, 2.0, 4.0)]),
    # noface_then_face: the face appears at 1.5 s
    # (reported once the face has been back alerts.clear_after_s = 1 s, ending when it came back)
    (lambda t: None if t < 1.5 else sig(), [(1.0, "driver_absent", W, 0.0, None), (2.5, "driver_absent", W, 0.0, 1.5)]),
    # a 0.5 s dropout is no absence
    (lambda t: None if 1.0 <= t < 1.5 else sig(), []),
])
def test_driver_absent(face, expected):
    _, states, events = drive(face, 4.0)
    assert summary(events, ("driver_absent",)) == expected
    for t, st in states:
        assert (st.status == Status.DRIVER_ABSENT) == (face(t) is None)


def test_visibility_flicker_does_not_split_degraded_events():
    # sunglasses_talking_yawns.avi: the eyes read "visible" for 0.23-0.67 s now and then inside
    # dark glasses; a return shorter than alerts.clear_after_s (1 s) continues the same event
    def fn(t):
        hidden = not (3.0 <= t < 3.5 or 8.0 <= t < 8.6 or 12.0 <= t < 14.0)
        return sig(ear=0.05, eyes_visible=False) if hidden else sig()
    _, states, events = drive(fn, 20.0)
    assert summary(events, ("eyes_not_visible",)) == [
        (1.0, "eyes_not_visible", N, 0.0, None), (13.0, "eyes_not_visible", N, 0.0, 12.0),
        (15.0, "eyes_not_visible", N, 14.0, None), ("finish", "eyes_not_visible", N, 14.0, 20.0)]
    # the status stays undebounced: it says what is seen on each frame
    assert dict(states)[3.2].status != Status.EYES_NOT_VISIBLE
    # the same for a face that is found for a few frames during an absence
    absent = lambda t: sig() if (t < 1.0 or 4.0 <= t < 4.3) else None  # noqa: E731
    _, _, events = drive(absent, 8.0)
    assert summary(events, ("driver_absent",)) == [(2.0, "driver_absent", W, 1.0, None),
                                                   ("finish", "driver_absent", W, 1.0, 8.0)]
    # clear_after_s = 0 restores the old behaviour: every return ends the event at once
    cfg = load_config(overrides=["alerts.clear_after_s=0"])
    _, _, events = drive(absent, 8.0, cfg=cfg)
    assert [e.end_s for _, e in events if e.type == "driver_absent" and e.end_s is not None] == [4.0, 8.0]


def test_hidden_eyes_count_no_closure_and_raise_eyes_not_visible():
    # sunglasses from 6 s: the mesh still reports a (meaningless) low EAR, flagged not visible
    fn = lambda t: sig() if t < 6.0 else sig(ear=0.05, eyes_visible=False)  # noqa: E731
    _, states, events = drive(fn, 20.0)
    assert summary(events) == [(7.0, "eyes_not_visible", N, 6.0, None), ("finish", "eyes_not_visible", N, 6.0, 20.0)]
    st = dict(states)
    assert st[19.0].status == Status.EYES_NOT_VISIBLE
    assert not any(s.eyes_closed for t, s in states)
    assert st[19.0].perclos != st[19.0].perclos  # NaN: only 6 s of visible eyes < 15 s coverage


def test_camera_lost_is_not_driver_absent():
    cam = lambda t: not (2.0 <= t < 5.0)  # noqa: E731
    _, states, events = drive(lambda t: sig(), 9.0, camera=cam)
    assert summary(events) == [(2.0, "camera_lost", W, 2.0, None), (5.0, "camera_lost", W, 2.0, 5.0)]
    st = dict(states)
    assert st[3.0].status == Status.CAMERA_LOST
    # calibration needs 5 s of usable frames: 2 s before the loss + 3 s after it
    assert st[7.9].status == Status.CALIBRATING and st[8.1].status == Status.OK


def test_distraction_after_calibration_with_hysteresis():
    # calibrated at 5.0 s; head turned 40 deg from 6.0 s to 14.0 s
    fn = lambda t: sig(yaw=40.0) if 6.0 <= t < 14.0 else sig()  # noqa: E731
    _, states, events = drive(fn, 17.0)
    # raw warning at 6.0 + 3.5 s, alert after raise_after_s 0.2; critical at 6 + 6 + 0.2;
    # cleared clear_after_s 1.0 after the head came back
    # cleared clear_after_s 1.0 after the off-road flag went back below attentive_below (0.25 s later)
    assert summary(events, ("distraction",)) == [(9.7, "distraction", W, 9.7, None),
                                                 (15.233, "distraction", C, 9.7, 15.233)]
    st = dict(states)
    assert st[12.5].distraction == C and st[12.5].off_road and st[12.5].off_road_s == pytest.approx(6.5)
    assert st[5.5].status == Status.OK and st[4.0].status == Status.CALIBRATING
    glances = [e for _, e in events if e.type == "glance" and e.end_s is not None]
    assert [(g.start_s, g.end_s, g.level) for g in glances] == [(6.0, 14.0, C)]


def test_distraction_is_judged_while_calibrating():
    # frontal 2 s, then turned 46 deg away: the pose is never learned, the mount's pose is used
    fn = lambda t: sig() if t < 2.0 else sig(yaw=46.0)  # noqa: E731
    _, states, events = drive(fn, 12.0)
    assert all(st.status == Status.CALIBRATING for _, st in states)
    assert summary(events, ("distraction",))[0] == (5.7, "distraction", W, 5.7, None)  # 2.0 + 3.5 + 0.2


def test_calibrate_now_restarts_but_does_not_blind():
    m, states, _ = drive(lambda t: sig(ear=0.34, yaw=5.0), 6.0)
    assert states[-1][1].calibrated and states[-1][1].open_ear == pytest.approx(0.34, abs=0.003)
    m.calibrate_now(6.0)
    st, _ = m.update(6.0 + 1 / FPS, sig(), frame_index=181)
    assert st.status == Status.CALIBRATING and not st.calibrated and st.calibration_progress < 0.01
    assert st.open_ear == pytest.approx(0.28)  # back to the default until it is learned again
    raised = None
    for i in range(182, 182 + 6 * FPS):  # turned away right after: still judged
        st, evs = m.update(i / FPS, sig(yaw=50.0), frame_index=i)
        if raised is None and st.distraction >= W:
            raised = i / FPS
    assert raised == pytest.approx(6.0 + 1 / FPS + 3.5 + 0.2, abs=1.5 / FPS)


def test_noisy_frames_neither_raise_nor_clear():
    # one closed frame every 2 s (noise) raises nothing; one open frame inside a long closure
    # restarts the closure but the drowsiness alert holds through it
    fn = lambda t: sig(ear=0.06 if (t % 2.0) < 1 / FPS else 0.30) if t < 8.0 else (  # noqa: E731
        sig(ear=0.30) if abs(t - 11.0) < 0.5 / FPS else sig(ear=0.06))
    _, states, events = drive(fn, 14.0)
    assert all(st.drowsiness == N for t, st in states if t < 8.0)
    assert summary(events, ("drowsiness",)) == [(9.2, "drowsiness", W, 9.2, None),
                                                ("finish", "drowsiness", C, 9.2, 14.0)]


def test_time_going_backwards_closes_and_restarts():
    m, _, _ = drive(lambda t: None, 2.0)  # finish() was called by drive: nothing open
    m.update(2.0, None, frame_index=60)
    m.update(2.5, None, frame_index=75)  # absent since 2.0: not yet 1 s
    m.update(3.5, None, frame_index=105)  # driver_absent opens (start 2.0)
    st, evs = m.update(0.0, sig(), frame_index=0)  # replay seek to the start
    assert [(e.type, e.end_s) for e in evs] == [("driver_absent", 3.5)]
    assert st.status == Status.CALIBRATING and st.calibration_progress == 0.0


def test_every_start_has_a_matching_end():
    rng = np.random.default_rng(7)
    seq = []
    for i in range(int(40 * FPS)):
        t = i / FPS
        r = rng.random()
        seq.append(None if 10 <= t < 12 else sig(ear=0.05 if r < 0.3 else 0.3, mar=0.9 if 20 <= t < 22 else 0.1,
                                                  yaw=40.0 if 25 <= t < 31 else 0.0, eyes_visible=not 33 <= t < 35))
    _, _, events = drive(lambda t: seq[min(int(round(t * FPS)), len(seq) - 1)], 40.0)
    started = [(e.type, e.start_s) for _, e in events if e.end_s is None]
    ended = [(e.type, e.start_s) for _, e in events if e.end_s is not None and e.type != "blink"]
    assert sorted(started) == sorted(ended)
    assert {"driver_absent", "yawn", "distraction", "eyes_not_visible"} <= {t for t, _ in started}
