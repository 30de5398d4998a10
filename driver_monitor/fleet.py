"""Fleet analysis on Ray: many recorded drives across cores and machines, each exactly as ``analyze``.

    driver-monitor batch DRIVES_DIR_OR_MANIFEST --out results/ [--address auto|ray://HOST:10001] [--workers N]

* Ray does the scheduling: one actor per worker (:class:`DriveAnalyzer`) holds the engine and the
  face mesh, created inside the actor (never in the driver process, never across a fork), and
  analyses one drive at a time, in order, with the same :func:`~driver_monitor.analyze.analyze`
  as the command line; the batch hands each idle worker the next drive. Local by default
  (``ray.init()`` on this machine), a running cluster with ``--address``. ``--workers`` beyond what
  the cluster's CPUs (GPUs) hold is capped, with one line saying so (the rest would never start);
  an engine the config asks for that does not open in the workers stops the batch before any drive.
* A drive is written into a temporary folder and renamed when its analysis ends, so a crash leaves
  no half-written drive. A drive's folder records its file (path, size, modification time): a
  re-run skips a drive complete for that very file (``--force`` redoes it), analyses a changed file
  again, and gives a different file of the same name its own folder. A drive that cannot be read
  fails alone and ``fleet.jsonl`` says why; a worker killed mid-drive is restarted by Ray and the
  drive retried (``--retries``). Ctrl-C, SIGTERM and SIGHUP stop the workers, keep every completed
  drive and write the report for them (exit 130 / 143 / 129 from the command line).
* The report (``fleet.csv``, ``fleet_drivers.csv``, ``fleet.html``) is built from the drive folders
  by :mod:`driver_monitor.fleet_report`.

Ray is imported only when a batch runs (``pip install -e ".[fleet]"``).
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .config import load_config
from .errors import BackendUnavailableError, ConfigError, DriverMonitorError, ModelError, Terminated
from .fleet_report import write_metrics, write_report

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".ts", ".mpg", ".mpeg")
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True, slots=True)
class Drive:
    """One recorded drive: ``id`` names its results folder; driver, vehicle and start time come from
    a manifest; ``size`` (bytes) and ``mtime_ns`` are the file's when the batch read it (-1: unknown),
    recorded in ``drive.json`` so a re-run knows whether the results are of this very file."""

    id: str
    path: str
    driver_id: str = ""
    vehicle_id: str = ""
    start_time: str = ""
    size: int = -1
    mtime_ns: int = -1


# --------------------------------------------------------------------------- the drives


def _unique_ids(paths: Sequence[Path], root: Path | None) -> list[str]:
    """Folder names for the drives: the path below ``root`` without extension, '/' as '__'."""
    ids, seen = [], set()
    for p in paths:
        rel = p.relative_to(root) if root is not None and p.is_relative_to(root) else Path(p.name)
        base = "__".join(rel.with_suffix("").parts) or p.stem
        name, k = base, 2
        while name in seen:
            name, k = f"{base}-{k}", k + 1
        seen.add(name)
        ids.append(name)
    return ids


def _manifest_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The manifest's rows with the line each starts on."""
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"manifest {path} line {n} is not JSON ({exc.msg}); one object per line, "
                                      f"e.g. {{\"path\": \"drive1.mp4\", \"driver_id\": \"d7\"}}") from None
        return rows
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = []
        for r in reader:
            rows.append((reader.line_num, r))
        return rows


def _drop_repeats(rows: list[tuple[int, dict[str, str]]], paths: list[Path], manifest: Path,
                  warn: Callable[[str], None]) -> tuple[list[tuple[int, dict[str, str]]], list[Path]]:
    """Rows naming a path an earlier row names are dropped (a drive analysed twice would count twice
    for its driver), with one warning line naming them."""
    first: dict[str, int] = {}
    keep_rows, keep_paths, repeats = [], [], []
    for (line, row), q in zip(rows, paths):
        key = os.path.normpath(os.path.abspath(q))
        if key in first:
            repeats.append(f"{q.name} on line {line} (first on line {first[key]})")
            continue
        first[key] = line
        keep_rows.append((line, row))
        keep_paths.append(q)
    if repeats:
        warn(f"batch: manifest {manifest} names {len(repeats)} drive(s) again: {'; '.join(repeats)}; each is "
             f"analysed once, with its first row's driver, vehicle and start time")
    return keep_rows, keep_paths


def read_drives(spec: str | os.PathLike, warn: Callable[[str], None] = lambda m: None) -> list[Drive]:
    """The drives of a folder (every video below it, sorted) or of a manifest (CSV with a header, or
    JSONL: ``path`` and optional ``driver_id``, ``vehicle_id``, ``start_time``; relative paths are
    relative to the manifest; a path named again is kept once, and ``warn`` says so)."""
    p = Path(spec)
    if p.is_dir():
        videos = sorted(v for v in p.rglob("*") if v.is_file() and v.suffix.lower() in VIDEO_EXTS
                        and not any(part.startswith(".") for part in v.relative_to(p).parts))
        if not videos:
            raise ConfigError(f"{str(p)!r} holds no video files ({', '.join(VIDEO_EXTS)}); give a folder of "
                              f"recorded drives or a manifest (CSV / JSONL with a path column)")
        return [Drive(i, str(v)) for i, v in zip(_unique_ids(videos, p), videos)]
    if not p.is_file():
        raise ConfigError(f"{str(p)!r} does not exist; give a folder of recorded drives or a manifest file")
    if p.suffix.lower() not in (".csv", ".jsonl"):
        raise ConfigError(f"{str(p)!r} is neither a folder nor a manifest (.csv or .jsonl)")
    rows = _manifest_rows(p)
    if not rows or any(not str(r.get("path") or "").strip() for _, r in rows):
        raise ConfigError(f"manifest {str(p)!r} needs a non-empty 'path' on every row "
                          f"(columns: path, driver_id, vehicle_id, start_time)")
    paths = [Path(str(r["path"]).strip()) for _, r in rows]
    paths = [q if q.is_absolute() else p.parent / q for q in paths]
    rows, paths = _drop_repeats(rows, paths, p, warn)
    ids = _unique_ids(paths, p.parent)
    return [Drive(i, str(q), str(r.get("driver_id") or ""), str(r.get("vehicle_id") or ""),
                  str(r.get("start_time") or "")) for i, q, (_, r) in zip(ids, paths, rows)]


def drive_folder(out: str | os.PathLike, drive: Drive) -> Path:
    return Path(out) / "drives" / drive.id


def is_complete(folder: Path) -> bool:
    """A drive folder whose analysis ended (its summary.json is the final one, not the marker)."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "frames" in summary and "machine" in summary and (folder / "frames.csv").is_file()


def clean_stale(out: str | os.PathLike) -> list[Path]:
    """Remove temporary drive folders left by a run that was killed; returns them."""
    root = Path(out) / "drives"
    stale = sorted(root.glob(TMP_PREFIX + "*")) if root.is_dir() else []
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    return stale


def stamped(d: Drive) -> Drive:
    """The drive with its absolute path and its file's size and modification time (-1: unreadable)."""
    path = os.path.abspath(d.path)
    try:
        st = os.stat(path)
    except OSError:
        return replace(d, path=path)
    return replace(d, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _recorded(folder: Path) -> dict[str, Any] | None:
    """A drive folder's drive.json: the file its results are of (None: no folder, or none recorded)."""
    try:
        meta = json.loads((folder / "drive.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _same_path(meta: dict[str, Any], d: Drive) -> bool:
    return os.path.abspath(str(meta.get("path") or "")) == os.path.abspath(d.path)


def _unchanged(meta: dict[str, Any], d: Drive) -> bool:
    """The file has the size and modification time its results recorded (folders written before
    those were recorded: the path alone decides)."""
    if "size" not in meta:
        return True
    return meta.get("size") == d.size and meta.get("mtime_ns") == d.mtime_ns


def place_drives(drives: Sequence[Drive], out: str | os.PathLike,
                 force: bool = False) -> tuple[list[Drive], set[str], list[str]]:
    """(the drives with their folder ids, the ids already complete, the ids whose file changed).

    A drive folder belongs to the file its ``drive.json`` records. A drive whose id names the folder
    of another file (two manifests each naming an ``x.mp4`` of another folder: both ``x``) gets its
    own id, the id and a short hash of its path, the same at every run, so the results of two files
    never mix. A complete folder of the same file is skipped unless ``force``, or unless the file's
    size or modification time changed since: then it is analysed again."""
    placed, done, changed = [], set(), []
    for d in drives:
        meta = _recorded(drive_folder(out, d))
        if meta is not None and not _same_path(meta, d):
            digest = hashlib.sha1(os.path.abspath(d.path).encode("utf-8")).hexdigest()[:8]
            d = replace(d, id=f"{d.id}-{digest}")
            meta = _recorded(drive_folder(out, d))
        placed.append(d)
        if meta is None or force or not is_complete(drive_folder(out, d)):
            continue
        if _unchanged(meta, d):
            done.add(d.id)
        else:
            changed.append(d.id)
    return placed, done, changed


# --------------------------------------------------------------------------- the worker


class DriveAnalyzer:
    """One fleet worker: the run's models (:class:`~driver_monitor.runtime.Runtime`), opened once,
    analyse drive after drive.

    Created inside a Ray actor process. ``threads``: the CPUs Ray gave the actor; OpenCV and ONNX
    Runtime are told so (Ray sets OMP_NUM_THREADS, which OpenCV ignores). ``pin_mesh``: whether the
    frame loop keeps its face mesh on one core (``face.pin_mesh``; see :func:`pin_mesh_in_workers`)."""

    def __init__(self, config: str | None, overrides: Sequence[str], threads: int = 1,
                 pin_mesh: bool = False) -> None:
        import cv2

        from .runtime import Runtime

        threads = max(1, int(threads))
        cv2.setNumThreads(threads)
        pin = f"face.pin_mesh={'true' if pin_mesh else 'false'}"  # before the user's --set, which wins
        self.cfg = load_config(config, [pin, *overrides, f"engine.cpu_threads={threads}"])
        self.error: DriverMonitorError | None = None  # an engine asked for by name that cannot load
        self.runtime = Runtime(self.cfg, log=lambda m: None)
        try:
            self.runtime.open()
        except DriverMonitorError as exc:  # the rest opens without the engine; engine_state says why
            self.error = exc
            self.runtime = Runtime(self.cfg, engine=None, selection={"backend": "none", "reason": str(exc)},
                                   log=lambda m: None).open()
        self.pid = os.getpid()

    def engine_state(self) -> dict[str, Any]:
        """Whether the engine the config asks for opened here, and if not why (said before any drive
        is handed out: a fleet analysed without it would lack every emotion and AU column)."""
        models = self.runtime.open().models
        return {"enabled": bool(self.cfg.engine.enabled), "open": models.engine is not None,
                "reason": str(models.selection.get("reason", "")),
                "error": None if self.error is None else type(self.error).__name__}

    def analyze(self, drive: dict[str, Any], out: str) -> dict[str, Any]:
        """Analyse one drive into ``out/drives/<id>`` (via a temporary folder); never raises for a
        bad drive: the outcome says ``ok``, ``incomplete`` (the source ended early) or ``failed``."""
        from .analyze import analyze

        d = Drive(**drive)
        final = drive_folder(out, d)
        tmp = final.parent / f"{TMP_PREFIX}{d.id}-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        outcome: dict[str, Any] = {"drive": d.id, "path": d.path, "worker": self.pid}
        try:
            summary = analyze(d.path, tmp, self.cfg, progress=False, runtime=self.runtime, log=lambda m: None)
        except DriverMonitorError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return {**outcome, "status": "failed", "reason": str(exc),
                    "seconds": round(time.perf_counter() - started, 3)}
        (tmp / "drive.json").write_text(json.dumps(asdict(d), indent=2) + "\n", encoding="utf-8")
        write_metrics(tmp)  # the report's row, made where the frames are (the report then reads no frames.csv)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return {**outcome, "status": "ok" if summary.get("complete") else "incomplete",
                **({"reason": summary["reason"]} if summary.get("reason") else {}),
                "frames": summary.get("frames"), "duration_s": summary.get("duration_s"),
                "seconds": round(time.perf_counter() - started, 3)}

    def close(self) -> None:
        self.runtime.close()


# --------------------------------------------------------------------------- the run


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DriverMonitorError('batch runs on Ray, which is not installed; pip install -e ".[fleet]"') from None
    return ray


class StopSignals:
    """Ctrl-C, SIGTERM and SIGHUP during a batch: noted, and the batch stops at its next look (a
    quarter of a second), keeps every completed drive and writes its report; a second signal while it
    does is noted too, so it cannot cut the report short. A handler raising instead would land inside
    Ray's waits, which turn any interrupt into a plain KeyboardInterrupt: which signal it was is lost.
    Only in the main thread (elsewhere Python delivers no signals)."""

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.signum: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                sig = getattr(signal, name, None)
                if sig is not None:
                    try:
                        self._before[sig] = signal.signal(sig, self.note)
                    except (OSError, ValueError):  # not allowed here (embedded interpreter)
                        pass
        return self

    def note(self, signum: int, _frame: object = None) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, handler in self._before.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def interrupt(self) -> KeyboardInterrupt:
        """What the stop raises: KeyboardInterrupt for Ctrl-C, :class:`Terminated` for the others."""
        import signal

        if self.signum is None or self.signum == signal.SIGINT:
            return KeyboardInterrupt()
        return Terminated(self.signum, signal.Signals(self.signum).name)


def _connect(ray: Any, address: str | None, stop: StopSignals, verbose: bool = False) -> None:
    """Start or join Ray. Ray's own messages (start-up, a task retried after a worker died) stay off
    the console unless ``verbose``; ray.init's SIGTERM handler (exit at once, nothing written) is
    replaced by the batch's again."""
    import logging
    import signal

    if not verbose:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # the core's C++ log, read by ray.init
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=verbose, ignore_reinit_error=True,
                              logging_level=logging.WARNING if verbose else logging.ERROR)
    before = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, **kw)
    except SystemExit as exc:  # SIGTERM while Ray started: its handler exits
        if exc.code != signal.SIGTERM:
            raise
        stop.note(signal.SIGTERM)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DriverMonitorError(f"cannot start or reach {where} ({str(exc).splitlines()[0]}); check --address "
                                 f"(auto, or ray://HOST:10001) and that the cluster is up") from None
    finally:
        if before is not None and signal.getsignal(signal.SIGTERM) is not before:
            try:
                signal.signal(signal.SIGTERM, before)
            except (OSError, ValueError):  # not the main thread: Ray set none either
                pass


class RayMessages:
    """Ray prints its own messages to stdout from a thread of its own, whatever ``log_to_driver``
    says ("(raylet) Task DriveAnalyzer.analyze failed. There are 2 retries remaining, ..." after a
    worker died): they go to ``DIR/ray.log`` instead, and the batch says in its own words what
    happened to each drive (fleet.jsonl). ``verbose`` leaves them on the console."""

    def __init__(self, log_file: Path, verbose: bool = False) -> None:
        self.log_file, self.verbose, self._module, self._original = log_file, verbose, None, None

    def __enter__(self) -> "RayMessages":
        try:
            import ray._private.worker as module
        except ImportError:  # a Ray without it: its messages stay where it puts them
            return self
        if not self.verbose and callable(getattr(module, "print_to_stdstream", None)):
            self._module, self._original = module, module.print_to_stdstream
            module.print_to_stdstream = self.write
        return self

    def write(self, data: dict[str, Any], ignore_prefix: bool = False) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        try:
            with open(self.log_file, "a", encoding="utf-8") as fh:
                fh.writelines(f"{stamp} ({data.get('pid', '')}) {line}\n" for line in data.get("lines", []))
        except OSError:  # the results folder went away: nothing more to keep
            pass

    def __exit__(self, *exc: object) -> None:
        if self._module is not None:
            self._module.print_to_stdstream = self._original


def pin_mesh_in_workers(address: str | None, started_here: bool, workers: int) -> bool:
    """Whether the workers keep their face mesh on one core (``face.pin_mesh``): only a single
    worker on a Ray started here for this batch, the one frame loop on the machine. Several workers
    would each pick a core unaware of the others, and on a cluster other work shares the machines.
    (One worker on 2 cores, 9 shared drives, 3 paired runs: 5 % less wall time pinned.)"""
    return address is None and started_here and workers == 1


def worker_count(resources: dict[str, float], workers: int | None, cpus: float, gpus: float,
                 log: Callable[[str], None] = lambda m: None) -> int:
    """The workers to start: as many as the cluster's CPUs (and GPUs) hold at the per-worker share,
    or ``workers`` when it fits. More would never be scheduled and their drives would wait for ever,
    so more is capped at what fits, with one line saying so."""
    fit = int(resources.get("CPU", 0) // max(cpus, 1e-9))
    if gpus > 0:
        fit = min(fit, int(resources.get("GPU", 0) // gpus))
    have = f"{resources.get('CPU', 0):g} CPUs" + (f" and {resources.get('GPU', 0):g} GPUs" if gpus > 0 else "")
    if fit < 1:
        raise DriverMonitorError(f"the cluster has {have}: not enough for one worker of {cpus:g} CPUs"
                                 + (f" / {gpus:g} GPUs" if gpus > 0 else "")
                                 + "; lower --cpus-per-worker / --gpus-per-worker")
    if workers is None:
        return fit
    if workers > fit:
        share = f"{cpus:g} CPU{'s' if cpus != 1 else ''}" + (f" / {gpus:g} GPU{'s' if gpus != 1 else ''}"
                                                             if gpus > 0 else "")
        log(f"batch: --workers {workers} is more than the cluster can run at once ({have}, {share} per worker); "
            f"using {fit}")
        return fit
    return workers


@dataclass
class BatchOptions:
    config: str | None = None
    overrides: tuple[str, ...] = ()
    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    retries: int = 2
    force: bool = False
    progress: bool | None = None
    verbose: bool = False  # Ray's own messages on the console


def run_batch(spec: str | os.PathLike, out: str | os.PathLike, opts: BatchOptions,
              log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    """Analyse every drive of ``spec`` into ``out`` on Ray; write fleet.jsonl and the report.
    Returns the run's summary (counts, frames, seconds, frames per second). A stop (Ctrl-C, SIGTERM,
    SIGHUP) still writes fleet.jsonl, batch.json and the report for what completed, then raises
    KeyboardInterrupt (:class:`Terminated` for TERM / HUP) with the summary as its ``batch``."""
    drives = [stamped(d) for d in read_drives(spec, log)]
    out = Path(out)
    (out / "drives").mkdir(parents=True, exist_ok=True)
    stale = clean_stale(out)
    if stale:
        log(f"batch: removed {len(stale)} half-written drive folder(s) of an interrupted run")
    drives, done, changed = place_drives(drives, out, opts.force)
    if changed:
        log(f"batch: {len(changed)} drive(s) changed since their results were written (size or modification "
            f"time), analysed again: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}")
    todo = [d for d in drives if d.id not in done]
    outcomes: dict[str, dict[str, Any]] = {d.id: {"drive": d.id, "path": d.path, "status": "skipped",
                                                  "reason": "complete from an earlier run (--force redoes it)"}
                                           for d in drives if d.id in done}
    stats: dict[str, Any] = {"drives": len(drives), "skipped": len(done), "workers": 0, "ray_start_s": 0.0}
    started, interrupted = time.perf_counter(), None
    with StopSignals() as stop:
        if todo:
            try:
                _analyze_on_ray(todo, out, opts, outcomes, stats, stop, log)
            except KeyboardInterrupt as exc:  # outside the main thread's handlers, or before they were set
                interrupted = exc
            clean_stale(out)  # what a killed (and retried) worker or a stop left half-written
        _finish(out, drives, outcomes, stats, time.perf_counter() - started)
    if interrupted is None and stop.signum is not None:
        interrupted = stop.interrupt()
    if interrupted is not None:
        interrupted.batch = stats  # type: ignore[attr-defined]
        raise interrupted
    return stats


def _finish(out: Path, drives: list[Drive], outcomes: dict[str, dict[str, Any]], stats: dict[str, Any],
            seconds: float) -> None:
    """fleet.jsonl, the report and batch.json: after every run, a stopped one too."""
    stats["seconds"] = round(seconds, 3)
    _write_outcomes(out, drives, outcomes)
    stats.update(write_report(out, drives))
    analysed = [o for o in outcomes.values() if o.get("status") in ("ok", "incomplete")]
    frames = sum(int(o.get("frames") or 0) for o in analysed)
    counts = {k.replace(" ", "_"): sum(1 for o in outcomes.values() if o.get("status") == k)
              for k in ("ok", "incomplete", "failed", "interrupted")}
    counts["not_run"] = len(drives) - len(outcomes)
    stats.update(frames=frames, fps=round(frames / seconds, 2) if analysed and seconds > 0 else None, **counts)
    (out / "batch.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")


def _analyze_on_ray(todo: list[Drive], out: Path, opts: BatchOptions, outcomes: dict[str, dict[str, Any]],
                    stats: dict[str, Any], stop: StopSignals, log: Callable[[str], None]) -> None:
    ray = _ray()
    ours = not ray.is_initialized()  # a Ray the caller started (a notebook, the tests) stays up
    with RayMessages(out / "ray.log", opts.verbose):
        _run_workers(ray, ours, todo, out, opts, outcomes, stats, stop, log)


def _run_workers(ray: Any, ours: bool, todo: list[Drive], out: Path, opts: BatchOptions,
                 outcomes: dict[str, dict[str, Any]], stats: dict[str, Any], stop: StopSignals,
                 log: Callable[[str], None]) -> None:
    t0 = time.perf_counter()
    actors: list[Any] = []
    try:
        if ours:
            _connect(ray, opts.address, stop, opts.verbose)
        if stop.signum is not None:
            return
        n = min(worker_count(ray.cluster_resources(), opts.workers, opts.cpus_per_worker, opts.gpus_per_worker,
                             log), len(todo))
        # a worker that dies is restarted without limit; a drive is retried ``retries`` times
        actor = ray.remote(num_cpus=opts.cpus_per_worker, num_gpus=opts.gpus_per_worker, max_restarts=-1,
                           max_task_retries=opts.retries)(DriveAnalyzer)
        threads = max(1, int(round(opts.cpus_per_worker)))
        pin = pin_mesh_in_workers(opts.address, ours, n)
        actors = [actor.remote(opts.config, list(opts.overrides), threads, pin) for _ in range(n)]
        stats["workers"] = n
        if not _workers_ready(ray, actors, stop):
            return
        stats["ray_start_s"] = round(time.perf_counter() - t0, 3)
        running = _dispatch(ray, actors, todo, out, opts, outcomes, stop, log)
        if running:
            _interrupt(ray, actors, running, outcomes)
    finally:
        for a in actors:  # their CPUs go back to the cluster
            ray.kill(a)
        if ours:
            ray.shutdown()


def _workers_ready(ray: Any, actors: list[Any], stop: StopSignals) -> bool:
    """Wait for the workers to load their models; refuse the batch when the engine the config asks
    for did not open (every drive would lack its emotion and AU columns). False: stopped meanwhile."""
    pending = [a.engine_state.remote() for a in actors]
    refs = list(pending)
    while pending and stop.signum is None:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
    if stop.signum is not None:
        return False
    for ref in refs:
        try:
            state = ray.get(ref)
        except Exception as exc:  # the worker could not start at all
            raise DriverMonitorError(f"the batch's workers could not start ({_first_line(exc)}); nothing was "
                                     f"analysed") from None
        if state["enabled"] and not state["open"]:
            kind = BackendUnavailableError if state["error"] == "BackendUnavailableError" else ModelError
            raise kind(f"the emotion/AU engine did not open in the batch's workers: {state['reason']}. Nothing "
                       f"was analysed; fix engine.model (see driver-monitor engines list) or run the batch "
                       f"without it: --set engine.enabled=false")
    return True


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the worker's own exception
    exc = cause if isinstance(cause, BaseException) else exc
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1][:300] if text else ''}"


def _dispatch(ray: Any, actors: list[Any], todo: list[Drive], out: Path, opts: BatchOptions,
              outcomes: dict[str, dict[str, Any]], stop: StopSignals, log: Callable[[str], None]) -> dict[Any, Drive]:
    """Hand the drives to the workers one at a time, record each outcome as it comes (a progress bar
    over drives with the frames per second); returns the drives still running when a stop came."""
    queue, idle, running = deque(todo), list(actors), {}
    bar, frames, t0 = _bar(len(todo), opts.progress), 0, time.perf_counter()
    try:
        while (queue or running) and stop.signum is None:
            while idle and queue:
                a, d = idle.pop(), queue.popleft()
                running[a.analyze.remote(asdict(d), str(out))] = (a, d)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.25)
            for ref in ready:
                a, d = running.pop(ref)
                idle.append(a)
                o = outcomes[d.id] = _outcome(ray, ref, d, opts)
                frames += int(o.get("frames") or 0)
                if o["status"] == "failed":
                    log(f"batch: {d.id} failed: {o['reason']}")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"{frames / max(time.perf_counter() - t0, 1e-9):.0f} frames/s")
    finally:
        if bar is not None:
            bar.close()
    return {ref: d for ref, (_, d) in running.items()}


def _outcome(ray: Any, ref: Any, d: Drive, opts: BatchOptions) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the analysis raised what no bad drive raises
        reason = f"its analysis stopped with {_first_line(exc)}"
    except Exception as exc:  # the worker died more than --retries times
        reason = f"the worker analysing it died {opts.retries + 1} times ({_first_line(exc)})"
    return {"drive": d.id, "path": d.path, "status": "failed", "reason": reason}


def _interrupt(ray: Any, actors: list[Any], running: dict[Any, Drive], outcomes: dict[str, dict[str, Any]]) -> None:
    """A stop: end the workers, wait until they are gone (no drive renamed into place after the report
    is written), and record each drive they were analysing: done meanwhile, or interrupted."""
    for a in actors:
        ray.kill(a, no_restart=True)
    ray.wait(list(running), num_returns=len(running), timeout=10)
    for ref, d in running.items():
        try:
            outcomes[d.id] = ray.get(ref, timeout=0)
        except Exception:  # ended with its worker
            outcomes[d.id] = {"drive": d.id, "path": d.path, "status": "interrupted", "reason": "interrupted "
                              "while running (its partial results were removed; a re-run analyses it)"}


def _bar(total: int, progress: bool | None) -> Any:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="drive", desc="drives", dynamic_ncols=True, file=sys.stderr)


def _write_outcomes(out: Path, drives: Iterable[Drive], outcomes: dict[str, dict[str, Any]]) -> None:
    """fleet.jsonl: one line per drive of the input, in its order: ok / incomplete / failed / skipped /
    interrupted (while running) / not run (not started when the batch stopped)."""
    lines = [json.dumps(outcomes.get(d.id, {"drive": d.id, "path": d.path, "status": "not run",
                                            "reason": "interrupted before it started"})) for d in drives]
    (out / "fleet.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
