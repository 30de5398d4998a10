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
    from .main_window import _STRAGGLERS

    for _worker, thread in list(_STRAGGLERS):  # a worker still inside a slow call (engine build, read)
        if not thread.wait(10_000):
            # exiting with a running QThread aborts the process; the results written so far are flushed
            print("driver-monitor: the worker did not stop within 10 s; exiting without it", file=sys.stderr)
            sys.stderr.flush()
            os._exit(code)
    return code
