"""What the benchmarks share: the log's type and the line that says a run was skipped, and why."""
from __future__ import annotations

import os
import sys
from typing import Callable

Log = Callable[[str], None]


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
