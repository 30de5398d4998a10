"""driver-monitor: real-time driver monitoring (drowsiness, distraction, emotions, action units)."""

__version__ = "0.1.0"
