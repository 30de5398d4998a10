"""`driver-monitor batch` on Ray: the same results as analyze, faults, resuming, the report.

One local Ray cluster (2 CPUs) serves the whole module; the batch runs reuse it and leave it up.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from driver_monitor.cli import main
from driver_monitor.errors import ConfigError
from driver_monitor.fleet import BatchOptions, is_complete, read_drives, run_batch
from driver_monitor.fleet_report import drive_row, driver_rows

from .conftest import PROJECT_ROOT, need_data

ray = pytest.importorskip("ray", reason='the fleet extra is not installed (pip install -e ".[fleet]")')

pytestmark = [pytest.mark.data, pytest.mark.slow]
NO_ENGINE = ("engine.enabled=false",)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    import logging

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


def drives_folder(tmp: Path, names: list[str]) -> Path:
    d = tmp / "drives_in"
    d.mkdir()
    for n in names:
        os.symlink(need_data(f"videos/{n}"), d / n)
    return d


def frames(folder: Path) -> list[dict[str, str]]:
    with open(folder / "frames.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if not k.startswith("ms_")} for r in csv.DictReader(fh)]


def summary_without_timing(folder: Path) -> dict:
    s = json.loads((folder / "summary.json").read_text())
    for k in ("wall_time_s", "processing_fps", "loop_s", "loop_fps", "loop_cpu_s", "loop_cores"):
        s.pop(k, None)
    s["config"]["engine"].pop("cpu_threads")  # the worker's CPUs, a timing choice
    s["config"]["face"].pop("pin_mesh")  # whether the mesh keeps to one core: a timing choice
    return s


def test_every_shared_drive_gives_what_analyze_gives(tmp_path, shared_eval):
    """The batch of every shared video (and one broken file) against analyze's results on the same
    videos (the evaluation's analyze runs, default config)."""
    _, eval_out, summary = shared_eval
    names = sorted(p.name for p in need_data("videos").iterdir())
    src = drives_folder(tmp_path, names)
    (src / "broken.mp4").write_text("not a video\n")
    out = tmp_path / "out"
    rc = main(["batch", str(src), "--out", str(out), "--workers", "2", "--no-progress"])
    assert rc == 9  # one drive failed
    outcomes = {o["drive"]: o for o in map(json.loads, (out / "fleet.jsonl").read_text().splitlines())}
    assert outcomes["broken"]["status"] == "failed" and "could not be opened" in outcomes["broken"]["reason"]
    assert not (out / "drives" / "broken").exists()
    by_video = {Path(c["video"]).name: c["name"] for c in summary["clips"] if not c["set"]}
    for name in names:
        got, ref = out / "drives" / Path(name).stem, eval_out / by_video[name]
        assert outcomes[Path(name).stem]["status"] == "ok", outcomes[Path(name).stem]
        assert frames(got) == frames(ref), name
        assert (got / "events.jsonl").read_text() == (ref / "events.jsonl").read_text(), name
        assert summary_without_timing(got) == summary_without_timing(ref), name
    rows = list(csv.DictReader(open(out / "fleet.csv")))
    assert len(rows) == len(names) and (out / "fleet.html").read_text().startswith("<!doctype html>")
    stats = json.loads((out / "batch.json").read_text())
    assert stats["workers"] == 2 and stats["ok"] == len(names) and stats["failed"] == 1


def test_rerun_skips_complete_drives_and_force_redoes_them(tmp_path):
    src = drives_folder(tmp_path, ["single_face.mp4", "no_face.mp4"])
    out = tmp_path / "out"
    opts = BatchOptions(overrides=NO_ENGINE, workers=2, progress=False)
    assert run_batch(src, out, opts)["ok"] == 2
    stamp = (out / "drives" / "single_face" / "frames.csv").stat().st_mtime_ns
    again = run_batch(src, out, opts)
    assert again["skipped"] == 2 and again["ok"] == 0 and again["workers"] == 0
    assert (out / "drives" / "single_face" / "frames.csv").stat().st_mtime_ns == stamp
    forced = run_batch(src, out, BatchOptions(overrides=NO_ENGINE, workers=2, progress=False, force=True))
    assert forced["ok"] == 2 and (out / "drives" / "single_face" / "frames.csv").stat().st_mtime_ns != stamp
    # a half-written drive of a killed run is removed, and the drive done again
    (out / "drives" / ".tmp-no_face-dead").mkdir()
    (out / "drives" / "no_face" / "summary.json").write_text('{"complete": false}')  # as a crash leaves it
    fixed = run_batch(src, out, opts)
    assert fixed["ok"] == 1 and fixed["skipped"] == 1 and not list((out / "drives").glob(".tmp-*"))


def _analyzer_pids() -> list[int]:
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if b"DriveAnalyzer" in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


def test_a_worker_killed_mid_drive_is_retried(tmp_path):
    src = drives_folder(tmp_path, ["sunglasses_talking_yawns.avi"])
    out = tmp_path / "out"
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(
        run_batch(src, out, BatchOptions(overrides=NO_ENGINE, workers=1, progress=False, retries=2))))
    run.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((out / "drives").glob(".tmp-*/frames.csv")):
        time.sleep(0.1)
    time.sleep(1.0)  # well into the drive
    killed = _analyzer_pids()
    assert killed, "no worker process found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    run.join(180)
    assert result["ok"] == 1 and result["failed"] == 0
    assert is_complete(out / "drives" / "sunglasses_talking_yawns")
    assert len(frames(out / "drives" / "sunglasses_talking_yawns")) == 1683
    assert not list((out / "drives").glob(".tmp-*"))


def test_ctrl_c_keeps_every_completed_drive(tmp_path):
    src = drives_folder(tmp_path, ["single_face.mp4", "no_face.mp4", "sunglasses_talking_yawns.avi",
                                   "head_turns.mp4"])
    out = tmp_path / "out"
    # a caught signal is back to its default in the child, so Ctrl-C reaches the batch even when these
    # tests were started with it ignored (a shell's background job inherits SIGINT ignored)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "driver_monitor.cli", "batch", str(src), "--out", str(out),
                                 "--workers", "1", "--no-progress", "--set", "engine.enabled=false"],
                                cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    finally:
        signal.signal(signal.SIGINT, before)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not [d for d in (out / "drives").glob("*") if d.is_dir()
                                                 and not d.name.startswith(".")]:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    done = [d for d in (out / "drives").iterdir() if not d.name.startswith(".")]
    assert done and all(is_complete(d) for d in done)
    assert not list((out / "drives").glob(".tmp-*"))
    lines = [json.loads(x) for x in (out / "fleet.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {x["status"] for x in lines} <= {"ok", "interrupted", "not run"}
    assert err.strip().startswith("interrupted (Ctrl-C): ") and len(err.strip().splitlines()) == 1, err
    assert (out / "fleet.csv").is_file() and (out / "batch.json").is_file()


def test_manifest_with_drivers_groups_the_report(tmp_path):
    videos = need_data("videos")
    manifest = tmp_path / "drives.csv"
    manifest.write_text("path,driver_id,vehicle_id,start_time\n"
                        f"{videos / 'single_face.mp4'},anna,v1,2026-11-01T08:00\n"
                        f"{videos / 'yawn_in_car.mp4'},ben,v2,2026-11-01T09:00\n"
                        f"{videos / 'no_face.mp4'},anna,v1,2026-11-02T08:00\n")
    out = tmp_path / "out"
    stats = run_batch(manifest, out, BatchOptions(overrides=NO_ENGINE, workers=2, progress=False))
    assert stats["ok"] == 3
    rows = {r["drive"]: r for r in csv.DictReader(open(out / "fleet.csv"))}
    assert rows["yawn_in_car"]["driver_id"] == "ben" and rows["single_face"]["start_time"] == "2026-11-01T08:00"
    # each worker left the drive's row beside its results; the report read those, not the frames
    from driver_monitor.fleet_report import drive_row

    kept = json.loads((out / "drives" / "yawn_in_car" / "metrics.json").read_text())
    fresh = drive_row(out / "drives" / "yawn_in_car")
    assert json.dumps({k: v for k, v in kept.items() if k != "drive"}, sort_keys=True) == \
        json.dumps({k: v for k, v in fresh.items() if k != "drive"}, sort_keys=True)  # NaN == NaN as text
    drivers = {r["driver_id"]: r for r in csv.DictReader(open(out / "fleet_drivers.csv"))}
    assert drivers["anna"]["drives"] == "2" and drivers["ben"]["drives"] == "1"
    assert float(drivers["anna"]["hours"]) == pytest.approx((2.367 + 3.971) / 3600, abs=1e-4)


def test_drive_row_counts_events_per_hour(tmp_path):
    d = tmp_path / "drives" / "d1"
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"duration_s": 1800.0, "frames": 4, "complete": True,
                                                "processing_fps": 50.0}))
    (d / "frames.csv").write_text("frame,camera_ok,face_detected,perclos,off_road_s,eyes_closed_s\n"
                                  "0,1,1,0.1,0,0\n1,1,1,0.2,3.7,0\n2,1,0,,0,0\n3,0,0,,0,1.4\n")
    events = [{"type": "distraction", "level": "warning"}, {"type": "distraction", "level": "critical"},
              {"type": "microsleep", "level": "critical"}, {"type": "yawn", "level": "none"}]
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    r = drive_row(d)
    assert (r["distraction_per_h"], r["distraction_warning_per_h"], r["distraction_critical_per_h"]) == (4.0, 2.0, 2.0)
    assert r["microsleep_critical_per_h"] == 2.0 and r["yawn_per_h"] == 2.0 and r["drowsiness_per_h"] == 0.0
    assert r["driver_visible"] == pytest.approx(2 / 3, abs=1e-4) and r["perclos_p95"] == 0.2
    assert r["longest_off_road_s"] == 3.7 and r["longest_eyes_closed_s"] == 1.4
    (g,) = driver_rows([r])
    assert g["driver_id"] == "(unknown)" and g["distraction_per_h"] == 4.0


@pytest.mark.parametrize("content, needle", [
    (None, "holds no video files"),
    ("path,driver_id\n,anna\n", "needs a non-empty 'path'"),
])
def test_bad_inputs_are_one_line(tmp_path, content, needle):
    if content is None:
        spec = tmp_path / "empty"
        spec.mkdir()
    else:
        spec = tmp_path / "m.csv"
        spec.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        read_drives(spec)


def test_only_a_single_worker_on_a_ray_started_here_pins_its_mesh() -> None:
    from driver_monitor.fleet import pin_mesh_in_workers

    assert pin_mesh_in_workers(None, True, 1)
    assert not pin_mesh_in_workers(None, True, 2)  # each would pick a core unaware of the other
    assert not pin_mesh_in_workers("auto", True, 1) and not pin_mesh_in_workers("ray://h:10001", True, 1)
    assert not pin_mesh_in_workers(None, False, 1)  # a Ray the caller started may run other work


def test_the_worker_config_pins_as_told_and_a_set_wins(monkeypatch) -> None:
    import cv2

    import driver_monitor.fleet as fleet
    from driver_monitor.config import load_config

    monkeypatch.setattr("driver_monitor.engine.select.open_engine_or_none", lambda *a, **k: (None, None))
    monkeypatch.setattr("driver_monitor.face.mesh.FaceMeshDetector", lambda cfg: cfg)
    assert fleet.load_config is load_config
    before = cv2.getNumThreads()  # the worker sets OpenCV's threads for its process
    try:
        for pin, sets, want in ((True, [], True), (False, [], False), (True, ["face.pin_mesh=false"], False),
                                (False, ["face.pin_mesh=true"], True)):
            worker = fleet.DriveAnalyzer(None, sets, 1, pin)
            assert worker.cfg.face.pin_mesh is want and worker.runtime.models.detector.pin_mesh is want
    finally:
        cv2.setNumThreads(before)
