"""Smoothing filters: One-Euro / EMA / none on Signals, probability EMA, gaps, angle wrap."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from driver_monitor.config import SmoothingConfig
from driver_monitor.monitor.filters import MAX_GAP_S, EmaFilter, OneEuroFilter, ProbSmoother, SignalSmoother
from driver_monitor.types import Signals

FPS = 30.0


def sig(ear: float = 0.3, mar: float = 0.05, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0,
        gx: float = 0.0, gy: float = 0.0, eyes_visible: bool = True) -> Signals:
    return Signals(ear_left=ear, ear_right=ear, ear=ear, mar=mar, yaw_deg=yaw, pitch_deg=pitch, roll_deg=roll,
                   gaze_x=gx, gaze_y=gy, eyes_visible=eyes_visible)


def one_euro(**kw) -> OneEuroFilter:
    return OneEuroFilter(**{"min_cutoff_hz": 1.0, "beta": 0.05, "d_cutoff_hz": 1.0, **kw})


@pytest.mark.parametrize("make", [one_euro, lambda **kw: EmaFilter(alpha=0.5, **kw),
                                  lambda **kw: EmaFilter(tau_s=0.2, **kw)], ids=["one_euro", "ema", "ema_tau"])
def test_constant_input_passes_unchanged_and_step_converges(make):
    f = make()
    assert all(f(5.0, i / FPS) == pytest.approx(5.0) for i in range(10))
    outs = [f(15.0, (10 + i) / FPS) for i in range(60)]
    assert 5.0 < outs[0] < 15.0  # lags on the first sample after a step ...
    assert outs[-1] == pytest.approx(15.0, abs=0.1)  # ... and converges within 2 s


def test_one_euro_reduces_jitter_at_rest():
    rng = np.random.default_rng(0)
    raw = 10.0 + rng.normal(0.0, 1.0, 300)  # 1 deg of landmark jitter around a still pose
    f = one_euro()
    out = np.array([f(float(x), i / FPS) for i, x in enumerate(raw)])
    assert np.std(out[30:]) < 0.5 * np.std(raw[30:])
    assert abs(np.mean(out[30:]) - 10.0) < 0.2


@pytest.mark.parametrize("seq", [[170.0, 175.0, 179.0, -178.0, -174.0, -170.0],
                                 [-170.0, -176.0, 179.0, 175.0, 171.0]])
def test_angles_filter_across_the_wrap(seq):
    f = one_euro(angle=True)
    outs = [f(a, i / FPS) for i, a in enumerate(seq)]
    for raw, out in zip(seq, outs):
        # never pulled through 0 deg: the output stays within a few degrees of the raw angle
        assert abs((out - raw + 180.0) % 360.0 - 180.0) < 10.0
        assert -180.0 <= out < 180.0


@pytest.mark.parametrize("case", ["gap", "backwards", "nan"])
def test_gap_time_reversal_and_nan_restart_the_filter(case):
    f = one_euro()
    for i in range(30):
        f(0.0, i / FPS)
    t_last = 29 / FPS
    if case == "nan":
        assert math.isnan(f(float("nan"), t_last + 1 / FPS))
        t_next = t_last + 2 / FPS
    elif case == "gap":
        t_next = t_last + MAX_GAP_S + 0.1
    else:
        t_next = t_last - 1.0
    assert f(100.0, t_next) == 100.0  # restarted: the first sample passes through


@pytest.mark.parametrize("kind", ["one_euro", "ema", "none"])
@pytest.mark.parametrize("blink_frames", [3, 5])
def test_smoothed_blink_still_dips_below_the_closed_threshold(kind, blink_frames):
    """A 100-170 ms blink (EAR 0.30 -> 0.08) must survive smoothing: threshold 0.65 x 0.30 = 0.195."""
    sm = SignalSmoother(SmoothingConfig(signal_filter=kind))
    ears = [0.30] * 30 + [0.08] * blink_frames + [0.30] * 30
    outs = [sm.update(sig(ear=e), i / FPS).ear for i, e in enumerate(ears)]
    assert min(outs) < 0.195
    assert outs[-1] == pytest.approx(0.30, abs=0.01)


def test_smoother_keeps_every_field_and_passes_hidden_eyes_raw():
    sm = SignalSmoother(SmoothingConfig())
    for i in range(10):
        out = sm.update(sig(ear=0.3, yaw=5.0), i / FPS)
    assert out.yaw_deg == pytest.approx(5.0) and out.eyes_visible
    hidden = sm.update(sig(ear=0.9, yaw=5.0, eyes_visible=False), 10 / FPS)
    assert hidden.ear == 0.9 and not hidden.eyes_visible  # not blended with the visible history
    back = sm.update(sig(ear=0.1), 11 / FPS)
    assert back.ear == pytest.approx(0.1)  # eye filters restarted when the eyes came back


def test_none_filter_is_identity():
    sm = SignalSmoother(SmoothingConfig(signal_filter="none"))
    s = sig(ear=0.2, mar=0.7, yaw=-12.0, pitch=3.0, roll=1.0, gx=0.1, gy=-0.2)
    sm.update(sig(), 0.0)
    out = sm.update(s, 1 / FPS)
    for name in ("ear", "mar", "yaw_deg", "pitch_deg", "roll_deg", "gaze_x", "gaze_y"):
        assert getattr(out, name) == pytest.approx(getattr(s, name))


def test_prob_smoother_time_constant_and_sum():
    tau = 0.5
    ps = ProbSmoother(SmoothingConfig(prob_time_constant_s=tau))
    a = np.array([1, 0, 0, 0], np.float32)
    b = np.array([0, 1, 0, 0], np.float32)
    ps.update(a, 0.0)
    steps = int(round(tau * FPS))
    for i in range(1, steps + 1):
        out = ps.update(b, i / FPS)
    # after one time constant the EMA has moved 1 - 1/e of the way, whatever the frame rate
    assert out[1] == pytest.approx(1.0 - math.exp(-1.0), abs=1e-3)
    assert float(out.sum()) == pytest.approx(1.0, abs=1e-5)
    assert out.dtype == np.float32


@pytest.mark.parametrize("change", ["gap", "shape", "disabled"])
def test_prob_smoother_restarts(change):
    cfg = SmoothingConfig(prob_filter="none") if change == "disabled" else SmoothingConfig()
    ps = ProbSmoother(cfg)
    ps.update(np.array([1, 0, 0], np.float32), 0.0)
    new = np.array([0, 0, 1, 0], np.float32) if change == "shape" else np.array([0, 0, 1], np.float32)
    t = MAX_GAP_S + 0.1 if change == "gap" else 1 / FPS
    np.testing.assert_array_equal(ps.update(new, t), new)


def test_smoother_output_is_a_new_signals():
    sm = SignalSmoother(SmoothingConfig())
    s = sig()
    out = sm.update(s, 0.0)
    assert out == replace(s) and out is not s
