"""``driver-monitor engines build | list | clean``: the model's precision copies and the plan cache.

The work is the engine package's (``engine.precision``, ``engine.cache``, ``engine.tensorrt_backend``);
this module only reads the command line and prints. Each action's handler is
``handler(args, cfg) -> exit code`` and raises DriverMonitorError for user errors.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import PROJECT_ROOT, Config
from ..engine.base import resolve_cache_dir, resolve_model_path
from ..engine.precision import (CALIB_METHODS, COPY_KINDS, CPU_INT8, PRECISIONS, build_copy, find_copy,
                                model_for_precision)
from ..errors import DriverMonitorError, ModelError
from .argtypes import positive_int, unwritable
from ..model_contract import file_sha256, read_model_info


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


# --------------------------------------------------------------------------- engines


#: the copies ``engines list / clean`` look at: (label, precision, device whose copy it is)
_COPIES = tuple(("int8 (CPU)" if kind == CPU_INT8 else kind, p, d) for kind, (p, d) in COPY_KINDS.items())


def _model_paths(cfg: Config) -> tuple[Path, Path]:
    return resolve_model_path(cfg.engine, PROJECT_ROOT), resolve_cache_dir(cfg.engine, PROJECT_ROOT)


def _trt_here() -> tuple[str | None, tuple[str, str] | None, str | None]:
    """(TensorRT version, (GPU name, compute capability), problem) on this machine."""
    from ..engine import tensorrt_backend as trt_b

    problem = trt_b.probe("cuda")
    if problem is not None:
        return None, None, problem
    return trt_b.version(), trt_b.gpu_identity(), None


def _writable_cache(cache: Path) -> None:
    """engine.cache_dir must be a folder we can write in; say so on one line when it is not."""
    why = unwritable(cache)
    if why is not None:
        raise DriverMonitorError(f"engine.cache_dir {str(cache)!r} is not a writable folder ({why}); set "
                                 f"--set engine.cache_dir=DIR to a folder you can write to")


def cmd_engines_build(args: argparse.Namespace, cfg: Config) -> int:
    fp32, cache = _model_paths(cfg)
    read_model_info(fp32)  # a clear error first when the model itself is missing
    _writable_cache(cache)
    precisions = args.precision or (["fp32", "fp16"] + (["int8"] if args.calib_dir else []))
    if "int8" in precisions and not args.calib_dir:
        raise DriverMonitorError("engines build --precision int8 needs --calib-dir DIR: a folder of aligned grey "
                                 "face crops (PNG/JPG) to calibrate the activation ranges on")
    made = []
    for p in precisions:
        path = build_copy(fp32, p, cache, calib_dir=args.calib_dir, calib_limit=args.calib_limit,
                          calib_method=args.calib_method, log=_err)
        made.append((p, path))
        print(f"{p}: {path}")
        if p == "int8":  # and the one ONNX Runtime runs on the CPU
            path = build_copy(fp32, p, cache, device="cpu", calib_dir=args.calib_dir, calib_limit=args.calib_limit,
                              calib_method=args.calib_method, log=_err)
            print(f"int8 (CPU): {path}")
    version, gpu, problem = _trt_here()
    if args.plans == "no" or (args.plans == "auto" and problem is not None):
        if problem is not None:
            print(f"TensorRT plans not built: {problem}" + (
                "" if args.plans == "no" else ' (install with `pip install -e ".[gpu]"` on a GPU machine)'))
        return 0
    if problem is not None:  # --plans yes
        raise DriverMonitorError(f"engines build --plans yes: TensorRT cannot run here: {problem}; "
                                 f'install with `pip install -e ".[gpu]"` on a machine with an NVIDIA GPU')
    from ..engine.tensorrt_backend import TensorRTEngine

    for p, _ in made:
        info = model_for_precision(fp32, p, cache)
        eng = TensorRTEngine(info, cache_dir=cache, max_batch=cfg.engine.max_batch, log=_err,
                             force_rebuild=args.force)
        print(f"tensorrt {version} plan ({p}, {gpu[0]} sm {gpu[1]}): {eng.plan_path}"
              + (" (built)" if eng.built else " (cached, up to date)"))
        eng.close()
    return 0


def _describe_key(key: Any) -> str:
    return (f"{key.precision}, TensorRT {key.trt_version}, {key.gpu_name} (sm {key.compute_capability}), "
            f"input {tuple(key.input_shape)}, batch {key.min_batch}..{key.max_batch} (opt {key.opt_batch}), "
            f"onnx {key.onnx_sha256[:12]}")


def cmd_engines_list(args: argparse.Namespace, cfg: Config) -> int:
    from ..engine.cache import list_cache

    fp32, cache = _model_paths(cfg)
    try:
        info = read_model_info(fp32)
        print(f"model: {fp32} (version {info.version or '?'}, sha256 {info.sha256[:12]}, input {info.spec.size}px)")
    except ModelError as exc:
        print(f"model: {exc}")
    for label, p, device in _COPIES:
        path = find_copy(fp32, p, cache, device)
        if not path.exists():
            print(f"  {label} copy: not built (driver-monitor engines build --precision {p})")
            continue
        try:
            model_for_precision(fp32, p, cache, device)
            print(f"  {label} copy: {path} (up to date)")
        except ModelError as exc:
            print(f"  {label} copy: {path} STALE: {exc}")
    version, gpu, problem = _trt_here()
    print(f"tensorrt here: {version} on {gpu[0]} (sm {gpu[1]})" if problem is None
          else f"tensorrt here: no ({problem})")
    plans = [e for e in list_cache(cache) if e.kind != "onnx"]
    if not plans:
        print(f"plans in {cache}: none")
    for e in plans:
        size = f"{e.size / 1e6:.1f} MB"
        if e.key is not None:
            print(f"  {e.path.name} [{size}]: {_describe_key(e.key)}"
                  + (f"; PROBLEM: {e.problem}" if e.problem else ""))
        else:
            print(f"  {e.path.name} [{size}]: {e.kind}, {e.problem}")
    return 0


def cmd_engines_clean(args: argparse.Namespace, cfg: Config) -> int:
    from ..engine.cache import clean_cache

    fp32, cache = _model_paths(cfg)
    hashes = set()
    if fp32.is_file():
        hashes.add(file_sha256(fp32))
    stale_copies = []
    for _, p, device in _COPIES:
        path = find_copy(fp32, p, cache, device)
        if not path.exists():
            continue
        try:
            hashes.add(model_for_precision(fp32, p, cache, device).sha256)
        except ModelError as exc:
            stale_copies.append((path, str(exc)))
    version, gpu, _ = _trt_here()
    removed = clean_cache(cache, onnx_hashes=hashes, trt_version=version, gpu=gpu, remove_all=args.all,
                          dry_run=args.dry_run)
    if not args.all:
        for path, why in stale_copies:
            removed.append((path, why))
            if not args.dry_run:
                path.unlink(missing_ok=True)
    verb = "would remove" if args.dry_run else "removed"
    for path, why in removed:
        print(f"{verb} {path}: {why}")
    if not removed:
        print(f"nothing to remove in {cache}")
    return 0


# --------------------------------------------------------------------------- parsers


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("engines",
                              help="make fp16/int8 ONNX copies, build TensorRT plans, list or clean the cache")
    esub = e.add_subparsers(dest="engines_command", metavar="ACTION", required=True)
    b = esub.add_parser("build", help="make the fp16 / int8 ONNX copies and (with TensorRT) the plans")
    b.add_argument("--precision", action="append", choices=PRECISIONS,
                   help="repeatable; default fp32 and fp16, plus int8 when --calib-dir is given")
    b.add_argument("--calib-dir", metavar="DIR", help="folder of aligned grey face crops (PNG/JPG) for int8")
    b.add_argument("--calib-limit", type=positive_int, default=1000, metavar="N",
                   help="calibrate on at most N crops (random sample, default 1000)")
    b.add_argument("--calib-method", choices=CALIB_METHODS, default="minmax",
                   help="int8 activation-range calibration (default minmax)")
    b.add_argument("--plans", choices=("auto", "yes", "no"), default="auto",
                   help="build TensorRT plans: auto = when TensorRT and a GPU are here")
    b.add_argument("--force", action="store_true", help="rebuild plans even when the cached one matches")
    b.set_defaults(func=cmd_engines_build)
    lst = esub.add_parser("list", help="show the model, its copies and the cached plans with their keys")
    lst.set_defaults(func=cmd_engines_list)
    c = esub.add_parser("clean", help="remove stale plans and copies (another ONNX, another TensorRT, broken)")
    c.add_argument("--all", action="store_true", help="remove every plan and ONNX copy")
    c.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    c.set_defaults(func=cmd_engines_clean)
    return e

