"""Config loading: the shipped config.yaml, overrides, and the messages for wrong input."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from driver_monitor.config import Config, config_reference, load_config, parse_override
from driver_monitor.errors import ConfigError


def test_shipped_config_yaml_equals_the_defaults_and_documents_every_key(project_root: Path) -> None:
    text = (project_root / "config.yaml").read_text()
    assert load_config(project_root / "config.yaml") == Config()
    for key, _default, _unit in config_reference():
        section, name = key.split(".")
        assert re.search(rf"^{section}:", text, re.M), f"section {section} missing from config.yaml"
        line = re.search(rf"^  {name}:.*$", text, re.M)
        assert line, f"{key} missing from config.yaml"
        assert "#" in line.group(0), f"{key} has no comment in config.yaml"


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        ("drowsiness.perclos_window_s=30", ("drowsiness", "perclos_window_s"), 30.0),
        ("engine.backend=onnxruntime", ("engine", "backend"), "onnxruntime"),
        ("capture.source=drive.mp4", ("capture", "source"), "drive.mp4"),
        ("capture.source=2", ("capture", "source"), 2),
        ("distraction.use_gaze=false", ("distraction", "use_gaze"), False),
        ("face.seat_region=[0.5, 0, 1, 1]", ("face", "seat_region"), [0.5, 0, 1, 1]),
    ],
)
def test_overrides_apply(override: str, path: tuple[str, str], expected: object) -> None:
    cfg = load_config(None, [override])
    assert getattr(getattr(cfg, path[0]), path[1]) == expected


@pytest.mark.parametrize(
    ("override", "must_mention"),
    [
        ("drowsiness.perclos_window_s=-5", ["drowsiness.perclos_window_s", "-5", "> 0"]),
        ("drowsiness.perclos_window_s=abc", ["drowsiness.perclos_window_s", "'abc'", "float"]),
        ("engine.backend=cuda", ["engine.backend", "'cuda'", "'onnxruntime'"]),
        ("engine.max_batch=2.5", ["engine.max_batch", "2.5", "int"]),
        ("distraction.use_gaze=1", ["distraction.use_gaze", "bool"]),
        ("drowsiness.nope=1", ["drowsiness.nope", "unknown key", "perclos_window_s"]),
        ("nosuch.key=1", ["nosuch", "unknown key", "drowsiness"]),
        ("drowsiness.perclos_warning=0.5", ["perclos_warning", "perclos_critical"]),
        ("distraction.warning_s=9", ["warning_s", "critical_s"]),
        ("face.seat_region=[0.6, 0, 0.2, 1]", ["seat_region", "x0 < x1"]),
        ("noequals", ["KEY=VALUE"]),
    ],
)
def test_bad_values_are_refused_with_key_value_and_allowed(override: str, must_mention: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    for text in must_mention:
        assert text in str(info.value)


def test_config_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("drowsiness: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(notmap)
    partial = tmp_path / "partial.yaml"
    partial.write_text("drowsiness:\n  microsleep_s: 1.5\n")
    cfg = load_config(partial)
    assert cfg.drowsiness.microsleep_s == 1.5 and cfg.distraction == Config().distraction


def test_config_is_frozen() -> None:
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.drowsiness.microsleep_s = 3.0


def test_parse_override_parses_yaml_values() -> None:
    assert parse_override("a.b=1.5") == (["a", "b"], 1.5)
    assert parse_override("a.b=") == (["a", "b"], "")
