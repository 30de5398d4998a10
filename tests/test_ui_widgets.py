"""Panels, plots buffer, video view helpers (synthetic results, offscreen Qt)."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")

from driver_monitor.config import Config
from driver_monitor.preprocess import AUS, EMOTIONS
from driver_monitor.types import DriverState, EngineReading, Frame, FrameResult, Level, Status
from driver_monitor.ui.main_window import strip_for_export
from driver_monitor.ui.panels import AUPanel, DriverStatePanel, EmotionPanel, au_label, region_text
from driver_monitor.ui.plots import (DEFAULT_PLOTS, MIN_TICK_PX, PLOT_KEYS, RollingBuffer,
                                     SignalPlots, degrees, spread, tick_values, x_range)
from driver_monitor.ui.video_view import (LABEL_BACKDROP, VideoView, contrast_ratio, eye_state_label,
                                          head_pose_axes, over, qimage_view)

from .test_ui_alerts import make_result

pytestmark = pytest.mark.ui


def with_engine(r: FrameResult, top: str = "happiness") -> FrameResult:
    probs = {n: 0.02 for n in EMOTIONS}
    probs[top] = 1.0 - 0.02 * (len(EMOTIONS) - 1)
    aus = {n: 0.1 for n in AUS}
    aus["AU12"] = 0.9
    import dataclasses

    return dataclasses.replace(r, engine=EngineReading(probs, aus))


@pytest.mark.parametrize("name, label", [
    ("AU12", "AU12 lip corner puller"),
    ("AU45", "AU45 blink / eye closure"),
    ("AU1", "AU1 inner brow raiser"),
    ("AU99", "AU99"),
])
def test_au_label(name, label):
    assert au_label(name) == label


def test_emotion_and_au_panels_show_no_engine_then_values(qtbot):
    emo, au = EmotionPanel(EMOTIONS), AUPanel(AUS)  # the names the model carries
    qtbot.addWidget(emo)
    qtbot.addWidget(au)
    r = make_result()
    emo.show_result(r, engine_running=False)
    au.show_result(r, engine_running=False)
    assert emo.headline.text() == "no engine" and au.headline.text() == "no engine"
    assert emo.values is None and all(b.value() == 0 for b in emo.bars.values())
    emo.show_result(with_engine(r, "surprise"))
    au.show_result(with_engine(r))
    assert emo.dominant == "surprise" and "dominant: surprise" in emo.headline.text()
    assert emo.bars["surprise"].value() > 800 and emo.bars["neutral"].value() < 50
    assert "AU12 lip corner puller" in au.headline.text()
    assert au.bars["AU12"].value() == 900
    # a frame with no face while the engine runs: bars clear, says so
    emo.show_result(make_result(face=False), engine_running=True)
    assert emo.headline.text() == "no face" and emo.values is None


@pytest.mark.parametrize("state, field, text", [
    (dict(drowsiness=Level.CRITICAL), "drowsiness", "CRITICAL"),
    (dict(distraction=Level.WARNING), "distraction", "WARNING"),
    (dict(perclos=0.213), "perclos", "21.3%"),
    (dict(perclos=math.nan), "perclos", "collecting"),
    (dict(blink_rate_per_min=14.0, blink_count=7), "blink_rate", "14.0 /min (7 blinks)"),
    (dict(blink_rate_per_min=2.0, blink_count=1), "blink_rate", "2.0 /min (1 blink)"),
    (dict(blink_count=0), "blink_rate", "(0 blinks)"),
    (dict(eyes_closed=True, eyes_closed_s=1.25), "eyes_closed", "1.2 s"),
    (dict(off_road=True, off_road_s=3.5), "off_road", "3.5 s"),
    (dict(yawn_count=2, yawning=True), "yawns", "2  (yawning)"),
])
def test_state_panel_fields(qtbot, state, field, text):
    p = DriverStatePanel()
    qtbot.addWidget(p)
    p.show_result(make_result(**state))
    assert text in getattr(p, field).text()


@pytest.mark.parametrize("state, eyes_visible, face, text", [
    (dict(), True, True, "open"),
    (dict(eyes_closed=True, eyes_closed_s=2.0), True, True, "2.0 s"),
    (dict(status=Status.EYES_NOT_VISIBLE), False, True, "not visible"),
    (dict(), False, True, "not visible"),  # this frame's eyes cannot be measured
    (dict(status=Status.DRIVER_ABSENT), True, False, "not visible"),
])
def test_eyes_closed_never_says_open_when_the_eyes_are_not_visible(qtbot, state, eyes_visible, face, text):
    p = DriverStatePanel()
    qtbot.addWidget(p)
    p.show_result(make_result(eyes_visible=eyes_visible, face=face, **state))
    assert p.eyes_closed.text() == text
    if "not visible" in p.status.text():
        assert p.eyes_closed.text() != "open"


def test_region_text_speaks_plainly():
    text = region_text({"face": 0.993, "eyes": 0.481, "nose": 0.02, "mouth": 0.2}, ["mouth", "left_cheek"])
    assert text == "based mostly on: whole face 99 %, eyes 48 %, mouth 20 % · hidden: mouth, left cheek"
    assert "relied" not in text and "0.99" not in text


def test_state_panel_calibration_and_button(qtbot):
    p = DriverStatePanel()
    qtbot.addWidget(p)
    p.resize(400, 320)  # the panel's width in the default window
    p.show()
    p.show_result(make_result(status=Status.CALIBRATING, calibration_progress=0.42))
    assert p.calibration.value() == 42 and "learning" in p.calibration.format()
    assert "mount's pose" in p.calibration.toolTip()
    p.show_result(make_result(calibrated=True, open_ear=0.31, neutral_yaw_deg=4.0))
    assert p.calibration.value() == 100 and "0.310" in p.calibration.format()
    with qtbot.waitSignal(p.calibrateRequested, timeout=500):
        p.calibrate_button.click()


def _bar_text(bar) -> str:
    return bar.format().replace("%p", str(bar.value()))


@pytest.mark.parametrize("width", [260, 320, 400, 700])
@pytest.mark.parametrize("state", [
    dict(status=Status.CALIBRATING, calibration_progress=0.43),
    dict(calibration_progress=0.1),  # no steady face yet: the mount's pose
    dict(calibrated=True, open_ear=0.312, neutral_yaw_deg=-12.0, neutral_pitch_deg=-8.0),
])
def test_calibration_text_fits_the_bar_with_the_detail_in_the_tooltip(qtbot, width, state):
    p = DriverStatePanel()
    qtbot.addWidget(p)
    p.resize(width, 320)
    p.show()
    p.show_result(make_result(**state))
    bar = p.calibration
    assert bar.fontMetrics().horizontalAdvance(_bar_text(bar)) <= bar.contentsRect().width() - 12
    assert len(bar.toolTip()) > len(_bar_text(bar))  # the whole story is in the tooltip
    if state.get("calibrated"):
        assert "0.312" in bar.toolTip() and "-12°" in bar.toolTip() and "calibrated" in bar.format()
    p.resize(1200, 320)  # wider: the longest form comes back
    qtbot.wait(10)
    if state.get("calibrated"):
        assert "pitch -8°" in bar.format()


@pytest.mark.parametrize("capacity, n, first, last", [(5, 3, 0.0, 2.0), (5, 5, 0.0, 4.0), (5, 12, 7.0, 11.0)])
def test_rolling_buffer_keeps_the_newest_in_order(capacity, n, first, last):
    b = RollingBuffer(capacity, 2)
    for i in range(n):
        b.append(float(i), [i, -i])
    t, v = b.view()
    assert len(t) == min(n, capacity) and t[0] == first and t[-1] == last
    assert np.all(np.diff(t) > 0) and np.array_equal(v[:, 0], t)


def test_rolling_buffer_clears_when_time_goes_back():
    b = RollingBuffer(10, 1)
    for t in (1.0, 2.0, 3.0):
        b.append(t, [t])
    b.append(0.5, [0.5])  # replay seek backwards
    t, _ = b.view()
    assert t.tolist() == [0.5]


def test_plots_draw_thresholds_from_config(qtbot):
    cfg = Config()
    p = SignalPlots(cfg)
    qtbot.addWidget(p)
    assert p.lines["perclos_warning"].value() == cfg.drowsiness.perclos_warning
    assert p.lines["perclos_critical"].value() == cfg.drowsiness.perclos_critical
    assert p.lines["yawn"].value() == cfg.drowsiness.yawn_mar
    assert not p.refresh()  # nothing new: no redraw
    for i in range(10):
        p.append(make_result(t=i / 30, calibrated=True, neutral_yaw_deg=5.0, closed_ear_threshold=0.19))
    assert p.refresh()
    assert p.lines["yaw_hi"].value() == pytest.approx(5.0 + cfg.distraction.yaw_limit_deg)
    assert p.lines["ear_closed"].value() == pytest.approx(0.19)
    x, y = p.curves["ear"].getData()
    assert len(x) == 10 and np.allclose(y, 0.3)


@pytest.mark.parametrize("t_first, t_last, window, expect", [
    (0.0, 2.4, 30.0, (0.0, 2.4)),      # a short clip fills the width
    (0.0, 0.0, 30.0, (0.0, 2.0)),      # one sample: the minimum span, not a zero-wide axis
    (0.0, 12.0, 30.0, (0.0, 12.0)),    # growing until the window is full
    (0.0, 45.0, 30.0, (15.0, 45.0)),   # then the last window_s seconds
    (5.0, 6.0, 1.5, (5.0, 6.5)),       # a window shorter than the minimum span
])
def test_x_range_fits_a_short_clip_then_scrolls(t_first, t_last, window, expect):
    assert x_range(t_first, t_last, window) == pytest.approx(expect)


@pytest.mark.parametrize("px, expect", [(200, [0.0, 0.1, 0.2, 0.3, 0.4]), (80, [0.0, 0.2, 0.4]), (10, [0.0, 0.2, 0.4])])
def test_tick_values_keep_labels_apart(px, expect):
    assert tick_values(0.0, 0.45, px, (0.1, 0.2)) == pytest.approx(expect)


@pytest.mark.parametrize("centres, height, expect", [
    ([10.0, 50.0], 12, [10.0, 50.0]),              # far apart: unmoved
    ([40.0, 44.0], 12, [40.0, 52.0]),              # too close: the lower one moves down
    ([95.0, 97.0], 12, [82.0, 94.0]),              # at the bottom: pushed back up, inside the axis
    ([2.0], 12, [6.0]),                            # a label never sticks out at the top
    ([44.0, 40.0, 42.0], 12, [64.0, 40.0, 52.0]),  # any input order; the top-down order is kept
])
def test_spread_keeps_labels_apart_and_inside(centres, height, expect):
    assert spread(centres, height, 0.0, 100.0) == pytest.approx(expect)


@pytest.mark.parametrize("v, text", [(-28.9, "-28.9°"), (28.0, "+28°"), (-25.7, "-25.7°"), (-0.01, "+0°")])
def test_degrees(v, text):
    assert degrees(v) == text


def test_close_threshold_lines_keep_their_own_labels_with_numbers(qtbot):
    """The mount's yaw limit -28.9° and pitch limit -25.7° are 3° apart: two labels, each with its
    number, neither over the other, all inside the axis."""
    cfg = Config()
    p = SignalPlots(cfg)
    qtbot.addWidget(p)
    p.resize(900, 330)
    p.show()
    qtbot.waitExposed(p)
    for i in range(30):  # the mount's limits, in use until the driver's pose is learned
        p.append(make_result(t=i / 30, yaw_limit_deg=28.9, pitch_limit_deg=25.7))
    p.refresh()
    p.grab()  # paint: the axes lay out their labels
    axis = p.right_axes["pose"]
    assert axis.labels() == ["yaw limit +28.9°", "pitch limit -25.7°", "yaw limit -28.9°"]  # top down
    texts = [t for t, _ in axis.label_rects]
    assert sorted(texts) == sorted(axis.labels())
    rects = [r for _, r in axis.label_rects]
    bounds = axis.boundingRect()
    for (ta, a), (tb, b) in zip(axis.label_rects, axis.label_rects[1:]):
        assert not a.intersects(b), (ta, tb)
    for text, r in axis.label_rects:
        assert bounds.top() - 0.5 <= r.top() and r.bottom() <= bounds.bottom() + 0.5, text
    from PyQt6.QtGui import QFontMetricsF

    fm = QFontMetricsF(axis.style["tickFont"] or p.font())
    assert all(r.left() + fm.horizontalAdvance(t) <= bounds.right() for t, r in axis.label_rects)
    assert len(rects) == 3


def _short_clip(p: SignalPlots, seconds: float = 2.4) -> None:
    for i in range(int(seconds * 30)):
        r = make_result(t=i / 30, calibrated=True, neutral_yaw_deg=5.0, yaw_limit_deg=23.0, closed_ear_threshold=0.15,
                        perclos=0.2)
        p.append(with_engine(r))
    p.refresh()


def test_default_plots_are_few_tall_and_labelled_beside_the_traces(qtbot):
    cfg = Config()
    p = SignalPlots(cfg)
    qtbot.addWidget(p)
    p.resize(1000, 380)  # the plots' share of the default 1400x900 window
    p.show()
    qtbot.waitExposed(p)
    _short_clip(p)
    qtbot.wait(20)
    assert p.visible_plots() == list(DEFAULT_PLOTS) == ["ear", "perclos", "pose"]
    for key in DEFAULT_PLOTS:
        vb = p.plots[key].getViewBox()
        assert vb.height() >= 80, (key, vb.height())
        left = p.plots[key].getAxis("left")
        ticks = left._tickLevels[0]
        lo, hi = vb.viewRange()[1]
        spacing_px = (ticks[1][0] - ticks[0][0]) / (hi - lo) * vb.height()
        assert spacing_px >= MIN_TICK_PX * 0.9, (key, spacing_px)  # tick labels do not overlap
        assert left.label.boundingRect().width() <= p.plots[key].height(), key  # the title is not clipped
    # threshold names are on the right axis, outside the data area; no legend over the traces
    assert all(getattr(line, "label", None) is None for line in p.lines.values())
    assert all(p.plots[k].legend is None for k in PLOT_KEYS)
    assert p.right_axes["perclos"].labels() == ["critical 0.3", "warning 0.15"]  # top down
    assert "yaw limit +28°" in p.right_axes["pose"].labels()  # the learned neutral 5° + the limit in use, 23°
    # a 2.4 s clip fills the width of the 30 s window
    x0, x1 = p.plots["ear"].getViewBox().viewRange()[0]
    assert x0 == pytest.approx(0.0) and x1 == pytest.approx(71 / 30)


def test_plot_selector_shows_and_hides_plots_keeping_their_samples(qtbot):
    p = SignalPlots(Config(), EMOTIONS)
    qtbot.addWidget(p)
    p.resize(1000, 380)
    p.show()
    _short_clip(p)
    assert p.curves["mar"].getData()[0] is None or len(p.curves["mar"].getData()[0]) == 0  # hidden: not drawn
    p.buttons["mar"].click()
    p.buttons["emotion"].click()
    assert p.visible_plots() == ["ear", "mar", "perclos", "pose", "emotion"]
    assert len(p.curves["mar"].getData()[0]) == 72  # drawn from the kept samples when shown
    assert len(p.curves["emo_happiness"].getData()[0]) == 72
    assert p.emotion_legend.isVisible() and "happiness" in p.emotion_legend.text
    assert p.minimumSizeHint().height() >= 5 * 80  # taller rather than squeezed: the splitter makes room
    p.set_plot_visible("ear", False)
    assert not p.buttons["ear"].isChecked() and "ear" not in p.visible_plots()
    with pytest.raises(KeyError):
        p.set_plot_visible("nope", True)


@pytest.mark.parametrize("yaw, pitch, roll, axis, expect", [
    (0, 0, 0, 2, (0.0, 0.0)),        # looking into the camera: forward axis points at the viewer
    (30, 0, 0, 2, (0.5, 0.0)),       # yaw > 0: the face turns towards the image's right
    (-30, 0, 0, 2, (-0.5, 0.0)),
    (0, 30, 0, 2, (0.0, -0.5)),      # pitch > 0: chin up, forward axis goes up (y down)
    (0, 0, 0, 1, (0.0, -1.0)),       # the head's up axis points up
    (0, 0, 90, 0, (0.0, 1.0)),       # roll > 0 is clockwise: the x axis turns downwards
])
def test_head_pose_axes_follow_the_sign_conventions(yaw, pitch, roll, axis, expect):
    got = head_pose_axes(yaw, pitch, roll)[axis]
    assert got == pytest.approx(expect, abs=1e-6)


@pytest.mark.parametrize("shape", [(120, 160, 3), (120, 160)])
def test_qimage_wraps_the_frame_without_copy(shape):
    arr = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    qimg, kept = qimage_view(arr)
    assert kept is arr  # contiguous frames are not copied
    assert (qimg.width(), qimg.height()) == (160, 120)
    ptr = qimg.constBits()
    assert int(ptr) == arr.ctypes.data  # the QImage reads the numpy buffer itself


def test_eye_state_labels_read_on_light_and_dark_frames():
    for eyes_visible, closed in ((False, False), (True, True), (True, False)):
        text, colour = eye_state_label(eyes_visible, closed, 1.2)
        for behind in ("#ffffff", "#d8c0a8", "#808080", "#000000"):  # a white wall, light skin, grey, night
            assert contrast_ratio(colour, over(LABEL_BACKDROP, behind)) >= 4.5, (text, behind)
    assert eye_state_label(False, False, 0.0)[0] == "eyes not visible"
    assert contrast_ratio("#b0b0b0", "#ffffff") < 2.5  # the former grey label, straight on a white frame


def test_eyes_not_visible_label_has_a_dark_backdrop_on_a_white_frame(qtbot):
    import dataclasses

    v = VideoView()
    qtbot.addWidget(v)
    v.resize(640, 480)
    v.show()
    r = make_result(eyes_visible=False, status=Status.EYES_NOT_VISIBLE)
    r = dataclasses.replace(r, frame=Frame(np.full((240, 320, 3), 255, np.uint8), 30, 1.0))
    for name in ("face_box", "mesh", "head_pose", "gaze"):
        v.set_overlay(name, False)
    v.show_result(r)
    img = v.grab().toImage()
    # the label sits above the face box (frame x 100.., y ..80; the frame is scaled 2x into the view)
    ptr = img.convertToFormat(img.Format.Format_RGB888)
    arr = np.frombuffer(ptr.constBits().asarray(ptr.sizeInBytes()), np.uint8).reshape(
        ptr.height(), ptr.bytesPerLine())[:, : ptr.width() * 3].reshape(ptr.height(), ptr.width(), 3)
    region = arr[120:160, 200:330].astype(int).mean(axis=2)
    dark, light = (region < 80).mean(), (region > 200).mean()
    assert dark > 0.25 and light > 0.05  # a dark box with light text (the former grey text alone: no dark pixel)


def test_video_view_draws_frames_and_overlays(qtbot):
    v = VideoView()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    r = make_result(eyes_closed=True, eyes_closed_s=1.0)
    v.show_result(r)
    img = v.grab().toImage()
    assert v.frames_drawn >= 1
    for name in ("face_box", "mesh", "head_pose", "gaze", "eye_state"):
        v.set_overlay(name, False)
    blank = v.grab().toImage()
    assert img != blank  # overlays changed pixels; off, only the (black) frame is left
    with pytest.raises(KeyError):
        v.set_overlay("nope", True)


def test_strip_for_export_keeps_what_the_csv_needs():
    r = make_result()
    s = strip_for_export(r)
    assert s.frame.image.shape == r.frame.image.shape and s.frame.image.strides[:2] == (0, 0)
    assert s.face is not None and np.array_equal(s.face.bbox, r.face.bbox)
    assert s.smoothed == r.smoothed and s.state == r.state and s.aligned is None
    grey = FrameResult(frame=Frame(np.zeros((10, 12), np.uint8), 3, 0.1), camera_ok=True, state=DriverState(0.1))
    assert strip_for_export(grey).frame.width == 12


def test_status_bar_frame_rate_is_held_against_the_sources() -> None:
    from driver_monitor.ui.main_window import fps_text

    assert fps_text(29.84, 30.0) == "29.8 of 30 fps"
    assert fps_text(120.0, None, " (pipeline 6 ms = 167 fps max)") == "120.0 fps (pipeline 6 ms = 167 fps max)"
    assert fps_text(float("nan"), 30.0) == "– fps"


def test_the_phone_box_is_drawn_with_or_without_a_face(qtbot):
    import dataclasses

    v = VideoView()
    qtbot.addWidget(v)
    v.resize(640, 480)
    v.show()
    frame = Frame(np.zeros((240, 320, 3), np.uint8), 30, 1.0)
    plain = dataclasses.replace(make_result(), frame=frame, face=None)
    v.show_result(plain)
    before = v.grab().toImage()
    v.show_result(dataclasses.replace(plain, phone_box=(200.0, 60.0, 260.0, 160.0)))
    seen = v.grab().toImage()
    assert seen != before  # no face, the phone still drawn
    v.set_overlay("phone", False)
    assert v.grab().toImage() == before


# ---------------------------------------------------------------- the window fits the screen

@pytest.mark.parametrize("avail, margins, expect", [
    ((0, 0, 1366, 768), (0, 0, 0, 0), (0, 0, 1366, 768)),        # a laptop: the whole screen
    ((0, 0, 1920, 1080), (0, 0, 0, 0), (260, 90, 1400, 900)),    # room to spare: preferred, centred
    ((0, 27, 1366, 741), (1, 30, 1, 1), (1, 57, 1364, 710)),     # a desktop panel and a title bar
    ((1920, 0, 1280, 1024), (0, 0, 0, 0), (1920, 62, 1280, 900)),  # a second screen on the right
])
def test_fitted_geometry(avail, margins, expect):
    from PyQt6.QtCore import QRect

    from driver_monitor.ui.main_window import fitted_geometry

    assert fitted_geometry(QRect(*avail), margins).getRect() == expect


def test_window_shrinks_to_a_small_screen_with_every_panel_filled(qtbot):
    """Bars for every emotion and AU and all five plots on: the window's minimum still leaves room
    on a 1366x768 screen (title bar and desktop panel included), so a window fitted to it is not
    forced taller than the screen; the panels scroll instead."""
    from PyQt6.QtCore import QRect

    from driver_monitor.ui.main_window import MainWindow, fitted_geometry

    w = MainWindow(Config(), None)
    qtbot.addWidget(w)
    w.emotion_panel.set_names(EMOTIONS)
    w.au_panel.set_names(AUS)
    w.plots.set_emotion_names(EMOTIONS)
    for key in PLOT_KEYS:
        w.plots.set_plot_visible(key, True)
    hint = w.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768 - 80, hint
    rect = fitted_geometry(QRect(0, 0, 780, 600))  # the offscreen screen is 800x800
    w.setGeometry(rect)
    w._share_splitters(rect.width(), rect.height())
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(20)
    assert (w.width(), w.height()) == (780, 600)
    assert w.statusBar().geometry().bottom() < w.height()
    assert w.plots_scroll.verticalScrollBar().maximum() > 0  # five plots: the plot area scrolls


def test_window_refits_once_the_window_managers_frame_is_known(qtbot, monkeypatch):
    """A window manager adds a title bar after the first show: a frame that then reaches past the
    available area is fitted again, the frame's margins taken off."""
    from PyQt6.QtCore import QRect

    from driver_monitor.ui.main_window import MainWindow

    w = MainWindow(Config(), None)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    avail = w.screen().availableGeometry()
    w.setGeometry(QRect(avail.x(), avail.y(), avail.width(), avail.height()))
    qtbot.wait(10)
    title = 30
    platform_frame = MainWindow.frameGeometry  # the platform's own frame (offscreen: a few px)
    monkeypatch.setattr(w, "frameGeometry", lambda: platform_frame(w).adjusted(0, -title, 0, 0))
    assert not avail.contains(w.frameGeometry())
    w._refit_frame()
    qtbot.wait(10)
    assert avail.contains(w.frameGeometry()), (avail, w.frameGeometry())
    assert w.height() <= avail.height() - title


def test_state_rows_explain_themselves(qtbot):
    from PyQt6.QtWidgets import QFormLayout

    p = DriverStatePanel()
    qtbot.addWidget(p)
    form = p.layout()
    tips = {}
    for i in range(form.rowCount()):
        label = form.itemAt(i, QFormLayout.ItemRole.LabelRole)
        if label is not None:
            tips[label.widget().text()] = label.widget().toolTip()
    assert "PERCLOS" in tips and "eyes were closed" in tips["PERCLOS"]
    assert all(tips.values()), [k for k, v in tips.items() if not v]


def test_status_label_shrinks_eliding_with_the_whole_text_in_its_tooltip(qtbot):
    from driver_monitor.ui.main_window import ElidedLabel

    path = "file /media/recordings/fleet-2026/driver-0042/2026-11-30_morning_shift_cab_camera.mp4"
    lab = ElidedLabel(path)
    qtbot.addWidget(lab)
    lab.setToolTip("why: the source")
    assert lab.minimumSizeHint().width() <= 60  # a long path never holds the window wider
    lab.resize(160, 20)
    lab.show()
    lab.setText(path)
    shown = lab.displayed_text()
    assert "…" in shown and lab.fontMetrics().horizontalAdvance(shown) <= 160
    assert lab.toolTip() == path + "\nwhy: the source"
    lab.resize(2000, 20)
    assert lab.displayed_text() == path and lab.toolTip() == "why: the source"
