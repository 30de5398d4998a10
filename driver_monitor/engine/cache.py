"""Cache of built TensorRT plans: keyed by everything that makes a plan invalid.

A plan is only valid for the exact ONNX bytes, TensorRT version, GPU (name and compute
capability), precision, input shape, optimisation profile and builder settings (workspace pool,
optimisation level) it was built for. The key is the sha256 of those fields; the plan is stored
as ``<stem>.<precision>.<key16>.plan`` with ``<...>.plan.json`` beside it holding the fields, the
plan's own sha256 and size. Both files are written to a temporary name and renamed, so a crash
never leaves a half plan under the real name; they get the usual permissions for new files
(0666 less the umask), so a folder shared between users can be read by all of them.

A plan whose metadata is missing, does not match, whose bytes do not hash to the recorded
sha256, that cannot be read, or that does not deserialize is rebuilt with a message, never used
silently. A freshly built plan is stored only after it deserialized; when the folder cannot be
written, the plan is used for this run and the message says it was not stored.

Pure logic (no TensorRT import): the TensorRT backend passes in build / deserialize callables,
so all of this is tested without a GPU.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from ..errors import ModelError

PLAN_SUFFIX = ".plan"
META_SUFFIX = ".json"
TMP_SUFFIX = ".tmp"
SCHEMA = 2  # 2: builder settings (workspace_bytes, opt_level) in the key

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PlanKey:
    """What a TensorRT plan depends on.

    input_shape: ``(C, H, W)`` of one face. min/opt/max_batch: the optimisation profile's batch range.
    compute_capability: ``"8.6"``-style string. workspace_bytes: the builder's workspace pool limit;
    opt_level: the builder optimisation level (both change which kernels the plan holds).
    """

    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    input_shape: tuple[int, int, int]
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 8
    workspace_bytes: int = 1 << 30
    opt_level: int = 3

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlanKey":
        names = {f.name for f in fields(cls)}
        missing = names - set(d)
        if missing:
            raise ValueError(f"plan metadata lacks {sorted(missing)}")
        kw = {k: d[k] for k in names}
        kw["input_shape"] = tuple(int(v) for v in d["input_shape"])
        return cls(**kw)

    @property
    def digest(self) -> str:
        blob = json.dumps({"schema": SCHEMA, **self.to_dict()}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def differences(self, other: "PlanKey") -> list[str]:
        """``["trt_version: 10.9 != 11.0", ...]`` for every field that differs."""
        return [f"{f.name}: {getattr(other, f.name)!r} != {getattr(self, f.name)!r}"
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


def plan_path(cache_dir: str | Path, stem: str, key: PlanKey) -> Path:
    return Path(cache_dir) / f"{stem}.{key.precision}.{key.digest[:16]}{PLAN_SUFFIX}"


def meta_path(plan: str | Path) -> Path:
    """``x.plan`` -> ``x.plan.json``."""
    return Path(str(plan) + META_SUFFIX)


def new_temp_file(path: str | Path) -> tuple[int, Path]:
    """``(fd, name)`` of a new, empty temporary file beside ``path`` (``.<name>.<random>.tmp``), opened
    for writing with the permissions of any new file (0666 less the umask; ``tempfile`` would give
    0600, which other users sharing the folder cannot read after the rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_plan(cache_dir: str | Path, stem: str, key: PlanKey, plan: bytes, *,
               extra: dict[str, Any] | None = None) -> Path:
    """Store ``plan`` and its metadata atomically; returns the plan's path."""
    path = plan_path(cache_dir, stem, key)
    meta = {
        "schema": SCHEMA,
        "key": key.to_dict(),
        "key_digest": key.digest,
        "plan_sha256": hashlib.sha256(plan).hexdigest(),
        "plan_bytes": len(plan),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **(extra or {}),
    }
    # metadata first would let a crash leave metadata without a plan: harmless (plan missing = rebuild).
    _write_atomic(path, bytes(plan))
    _write_atomic(meta_path(path), json.dumps(meta, indent=2, sort_keys=True).encode())
    return path


def read_meta(plan: str | Path) -> dict[str, Any]:
    """The metadata beside ``plan``; raises ValueError saying what is wrong with it."""
    mp = meta_path(plan)
    if not mp.is_file():
        raise ValueError(f"no metadata file {mp.name}")
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"metadata {mp.name} is unreadable ({exc.__class__.__name__})") from None
    if not isinstance(meta, dict) or "key" not in meta:
        raise ValueError(f"metadata {mp.name} has no key")
    return meta


def check_plan(plan: str | Path, key: PlanKey) -> str | None:
    """None when ``plan`` exists and matches ``key``; otherwise what is wrong with it."""
    p = Path(plan)
    if not p.is_file():
        return "no plan built yet"
    try:
        meta = read_meta(p)
        stored = PlanKey.from_dict(meta["key"])
    except (ValueError, TypeError) as exc:
        return f"metadata problem: {exc}"
    diffs = key.differences(stored)
    if diffs:
        return "built for something else (" + "; ".join(diffs) + ")"
    try:
        data = p.read_bytes()
    except OSError as exc:
        return f"it cannot be read ({exc.__class__.__name__}: {exc.strerror or exc})"
    if len(data) != meta.get("plan_bytes") or hashlib.sha256(data).hexdigest() != meta.get("plan_sha256"):
        return (f"plan bytes do not match the metadata ({len(data)} bytes, expected {meta.get('plan_bytes')}): "
                f"truncated or overwritten")
    return None


def load_or_build(cache_dir: str | Path, stem: str, key: PlanKey, *,
                  build: Callable[[], bytes],
                  deserialize: Callable[[bytes], T],
                  log: Callable[[str], None] | None = None,
                  force: bool = False,
                  extra: dict[str, Any] | None = None) -> tuple[T, Path, bool]:
    """Load the cached plan for ``key``, or build, load and store it.

    Returns ``(deserialized, plan_path, built)``. A cached plan that does not match, cannot be read
    or does not deserialize is rebuilt and the reason logged. A freshly built plan that does not
    deserialize raises ModelError and is not stored; one that cannot be stored (a read-only or
    foreign folder) is used anyway and the reason logged.
    """
    log = log or (lambda msg: None)
    path = plan_path(cache_dir, stem, key)
    if not force:
        problem = check_plan(path, key)
        if problem is None:
            try:
                obj = deserialize(path.read_bytes())
            except Exception as exc:  # runtime-specific errors, OSError
                obj, problem = None, f"it does not deserialize ({exc.__class__.__name__}: {exc})"
            if obj is not None:
                return obj, path, False
            if problem is None:
                problem = "it does not deserialize"
        if path.exists() or meta_path(path).exists():
            log(f"engine cache: rebuilding {path.name}: {problem}")
        else:
            log(f"engine cache: building {path.name} ({key.precision}, batch {key.min_batch}..{key.max_batch}); "
                f"this takes a while once per model, GPU and TensorRT version")
    else:
        log(f"engine cache: rebuilding {path.name} (forced)")
    plan = build()
    if not plan:
        raise ModelError(f"TensorRT returned an empty plan for {stem} ({key.precision}); see the build log above")
    plan = bytes(plan)
    try:
        obj = deserialize(plan)
    except Exception as exc:
        raise ModelError(f"the freshly built plan {path.name} does not deserialize "
                         f"({exc.__class__.__name__}: {exc}); it was not stored") from exc
    if obj is None:
        raise ModelError(f"the freshly built plan {path.name} does not deserialize; it was not stored")
    try:
        write_plan(cache_dir, stem, key, plan, extra=extra)
    except OSError as exc:
        log(f"engine cache: could not store {path.name} in {str(Path(cache_dir))!r} "
            f"({exc.__class__.__name__}: {exc.strerror or exc}); using it for this run only, it will be "
            f"built again next time (set engine.cache_dir to a folder you can write to)")
    return obj, path, True


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One file group in the cache: a plan (with its metadata) or an ONNX precision copy."""

    path: Path
    kind: str  # "plan" | "onnx" | "orphan"
    size: int
    key: PlanKey | None = None
    problem: str | None = None
    info: dict[str, Any] | None = None


def list_cache(cache_dir: str | Path) -> list[CacheEntry]:
    """Plans (with their keys or what is wrong with them), ONNX copies and orphan metadata."""
    d = Path(cache_dir)
    if not d.is_dir():
        return []
    out: list[CacheEntry] = []
    for p in sorted(d.iterdir()):
        if not p.is_file():
            continue
        if p.suffix == PLAN_SUFFIX:
            try:
                meta = read_meta(p)
                key = PlanKey.from_dict(meta["key"])
                problem = None
                if p.stat().st_size != meta.get("plan_bytes"):
                    problem = f"size {p.stat().st_size} != recorded {meta.get('plan_bytes')} (truncated)"
                out.append(CacheEntry(p, "plan", p.stat().st_size, key, problem, meta))
            except (ValueError, TypeError) as exc:
                out.append(CacheEntry(p, "plan", p.stat().st_size, None, str(exc)))
        elif p.name.endswith(PLAN_SUFFIX + META_SUFFIX) and not p.with_suffix("").exists() \
                and _looks_like_plan_meta(p):
            out.append(CacheEntry(p, "orphan", p.stat().st_size, None, "metadata without a plan"))
        elif p.name.endswith(TMP_SUFFIX):
            out.append(CacheEntry(p, "orphan", p.stat().st_size, None, "temporary file of an interrupted write"))
        elif p.suffix == ".onnx" and p.stem.rsplit(".", 1)[-1] in ("fp16", "int8"):
            out.append(CacheEntry(p, "onnx", p.stat().st_size, None, None,
                                  {"precision": p.stem.rsplit(".", 1)[-1]}))
    return out


def _looks_like_plan_meta(p: Path) -> bool:
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and "plan_sha256" in meta


def stale_reason(entry: CacheEntry, *, onnx_hashes: Iterable[str], trt_version: str | None,
                 gpu: tuple[str, str] | None) -> str | None:
    """Why a cache entry is stale (None = keep).

    onnx_hashes: sha256 of every ONNX model the product can build plans from right now (the
    model and its copies). trt_version / gpu: of this machine, or None when unknown here (then
    plans for other versions / GPUs are kept: they may belong to another machine sharing the folder).
    """
    if entry.kind == "orphan":
        return entry.problem
    if entry.kind != "plan":
        return None
    if entry.key is None:
        return entry.problem or "unreadable metadata"
    if entry.problem:
        return entry.problem
    hashes = set(onnx_hashes)
    if entry.key.onnx_sha256 not in hashes:
        return f"built from an ONNX that is no longer here (sha256 {entry.key.onnx_sha256[:12]})"
    if trt_version is not None and gpu is not None and (
            entry.key.gpu_name, entry.key.compute_capability) == gpu and entry.key.trt_version != trt_version:
        return f"built by TensorRT {entry.key.trt_version}, this machine has {trt_version}"
    return None


def clean_cache(cache_dir: str | Path, *, onnx_hashes: Iterable[str], trt_version: str | None = None,
                gpu: tuple[str, str] | None = None, remove_all: bool = False,
                dry_run: bool = False) -> list[tuple[Path, str]]:
    """Remove stale plans (and their metadata) and leftovers; ``remove_all`` removes every plan
    and ONNX copy. Returns ``[(path, why), ...]`` of what was (or would be) removed."""
    hashes = list(onnx_hashes)
    removed: list[tuple[Path, str]] = []
    for entry in list_cache(cache_dir):
        why = "--all" if remove_all else stale_reason(entry, onnx_hashes=hashes, trt_version=trt_version, gpu=gpu)
        if why is None:
            continue
        targets = [entry.path]
        if entry.kind == "plan" and meta_path(entry.path).exists():
            targets.append(meta_path(entry.path))
        for t in targets:
            removed.append((t, why))
            if not dry_run:
                t.unlink(missing_ok=True)
    return removed
