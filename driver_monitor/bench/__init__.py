"""The benchmarks behind ``driver-monitor bench`` (``commands/bench.py`` reads the command line).

* ``engines``: engine latency per backend / device / precision, the machine, and the report of the
  default mode (``bench.json``, ``bench.md``, ``bench.png``); ``pipeline``: end to end on a video
  (``--video``), the per-stage milliseconds the pipeline measured;
* ``side_by_side``: ``analyze`` as a ratio of the bare face-mesh loop (``--side-by-side``);
* ``fleet``: ``batch`` with 1 and N workers against ``analyze`` one drive after another
  (``--fleet``);
* ``training``: seconds per training step of the network presets (``--training``; needs torch);
* the dashboard's drawing cost and latency (``--dashboard``) is measured in the real window, so it
  lives beside it, in ``ui/bench_ui.py``: this package imports no Qt.

A benchmark is a tool, never a timed test. Each module imports its heavy libraries inside itself.
"""
