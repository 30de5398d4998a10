"""One error family for everything a user can get wrong.

Every message says what was wrong, the offending value, and what to do about it, e.g.
``camera 2 could not be opened; available: 0, 1; use --source FILE to replay a recording``.
The CLI prints ``str(err)`` on one line and exits non-zero; the UI shows it in a dialog.
"""
from __future__ import annotations

import sys


class DriverMonitorError(Exception):
    """Base class of every error the product raises on purpose."""

    exit_code = 2


class ConfigError(DriverMonitorError):
    """config.yaml or a --set override is wrong: names the key path, the value and what is allowed."""


class SourceError(DriverMonitorError):
    """A camera, file or stream cannot be opened or read."""

    exit_code = 3


class ModelError(DriverMonitorError):
    """A model file is missing, unreadable or does not carry the metadata we need."""

    exit_code = 4


class BackendUnavailableError(DriverMonitorError):
    """An inference backend was asked for but its runtime (or a GPU) is not available."""

    exit_code = 5


class OutputError(DriverMonitorError):
    """Results cannot be written where they were asked for (no space, no permission, already there)."""

    exit_code = 7


class Terminated(KeyboardInterrupt):
    """SIGTERM / SIGHUP (``timeout``, ``docker stop``, systemd, a closed terminal), handled like Ctrl-C:
    what was analysed is kept and summary.json written. ``exit_code`` is 128 + the signal."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(name)
        self.signum = signum
        self.name = name
        self.exit_code = 128 + signum


class DatasetError(DriverMonitorError):
    """A dataset folder does not have the layout a loader expects."""

    exit_code = 6


def report(err: DriverMonitorError) -> int:
    """Print ``error: <message>`` on one line to stderr and return the error's exit code: how the
    CLI and every tool end on a DriverMonitorError."""
    print(f"error: {err}", file=sys.stderr)
    return err.exit_code
