"""Per-driver calibration: neutral pose, open-eye EAR, and the fall-back to absolute defaults."""
from __future__ import annotations

import pytest

from driver_monitor.config import CalibrationConfig
from driver_monitor.monitor.calibration import Calibrator
from driver_monitor.types import Signals


def sig(ear: float = 0.3, yaw: float = 0.0, pitch: float = 0.0, gx: float = 0.0, gy: float = 0.0,
        eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=0.05, yaw_deg=yaw, pitch_deg=pitch, roll_deg=0.0,
                   gaze_x=gx, gaze_y=gy, eyes_visible=eyes_visible)


def feed(cal: Calibrator, make, seconds: float, fps: float = 30.0, t0: float = 0.0) -> float | None:
    """Feed make(t) -> Signals | None for ``seconds``; return the time calibration finished (or None)."""
    done_at = None
    for i in range(int(round(seconds * fps))):
        t = t0 + i / fps
        if cal.update(t, make(t)) and done_at is None:
            done_at = t
    return done_at


def blinking(open_ear: float = 0.30, period_s: float = 3.0, blink_s: float = 0.2, **kw):
    """Open eyes with a blink (EAR 0.06) every period_s."""
    return lambda t: sig(ear=0.06 if (t % period_s) < blink_s else open_ear, **kw)


def test_open_eyes_with_blinks_calibrate_to_the_open_ear_and_neutral_pose():
    cal = Calibrator(CalibrationConfig())
    done_at = feed(cal, blinking(0.31, yaw=8.0, pitch=-5.0, gx=0.1), 10.0)
    assert done_at == pytest.approx(5.0, abs=1 / 30 + 1e-9)  # 5 s of usable frames
    r = cal.result
    assert r.calibrated and r.open_ear_source == "calibrated" and r.pose_source == "calibrated"
    assert r.open_ear == pytest.approx(0.31)  # the blinks (7 % of frames) do not drag it down
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg, r.neutral_gaze_x) == pytest.approx((8.0, -5.0, 0.1))
    assert cal.progress == 1.0


@pytest.mark.parametrize("name,make,fps", [
    # driver_eyes_closed_glasses.mp4: asleep from frame 0 (measured EAR 0.04-0.13)
    ("closed_from_start", lambda t: sig(ear=0.06), 30.0),
    # ir_driver_eyes_closed.avi: half open (EAR 0.12-0.31) until 1.4 s, closed (0.05-0.12) after; 10 fps
    ("half_open_then_closed", lambda t: sig(ear=(0.12, 0.22, 0.31)[int(t * 10) % 3] if t < 1.4 else 0.08), 10.0),
])
def test_implausibly_low_open_ear_is_rejected_for_the_default(name, make, fps):
    cfg = CalibrationConfig()
    cal = Calibrator(cfg)
    assert feed(cal, make, 6.0, fps=fps) is not None
    r = cal.result
    assert r.open_ear == cfg.default_open_ear
    assert r.open_ear_source.startswith("default (calibrated")
    assert r.pose_source == "calibrated"  # the pose is still fine to learn


def test_frames_far_from_frontal_do_not_count():
    cfg = CalibrationConfig(duration_s=2.0, max_wait_s=30.0)
    cal = Calibrator(cfg)
    # 3 s looking 40 deg away (excluded), then frontal
    done_at = feed(cal, lambda t: sig(yaw=40.0 if t < 3.0 else 2.0), 6.0)
    assert done_at == pytest.approx(5.0, abs=1 / 30 + 1e-9)
    assert cal.result.neutral_yaw_deg == pytest.approx(2.0)


@pytest.mark.parametrize("make,why", [
    (lambda t: None, "no face at all"),
    (lambda t: sig(yaw=60.0), "never near-frontal"),
])
def test_gives_up_after_max_wait_and_keeps_defaults(make, why):
    cfg = CalibrationConfig(max_wait_s=10.0)
    cal = Calibrator(cfg)
    done_at = feed(cal, make, 12.0)
    assert done_at == pytest.approx(10.0), why
    r = cal.result
    assert not r.calibrated and r.open_ear == cfg.default_open_ear
    assert (r.neutral_yaw_deg, r.neutral_pitch_deg) == (0.0, 0.0)


def test_too_few_samples_keep_defaults():
    cfg = CalibrationConfig(duration_s=1.0, min_samples=60)  # 1 s at 30 fps = 31 frames < 60
    cal = Calibrator(cfg)
    assert feed(cal, blinking(0.35, yaw=10.0), 3.0) is not None
    assert not cal.result.calibrated and cal.result.open_ear == cfg.default_open_ear


def test_hidden_eyes_give_the_pose_but_not_the_ear():
    cfg = CalibrationConfig()
    cal = Calibrator(cfg)
    feed(cal, lambda t: sig(ear=0.5, yaw=5.0, eyes_visible=False), 6.0)  # sunglasses
    r = cal.result
    assert r.neutral_yaw_deg == pytest.approx(5.0)
    assert r.open_ear == cfg.default_open_ear and "visible eyes" in r.open_ear_source


def test_restart_forgets_and_recalibrates():
    cal = Calibrator(CalibrationConfig(duration_s=1.0))
    feed(cal, blinking(0.30, yaw=0.0), 2.0)
    assert cal.done and cal.result.open_ear == pytest.approx(0.30)
    cal.restart(2.0)
    assert not cal.done and cal.progress == 0.0 and not cal.result.calibrated
    feed(cal, blinking(0.36, yaw=12.0), 2.0, t0=2.0)
    assert cal.result.open_ear == pytest.approx(0.36) and cal.result.neutral_yaw_deg == pytest.approx(12.0)


def test_zero_duration_means_no_calibration():
    cfg = CalibrationConfig(duration_s=0.0)
    cal = Calibrator(cfg)
    assert cal.done and cal.progress == 1.0 and cal.result.open_ear == cfg.default_open_ear
