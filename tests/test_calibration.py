"""Per-driver calibration as a running statistic: the mount's pose until learned, the pose held most
of the time, clamped to the mount's range, the open-eye EAR, the jaw baseline."""
from __future__ import annotations

import math

import pytest

from driver_monitor.config import CalibrationConfig
from driver_monitor.monitor.calibration import MOUNTS, Calibrator, RunningHistogram, mount_pose
from driver_monitor.types import Signals

FPS = 30.0


def sig(ear: float = 0.3, yaw: float = 0.0, pitch: float = 0.0, gx: float = 0.0, gy: float = 0.0,
        eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=0.05, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=gx, gaze_y=gy, eyes_visible=eyes_visible)


def feed(cal: Calibrator, make, seconds: float, fps: float = FPS, t0: float = 0.0, pose=True, ear=True,
         au26=None) -> float | None:
    """Feed make(t) for ``seconds`` (every frame may teach both); return when the pose was learned."""
    learned_at = None
    for i in range(int(round(seconds * fps))):
        t = t0 + i / fps
        r = cal.update(t, make(t), learn_pose=pose, learn_ear=ear, au26=None if au26 is None else au26(t))
        if r.calibrated and learned_at is None:
            learned_at = t
    return learned_at


def blinking(open_ear: float = 0.30, period_s: float = 3.0, blink_s: float = 0.2, **kw):
    """Open eyes with a blink (EAR 0.06) every period_s."""
    return lambda t: sig(ear=0.06 if (t % period_s) < blink_s else open_ear, **kw)


@pytest.mark.parametrize("mount,seat,expected", [
    ("dashboard", "left", (0.0, 0.0)),
    ("steering_column", "left", MOUNTS["steering_column"]),
    ("mirror", "left", MOUNTS["mirror"]),
    ("mirror", "right", (-MOUNTS["mirror"][0], MOUNTS["mirror"][1])),  # right-hand drive mirrors the yaw
    ("pillar", "right", (-MOUNTS["pillar"][0], MOUNTS["pillar"][1])),
])
def test_mount_presets(mount, seat, expected):
    assert mount_pose(CalibrationConfig(mount=mount, driver_seat=seat)) == expected
    assert mount_pose(CalibrationConfig(mount="custom", mount_yaw_deg=12.0, mount_pitch_deg=-4.0)) == (12.0, -4.0)


def test_before_learning_the_mount_pose_and_default_ear_are_used():
    cfg = CalibrationConfig(mount="mirror")
    r = Calibrator(cfg).result
    assert not r.calibrated and not r.ear_calibrated
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg) == MOUNTS["mirror"]
    assert r.open_ear == cfg.default_open_ear and r.pose_source.startswith("mount mirror")


def test_open_eyes_with_blinks_learn_the_open_ear_and_neutral_pose():
    cal = Calibrator(CalibrationConfig())
    learned_at = feed(cal, blinking(0.31, yaw=8.0, pitch=-5.0, gx=0.1), 10.0)
    assert learned_at == pytest.approx(5.0, abs=2 / FPS)  # 5 s of frames within +-5 deg
    r = cal.result
    assert r.calibrated and r.ear_calibrated and r.pose_source == "calibrated"
    assert r.open_ear == pytest.approx(0.31, abs=0.003)  # the blinks (7 % of frames) do not drag it down
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg) == pytest.approx((8.0, -5.0))
    assert r.neutral_gaze_x == pytest.approx(0.1, abs=0.02)
    assert cal.progress == 1.0


def test_the_pose_held_most_of_the_time_wins_over_glances():
    # 40 % of the time glancing 18 deg aside or 15 deg down: the mode stays on the road pose
    def restless(t: float) -> Signals:
        phase = t % 5.0
        if phase < 1.0:
            return sig(yaw=18.0)
        if phase < 2.0:
            return sig(pitch=-15.0)
        return sig(yaw=2.0, pitch=1.0)
    cal = Calibrator(CalibrationConfig())
    assert feed(cal, restless, 20.0) is not None
    r = cal.result
    assert abs(r.neutral_yaw_deg - 2.0) <= 1.0 and abs(r.neutral_pitch_deg - 1.0) <= 1.0


def test_learned_pose_is_clamped_to_the_mounts_range():
    cfg = CalibrationConfig(mount="dashboard", max_yaw_offset_deg=15.0, max_pitch_offset_deg=8.0)
    cal = Calibrator(cfg)
    feed(cal, lambda t: sig(yaw=28.0, pitch=-14.0), 8.0)  # an off-axis camera left as "dashboard"
    r = cal.result
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg) == (15.0, -8.0)
    assert "clamped" in r.pose_source
    # the same driver with the mount set: no clamp needed
    cal = Calibrator(CalibrationConfig(mount="mirror"))
    feed(cal, lambda t: sig(yaw=28.0, pitch=-14.0), 8.0)
    assert cal.result.neutral_yaw_deg == pytest.approx(28.0) and cal.result.pose_source == "calibrated"


def test_keeps_adapting_after_it_is_learned():
    cal = Calibrator(CalibrationConfig(memory_s=60.0))
    feed(cal, lambda t: sig(yaw=0.0), 10.0)
    assert abs(cal.result.neutral_yaw_deg) <= 0.5
    feed(cal, lambda t: sig(yaw=8.0), 60.0, t0=10.0)  # the driver moved the seat
    assert cal.result.neutral_yaw_deg == pytest.approx(8.0, abs=0.05)


def test_frames_the_caller_does_not_teach_are_ignored():
    cal = Calibrator(CalibrationConfig())
    assert feed(cal, lambda t: sig(yaw=40.0, ear=0.05), 10.0, pose=False, ear=False) is None
    r = cal.result
    assert not r.calibrated and not r.ear_calibrated and cal.progress == 0.0
    assert feed(cal, lambda t: None, 10.0, t0=10.0) is None  # no face teaches nothing


@pytest.mark.parametrize("name,make,fps", [
    # driver_eyes_closed_glasses.mp4: asleep from frame 0 (measured EAR 0.04-0.13)
    ("closed_from_start", lambda t: sig(ear=0.06), 30.0),
    # ir_driver_eyes_closed.avi: half open (EAR 0.12-0.31) until 1.4 s, closed (0.05-0.12) after; 10 fps
    ("half_open_then_closed", lambda t: sig(ear=(0.12, 0.22, 0.31)[int(t * 10) % 3] if t < 1.4 else 0.08), 10.0),
])
def test_implausibly_low_open_ear_is_rejected_for_the_default(name, make, fps):
    cfg = CalibrationConfig()
    cal = Calibrator(cfg)
    feed(cal, make, 6.0, fps=fps)
    r = cal.result
    assert r.open_ear == cfg.default_open_ear and not r.ear_calibrated
    assert r.open_ear_source.startswith("default (calibrated")


def test_hidden_eyes_give_the_pose_but_not_the_ear():
    cfg = CalibrationConfig()
    cal = Calibrator(cfg)
    feed(cal, lambda t: sig(ear=0.5, yaw=5.0, eyes_visible=False), 6.0)  # sunglasses
    r = cal.result
    assert r.calibrated and r.neutral_yaw_deg == pytest.approx(5.0)
    assert r.open_ear == cfg.default_open_ear and "visible open eyes" in r.open_ear_source


def test_jaw_baseline_is_the_drivers_resting_au26():
    cal = Calibrator(CalibrationConfig())
    assert math.isnan(cal.result.jaw_baseline)
    feed(cal, lambda t: sig(), 10.0, au26=lambda t: 0.5 if t % 5.0 < 1.0 else 0.08)  # yawns 20 % of the time
    assert cal.result.jaw_baseline == pytest.approx(0.085, abs=0.01)


def test_restart_forgets_and_relearns():
    cal = Calibrator(CalibrationConfig(duration_s=1.0))
    feed(cal, blinking(0.30, yaw=0.0), 2.0)
    assert cal.result.calibrated and cal.result.open_ear == pytest.approx(0.30, abs=0.003)
    cal.restart(2.0)
    assert not cal.result.calibrated and cal.progress == 0.0 and cal.result.open_ear == 0.28
    feed(cal, blinking(0.36, yaw=12.0), 2.0, t0=2.0)
    assert cal.result.open_ear == pytest.approx(0.36, abs=0.003)
    assert cal.result.neutral_yaw_deg == pytest.approx(12.0)


def test_zero_duration_uses_the_learned_pose_at_once():
    cal = Calibrator(CalibrationConfig(duration_s=0.0))
    assert cal.done and cal.progress == 1.0


def test_running_histogram_forgets_beyond_its_memory():
    h = RunningHistogram(0.0, 10.0, 1.0, memory=10.0)
    for _ in range(100):
        h.add(2.2, 0.1)  # 10 s at 2
    for _ in range(300):
        h.add(7.7, 0.1)  # then 30 s at 7: three memories, the old mode has faded
    assert h.total == pytest.approx(10.0)
    assert h.mode(0.0)[0] == pytest.approx(7.7)
    assert h.w[2] < 0.1 * h.w[7]
    assert h.percentile(50) == pytest.approx(7.5)


def test_the_auto_mount_learns_a_mirror_cameras_road_pose_unclamped():
    """calibration.mount=auto: the road pose of a windscreen-mirror camera (+28 / -11 deg) is held
    as the reference after auto_provisional_s and learned after duration_s, within the auto range."""
    cal = Calibrator(CalibrationConfig(mount="auto"))
    feed(cal, lambda t: sig(yaw=28.0, pitch=-11.0), 0.5)
    r = cal.result
    assert r.provisional and not r.calibrated and r.neutral_yaw_deg == pytest.approx(28.0)
    feed(cal, lambda t: sig(yaw=28.0, pitch=-11.0), 8.0)
    r = cal.result
    assert r.calibrated and not r.provisional and r.pose_source == "calibrated"
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg) == (pytest.approx(28.0), pytest.approx(-11.0))
