"""Driver-state logic: smoothing, calibration, drowsiness, distraction, alerts (pure, clock passed in).

No Qt, MediaPipe, torch or runtime imports here: everything is ``update(observation, t_s)``.
"""
from .alerts import AlertFilter, EventTracker
from .calibration import Calibration, Calibrator
from .distraction import DistractionDetector, DistractionReading
from .drowsiness import DrowsinessDetector, DrowsinessReading
from .filters import EmaFilter, OneEuroFilter, ProbSmoother, SignalSmoother
from .monitor import DriverMonitor

__all__ = [
    "AlertFilter", "Calibration", "Calibrator", "DistractionDetector", "DistractionReading",
    "DriverMonitor", "DrowsinessDetector", "DrowsinessReading", "EmaFilter", "EventTracker",
    "OneEuroFilter", "ProbSmoother", "SignalSmoother",
]
