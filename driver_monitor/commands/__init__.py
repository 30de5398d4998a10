"""The ``driver-monitor`` subcommands: one module each, listed once in :data:`COMMANDS`.

Every command module has the same small interface::

    def add_parser(sub) -> argparse.ArgumentParser:
        p = sub.add_parser("NAME", help=...)   # its own arguments
        p.set_defaults(func=handler)          # handler(args, cfg) -> exit code
        return p

``cli.build_parser`` calls ``add_parser`` for each module in :data:`COMMANDS`, in this order (the
order ``driver-monitor --help`` lists them), and adds the common options (``--config``, ``--set``,
``--backend``, ``-v``) to the parser it returns and to its actions. A handler raises
DriverMonitorError for a user's mistake; ``cli`` prints it on one line.

To add a command: a module here with ``add_parser``, and its name in :data:`COMMANDS`.

A command module imports at its top only what its arguments need (choices, argument types);
heavy libraries (Qt, torch, Ray, MediaPipe, OpenCV) are imported inside the handler, so that
``driver-monitor --help`` loads none of them.
"""
from __future__ import annotations

from . import analyze, batch, bench, engines, evaluate, gui

COMMANDS = (analyze, evaluate, batch, gui, bench, engines)
