"""``driver-monitor evaluate TRUTH --out DIR``: score the driver-state alerts on clips a person marked."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from . import argtypes


def cmd_evaluate(args: argparse.Namespace, cfg: Config) -> int:
    from ..scenarios import evaluate, markdown

    base = list(args.overrides or [])
    if args.backend:
        base.append(f"engine.backend={args.backend}")
    summary = evaluate(args.truth, args.out, lambda extra: load_config(args.config, [*base, *extra]),
                       video_dir=args.video_dir, reuse=args.reuse, only=args.clip or ())
    words = ["driver-monitor evaluate", args.truth, "--out", args.out]
    words += [a for o in base for a in ("--set", o)]
    words += ["--config", args.config] if args.config else []
    words += ["--video-dir", args.video_dir] if args.video_dir else []
    words += [a for c in args.clip or () for a in ("--clip", c)]
    words += ["--doc", args.doc] if args.doc else []
    text = markdown(summary, " ".join(words), args.truth, [
        "Each interval was marked by a person; its label sets what must happen (an alert within a "
        "latency, or no alert), as listed in docs/driver_state.md, section \"Scenario evaluation\". "
        "Latency runs from the marked start to the first frame that shows the outcome.", ""])
    (Path(args.out) / "dms_eval.md").write_text(text, encoding="utf-8")
    if args.doc:  # the Markdown there, and the JSON beside it
        doc = Path(args.doc)
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(text, encoding="utf-8")
        doc.with_suffix(".json").write_text((Path(args.out) / "dms_eval.json").read_text(encoding="utf-8"),
                                            encoding="utf-8")
    fph = summary["false_alerts_per_hour"]
    print(f"{'all scenarios passed' if summary['passed'] else 'some scenarios FAILED'}; false alerts on "
          f"attentive driving: {summary['false_alerts_attentive']} in {summary['attentive_s']:.0f} s"
          + ("" if fph is None else f" ({fph:g} per hour)") + f"; report: {Path(args.out) / 'dms_eval.md'}")
    return 0 if summary["passed"] else 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="score the driver-state alerts on clips a person marked (a truth file)")
    p.add_argument("truth", help="YAML truth file listing the clips and their marked intervals "
                                 "(e.g. scenarios/shared_clips.yaml)")
    p.add_argument("--out", required=True, type=argtypes.out_dir, metavar="DIR",
                   help="folder for each clip's results and dms_eval.json/.md")
    p.add_argument("--video-dir", metavar="DIR", help="folder of the videos (default: the truth file's video_dir)")
    p.add_argument("--clip", action="append", metavar="NAME", help="only this clip (repeatable)")
    p.add_argument("--reuse", action="store_true", help="score the results already in --out instead of analysing")
    p.add_argument("--doc", metavar="FILE", help="also write the Markdown report here, and its JSON beside it "
                                                 "(e.g. docs/dms_eval.md)")
    p.set_defaults(func=cmd_evaluate)
    return p
