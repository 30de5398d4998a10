"""The command modules: one interface, one list, a light ``--help``; the bench command's modes."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from driver_monitor.cli import build_parser, main
from driver_monitor.commands import COMMANDS
from driver_monitor.config import PROJECT_ROOT


def _handlers(p: argparse.ArgumentParser) -> list:
    """The handler a parser sets, or those of its actions (``engines build | list | clean``)."""
    actions = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return [p.get_default("func")]
    return [f for a in actions for child in a.choices.values() for f in _handlers(child)]


def test_each_command_module_adds_its_parser_with_a_handler():
    sub = argparse.ArgumentParser(prog="driver-monitor").add_subparsers()
    for module in COMMANDS:
        p = module.add_parser(sub)
        assert isinstance(p, argparse.ArgumentParser), module.__name__
        assert module.__name__ == f"driver_monitor.commands.{p.prog.split()[-1]}", module.__name__
        assert all(callable(f) for f in _handlers(p)), module.__name__


def test_the_parser_lists_the_commands_in_order():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == ["analyze", "evaluate", "batch", "gui", "bench", "engines"]


def test_help_loads_no_heavy_library():
    code = ("import sys\n"
            "from driver_monitor.cli import build_parser\n"
            "build_parser()\n"
            "heavy = ('PyQt6', 'pyqtgraph', 'torch', 'ray', 'mediapipe', 'cv2', 'onnxruntime', 'tensorrt',\n"
            "         'matplotlib')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", (r.stdout, r.stderr)


# ---------------------------------------------------------------- bench --fleet

def test_fleet_drives_link_the_videos_in_turn(tmp_path):
    from driver_monitor.bench.fleet import make_drives

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("b.mp4", "a.avi", "notes.txt"):
        (videos / name).write_bytes(b"")
    drives = make_drives(videos, 3, tmp_path / "drives")
    assert [d.name for d in drives] == ["drive00_a.avi", "drive01_b.mp4", "drive02_a.avi"]
    assert all(d.is_symlink() and d.resolve().parent == videos.resolve() for d in drives)


@pytest.mark.parametrize("make, says", [
    (lambda tmp: tmp / "missing", "is not a folder"),
    (lambda tmp: tmp, "holds no videos"),
])
def test_bench_fleet_refuses_a_folder_without_videos(make, says, tmp_path, capsys):
    rc = main(["bench", "--fleet", str(make(tmp_path)), "--drives", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and says in err and "Traceback" not in err


def test_fleet_markdown_has_one_row_per_run():
    from driver_monitor.bench.fleet import markdown

    rows = [{"run": "analyze, one drive after another", "workers": 1, "wall_s": 20.0, "frames": 400, "fps": 20.0,
             "speedup": 1.0},
            {"run": "batch --workers 2", "workers": 2, "wall_s": 12.5, "frames": 400, "fps": 32.0,
             "ray_start_s": 3.1, "ray_per_drive_s": 0.2, "speedup": 1.6}]
    report = {"command": "driver-monitor bench --fleet v", "date": "2025-01-01 00:00Z", "machine": {"cpus": 2},
              "drives": 2, "videos": ["a.mp4"], "rows": rows}
    md = markdown(report)
    assert md.startswith("Fleet throughput (`driver-monitor bench --fleet v`)")
    assert "| batch --workers 2 | 12.5 | 32.0 | 1.6x | 3.1 | 0.2 |" in md
    assert json.loads(json.dumps(report)) == report


# ---------------------------------------------------------------- bench --dashboard

def test_bench_dashboard_refuses_missing_videos_before_opening_a_window(tmp_path, capsys):
    rc = main(["bench", "--dashboard", str(tmp_path / "no.mp4")])
    assert rc == 2 and "no.mp4 not found" in capsys.readouterr().err


def test_bench_live_belongs_to_the_dashboard(tmp_path, capsys):
    rc = main(["bench", "--side-by-side", "a.mp4", "--live", "b.mp4", "--out", str(tmp_path)])
    assert rc == 2 and "--live belongs to --dashboard" in capsys.readouterr().err


@pytest.mark.ui
def test_bench_dashboard_measures_the_plots(monkeypatch, capsys):
    from driver_monitor.ui import bench_ui

    real = bench_ui.bench_plots
    monkeypatch.setattr(bench_ui, "bench_plots", lambda cfg, app, **kw: real(cfg, app, redraws=5, **kw))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["bench", "--dashboard"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("platform offscreen") and len(lines) == 3
    assert all(line.startswith("plots ") and "(n=5)" in line for line in lines[1:])
