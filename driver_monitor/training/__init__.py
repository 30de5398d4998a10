"""Training-only code: dataset loaders (``datasets``) and action-unit pseudo-labels (``face_au``).

Used by tools/ (train, evaluate, label_aus, explain) and the tests. The run-time app (analyze,
the dashboard, bench, the engines, the pipeline) never imports this package.
"""
