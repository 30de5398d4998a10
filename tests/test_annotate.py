"""The annotated video's overlay: the levels, and what a region-attention model could not see."""
from __future__ import annotations

import numpy as np

from driver_monitor.annotate import _hidden_lines, annotate
from driver_monitor.types import DriverState, Frame, FrameResult, Level


def result(**kw) -> FrameResult:
    frame = Frame(np.full((120, 160, 3), 90, np.uint8), 3, 0.1)
    return FrameResult(frame=frame, camera_ok=True, state=DriverState(t_s=0.1, drowsiness=Level.WARNING), **kw)


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
