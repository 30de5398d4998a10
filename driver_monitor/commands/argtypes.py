"""Argument types the commands share (argparse ``type=``): each turns the text into its value or
raises ``argparse.ArgumentTypeError`` with what was wrong, so the error names the option."""
from __future__ import annotations

import argparse
from pathlib import Path


def source(text: str):
    """'0' -> camera 0; anything else is a path or URL."""
    from ..capture import source_arg

    return source_arg(text)


def out_dir(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the folder for the results, e.g. --out results/drive1")
    return text


def unwritable(folder: Path) -> str | None:
    """Why ``folder`` cannot take files (made when missing, a file written and removed), or None
    when it can: a command checks its output folder before minutes of work, not after."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        return str(exc.strerror or exc)
    return None


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {v}")
    return v


def fps(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1.0 <= v <= 1000.0:
        raise argparse.ArgumentTypeError(f"must be between 1 and 1000 frames per second, got {v:g}")
    return v
