"""cores.py: the usable cores, the calling thread's core, pinning threads and letting them go."""
from __future__ import annotations

import os
import threading

import pytest

from driver_monitor.cores import allowed_cores, pin, this_core, usable_cores

linux_2 = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                             reason="pinning needs Linux and at least 2 usable cores")


def test_usable_cores_follow_the_affinity() -> None:
    assert usable_cores() >= 1 and usable_cores() == len(allowed_cores())
    if hasattr(os, "sched_getaffinity"):
        assert allowed_cores() == set(os.sched_getaffinity(0))


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("v", fn()))
    t.start()
    t.join()
    return out["v"]


@linux_2
def test_this_core_is_one_the_thread_may_use_and_none_once_it_has_one() -> None:
    assert this_core() in allowed_cores()

    def pinned_then_asked():
        core = min(allowed_cores())
        pin((0,), {core})
        return this_core(), allowed_cores()

    asked, cores = _in_thread(pinned_then_asked)
    assert asked is None and len(cores) == 1  # a thread on one core has nothing to choose
    assert len(allowed_cores()) >= 2  # only that thread was pinned


@linux_2
def test_pin_and_release_another_thread_and_skip_one_that_ended() -> None:
    release = threading.Event()
    t = threading.Thread(target=release.wait)
    t.start()
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join()
    try:
        everything = allowed_cores()
        core = max(everything)
        pin((t.native_id, ended.native_id), {core})
        assert os.sched_getaffinity(t.native_id) == {core}
        pin((t.native_id,), everything)
        assert os.sched_getaffinity(t.native_id) == everything
    finally:
        release.set()
        t.join()
