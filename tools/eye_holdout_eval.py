#!/usr/bin/env python
"""The eye state on drives whose people the model never saw: every marked clip analysed by the
app with the eye-state model trained without that clip's person (``tools/train_eye_state.py cv``
writes one per person), then

* frame agreement: the app's ``eyes_closed`` (the model, its per-driver threshold, the EAR beside
  it) and the model's own P(closed) >= 0.5 against the marks (open / closed frames; half-open and
  hidden ones are left out), per person, per class and per clip;
* scenarios: every marked interval of ``scenarios/ir_clips.yaml`` and ``scenarios/shared_clips.yaml``
  scored as ``driver-monitor evaluate`` scores it.

    python tools/eye_holdout_eval.py --models runs/eye_cv --out results/eye_holdout \
        --doc docs/eye_state_eval.md

Pass ``--set KEY=VALUE`` to analyse with other settings (e.g. ``calibration.mount=auto``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from driver_monitor.config import PROJECT_ROOT
from driver_monitor.evaluation.eye_holdout import markdown, run


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="folder of eye_state_without_<person>.onnx")
    ap.add_argument("--out", required=True)
    ap.add_argument("--doc", help="write the Markdown report here too")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--unseen-model", default=str(PROJECT_ROOT / "engines" / "eye_state.onnx"),
                    help="the model for clips of people nobody marked (none was trained on them)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    res = run(args.models, args.out, args.set, args.unseen_model)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "eye_holdout.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    command = "python tools/eye_holdout_eval.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(res, command)
    (Path(args.out) / "eye_holdout.md").write_text(text, encoding="utf-8")
    if args.doc:
        Path(args.doc).write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
