"""`driver-monitor batch` under faults: more workers than the cluster holds, stop signals, two files
of one name, repeated manifest rows, an engine that does not open, Ray's own messages.

Small synthetic drives (grey frames with a moving square, no face), the engine off where it does
not matter; one local Ray cluster (2 CPUs) serves the module. The pure parts run without Ray.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.cli import main
from driver_monitor.commands.batch import _batch_line
from driver_monitor.fleet import (BatchOptions, Drive, RayMessages, StopSignals, is_complete, place_drives,
                                  read_drives, run_batch, stamped, worker_count)

NO_ENGINE = ("engine.enabled=false",)


def synthetic_drive(path: Path, frames: int, shade: int = 90) -> Path:
    """A small video: a grey frame with a square moving across it (no face: analysed quickly)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (160, 120))
    assert vw.isOpened()
    for i in range(frames):
        img = np.full((120, 160, 3), shade, np.uint8)
        x = (i * 3) % 140
        img[50:70, x:x + 20] = 220
        vw.write(img)
    vw.release()
    return path


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason='the fleet extra is not installed (pip install -e ".[fleet]")')
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def outcomes(out: Path) -> dict[str, dict]:
    return {o["drive"]: o for o in map(json.loads, (out / "fleet.jsonl").read_text().splitlines())}


# --------------------------------------------------------------------------- workers


def test_workers_beyond_the_cluster_are_capped_with_one_line() -> None:
    said: list[str] = []
    assert worker_count({"CPU": 2.0}, 100, 1.0, 0.0, said.append) == 2
    assert len(said) == 1 and "--workers 100" in said[0] and "using 2" in said[0] and "2 CPUs" in said[0]
    assert worker_count({"CPU": 2.0}, 2, 1.0, 0.0, said.append) == 2 and len(said) == 1  # fits: no word
    assert worker_count({"CPU": 8.0, "GPU": 1.0}, 4, 1.0, 0.5, said.append) == 2  # the GPUs hold two
    assert worker_count({"CPU": 2.0}, None, 0.5, 0.0) == 4
    with pytest.raises(Exception, match="not enough for one worker"):
        worker_count({"CPU": 2.0}, 1, 4.0, 0.0)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_batch_with_more_workers_than_cpus_ends(tmp_path, cluster) -> None:
    for n in ("a", "b", "c"):
        synthetic_drive(tmp_path / "in" / f"{n}.avi", 20)
    said: list[str] = []
    stats = run_batch(tmp_path / "in", tmp_path / "out", BatchOptions(overrides=NO_ENGINE, workers=3,
                                                                      progress=False), said.append)
    assert stats["ok"] == 3 and stats["workers"] == 2
    assert [s for s in said if "--workers 3" in s and "using 2" in s]


# --------------------------------------------------------------------------- stop signals


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("signame, code, line", [("SIGTERM", 143, "stopped by SIGTERM"),
                                                 ("SIGHUP", 129, "stopped by SIGHUP"),
                                                 ("SIGINT", 130, "interrupted (Ctrl-C)")])
def test_a_stop_signal_keeps_completed_drives_and_writes_the_report(tmp_path, cluster, capsys, signame, code,
                                                                    line) -> None:
    """The first drive complete, the second running, the third not started when the signal comes."""
    src = tmp_path / "in"
    synthetic_drive(src / "a_short.avi", 20)
    synthetic_drive(src / "b_long.avi", 3000)
    synthetic_drive(src / "c_short.avi", 20)
    out = tmp_path / "out"
    sig = getattr(signal, signame)

    def send_when_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if is_complete(out / "drives" / "a_short") and list((out / "drives").glob(".tmp-b_long*/frames.csv")):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(os.getpid(), sig)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    sender = threading.Thread(target=send_when_running, daemon=True)
    sender.start()
    try:
        rc = main(["batch", str(src), "--out", str(out), "--workers", "1", "--no-progress",
                   "--set", "engine.enabled=false"])
    finally:
        sender.join(5)
        for s, h in before.items():
            signal.signal(s, h)
    got = capsys.readouterr()
    assert rc == code, got.err
    assert got.err.strip().splitlines() == [got.err.strip()] and got.err.startswith(line)
    assert "1 drives analysed and kept, 1 interrupted while running, 1 not started" in got.err
    assert "retries remaining" not in got.out + got.err and "(raylet)" not in got.out
    o = outcomes(out)
    assert o["a_short"]["status"] == "ok"
    assert o["b_long"]["status"] == "interrupted" and "while running" in o["b_long"]["reason"]
    assert o["c_short"]["status"] == "not run" and "before it started" in o["c_short"]["reason"]
    assert not list((out / "drives").glob(".tmp-*")) and not (out / "drives" / "b_long").exists()
    assert is_complete(out / "drives" / "a_short")
    for name in ("batch.json", "fleet.csv", "fleet.html"):
        assert (out / name).is_file(), name
    stats = json.loads((out / "batch.json").read_text())
    assert (stats["ok"], stats["interrupted"], stats["not_run"]) == (1, 1, 1)


def test_stop_signals_are_noted_and_the_handlers_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)  # a second signal: the first decides
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGTERM) is before
    exc = stop.interrupt()
    assert exc.exit_code == 129 and exc.name == "SIGHUP"
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert type(stop.interrupt()) is KeyboardInterrupt


# --------------------------------------------------------------------------- drive identity


def _complete_folder(out: Path, d: Drive) -> None:
    """A drive folder as a finished worker leaves it."""
    f = out / "drives" / d.id
    f.mkdir(parents=True)
    (f / "summary.json").write_text(json.dumps({"frames": 1, "machine": {}, "complete": True}))
    (f / "frames.csv").write_text("frame\n0\n")
    from dataclasses import asdict

    (f / "drive.json").write_text(json.dumps(asdict(d)))


def _two_manifests(tmp: Path) -> tuple[Path, Path]:
    """Two manifests in their own folders, each naming an x.avi of another folder (both get id x)."""
    synthetic_drive(tmp / "v1" / "x.avi", 20, shade=60)
    synthetic_drive(tmp / "v2" / "x.avi", 30, shade=160)
    m1, m2 = tmp / "m1" / "drives.csv", tmp / "m2" / "drives.csv"
    for m, v in ((m1, "v1"), (m2, "v2")):
        m.parent.mkdir()
        m.write_text(f"path,driver_id\n{tmp / v / 'x.avi'},{v}\n")
    return m1, m2


def test_a_drive_is_known_by_its_file_not_its_name(tmp_path) -> None:
    m1, m2 = _two_manifests(tmp_path)
    out = tmp_path / "out"
    (first,) = [stamped(d) for d in read_drives(m1)]
    (second,) = [stamped(d) for d in read_drives(m2)]
    assert first.id == second.id == "x"
    _complete_folder(out, first)
    placed, done, changed = place_drives([first], out)
    assert [d.id for d in placed] == ["x"] and done == {"x"} and not changed
    # the other file of the same name: its own folder, not the first one's results
    placed, done, changed = place_drives([second], out)
    assert placed[0].id != "x" and placed[0].id.startswith("x-") and not done
    assert place_drives([second], out)[0][0].id == placed[0].id  # the same at every run
    _complete_folder(out, placed[0])
    assert place_drives([second], out)[1] == {placed[0].id}
    assert place_drives([first], out)[1] == {"x"}
    # the first file re-recorded (same path, new size and time): analysed again
    synthetic_drive(tmp_path / "v1" / "x.avi", 25, shade=70)
    os.utime(tmp_path / "v1" / "x.avi", ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    placed, done, changed = place_drives([stamped(read_drives(m1)[0])], out)
    assert placed[0].id == "x" and not done and changed == ["x"]
    assert place_drives([first], out, force=True)[1] == set()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_rerun_with_another_manifest_analyses_its_own_drive(tmp_path, cluster) -> None:
    m1, m2 = _two_manifests(tmp_path)
    out = tmp_path / "out"
    opts = BatchOptions(overrides=NO_ENGINE, workers=1, progress=False)
    assert run_batch(m1, out, opts)["ok"] == 1
    again = run_batch(m2, out, opts)
    assert again["ok"] == 1 and again["skipped"] == 0
    (o,) = outcomes(out).values()
    folder = out / "drives" / o["drive"]
    assert o["drive"] != "x" and json.loads((folder / "summary.json").read_text())["frames"] == 30
    assert json.loads((out / "drives" / "x" / "summary.json").read_text())["frames"] == 20  # kept
    assert json.loads((folder / "drive.json").read_text())["path"] == str(tmp_path / "v2" / "x.avi")
    assert run_batch(m1, out, opts)["skipped"] == 1


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_repeated_manifest_row_is_analysed_once_with_one_warning(tmp_path, suffix) -> None:
    a, b = synthetic_drive(tmp_path / "a.avi", 5), synthetic_drive(tmp_path / "b.avi", 5)
    rows = [(a, "anna"), (b, "ben"), (a, "carl"), ("a.avi", "dora")]  # the last: the same file, relative
    m = tmp_path / f"drives{suffix}"
    if suffix == ".csv":
        m.write_text("path,driver_id\n" + "".join(f"{p},{d}\n" for p, d in rows))
    else:
        m.write_text("".join(json.dumps({"path": str(p), "driver_id": d}) + "\n" for p, d in rows))
    said: list[str] = []
    drives = read_drives(m, said.append)
    assert [(Path(d.path).name, d.driver_id) for d in drives] == [("a.avi", "anna"), ("b.avi", "ben")]
    first, again = (2, (4, 5)) if suffix == ".csv" else (1, (3, 4))  # the CSV's header is line 1
    assert len(said) == 1 and str(m) in said[0]
    assert all(f"a.avi on line {n} (first on line {first})" in said[0] for n in again)
    assert read_drives(m) == drives  # no warn given: still once


# --------------------------------------------------------------------------- the engine


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_model_that_does_not_open_stops_the_batch_before_any_drive(tmp_path, cluster, capsys) -> None:
    synthetic_drive(tmp_path / "in" / "a.avi", 10)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(os.urandom(4096))
    out = tmp_path / "out"
    rc = main(["batch", str(tmp_path / "in"), "--out", str(out), "--workers", "1", "--no-progress",
               "--set", f"engine.model={bad}"])
    err = capsys.readouterr().err.strip()
    assert rc == 4 and err.count("\n") == 0 and "did not open" in err and "engine.enabled=false" in err
    assert not [d for d in (out / "drives").iterdir()] and not (out / "fleet.jsonl").exists()


# --------------------------------------------------------------------------- the console


def test_ray_messages_go_to_the_log_file_unless_verbose(tmp_path, capsys) -> None:
    pytest.importorskip("ray")
    import ray._private.worker as rw

    msg = {"lines": ["Task DriveAnalyzer.analyze failed. There are 2 retries remaining"], "pid": "raylet",
           "is_err": False}
    original = rw.print_to_stdstream
    with RayMessages(tmp_path / "ray.log"):
        rw.print_to_stdstream(msg, ignore_prefix=False)
    assert rw.print_to_stdstream is original
    assert "retries remaining" not in capsys.readouterr().out
    assert "(raylet) Task DriveAnalyzer.analyze failed" in (tmp_path / "ray.log").read_text()
    with RayMessages(tmp_path / "verbose.log", verbose=True):
        assert rw.print_to_stdstream is original


def test_a_rerun_with_nothing_left_says_so() -> None:
    stats = {"drives": 4, "skipped": 4, "ok": 0, "incomplete": 0, "failed": 0, "frames": 0, "seconds": 0.1,
             "fps": None, "workers": 0}
    line = _batch_line(stats, "out")
    assert "None" not in line and "0 workers" not in line and "all already complete" in line
    some = _batch_line({**stats, "skipped": 1, "ok": 2, "failed": 1, "frames": 300, "seconds": 3.0, "fps": 100.0,
                        "workers": 1}, "out")
    assert "100 frames/s, 1 worker)" in some
    assert _batch_line({**stats, "drives": 1, "skipped": 1}, "out").startswith("1 drive, all already complete")
