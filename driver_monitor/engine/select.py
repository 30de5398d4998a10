"""The ONE place an engine is chosen and opened, and the policy when none can run.

``create_engine`` asks each backend (``backends.TABLE``) whether it can run here (its module's
``probe``) and opens the first one that fits the request:

* ``backend: auto`` tries the table's auto order (TensorRT on a CUDA GPU, then ONNX Runtime's
  CUDA provider, then ONNX Runtime on the CPU); what it chose and why is the returned
  :class:`~driver_monitor.engine.base.Selection`.
* ``precision: auto`` (:func:`model_for`) runs the int8 copy made for the CPU on ONNX Runtime's
  CPU provider and fp32 elsewhere.
* an explicitly requested backend (or device) that cannot load raises
  :class:`BackendUnavailableError` with the install hint: never a silent GPU -> CPU fallback.

``open_engine_or_none`` is what the app calls: ``auto`` that finds no usable model or runtime runs
without the engine and says why; an explicit request that cannot be met is an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import BackendUnavailableError, ConfigError, ModelError
from .backends import AUTO_ORDER, BACKENDS, backend, backend_module, install_hint
from .base import Engine, Selection, resolve_cache_dir, resolve_model_path
from ..model_contract import read_model_info
from .precision import model_for_precision

Prober = Callable[[str, str], "str | None"]


def _probe(name: str, device: str) -> str | None:
    """None when ``name`` can run on ``device`` here, else why not (without the hint)."""
    return backend_module(name).probe(device)


def _devices_for(name: str, requested: str) -> tuple[str, ...]:
    return backend(name).devices if requested == "auto" else (requested,)


def _check_request(name: str, device: str, precision: str) -> None:
    """Impossible combinations, from the table, before anything is probed."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"engine device {device!r} is not allowed; use auto, cpu or cuda")
    if name == "auto":
        return
    b = backend(name)
    if device != "auto" and device not in b.devices:
        others = [o.name for o in (backend(n) for n in BACKENDS) if device in o.devices]
        where = " or ".join({"cuda": "a CUDA GPU", "cpu": "the CPU"}[d] for d in b.devices)
        raise ConfigError(f"engine backend {name!r} runs on {where} only; "
                          f"use engine.device={b.devices[0]} (or auto), or backend {others[0]} for the "
                          f"{device.upper()}")
    if precision != "auto" and precision not in b.precisions:
        others = [n for n in BACKENDS if precision in backend(n).precisions]
        raise ConfigError(f"engine backend {name!r} runs precision {' / '.join(b.precisions)} only "
                          f"({name} is the fp32 reference); precision {precision!r} needs backend "
                          f"{' or '.join(others)} (they run the fp16 / int8 ONNX copies)")


def _plan_auto(device: str, prober: Prober) -> list[tuple[str, str, str]]:
    skipped: list[str] = []
    out: list[tuple[str, str, str]] = []
    for b, d in AUTO_ORDER:
        if device not in ("auto", d):
            continue
        problem = prober(b, d)
        if problem is None:
            why = "auto: " + ("; ".join(skipped) + "; " if skipped else "") + f"chose {b} {d.upper()}"
            out.append((b, d, why))
            skipped.append(f"{b} {d.upper()} failed to open")
        else:
            skipped.append(f"{b} {d.upper()} unavailable ({problem})")
    if out:
        return out
    if device == "cuda":  # the GPU was asked for: say how to get a GPU backend, or drop the request
        hints = [install_hint(b, d) for b, d in AUTO_ORDER if d == "cuda"]
        raise BackendUnavailableError(
            "engine.device is cuda but no backend can use a GPU here: " + "; ".join(skipped) + ". To fix: "
            + ", or ".join(reversed(hints)) + "; or set engine.device=auto (or cpu) to run on the CPU")
    raise BackendUnavailableError("no inference backend can run here: " + "; ".join(skipped) + ". "
                                  + install_hint(*AUTO_ORDER[-1]))


def plan_selection(name: str, device: str = "auto", precision: str = "auto", *,
                   prober: Prober = _probe) -> list[tuple[str, str, str]]:
    """Candidates to try, in order: ``[(backend, device, why), ...]``.

    Raises BackendUnavailableError when an explicit request cannot be met here. ``why`` says
    which candidates were skipped before this one and why. ``prober`` is injectable for tests.
    """
    _check_request(name, device, precision)
    if name == "auto":
        return _plan_auto(device, prober)
    problems = []
    for d in _devices_for(name, device):
        problem = prober(name, d)
        if problem is None:
            why = f"requested backend {name}"
            if device == "auto" and problems:
                why += f" (device auto: {'; '.join(problems)}; so using {d.upper()})"
            elif device == "auto":
                why += f" (device auto: using {d.upper()})"
            else:
                why += f" on {d.upper()}"
            return [(name, d, why)]
        problems.append(f"{d.upper()}: {problem}" if device == "auto" else problem)
    d = _devices_for(name, device)[-1]  # device auto: the hint for the most basic install
    raise BackendUnavailableError(
        f"engine backend {name!r}" + (f" on {device}" if device != "auto" else "")
        + f" cannot run here: {'; '.join(problems)}. To fix: {install_hint(name, d)}; or choose "
        f"another with --backend auto|{'|'.join(n for n in BACKENDS if n != 'tensorrt')}")


def model_for(fp32_path: Path, precision: str, cache_dir: Path, backend_name: str, device: str,
              fp32: Any = None) -> tuple[Any, str]:
    """(ModelInfo, note for the selection's reason) that ``backend_name`` runs on ``device``.

    ``precision: auto`` is the int8 copy for the CPU on ONNX Runtime's CPU provider when it is
    current (about 1.8x fp32's speed, the same accuracy: docs/engines.md), fp32 everywhere else
    and when that copy is missing or stale (the note says why). An explicit precision is that
    precision's copy for the device, or ModelError. ``fp32``: the model's ModelInfo, when read already."""
    fp32 = fp32 if fp32 is not None else read_model_info(fp32_path)
    if precision != "auto":
        return model_for_precision(fp32_path, precision, cache_dir, device, fp32=fp32), ""
    if backend_name == "onnxruntime" and device == "cpu":
        try:
            return (model_for_precision(fp32_path, "int8", cache_dir, "cpu", fp32=fp32),
                    "; precision auto: int8 copy for the CPU")
        except ModelError as exc:
            return fp32, f"; precision auto: fp32 ({exc})"
    return fp32, ""


def _open_candidate(cfg: Any, b: str, d: str, fp32_path: Path, fp32: Any, cache_dir: Path,
                    log: Callable[[str], None]) -> tuple[Engine, Any, str]:
    """(engine, its ModelInfo, note for the reason) of one candidate. Under ``precision: auto`` an
    int8 copy that does not open (a damaged file) gives way to the fp32 model, and the note says so."""
    def open_(model: Any) -> Engine:
        engine = backend_module(b).open_engine(model, fp32_path=fp32_path, device=d, max_batch=cfg.max_batch,
                                               cache_dir=cache_dir, log=log,
                                               cpu_threads=int(getattr(cfg, "cpu_threads", 0)))
        try:
            engine.warm_up()  # the runtime's first-run work now, not on the first frames
        except Exception as exc:  # the runtimes raise their own types; a first run that fails is a failed open
            engine.close()
            raise ModelError(f"{engine.description} opened {model.path.name} but its first run failed: "
                             f"{exc.__class__.__name__}: {str(exc)[:300]}") from None
        return engine

    model, note = model_for(fp32_path, cfg.precision, cache_dir, b, d, fp32)
    try:
        return open_(model), model, note
    except (BackendUnavailableError, ModelError) as exc:
        if cfg.precision != "auto" or model is fp32:
            raise
        log(f"engine: {b} {d.upper()} could not open {model.path.name} ({exc}); running fp32")
        return open_(fp32), fp32, f"; precision auto: fp32 ({model.path.name} did not open: {exc})"


def create_engine(cfg: Any, *, project_root: str | Path | None = None,
                  log: Callable[[str], None] | None = None,
                  prober: Prober = _probe) -> tuple[Engine, Selection]:
    """Open the engine ``cfg`` (an EngineConfig) asks for. The ONE place a backend is chosen.

    Returns the engine and a Selection saying what runs and why. Raises ModelError when the model
    (or the requested precision's copy) is missing or stale, BackendUnavailableError when an
    explicitly requested backend cannot run here, ConfigError for impossible combinations.
    """
    log = log or (lambda msg: None)
    backend = cfg.backend
    device = getattr(cfg, "device", "auto")
    precision = cfg.precision
    fp32_path = resolve_model_path(cfg, project_root)
    cache_dir = resolve_cache_dir(cfg, project_root)
    candidates = plan_selection(backend, device, precision, prober=prober)
    fp32 = read_model_info(fp32_path)  # once (it hashes the file); a missing model is an error before any backend
    errors: list[str] = []
    for i, (b, d, why) in enumerate(candidates):
        try:
            engine, model, note = _open_candidate(cfg, b, d, fp32_path, fp32, cache_dir, log)
            why += note
        except (BackendUnavailableError, ModelError) as exc:
            if backend != "auto" or i == len(candidates) - 1:
                raise
            errors.append(f"{b} {d.upper()}: {exc}")
            log(f"engine: {b} {d.upper()} could not open ({exc}); trying the next backend")
            continue
        if errors:
            why += " (after: " + "; ".join(errors) + ")"
        return engine, Selection(b, d, model.precision, why)
    raise BackendUnavailableError("no backend could open the model: " + "; ".join(errors))


def open_engine_or_none(cfg: Any, project_root: str | Path | None = None, *,
                        warn: Callable[[str], None] = lambda m: None,
                        verbose: bool = False) -> tuple[Engine | None, dict[str, Any]]:
    """(engine or None, selection as a dict for summary.json) for an EngineConfig: the app's one
    call into engine selection.

    ``auto`` that finds no usable model or runtime runs without the engine and says so through
    ``warn``; an explicitly requested backend that cannot load is an error, and so is
    ``device: cuda`` that no backend can honour. The choice goes to ``warn`` on one short line;
    ``verbose`` adds the reasoning (always in the returned dict).
    """
    if not cfg.enabled:
        return None, {"backend": "none", "reason": "engine.enabled is false"}
    try:
        engine, selection = create_engine(cfg, project_root=project_root)
    except (ModelError, BackendUnavailableError) as exc:
        if cfg.backend != "auto" or cfg.device == "cuda":
            raise  # asked for by name, or asked for the GPU: not silently the CPU or nothing
        warn(f"warning: running without the emotion/AU engine: {exc}")
        return None, {"backend": "none", "reason": str(exc)}
    sel = selection.to_dict()
    line = f"engine: {sel['backend']} on {sel['device']} ({sel['precision']})"
    warn(f"{line}: {sel['reason']}" if verbose else line)
    return engine, sel
