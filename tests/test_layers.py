"""Layering: which package may import which, read from the source (no module is imported here).

The run-time app never imports the training-only package, and the engine package knows nothing
above it (no bench, pipeline, dashboard or command line of the app).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "driver_monitor"


def _imports(path: Path) -> set[str]:
    """Absolute names of the driver_monitor modules ``path`` imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).parts[:-1])  # the package the module sits in
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[:len(parts) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return {n for n in names if n == "driver_monitor" or n.startswith("driver_monitor.")}


def _modules(under: str = "") -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def _inside(path: Path, *packages: str) -> bool:
    return any(path.is_relative_to(PACKAGE / p) for p in packages)


def test_relative_imports_are_resolved():
    assert "driver_monitor.errors" in _imports(PACKAGE / "commands" / "engines.py")
    assert "driver_monitor.engine.precision" in _imports(PACKAGE / "commands" / "engines.py")
    assert "driver_monitor.engine" in _imports(PACKAGE / "commands" / "bench.py")
    assert "driver_monitor.preprocess" in _imports(PACKAGE / "training" / "datasets.py")


def test_only_training_code_imports_the_training_package():
    offenders = {str(p.relative_to(PACKAGE.parent)): sorted(n for n in _imports(p)
                                                            if n.startswith("driver_monitor.training"))
                 for p in _modules() if not _inside(p, "training", "model")}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("above", ["driver_monitor.bench", "driver_monitor.commands", "driver_monitor.cli",
                                   "driver_monitor.pipeline", "driver_monitor.analyze", "driver_monitor.ui",
                                   "driver_monitor.training"])
def test_engine_package_imports_nothing_above_it(above):
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in _modules("engine")
                 if any(n == above or n.startswith(above + ".") for n in _imports(p))]
    assert offenders == []


MAX_FUNCTION_LINES = 60


def test_no_function_in_the_package_is_longer_than_60_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_no_import_cycle_between_modules():
    grimp = pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")
    graph = grimp.build_graph("driver_monitor")
    modules = sorted(graph.modules)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        stack.append(m)
        for n in graph.find_modules_directly_imported_by(m):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n in graph.modules and n not in state:
                visit(n, stack)
        stack.pop()
        state[m] = 2

    for m in modules:
        if m not in state:
            visit(m, [])
    assert not cycles, [" -> ".join(c) for c in cycles]
