"""TensorRT plan cache: keys, atomic writes, mismatched / corrupt plans, listing and cleaning.

The cache is pure logic; the TensorRT backend hands it build and deserialize callables. Here
those are fakes that record their calls, so every path runs without a GPU.
"""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from driver_monitor.engine.cache import (PlanKey, check_plan, clean_cache, list_cache, load_or_build, meta_path,
                                         plan_path, write_plan)
from driver_monitor.errors import ModelError


def make_key(**changes) -> PlanKey:
    key = PlanKey(onnx_sha256="a" * 64, trt_version="11.0.0", gpu_name="NVIDIA H100", compute_capability="9.0",
                  precision="fp16", input_shape=(1, 48, 48), min_batch=1, opt_batch=1, max_batch=8)
    return replace(key, **changes)


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "b" * 64},
    {"trt_version": "10.13.0"},
    {"gpu_name": "NVIDIA L4"},
    {"compute_capability": "8.9"},
    {"precision": "int8"},
    {"input_shape": (1, 64, 64)},
    {"max_batch": 16},
    {"opt_batch": 4},
    {"min_batch": 2},
    {"workspace_bytes": 1 << 28},
    {"opt_level": 5},
])
def test_key_changes_when_any_part_changes(tmp_path, change):
    a, b = make_key(), make_key(**change)
    assert a.digest != b.digest
    assert plan_path(tmp_path, "m", a) != plan_path(tmp_path, "m", b)
    assert len(b.differences(a)) == 1


def test_key_is_stable_and_round_trips():
    k = make_key()
    assert k.digest == make_key().digest
    assert PlanKey.from_dict(json.loads(json.dumps(k.to_dict()))) == k


class FakeRuntime:
    """Counts builds; 'deserializes' only bytes that start with PLAN."""

    def __init__(self, payload: bytes = b"PLAN-v1"):
        self.payload, self.builds, self.loads = payload, 0, 0

    def build(self) -> bytes:
        self.builds += 1
        return self.payload

    def deserialize(self, data: bytes):
        self.loads += 1
        if not data.startswith(b"PLAN"):
            raise RuntimeError("not a plan")
        return ("engine", data)


def test_build_once_then_load_from_cache(tmp_path):
    rt, logs = FakeRuntime(), []
    obj, path, built = load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize,
                                     log=logs.append)
    assert built and rt.builds == 1 and obj == ("engine", b"PLAN-v1")
    assert path.read_bytes() == b"PLAN-v1" and meta_path(path).is_file()
    meta = json.loads(meta_path(path).read_text())
    assert meta["key"]["onnx_sha256"] == "a" * 64 and meta["plan_bytes"] == 7
    obj2, path2, built2 = load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize)
    assert not built2 and rt.builds == 1 and path2 == path
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage,expected", [
    ("truncate", "truncated or overwritten"),
    ("garbage_same_size", "truncated or overwritten"),
    ("no_meta", "no metadata file"),
    ("bad_meta_json", "unreadable"),
    ("meta_other_key", "built for something else (trt_version"),
])
def test_damaged_or_mismatched_plan_is_rebuilt_with_a_message(tmp_path, damage, expected):
    rt, logs = FakeRuntime(), []
    key = make_key()
    path = write_plan(tmp_path, "m", key, b"PLAN-v1")
    if damage == "truncate":
        path.write_bytes(b"PLA")
    elif damage == "garbage_same_size":
        path.write_bytes(b"XXXXXXX")
    elif damage == "no_meta":
        meta_path(path).unlink()
    elif damage == "bad_meta_json":
        meta_path(path).write_text("{not json")
    elif damage == "meta_other_key":
        meta = json.loads(meta_path(path).read_text())
        meta["key"]["trt_version"] = "10.9.0"
        meta_path(path).write_text(json.dumps(meta))
    assert expected in check_plan(path, key)
    obj, path2, built = load_or_build(tmp_path, "m", key, build=rt.build, deserialize=rt.deserialize, log=logs.append)
    assert built and rt.builds == 1 and obj[1] == b"PLAN-v1"
    assert any("rebuilding" in m and expected.split(" (")[0] in m for m in logs)
    assert check_plan(path2, key) is None


def test_plan_that_does_not_deserialize_is_rebuilt(tmp_path):
    key = make_key()
    write_plan(tmp_path, "m", key, b"JUNK-but-recorded")  # metadata matches, runtime refuses it
    rt, logs = FakeRuntime(), []
    _, _, built = load_or_build(tmp_path, "m", key, build=rt.build, deserialize=rt.deserialize, log=logs.append)
    assert built
    assert any("does not deserialize" in m for m in logs)


def test_fresh_plan_that_does_not_deserialize_is_an_error_and_not_stored(tmp_path):
    rt = FakeRuntime(payload=b"BROKEN")
    with pytest.raises(ModelError, match="freshly built plan .* does not deserialize .*not stored"):
        load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize)
    assert list(tmp_path.iterdir()) == []  # the next start builds again instead of loading it


def test_plan_metadata_of_the_previous_schema_is_rebuilt(tmp_path):
    key = make_key()
    path = write_plan(tmp_path, "m", key, b"PLAN-v1")
    meta = json.loads(meta_path(path).read_text())
    del meta["key"]["workspace_bytes"], meta["key"]["opt_level"]
    meta_path(path).write_text(json.dumps(meta))
    assert "lacks ['opt_level', 'workspace_bytes']" in check_plan(path, key)
    assert [e.problem for e in list_cache(tmp_path)] == ["plan metadata lacks ['opt_level', 'workspace_bytes']"]


def test_plans_are_readable_by_other_users(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_plan(tmp_path, "m", make_key(), b"PLAN")
    for p in (path, meta_path(path)):
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_folder_that_cannot_be_written_uses_the_plan_uncached(tmp_path, monkeypatch):
    """A shared cache folder owned by someone else: the plan runs, the log says it was not stored."""
    from driver_monitor.engine import cache

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(cache, "_write_atomic", refuse)
    rt, logs = FakeRuntime(), []
    obj, path, built = load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize,
                                     log=logs.append)
    assert built and obj == ("engine", b"PLAN-v1") and not path.exists()
    assert any("could not store" in m and "PermissionError: Permission denied" in m and "this run only" in m
               for m in logs)


def test_plan_that_cannot_be_read_is_rebuilt(tmp_path, monkeypatch):
    from pathlib import Path

    key = make_key()
    path = write_plan(tmp_path, "m", key, b"PLAN-v1")
    real = Path.read_bytes

    def read_bytes(self):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert check_plan(path, key) == "it cannot be read (PermissionError: Permission denied)"
    rt, logs = FakeRuntime(), []
    _, _, built = load_or_build(tmp_path, "m", key, build=rt.build, deserialize=rt.deserialize, log=logs.append)
    assert built and any("rebuilding" in m and "cannot be read" in m for m in logs)


def test_empty_build_is_an_error(tmp_path):
    with pytest.raises(ModelError, match="empty plan"):
        load_or_build(tmp_path, "m", make_key(), build=lambda: b"", deserialize=lambda b: b)


def test_force_rebuilds_a_good_plan(tmp_path):
    rt = FakeRuntime()
    load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize)
    load_or_build(tmp_path, "m", make_key(), build=rt.build, deserialize=rt.deserialize, force=True)
    assert rt.builds == 2


def test_list_and_clean(tmp_path):
    good = write_plan(tmp_path, "m", make_key(), b"PLAN-good")
    old_onnx = write_plan(tmp_path, "m", make_key(onnx_sha256="c" * 64), b"PLAN-old")
    old_trt = write_plan(tmp_path, "m", make_key(trt_version="10.9.0"), b"PLAN-oldtrt")
    other_gpu = write_plan(tmp_path, "m", make_key(gpu_name="NVIDIA L4", compute_capability="8.9",
                                                   trt_version="10.9.0"), b"PLAN-l4")
    broken = write_plan(tmp_path, "m", make_key(precision="int8"), b"PLAN-int8")
    meta_path(broken).unlink()
    (tmp_path / ".m.fp32.x.plan.abc.tmp").write_bytes(b"half")
    (tmp_path / "m.fp16.onnx").write_bytes(b"onnx copy")

    entries = {e.path.name: e for e in list_cache(tmp_path)}
    assert entries[good.name].key == make_key() and entries[good.name].problem is None
    assert entries[broken.name].key is None and "no metadata" in entries[broken.name].problem
    assert entries["m.fp16.onnx"].kind == "onnx"
    assert entries[".m.fp32.x.plan.abc.tmp"].kind == "orphan"

    dry = clean_cache(tmp_path, onnx_hashes={"a" * 64}, trt_version="11.0.0", gpu=("NVIDIA H100", "9.0"),
                      dry_run=True)
    assert old_onnx in [p for p, _ in dry] and old_onnx.exists()

    removed = {p.name: why for p, why in clean_cache(tmp_path, onnx_hashes={"a" * 64}, trt_version="11.0.0",
                                                     gpu=("NVIDIA H100", "9.0"))}
    assert "no longer here" in removed[old_onnx.name] and meta_path(old_onnx).name in removed
    assert "TensorRT 10.9.0" in removed[old_trt.name]
    assert broken.name in removed and ".m.fp32.x.plan.abc.tmp" in removed
    # kept: the current plan, a plan for another GPU (maybe another machine's), the ONNX copy
    assert good.exists() and other_gpu.exists() and (tmp_path / "m.fp16.onnx").exists()

    everything = clean_cache(tmp_path, onnx_hashes=set(), remove_all=True)
    assert {p.name for p, _ in everything} >= {good.name, other_gpu.name, "m.fp16.onnx"}
    assert list_cache(tmp_path) == []


def test_clean_without_trt_keeps_plans_of_other_versions(tmp_path):
    p = write_plan(tmp_path, "m", make_key(trt_version="10.9.0"), b"PLAN")
    assert clean_cache(tmp_path, onnx_hashes={"a" * 64}, trt_version=None, gpu=None) == []
    assert p.exists()


def test_orphan_metadata_is_listed_and_cleaned(tmp_path):
    plan = write_plan(tmp_path, "m", make_key(), b"PLAN")
    assert meta_path(plan).name == plan.name + ".json"
    plan.unlink()
    (entry,) = list_cache(tmp_path)
    assert entry.kind == "orphan" and entry.path == meta_path(plan)
    assert [p for p, _ in clean_cache(tmp_path, onnx_hashes={"a" * 64})] == [meta_path(plan)]
