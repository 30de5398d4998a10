"""Start the dashboard: ``run_gui(cfg, source)`` creates the QApplication and the window."""
from __future__ import annotations

import os
import sys
from typing import Any

from ..config import Config


def run_gui(cfg: Config, source: Any = None, *, start_paused: bool = False) -> int:
    """Open the dashboard on ``source`` (camera index, file or URL; None: ``capture.source``)."""
    import pyqtgraph as pg
    from PyQt6.QtWidgets import QApplication

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("driver-monitor")
    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")
    win = MainWindow(cfg, cfg.capture.source if source is None else source, start_paused=start_paused)
    win.show()
    code = int(app.exec())
    finish_workers(code)
    return code


def finish_workers(code: int, timeout_ms: int = 10_000) -> None:
    """Before the process exits: wait for the workers of closed windows that were still inside a
    slow call (engine build, a read). Exiting with a running QThread aborts the process, so one that
    does not stop in time ends the process here, after the results written so far were flushed."""
    from .main_window import _STRAGGLERS

    for _worker, thread in list(_STRAGGLERS):
        if not thread.wait(timeout_ms):
            print(f"driver-monitor: the worker did not stop within {timeout_ms / 1000:g} s; exiting without it",
                  file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
