"""Alert banner table, sound requests with mute, event list (synthetic results, offscreen Qt)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")

from driver_monitor.types import DriverState, Event, Face, Frame, FrameResult, Level, Signals, Status
from driver_monitor.ui.alerts_ui import (AlertBanner, AlertSound, BannerSpec, EventList,
                                         backend_note, backend_status, banner_for)

pytestmark = pytest.mark.ui


def make_face() -> Face:
    lm = np.zeros((478, 3), np.float32)
    lm[:, 0] = np.linspace(100, 200, 478)
    lm[:, 1] = np.linspace(80, 220, 478)
    return Face(np.array([100, 80, 200, 220], np.float32), lm)


def make_signals(eyes_visible: bool = True) -> Signals:
    return Signals(0.3, 0.3, 0.3, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, eyes_visible)


def make_result(t: float = 1.0, *, face: bool = True, camera_ok: bool = True, eyes_visible: bool = True,
                **state) -> FrameResult:
    st = DriverState(t_s=t, **state)
    return FrameResult(frame=Frame(np.zeros((240, 320, 3), np.uint8), int(t * 30), t), camera_ok=camera_ok,
                       state=st, face=make_face() if face else None, faces_count=int(face),
                       signals=make_signals(eyes_visible) if face else None,
                       smoothed=make_signals(eyes_visible) if face else None)


@pytest.mark.parametrize("kwargs, colour, needle", [
    (dict(), "ok", "driver attentive"),
    (dict(status=Status.CALIBRATING, calibration_progress=0.4), "info",
     "learning the driver's road pose (40%); alerts active"),
    (dict(face=False, status=Status.DRIVER_ABSENT), "degraded", "driver not visible"),
    (dict(face=False), "info", "looking for the driver's face"),  # before driver_absent_s has passed
    (dict(camera_ok=False, face=False, status=Status.CAMERA_LOST), "degraded", "camera lost"),
    (dict(eyes_visible=False, status=Status.EYES_NOT_VISIBLE), "degraded", "eyes not visible"),
    (dict(eyes_visible=False), "ok", "driver attentive"),  # one hidden-eye frame: the monitor decides
    (dict(drowsiness=Level.WARNING, eyes_closed=True, eyes_closed_s=1.4), "warning", "DROWSINESS WARNING"),
    (dict(drowsiness=Level.CRITICAL, eyes_closed=True, eyes_closed_s=2.5), "critical", "eyes closed 2.5 s"),
    (dict(distraction=Level.WARNING, off_road=True, off_road_s=3.6), "warning", "DISTRACTION WARNING"),
    (dict(distraction=Level.CRITICAL, off_road=True, off_road_s=6.2, off_road_reason="face_lost"), "critical",
     "eyes off road 6.2 s, face lost"),
    (dict(distraction=Level.WARNING, time_sharing_s=10.4), "warning", "glances away 10 s"),
    (dict(distraction=Level.WARNING, off_road=True, off_road_s=4.1, off_road_reason="phone"), "warning",
     "DISTRACTION WARNING (phone in use 4.1 s)"),
    # an alert outranks a degraded state
    (dict(distraction=Level.CRITICAL, status=Status.EYES_NOT_VISIBLE, eyes_visible=False), "critical", "DISTRACTION"),
])
def test_banner_table(kwargs, colour, needle):
    spec = banner_for(make_result(**kwargs), "tensorrt cuda fp16")
    assert spec.colour == colour
    assert needle in spec.text
    assert "CPU" not in spec.text


@pytest.mark.parametrize("backend, note", [
    ("onnxruntime cpu fp32", None),  # the CPU is how a machine without an NVIDIA GPU runs: not a warning
    ("torch cpu fp32", None),
    ("tensorrt cuda fp16", None),
    ("onnxruntime cuda fp32", None),
    ("none", "no engine: emotions and action units off"),
    ("", "no engine: emotions and action units off"),
])
def test_backend_note_only_for_a_real_problem(backend, note):
    assert backend_note(backend) == note
    text = banner_for(make_result(), backend).text
    assert (note in text) if note else (text == "driver attentive")
    assert "CPU" not in text and "TensorRT" not in text


@pytest.mark.parametrize("backend, reason, text, in_tip", [
    ("onnxruntime cpu fp32", "no CUDA device", "backend: onnxruntime cpu fp32", "Runs on the CPU"),
    ("onnxruntime CPU fp32", None, "backend: onnxruntime CPU fp32", "TensorRT or CUDA"),
    ("tensorrt cuda fp16", "engine cached", "backend: tensorrt cuda fp16", "why this backend: engine cached"),
    ("none", None, "backend: none", "alerts still run"),
])
def test_backend_status_is_a_plain_status(backend, reason, text, in_tip):
    shown, tip = backend_status(backend, reason)
    assert shown == text and in_tip in tip
    assert ("Runs on the CPU" in tip) == ("cpu" in backend.lower())


def test_banner_widget_colour_follows_level(qtbot):
    b = AlertBanner()
    qtbot.addWidget(b)
    b.show_spec(banner_for(make_result(drowsiness=Level.CRITICAL), ""))
    assert "#c62828" in b.styleSheet() and "DROWSINESS CRITICAL" in b.text()
    b.show_spec(BannerSpec("driver attentive", "ok"))
    assert "#1f7a3a" in b.styleSheet()


def test_banner_elides_a_long_text_and_its_size_hints_stay_bounded(qtbot):
    b = AlertBanner()
    qtbot.addWidget(b)
    b.resize(600, 44)
    b.show()
    plain_hint = b.sizeHint().height()
    text = "could not start: camera 7 could not be opened; " + "try another camera index, " * 100
    b.show_spec(BannerSpec(text, "critical"))
    assert b.text() == text  # the whole text is kept (and in the tooltip), only the painting is elided
    assert b.minimumSizeHint().width() <= AlertBanner.MIN_WIDTH
    assert b.sizeHint().width() <= AlertBanner.MAX_HINT and b.sizeHint().height() == plain_hint
    shown = b.displayed_text()
    assert shown.startswith("could not start: camera 7") and shown.endswith("…")
    assert b.fontMetrics().horizontalAdvance(shown) <= b.contentsRect().width()
    assert b.toolTip() == text
    b.show_spec(BannerSpec("driver attentive", "ok"))
    assert b.displayed_text() == "driver attentive" and b.toolTip() == ""


@pytest.mark.parametrize("levels, expected_requests", [
    ([0, 0, 0], 0),
    ([0, 1, 1, 1], 1),          # one request on the rise, none while it holds
    ([0, 1, 2, 2], 2),          # warning, then the step up to critical
    ([0, 1, 0, 1], 2),          # a new rise sounds again
])
def test_sound_requests_on_rising_level(qtbot, levels, expected_requests):
    s = AlertSound(enabled=True, repeat_critical_s=100.0)
    with qtbot.waitSignals([s.soundRequested] * expected_requests, timeout=100) if expected_requests else _null():
        for i, lv in enumerate(levels):
            s.on_level(Level(lv), i * 0.1)
    assert s.requests == expected_requests


def test_critical_repeats_and_mute_keeps_requests_but_plays_nothing(qapp):
    s = AlertSound(enabled=True, repeat_critical_s=2.0)
    s.set_muted(True)
    fired = [s.on_level(Level.CRITICAL, t) for t in np.arange(0.0, 5.01, 0.5)]
    assert fired.count(True) == 3  # t = 0, 2, 4
    assert s.requests == 3
    assert s.played == 0
    s.toggle_mute()
    assert not s.muted


def test_sound_fails_soft_without_audio_device(qapp):
    s = AlertSound(enabled=True)
    s.on_level(Level.WARNING, 0.0)
    assert s.requests == 1
    # this machine has no audio device: either it played (a device exists) or it says why not
    assert s.played == 1 or (s.available is False and s.unavailable_reason)


def test_event_list_replaces_start_with_end_and_click_emits(qtbot):
    lst = EventList()
    qtbot.addWidget(lst)
    start = Event("microsleep", Level.WARNING, 2.0, None, 60)
    end = Event("microsleep", Level.CRITICAL, 2.0, 4.5, 60, 135)
    lst.add_events([start, Event("blink", Level.NONE, 1.0, 1.2, 30, 36)])
    assert lst.count() == 1  # blinks are not listed
    lst.add_events([end])
    assert lst.count() == 1 and "4.50" in lst.item(0).text() and "critical" in lst.item(0).text()
    lst.add_events([start])  # a replayed start does not undo the end
    assert "4.50" in lst.item(0).text()
    with qtbot.waitSignal(lst.eventActivated, timeout=500) as sig:
        lst.itemClicked.emit(lst.item(0))
    assert sig.args[0] == end


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
