"""``driver-monitor bench --side-by-side``: ``analyze`` against the bare face mesh, in one sitting.

The face mesh is the floor cost of every MediaPipe-based monitor, so the claim this benchmark makes
is a ratio: ``analyze``'s frames per second over those of a loop that only decodes and runs the
mesh (one face, refined landmarks, tracking; ``face.mesh.bare_mesh_loop``), on the same clips, in
the same process, interleaved run by run and repeated, so a burst of load on a shared machine hits
every run alike. Absolute frames per second move with the machine; the ratios move much less.

Runs per clip (each a real ``analyze`` into a scratch folder, CSV and JSONL writing included;
``loop_fps`` and ``loop_cores`` from its summary: the frame loop's wall time, start-up excluded, and
the CPU time of all threads over it):

* ``mesh``: the bare loop;
* ``analyze``: the default configuration (engine on at ``engine.rate_hz``, the phone detector on,
  two stages, one face tracked);
* ``analyze, no phone``: ``phone.enabled=false``;
* ``analyze, engine every frame``: ``engine.rate_hz=0``, the network on every frame of a face;
* ``analyze, no phone, engine every frame``: both (the defaults before the phone detector);
* ``analyze, no engine``: ``engine.enabled=false``;
* ``analyze, no eye model``: ``eyes.model_enabled=false``, the eyes judged by their aspect ratio;
* ``analyze, one thread``: the frame loop on one thread.

Also the per-stage milliseconds (``ms_*`` columns of frames.csv) and what the engine's rate costs:
the default run's emotion and action-unit columns against those of the run with the network on
every frame, frame by frame.
"""
from __future__ import annotations

import csv
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from ..analyze import analyze, machine_description
from ..config import Config
from ..errors import DriverMonitorError
from ..recording import STAGES
from .common import Log, write_report
from .engines import _loadavg

#: (name, config overrides as (section, field, value), two stages)
RUNS: tuple[tuple[str, tuple[tuple[str, str, Any], ...], bool], ...] = (
    ("analyze", (), True),
    ("analyze, no phone", (("phone", "enabled", False),), True),
    ("analyze, engine every frame", (("engine", "rate_hz", 0.0),), True),
    ("analyze, no phone, engine every frame", (("phone", "enabled", False), ("engine", "rate_hz", 0.0)), True),
    ("analyze, no engine", (("engine", "enabled", False),), True),
    ("analyze, no eye model", (("eyes", "model_enabled", False),), True),
    ("analyze, one thread", (), False),
)

def _with(cfg: Config, overrides: Sequence[tuple[str, str, Any]]) -> Config:
    for section, key, value in overrides:
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{key: value})})
    return cfg


def _read_frames(folder: Path) -> list[dict[str, str]]:
    with open(folder / "frames.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _stage_means(rows: list[dict[str, str]]) -> dict[str, float]:
    out = {}
    for stage in STAGES:
        vals = [float(r[f"ms_{stage}"]) for r in rows if r.get(f"ms_{stage}") not in (None, "")]
        if vals:
            out[stage] = round(statistics.fmean(vals), 3)
    return out


def stride_cost(every: list[dict[str, str]], strided: list[dict[str, str]]) -> dict[str, Any]:
    """How far the engine's held outputs (a stride, a rate) are from the network on every frame:
    the top emotion's agreement and the mean / largest absolute difference of the emotion
    probabilities and of the action-unit intensities, over the frames both read a face on."""
    cols = [c for c in (every[0] if every else {})  # the probabilities and the AU intensities (au1, au26)
            if c.startswith("p_") or (c.startswith("au") and c[2:].isdigit())]
    agree = n = 0
    diffs: dict[str, list[float]] = {"p": [], "au": []}
    for a, b in zip(every, strided):
        if not a.get("emotion") or not b.get("emotion"):
            continue
        n += 1
        agree += a["emotion"] == b["emotion"]
        for c in cols:
            if a.get(c) not in (None, "") and b.get(c) not in (None, ""):
                diffs["p" if c.startswith("p_") else "au"].append(abs(float(a[c]) - float(b[c])))
    out: dict[str, Any] = {"frames": n, "emotion_agreement": round(agree / n, 4) if n else None}
    for k, v in diffs.items():
        out[f"{k}_mean_abs_diff"] = round(statistics.fmean(v), 4) if v else None
        out[f"{k}_max_abs_diff"] = round(max(v), 4) if v else None
    return out


def _one_clip(cfg: Config, video: Path, repeats: int, scratch: Path, log: Log) -> dict[str, Any]:
    from ..face.mesh import bare_mesh_loop

    fps: dict[str, list[float]] = {"mesh": []}
    cores: dict[str, list[float]] = {"mesh": []}
    stages: dict[str, list[dict[str, float]]] = {}
    costs: list[dict[str, Any]] = []
    frames = 0
    for rep in range(repeats):
        n, seconds, cpu = bare_mesh_loop(str(video))
        cores["mesh"].append(cpu / seconds)
        frames = n
        fps["mesh"].append(n / seconds)
        outputs: dict[str, list[dict[str, str]]] = {}
        for name, overrides, two_stages in RUNS:
            folder = scratch / f"{video.stem}-{rep}-{len(outputs)}"
            summary = analyze(str(video), folder, _with(cfg, overrides), progress=False,
                              overlap=two_stages, log=lambda m: None)
            if not summary.get("loop_fps"):
                raise DriverMonitorError(f"bench --side-by-side: {video.name} gave no frames; pass readable videos")
            fps.setdefault(name, []).append(float(summary["loop_fps"]))
            cores.setdefault(name, []).append(float(summary.get("loop_cores") or 0.0))
            outputs[name] = _read_frames(folder)
            stages.setdefault(name, []).append(_stage_means(outputs[name]))
        costs.append(stride_cost(outputs["analyze, engine every frame"], outputs["analyze"]))
        log(f"bench: side by side {video.name} #{rep + 1}: "
            + ", ".join(f"{k} {v[-1]:.0f} fps" for k, v in fps.items()))
    rows = []
    for name, values in fps.items():
        ratios = [v / m for v, m in zip(values, fps["mesh"])]
        per_stage = stages.get(name, [])
        rows.append({
            "run": name, "fps_median": round(statistics.median(values), 1), "fps": [round(v, 1) for v in values],
            "ratio_to_mesh_median": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
            "cores_median": round(statistics.median(cores[name]), 2),
            "stages_ms": {s: round(statistics.median(d[s] for d in per_stage if s in d), 3)
                          for s in STAGES if any(s in d for d in per_stage)},
        })
    return {"video": video.name, "frames": frames, "runs": rows, "engine_rate": costs[-1]}


def side_by_side(cfg: Config, videos: Sequence[str | Path], *, repeats: int = 3, out_dir: str | Path,
                 command: str = "", log: Log = print) -> dict[str, Any]:
    """Measure every clip, write ``throughput.json`` and ``throughput.md`` to ``out_dir``."""
    paths = [Path(v) for v in videos]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DriverMonitorError(f"bench --side-by-side: {', '.join(missing)} not found; pass video files")
    report: dict[str, Any] = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%MZ", time.gmtime()),
        "machine": machine_description(), "load_average_start": _loadavg(), "repeats": repeats,
    }
    with tempfile.TemporaryDirectory(prefix="dm-side-") as scratch:
        report["clips"] = [_one_clip(cfg, p, repeats, Path(scratch), log) for p in paths]
    report["load_average_end"] = _loadavg()
    return write_report(report, out_dir, "throughput", markdown, indent=1)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Side by side (`{report['command'] or 'driver-monitor bench --side-by-side'}`), {report['date']}; "
        f"{m.get('cpu_count')} CPUs ({m.get('processor')}); load average {report.get('load_average_start')} at the "
        f"start, {report.get('load_average_end')} at the end; medians of {report['repeats']} interleaved repeats.",
        "",
        "| clip | run | frames/s | x bare mesh | cores busy | CPU ms a frame | "
        + " | ".join(f"{s} ms" for s in STAGES) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(STAGES),
    ]
    for clip in report["clips"]:
        for r in clip["runs"]:
            st = r["stages_ms"]
            cells = " | ".join(f"{st[s]:.2f}" if s in st else "-" for s in STAGES)
            busy = r.get("cores_median")
            cpu = f"{1e3 * busy / r['fps_median']:.2f}" if busy and r["fps_median"] else "-"
            lines.append(f"| {clip['video']} ({clip['frames']}) | {r['run']} | {r['fps_median']:.0f} | "
                         f"{r['ratio_to_mesh_median']:.2f} | {busy if busy else '-'} | {cpu} | {cells} |")
    lines += ["", "The engine at `engine.rate_hz` (the default run) against the network on every frame (same "
              "sitting, last repeat):", "",
              "| clip | frames | top emotion agrees | probabilities: mean / max abs diff | AUs: mean / max abs diff |",
              "|---|---|---|---|---|"]
    for clip in report["clips"]:
        c = clip["engine_rate"]
        agree = f"{100 * c['emotion_agreement']:.1f} %" if c.get("emotion_agreement") is not None else "-"
        lines.append(f"| {clip['video']} | {c['frames']} | {agree} | {c.get('p_mean_abs_diff')} / "
                     f"{c.get('p_max_abs_diff')} | {c.get('au_mean_abs_diff')} / {c.get('au_max_abs_diff')} |")
    lines += ["", "Stage milliseconds are per frame as each stage measured itself; with two stages the mesh "
              "of one frame runs while the rest of the previous one does, so they add up to more than the "
              "wall time per frame. `total` is a frame's time from its read to its result. `cores busy`: the "
              "process's CPU time (all threads) over the loop's wall time; `CPU ms a frame` = cores busy x "
              "1000 / frames/s: with 2 cores, a run cannot go faster than 2000 / that figure frames/s.", ""]
    return "\n".join(lines)
