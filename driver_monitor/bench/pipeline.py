"""``driver-monitor bench --video FILE``: end to end, the real pipeline on a video.

``bench_pipeline`` runs the app's frame loop (a ``runtime.Runtime`` drive session) on the video and reads FPS
and the per-stage breakdown from ``FrameResult.timings_ms`` (decode, mesh, align, engine, state),
so the benchmark reports what the pipeline measured; ``bench_pipelines`` runs it without the
engine (the CPU stages alone) and with each requested engine. ``bench.engines.run_bench`` puts
the runs in its report.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config import PROJECT_ROOT, Config
from ..errors import DriverMonitorError
from .common import Log, skipped_line, terminal_width


def bench_pipeline(cfg: Config, video: str | Path, *, engine: Any = None, max_frames: int | None = None,
                   label: str | None = None, log: Log = print) -> dict[str, Any]:
    """Run the real pipeline on ``video``; FPS and per-stage ms from ``FrameResult.timings_ms``.

    The engine (if any) is closed with the run's other models (runtime.Runtime).
    """
    from ..runtime import Runtime

    timings: dict[str, list[float]] = {}
    frames = faces = 0
    size: tuple[int, int] | None = None
    with Runtime(cfg, engine=engine, log=lambda m: None) as runtime:
        src = runtime.open_source(video)  # before the models load: a wrong path is said at once
        with runtime.session(src) as drive:
            backend = drive.pipeline.backend_description
            t_start = time.perf_counter()
            for result in drive.results(max_frames=max_frames):  # the app's one loop
                size = (result.frame.width, result.frame.height)
                for k, v in result.timings_ms.items():
                    timings.setdefault(k, []).append(float(v))
                frames += 1
                faces += int(result.face is not None)
            wall = time.perf_counter() - t_start
    if frames == 0:
        raise DriverMonitorError(f"bench: {video} gave no frames; pass a readable video with --video")
    stages = {k: {"mean_ms": round(float(np.mean(v)), 3), "p50_ms": round(float(np.median(v)), 3),
                  "p95_ms": round(float(np.percentile(v, 95)), 3), "frames": len(v)}
              for k, v in timings.items()}
    out = {
        "label": label or backend,
        "backend": backend,
        "video": Path(str(video)).name,
        "frames": frames,
        "frames_with_face": faces,
        "wall_s": round(wall, 3),
        "fps": round(frames / wall, 2) if wall > 0 else None,
        "stages_ms": stages,
        "resolution": None if size is None else f"{size[0]}x{size[1]}",
    }
    cpu_ms = sum(stages.get(s, {}).get("mean_ms", 0.0) for s in ("decode", "mesh", "align", "state"))
    out["cpu_stages_mean_ms"] = round(cpu_ms, 3)
    out["engine_mean_ms"] = stages.get("engine", {}).get("mean_ms", 0.0)
    log(f"bench: pipeline {out['label']} on {out['video']}: {out['fps']} fps over {frames} frames; "
        + ", ".join(f"{k} {v['mean_ms']:.2f} ms" for k, v in stages.items()))
    return out


def bench_pipelines(cfg: Config, video: str | Path, *, backends: Sequence[str], max_frames: int | None,
                    project_root: Path = PROJECT_ROOT, log: Log = print) -> list[dict[str, Any]]:
    """End to end without the engine (the CPU stages alone) and with each requested engine."""
    from ..engine.select import create_engine

    runs = [bench_pipeline(cfg, video, engine=None, max_frames=max_frames, label="no engine", log=log)]
    for b in backends:
        ecfg = replace(cfg.engine, backend=b)
        try:
            engine, sel = create_engine(ecfg, project_root=project_root, log=log)
        except DriverMonitorError as exc:
            runs.append({"label": f"{b}", "status": "skipped", "reason": str(exc)})
            log(skipped_line(f"pipeline with {b}", str(exc), terminal_width()))
            continue
        runs.append(bench_pipeline(cfg, video, engine=engine, max_frames=max_frames, label=sel.describe(), log=log))
    return runs
