"""The cores this process may run on, and keeping threads on one of them (Linux).

Pure module: the standard library only. Thread pools are sized from :func:`usable_cores` (ONNX
Runtime's, OpenCV's while the frame loop's stages run), and the frame loop keeps the face mesh's
threads together with :func:`this_core` and :func:`pin`.
"""
from __future__ import annotations

import os
from typing import Iterable


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one), at least 1."""
    return max(1, len(allowed_cores()))


def this_core() -> int | None:
    """The core the calling thread runs on, when threads can be pinned (Linux) and this process may
    use more than one core; None otherwise (then nothing should be pinned)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = allowed_cores()
    if len(allowed) < 2:
        return None
    try:
        with open("/proc/thread-self/stat", encoding="ascii") as f:
            stat = f.read()
        core = int(stat[stat.rindex(")") + 2:].split()[36])  # field 39, "processor"
    except (OSError, ValueError, IndexError):
        core = -1
    return core if core in allowed else min(allowed)


def allowed_cores() -> set[int]:
    """The calling thread's cores (its affinity); every core where threads cannot be pinned."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def pin(thread_ids: Iterable[int], cores: set[int]) -> None:
    """Let the threads (native ids; 0 = the calling thread) run on ``cores`` only. A thread that has
    ended meanwhile is skipped; where threads cannot be pinned, nothing happens."""
    if not hasattr(os, "sched_setaffinity"):
        return
    for tid in thread_ids:
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:  # the thread ended
            continue
