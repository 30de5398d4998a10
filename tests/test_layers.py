"""What the import contracts cannot check, read from the source: the length of every function in
the package and the tools, and import cycles between the package's modules.

Which package may import which is checked by the contracts in pyproject.toml (``lint-imports``),
the single checker of imports: the run-time app imports no training code, the engines nothing above
them, the package no tool, a tool no other tool.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "driver_monitor"
TOOLS = ROOT / "tools"

MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    """Every module of the package and every tool."""
    return sorted(PACKAGE.rglob("*.py")) + sorted(TOOLS.glob("*.py"))


def test_the_sources_include_the_tools():
    names = {str(p.relative_to(ROOT)) for p in _sources()}
    assert {"tools/train.py", "tools/evaluate.py", "driver_monitor/training/trainer.py"} <= names


def test_no_function_in_the_package_or_the_tools_is_longer_than_60_lines():
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
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
