"""The annotated video's overlay: the levels, and what a region-attention model could not see."""
from __future__ import annotations

import numpy as np

from driver_monitor.annotate import _hidden_lines, annotate
from driver_monitor.types import DriverState, EngineReading, Frame, FrameResult, Level


def result(phone_box=None, **kw) -> FrameResult:
    frame = Frame(np.full((120, 160, 3), 90, np.uint8), 3, 0.1)
    return FrameResult(frame=frame, camera_ok=True, state=DriverState(t_s=0.1, drowsiness=Level.WARNING),
                       engine=EngineReading(**kw), phone_box=phone_box)


def test_hidden_regions_and_the_aus_not_read_are_written_on_the_frame() -> None:
    seen = result(regions={"eyes": 0.9, "mouth": 0.95}, emotion_probs={"neutral": 0.7, "happiness": 0.3})
    hidden = result(regions={"eyes": 0.1, "left_cheek": 0.2, "mouth": 0.95}, regions_hidden=("eyes", "left_cheek"),
                    aus_hidden=("AU5", "AU45"), emotion_probs={"neutral": 0.7, "happiness": 0.3})
    assert _hidden_lines(seen) == [] and _hidden_lines(result()) == []
    assert _hidden_lines(hidden) == ["hidden: eyes, left cheek (2 AUs not read)"]
    assert _hidden_lines(result(regions_hidden=("mouth",))) == ["hidden: mouth"]
    a, b = annotate(seen), annotate(hidden)
    assert a.shape == b.shape == (120, 160, 3)
    rows = np.flatnonzero((a != b).any(axis=(1, 2)))
    assert rows.size and rows.min() > 37  # a line below the emotion line, the last both frames have
    assert not np.array_equal(a, result().frame.image)  # overlays drawn on a copy
    assert (result().frame.image == 90).all()


def test_the_phone_box_is_drawn_where_the_detector_found_it() -> None:
    from driver_monitor.annotate import PHONE_BGR

    box = (100.0, 60.0, 140.0, 110.0)
    plain, seen = annotate(result()), annotate(result(phone_box=box))
    diff = (plain != seen).any(axis=2)
    ys, xs = np.nonzero(diff)
    assert xs.min() >= 98 and ys.max() <= 112  # the box and its label, near the box only
    assert (seen[85, 100] == PHONE_BGR).all()  # its left edge, in the colour of a phone only seen
    frame = Frame(np.full((120, 160, 3), 90, np.uint8), 3, 0.1)
    in_use = FrameResult(frame=frame, camera_ok=True, phone_box=box,
                         state=DriverState(t_s=0.1, distraction=Level.WARNING, phone_use=True))
    assert not (annotate(in_use)[85, 100] == PHONE_BGR).all()  # in use: the distraction's colour
    voted = FrameResult(frame=frame, camera_ok=True, phone_box=box, state=DriverState(t_s=0.1, phone_use=True))
    assert (annotate(voted)[85, 100] == PHONE_BGR).all()  # in use before any level: as the dashboard draws it
