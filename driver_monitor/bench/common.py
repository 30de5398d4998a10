"""What the benchmarks share: the log's type and the line that says a run was skipped, and why."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

Log = Callable[[str], None]


def write_report(report: dict[str, Any], out_dir: str | Path, stem: str,
                 markdown: Callable[[dict[str, Any]], str], indent: int = 2) -> dict[str, Any]:
    """``STEM.json`` and ``STEM.md`` in ``out_dir`` (made when missing); the report, with the
    paths written under ``files``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=indent) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown(report), encoding="utf-8")
    report["files"] = {"json": str(out / f"{stem}.json"), "markdown": str(out / f"{stem}.md")}
    return report


def skipped_line(what: str, reason: str, width: int | None = None) -> str:
    """``bench: WHAT: skipped (REASON)`` with the whole reason (its fix included), wrapped at
    ``width`` columns between words with an indent on the lines after the first; one line when
    ``width`` is None."""
    import textwrap

    text = f"bench: {what}: skipped ({' '.join(reason.split())})"
    if not width or len(text) <= width:
        return text
    return textwrap.fill(text, width=max(40, width), subsequent_indent="    ", break_long_words=False,
                         break_on_hyphens=False)


def terminal_width() -> int | None:
    """Columns of the terminal stderr shows on, or None when it is not a terminal (a log file, a
    pipe: lines stay whole)."""
    try:
        if sys.stderr is None or not sys.stderr.isatty():
            return None
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return None
