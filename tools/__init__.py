"""Command-line tools: each module is a thin wrapper (its options, a call into ``driver_monitor``,
the printing) run as ``python tools/<name>.py``. A tool imports no other tool (a contract in
pyproject.toml); what tools share lives in the package."""
