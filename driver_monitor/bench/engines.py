"""``driver-monitor bench``: how many FPS will I get on this machine, GPU vs CPU.

Three parts, each a function so a caller can run one alone:

* ``bench_engines``: for every backend / device / precision that can run here, engine latency
  p50 / p95 at batch 1 and 8 and throughput (faces / s); the ones that cannot run are listed
  with the reason (never silently dropped).
* ``bench.pipeline.bench_pipelines``: end-to-end FPS of the real pipeline on a video with the
  per-stage breakdown read from ``FrameResult.timings_ms`` (decode, mesh, align, engine, state),
  so the benchmark reports what the pipeline measured.
* ``machine_info``: CPU, cores, memory, GPU, driver, library versions.

``run_bench`` runs them and ``write_report`` writes ``bench.json``, ``bench.md`` (Markdown tables)
and ``bench.png`` (bar chart, matplotlib Agg). A benchmark is a tool, never a timed test.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..config import PROJECT_ROOT, Config
from ..cores import usable_cores
from ..errors import DriverMonitorError
from ..recording import STAGES as FRAME_STAGES
from .common import Log, skipped_line, terminal_width
from .pipeline import bench_pipelines

STAGES: tuple[str, ...] = tuple(s for s in FRAME_STAGES if s != "total")  # frames.csv's stages, each alone
LIBRARIES: tuple[str, ...] = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "torch", "tensorrt",
                              "pycuda", "opencv-contrib-python", "mediapipe", "driver-monitor")


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpus() -> list[dict[str, str]]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,driver_version,memory.total,compute_cap",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    gpus = []
    for line in out.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 2:
            gpus.append(dict(zip(("name", "driver", "memory", "compute_capability"), parts)))
    return gpus


def _loadavg() -> list[float] | None:
    """1 / 5 / 15-minute load averages: other jobs on the machine make figures noisy; say so."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    versions = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    cuda = None
    try:
        import torch

        cuda = torch.version.cuda
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gib": _memory_gib(),
        "gpus": _gpus(),
        "torch_cuda": cuda,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
    }


# --------------------------------------------------------------------------- engines


def _stats(times_s: Sequence[float], batch: int) -> dict[str, float]:
    t = np.asarray(times_s, dtype=np.float64) * 1e3
    return {
        "batch": batch,
        "iters": int(t.size),
        "p50_ms": round(float(np.percentile(t, 50)), 4),
        "p95_ms": round(float(np.percentile(t, 95)), 4),
        "mean_ms": round(float(t.mean()), 4),
        "throughput_faces_per_s": round(batch * 1e3 / float(np.median(t)), 1),
    }


def time_engines(engines: Sequence[Any], batch: int, *, iters: int = 300, warmup: int = 30,
                 max_seconds: float = 20.0, rounds: int = 10, seed: int = 0) -> list[dict[str, float]]:
    """Time several engines on the same crops, interleaved in ``rounds`` chunks.

    Interleaving makes a comparison made in one run fair on a shared machine: a burst of load
    from another job hits every engine instead of whichever happened to be running.
    ``max_seconds`` bounds each engine's total timed time.
    """
    rng = np.random.default_rng(seed)
    times: list[list[float]] = [[] for _ in engines]
    spent = [0.0] * len(engines)
    crops = [rng.integers(0, 256, size=(batch, e.spec.size, e.spec.size), dtype=np.uint8) for e in engines]
    for e, c in zip(engines, crops):
        for _ in range(warmup):
            e.infer(c)
    per_round = max(1, iters // rounds)
    for _ in range(rounds):
        for i, (e, c) in enumerate(zip(engines, crops)):
            if spent[i] > max_seconds and len(times[i]) >= 20:
                continue
            for _ in range(per_round):
                t0 = time.perf_counter()
                e.infer(c)
                dt = time.perf_counter() - t0
                times[i].append(dt)
                spent[i] += dt
    return [_stats(t, batch) for t in times]


def engine_candidates(backends: Iterable[str], precisions: Iterable[str]) -> list[tuple[str, str, str]]:
    """(backend, device, precision) combinations to try: each backend's devices and precisions
    from the table of backends (torch is the fp32 reference)."""
    from ..engine.backends import backend

    return [(b, d, p) for b in backends for d in backend(b).devices for p in precisions
            if p in backend(b).precisions]


def bench_engines(cfg: Config, *, backends: Sequence[str] = ("tensorrt", "onnxruntime", "torch"),
                  precisions: Sequence[str] = ("fp32", "fp16", "int8"), batches: Sequence[int] = (1, 8),
                  iters: int = 300, project_root: Path = PROJECT_ROOT, log: Log = print) -> list[dict[str, Any]]:
    """One row per (backend, device, precision): latencies per batch, or ``skipped`` + reason.

    Every engine that can run is opened first, then all are timed interleaved (``time_engines``)
    so that their ratios are fair on a machine shared with other jobs.
    """
    from ..engine.select import create_engine

    rows: list[dict[str, Any]] = []
    opened: list[tuple[dict[str, Any], Any]] = []
    try:
        for b, d, p in engine_candidates(backends, precisions):
            row: dict[str, Any] = {"backend": b, "device": d, "precision": p}
            rows.append(row)
            ecfg = replace(cfg.engine, backend=b, device=d, precision=p, max_batch=max(batches))
            try:
                engine, sel = create_engine(ecfg, project_root=project_root, log=log)
            except DriverMonitorError as exc:
                row.update(status="skipped", reason=str(exc))
                log(skipped_line(f"{b} {d.upper()} {p}", str(exc), terminal_width()))
                continue
            row.update(status="ok", description=sel.describe(), results=[])
            opened.append((row, engine))
        for batch in batches:
            stats = time_engines([e for _, e in opened], batch, iters=iters)
            for (row, _), st in zip(opened, stats):
                row["results"].append(st)
                log(f"bench: {row['description']} batch {batch}: p50 {st['p50_ms']:.3f} ms, "
                    f"p95 {st['p95_ms']:.3f} ms, {st['throughput_faces_per_s']:.0f} faces/s")
    finally:
        for _, e in opened:
            e.close()
    return rows


def speedups(rows: Sequence[dict[str, Any]], batch: int = 1) -> dict[str, float]:
    """p50 speed-up of each measured engine over torch CPU eager at ``batch`` (same run)."""
    def p50(r: dict[str, Any]) -> float | None:
        for s in r.get("results", []):
            if s["batch"] == batch:
                return s["p50_ms"]
        return None

    ref = next((p50(r) for r in rows if r["status"] == "ok" and r["backend"] == "torch"
                and r["device"] == "cpu"), None)
    if not ref:
        return {}
    out = {}
    for r in rows:
        v = p50(r) if r["status"] == "ok" else None
        if v:
            out[f"{r['backend']} {r['device'].upper()} {r['precision']}"] = round(ref / v, 2)
    return out


# --------------------------------------------------------------------------- report


def _md_engines(rows: Sequence[dict[str, Any]], batches: Sequence[int]) -> list[str]:
    head = "| backend | device | precision | " + " | ".join(
        f"b{b} p50 ms | b{b} p95 ms | b{b} faces/s" for b in batches) + " |"
    lines = [head, "|" + "---|" * (3 + 3 * len(batches))]
    skipped = []
    for r in rows:
        if r["status"] != "ok":
            skipped.append(r)
            continue
        cells = []
        by_batch = {s["batch"]: s for s in r["results"]}
        for b in batches:
            s = by_batch.get(b)
            cells += ([f"{s['p50_ms']:.3f}", f"{s['p95_ms']:.3f}", f"{s['throughput_faces_per_s']:.0f}"]
                      if s else ["-", "-", "-"])
        lines.append(f"| {r['backend']} | {r['device'].upper()} | {r['precision']} | " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Not measured here:", ""]
        for r in skipped:
            reason = r["reason"].split(". To fix")[0].replace("|", "/")
            lines.append(f"- {r['backend']} {r['device'].upper()} {r['precision']}: {reason}")
    return lines


def _md_pipelines(runs: Sequence[dict[str, Any]]) -> list[str]:
    lines = ["| run | video | resolution | frames | FPS | " + " | ".join(f"{s} ms" for s in STAGES) + " |",
             "|" + "---|" * (5 + len(STAGES))]
    for r in runs:
        if r.get("status") == "skipped":
            lines.append(f"| {r['label']} | skipped: {' '.join(r['reason'].split()).replace('|', '/')} |")
            continue
        st = r["stages_ms"]
        lines.append(f"| {r['label']} | {r['video']} | {r['resolution']} | {r['frames']} | {r['fps']} | "
                     + " | ".join(f"{st[s]['mean_ms']:.2f}" if s in st else "-" for s in STAGES) + " |")
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    gpus = ", ".join(f"{g.get('name')} (driver {g.get('driver')})" for g in m.get("gpus", [])) or "none"
    libs = ", ".join(f"{k} {v}" for k, v in m.get("libraries", {}).items())
    lines = [
        f"Machine: {m['cpu']}, {m['usable_cores']} usable cores ({m['logical_cores']} logical), "
        f"{m.get('memory_gib')} GiB; GPU: {gpus}.",
        f"Libraries: {libs}.",
        f"Command: `{report.get('command', 'driver-monitor bench')}`",
        f"Load average (1/5/15 min) at start {report.get('load_average_start')}, at end "
        f"{report.get('load_average_end')} ({m['usable_cores']} cores): figures taken under load are noisy.",
        "",
    ]
    if report.get("engines"):
        batches = report.get("batches", [1, 8])
        lines += ["Engine latency (random 48x48 crops, after warm-up):", ""]
        lines += _md_engines(report["engines"], batches)
        sp = report.get("speedup_vs_torch_cpu_b1")
        if sp:
            lines += ["", "Speed-up over torch CPU eager at batch 1 (p50, same run): "
                      + ", ".join(f"{k} {v}x" for k, v in sp.items())]
        lines.append("")
    if report.get("pipeline"):
        lines += ["End to end (mean ms per frame per stage, from FrameResult.timings_ms):", ""]
        lines += _md_pipelines(report["pipeline"])
        lines.append("")
    return "\n".join(lines)


def write_chart(report: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report.get("engines", []) if r["status"] == "ok"]
    runs = [r for r in report.get("pipeline", []) if r.get("status") != "skipped"]
    if not ok and not runs:
        return None
    ncols = int(bool(ok)) + int(bool(runs))
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 4.2), squeeze=False)
    col = 0
    if ok:
        ax = axes[0][col]
        col += 1
        labels = [f"{r['backend']}\n{r['device'].upper()} {r['precision']}" for r in ok]
        batches = report.get("batches", [1, 8])
        width = 0.8 / len(batches)
        for j, b in enumerate(batches):
            vals = [next((s["p50_ms"] for s in r["results"] if s["batch"] == b), 0.0) for r in ok]
            ax.bar(np.arange(len(ok)) + j * width, vals, width, label=f"batch {b}")
        ax.set_xticks(np.arange(len(ok)) + width * (len(batches) - 1) / 2, labels, fontsize=7)
        ax.set_ylabel("p50 latency (ms)")
        ax.set_title("Engine latency")
        ax.legend()
    if runs:
        ax = axes[0][col]
        bottom = np.zeros(len(runs))
        for s in STAGES:
            vals = np.array([r["stages_ms"].get(s, {}).get("mean_ms", 0.0) for r in runs])
            ax.bar(range(len(runs)), vals, bottom=bottom, label=s)
            bottom += vals
        for i, r in enumerate(runs):
            ax.text(i, bottom[i], f"{r['fps']} fps", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(runs)), [r["label"] for r in runs], fontsize=7)
        ax.set_ylabel("ms per frame")
        ax.set_title(f"End to end ({runs[0]['video']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DriverMonitorError(f"bench --out {str(out)!r} cannot be created ({exc}); "
                                 f"pass a writable folder") from None
    paths = {"json": out / "bench.json", "markdown": out / "bench.md"}
    paths["json"].write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    paths["markdown"].write_text(to_markdown(report) + "\n", encoding="utf-8")
    png = write_chart(report, out / "bench.png")
    if png is not None:
        paths["png"] = png
    return paths


def run_bench(cfg: Config, *, video: str | Path | None, backends: Sequence[str], precisions: Sequence[str],
              out_dir: str | Path, iters: int = 300, batches: Sequence[int] = (1, 8),
              max_frames: int | None = None, e2e_backends: Sequence[str] | None = None,
              skip_engines: bool = False, command: str = "",
              project_root: Path = PROJECT_ROOT, log: Log = print) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": machine_info(), "command": command, "batches": list(batches),
                              "load_average_start": _loadavg()}
    if not skip_engines:
        report["engines"] = bench_engines(cfg, backends=backends, precisions=precisions, batches=batches,
                                          iters=iters, project_root=project_root, log=log)
        report["speedup_vs_torch_cpu_b1"] = speedups(report["engines"], 1)
    if video is not None:
        report["pipeline"] = bench_pipelines(cfg, video, backends=list(e2e_backends or ["auto"]),
                                             max_frames=max_frames, project_root=project_root, log=log)
    report["load_average_end"] = _loadavg()
    report["files"] = {k: str(v) for k, v in write_report(report, out_dir).items()}
    # rewrite the JSON so it lists its own siblings
    Path(report["files"]["json"]).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report
