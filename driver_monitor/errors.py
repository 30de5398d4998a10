"""One error family for everything a user can get wrong.

Every message says what was wrong, the offending value, and what to do about it, e.g.
``camera 2 could not be opened; available: 0, 1; use --source FILE to replay a recording``.
The CLI prints ``str(err)`` on one line and exits non-zero; the UI shows it in a dialog.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator


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


def stop_exception(signum: int) -> KeyboardInterrupt:
    """What a stop signal raises: KeyboardInterrupt for SIGINT (Ctrl-C, exit 130), :class:`Terminated`
    for SIGTERM / SIGHUP (exit 128 + the signal)."""
    import signal

    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Terminated(signum, signal.Signals(signum).name)


class _Stop:
    """The command line's stop state: the signal that is stopping the run, and the section that
    closes the results (summary.json) while a signal must wait."""

    first: int | None = None  # the signal that stopped the run; later ones are ignored
    holding: list[list[int]] = []  # one list per open hold_stop_signals(): the signals it held
    said = False


def reset_stop_signals() -> None:
    """Forget an earlier stop (a new command starts)."""
    _Stop.first, _Stop.holding, _Stop.said = None, [], False


def stopping() -> bool:
    """Whether a stop signal has stopped the run."""
    return _Stop.first is not None


def stop_signal(signum: int) -> None:
    """SIGINT / SIGTERM / SIGHUP under the command line. The first stops the run: it raises
    :func:`stop_exception` (``Terminated(signum, name)`` for TERM / HUP), unless the results are
    being closed (:func:`hold_stop_signals`), which then holds it. A signal that comes while the
    run is already stopping is ignored, so the first stop's reason is the one summary.json and
    the exit code give, and a second Ctrl-C cannot cut summary.json short."""
    if _Stop.first is not None:
        _say_once("already stopping: the results are being written, further signals are ignored")
        return
    if _Stop.holding:
        _Stop.holding[-1].append(signum)
        _say_once("stopping once the results are written")
        return
    _Stop.first = signum
    raise stop_exception(signum)


@contextlib.contextmanager
def hold_stop_signals() -> Iterator[list[int]]:
    """While the block runs (closing the results, writing summary.json), a stop signal does not
    interrupt it: the signals held are in the yielded list, for the caller to raise after
    (:func:`raise_held`). Where no handler of ours is installed, this changes nothing."""
    held: list[int] = []
    _Stop.holding.append(held)
    try:
        yield held
    finally:
        _Stop.holding.remove(held)


def raise_held(held: list[int]) -> None:
    """Raise the first signal a :func:`hold_stop_signals` block held, as a stop now (no-op when none)."""
    if held and _Stop.first is None:
        _Stop.first = held[0]
        raise stop_exception(held[0])


def _say_once(text: str) -> None:
    """One line on stderr from inside a signal handler: a raw write (a buffered print could be
    re-entered), best effort."""
    if _Stop.said:
        return
    _Stop.said = True
    try:
        os.write(sys.stderr.fileno(), f"{text}\n".encode())
    except (OSError, ValueError, AttributeError):  # no real stderr (captured, embedded)
        pass


class DatasetError(DriverMonitorError):
    """A dataset folder does not have the layout a loader expects."""

    exit_code = 6


def report(err: DriverMonitorError) -> int:
    """Print ``error: <message>`` on one line to stderr and return the error's exit code: how the
    CLI and every tool end on a DriverMonitorError."""
    print(f"error: {err}", file=sys.stderr)
    return err.exit_code
