"""Headless analysis of a recorded drive or a live feed: the loop behind ``driver-monitor analyze``.

Reads every frame of a file (or the newest frame of a live source), runs the pipeline and streams
the results to ``frames.csv`` / ``events.jsonl``; ``summary.json`` is written at the end, also
when the drive is cut short (truncated file, lost camera, Ctrl-C).
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .config import Config
from .errors import OutputError, Terminated, hold_stop_signals, raise_held
from .recording import existing_results
from .runtime import DriveSession, Runtime
from .session import Recorder, end_reason, source_stats


def machine_description() -> dict[str, Any]:
    import cv2
    import numpy as np

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "driver_monitor": __version__,
    }


def analyze(source: Any, out_dir: str | os.PathLike, cfg: Config, *, progress: bool | None = None,
            max_frames: int | None = None, runtime: "Runtime | None" = None,
            log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
            overwrite: bool = True, verbose: bool = False, overlap: bool = True) -> dict[str, Any]:
    """Analyse ``source`` into ``out_dir``; returns the summary (also written to summary.json).

    Raises SourceError when the source cannot be opened, OutputError when ``out_dir`` already holds
    results and ``overwrite`` is False, or when a write fails (what was written stays, summary.json
    says incomplete). A source that ends early (truncated file, camera gone for good) still writes
    everything analysed and returns a summary with ``complete: false`` and the reason;
    KeyboardInterrupt (Ctrl-C, and SIGTERM / SIGHUP as :class:`Terminated`) does the same and re-raises.
    ``runtime``: the run's models, lent for this drive and left open (a fleet worker and
    ``evaluate`` open them once for drive after drive; ``cfg`` may then differ from the run's in
    anything but the models' sections); without one they are opened from ``cfg`` and closed here.
    ``overlap``: the frame loop's two stages (session.run_frames); False runs it on one thread.
    """
    _refuse_earlier_results(out_dir, overwrite)
    owned = runtime is None
    if runtime is None:
        runtime = Runtime(cfg, log=log, verbose=verbose)
    drive = recorder = None
    started, reason = time.time(), None
    loop: list[tuple[float, float]] = []  # (perf_counter(), process_time()) when the frame loop started and ended
    interrupted: KeyboardInterrupt | None = None
    bar = None
    try:
        drive = _open(source, runtime, cfg, log)
        recorder = Recorder(out_dir, cfg, emotion_names=drive.pipeline.emotion_names,
                            au_names=drive.pipeline.au_names, region_names=drive.pipeline.region_names)
        bar = _progress_bar(drive.source, source, progress)
        _write_frames(drive, recorder, bar, loop, max_frames=max_frames, overlap=overlap)
        reason = end_reason(drive.source)
    except KeyboardInterrupt as exc:
        interrupted = exc
        reason = f"terminated ({exc.name})" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
    except BaseException as exc:
        reason = f"stopped by an error: {exc}"
        raise
    finally:  # a stop signal now waits for summary.json (errors.hold_stop_signals)
        with hold_stop_signals() as held:
            summary = _close(drive, recorder, bar, loop, runtime if owned else None,
                             lambda: _summary(drive, runtime, cfg, started, reason))
    if interrupted:
        raise interrupted
    raise_held(held)  # a stop asked while the complete results were being written: honoured now
    return summary


def _close(drive: "DriveSession | None", recorder: Recorder | None, bar: Any, loop: list[tuple[float, float]],
           owned: "Runtime | None", summary: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Close the bar, write the open events and summary.json, release the source and the models
    opened here (``owned``)."""
    if bar is not None:
        bar.close()
    try:
        if recorder is None or drive is None:
            return {}
        loop.append((time.perf_counter(), time.process_time()))
        return recorder.close({**summary(), **_loop_figures(loop, recorder.frames_written)},
                              events=drive.finish())
    finally:  # the source and the models are released whatever the writing did
        try:
            if drive is not None:
                drive.close()
        finally:
            if owned is not None:
                owned.close()


def _open(source: Any, runtime: "Runtime", cfg: Config, log: Callable[[str], None]) -> "DriveSession":
    """The drive over ``source``. A file is opened (and its first frame decoded) before the models
    load, so a wrong path or a file that is no video is said at once; a camera or stream is only
    checked for its form then, and opened after the models (it would drop frames while one loads)."""
    from .capture import parse_source

    src = None if parse_source(source).is_live else runtime.open_source(source, cfg.capture)
    try:
        runtime.open()
        if src is None:
            src = runtime.open_source(source, cfg.capture)
    except BaseException:
        if src is not None:
            src.close()
        raise
    if src.warning:
        log(f"warning: {src.warning}")
    return runtime.session(src, cfg)


def _refuse_earlier_results(out_dir: str | os.PathLike, overwrite: bool) -> None:
    found = existing_results(out_dir)
    if found and not overwrite:
        raise OutputError(f"{str(out_dir)!r} already holds results ({', '.join(found)}); pass --overwrite to "
                          f"replace them, or give another --out")


def _write_frames(drive: "DriveSession", recorder: Recorder, bar: Any, loop: list[tuple[float, float]], *,
                  max_frames: int | None, overlap: bool) -> None:
    """The frame loop: every result written as it comes; ``loop`` gets the start (wall, CPU) time.
    A stop signal waits for the frame being written (its row, its events and their count stay
    one: summary.json's frames is frames.csv's rows)."""
    loop.append((time.perf_counter(), time.process_time()))
    for result in drive.results(max_frames=max_frames, overlap=overlap):
        with hold_stop_signals() as held:
            recorder.write(result)
        raise_held(held)
        if bar is not None and result.camera_ok:
            bar.update(1)


def _loop_figures(loop: list[tuple[float, float]], frames: int) -> dict[str, Any]:
    """The frame loop's wall time (start-up excluded), frames per second over it, and the CPU
    time the process spent meanwhile (all threads) over that wall time: the cores kept busy."""
    if len(loop) < 2:
        return {}
    seconds, cpu = loop[-1][0] - loop[0][0], loop[-1][1] - loop[0][1]
    return {"loop_s": round(seconds, 3), "loop_fps": round(frames / seconds, 2) if seconds > 0 and frames else None,
            "loop_cpu_s": round(cpu, 3), "loop_cores": round(cpu / seconds, 2) if seconds > 0 else None}


def _summary(drive: "DriveSession", runtime: "Runtime", cfg: Config, started: float,
             reason: str | None) -> dict[str, Any]:
    """What summary.json says besides the counts the recorder keeps."""
    pipeline, selection = drive.pipeline, runtime.selection
    return {
        **source_stats(drive.source),
        "wall_time_s": round(time.time() - started, 3),
        "complete": reason is None,
        **({"reason": reason} if reason else {}),
        "engine": selection or {"backend": "none"},
        **_engine_missing(cfg, selection),
        "backend": pipeline.backend_description,
        "eye_state": pipeline.eye_model_description,
        "machine": machine_description(),
        "config": cfg.to_dict(),
    }


def _engine_missing(cfg: Config, selection: dict | None) -> dict[str, Any]:
    """``engine_missing``: why the emotion/AU engine that the config asks for (``engine.enabled``)
    did not run (a missing or unreadable model, no runtime); the drive was analysed without its
    columns, driver state included. Absent when the engine ran or was switched off."""
    sel = selection or {}
    if not cfg.engine.enabled or sel.get("backend", "none") != "none":
        return {}
    return {"engine_missing": sel.get("reason") or "no engine was loaded"}


def _progress_bar(src: Any, source: Any, progress: bool | None) -> Any:
    """A tqdm bar on stderr (default: when stderr is a terminal), or None."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=src.frame_count if not src.is_live else None, unit="frame",
                desc=Path(str(source)).name if not src.is_live else src.description,
                dynamic_ncols=True, file=sys.stderr)
