"""Start the dashboard: ``run_gui(cfg, source)`` creates the QApplication and the window."""
from __future__ import annotations

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
    return int(app.exec())
