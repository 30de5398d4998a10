"""Shared fixtures.

Tests that need the real material in ../shared/data use the ``shared_data`` fixture (or the
``video`` helper): they skip with a reason when it is missing, and fail when DM_REQUIRE_DATA=1
(CI sets it), so CI can never go green by skipping them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("DM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


def _require_data() -> bool:
    return os.environ.get("DM_REQUIRE_DATA", "") not in ("", "0")


def need_data(rel: str = "") -> Path:
    """Path of ../shared/data/<rel>; skip (or fail under DM_REQUIRE_DATA=1) when it is missing."""
    path = SHARED_DATA / rel if rel else SHARED_DATA
    if not path.exists():
        msg = f"{path} is missing: tests that need ../shared/data run only where it is present"
        if _require_data():
            pytest.fail(msg + " (DM_REQUIRE_DATA=1 is set, so this is a failure)")
        pytest.skip(msg)
    return path


def unpack_data(rel: str, into: Path) -> Path:
    """Unpack the archive ../shared/data/<rel> into ``into`` (skips like :func:`need_data`)."""
    import tarfile

    with tarfile.open(need_data(rel)) as tf:
        tf.extractall(into, filter="data")
    return into


def analyze_running(out: Path, *extra: str, poll_s: float = 0.1) -> Any:
    """``driver-monitor analyze`` of sunglasses_talking_yawns.avi into ``out`` in a process of its
    own, without the engine, returned once it has written 20 kB of frames.csv (so a signal sent
    now stops a run that has results to keep)."""
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, "-m", "driver_monitor.cli", "analyze",
                             str(need_data("videos/sunglasses_talking_yawns.avi")), "--out", str(out),
                             "--no-progress", "--set", "engine.enabled=false", *extra], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (out / "frames.csv").is_file() and (out / "frames.csv").stat().st_size > 20000:
            break
        time.sleep(poll_s)
    return proc


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need_data()


@pytest.fixture(scope="session")
def videos_dir() -> Path:
    return need_data("videos")


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_eval(tmp_path_factory):
    """``driver-monitor evaluate scenarios/shared_clips.yaml`` once per test run: (exit code, the
    results folder with one sub-folder of analyze output per clip, dms_eval.json as a dict)."""
    import json

    from driver_monitor.cli import main

    videos = need_data("videos")
    out = tmp_path_factory.mktemp("dms_eval")
    rc = main(["evaluate", str(PROJECT_ROOT / "scenarios" / "shared_clips.yaml"), "--out", str(out),
               "--video-dir", str(videos)])
    return rc, out, json.loads((out / "dms_eval.json").read_text())


@pytest.fixture(autouse=True)
def _qt_widgets_held_until_closed(request):
    """pytest-qt holds the widgets a test registers (``qtbot.addWidget``) by weak reference and
    closes them in the test's teardown. Between the end of the test and that teardown, a garbage
    collection may free a dashboard caught in a reference cycle while its session thread still
    runs, and Qt aborts the whole process when a running QThread is destroyed (seen as a rare
    SIGABRT in tests/test_ui_worker.py). So every registered widget is also held here until the
    teardown has closed it."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    qtbot = request.getfixturevalue("qtbot")
    held: list = []
    add = qtbot.addWidget

    def add_and_hold(widget, *args, **kwargs):
        held.append(widget)
        return add(widget, *args, **kwargs)

    qtbot.addWidget = add_and_hold
    yield
    held.clear()
