"""How the phone detector alone sees the marked phones: every frame of the marked clips, on the whole
frame and on the crop around the driver.

    python tools/phone_eval.py --out results/phone_eval --doc docs/phone_eval.md

Reads the per-frame marks (``scenarios/frame_marks/``: the ``phone`` column of the near-infrared
clips: none / ear / hand / front / unsure) and runs ``engines/phone/yolox_nano.onnx`` on each frame
twice: the whole frame, and the region around the driver's face (``engine.phone.driver_region``,
the face from the app's own face mesh). Every clip of ``../shared/data/videos`` (no phone in any) is
a no-phone check too. Writes ``frames.csv`` (the best phone score of each frame on each view) and
``summary.json`` under ``--out``, and the tables to ``--doc``: frames found by mark and score
threshold, frames with a phone found on phone-free clips, clips with any, the detector's
milliseconds, and what voting over runs at ``--rate`` Hz finds on each infrared driver when its
threshold and votes are chosen on the other drivers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from driver_monitor.config import PROJECT_ROOT, PhoneConfig
from driver_monitor.errors import DriverMonitorError
from driver_monitor.evaluation.phone import read_frames, run, summary
from driver_monitor.evaluation.phone_report import write_doc


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data",
                    help="the shared data folder (ir_clips/, videos/)")
    ap.add_argument("--out", type=Path, default=Path("results/phone_eval"))
    ap.add_argument("--doc", type=Path, help="write the tables to this Markdown file")
    ap.add_argument("--size", type=int, help="the detector's input side (default the file's, 416)")
    ap.add_argument("--hands", action="store_true", help="also find the hands (MediaPipe) and say where they are")
    ap.add_argument("--rate", type=float, default=PhoneConfig().rate_hz,
                    help="detector runs a second of video while nothing phone-like was seen")
    ap.add_argument("--busy-rate", type=float, default=PhoneConfig().busy_rate_hz,
                    help="detector runs a second of video once a run scored the wake score")
    ap.add_argument("--reuse", action="store_true", help="summarise the frames.csv already under --out")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.data / "ir_clips").is_dir():
        print(f"phone_eval: {args.data}/ir_clips not found; pass --data pointing at the shared data folder",
              file=sys.stderr)
        return 2
    try:
        rows = read_frames(args.out / "frames.csv") if args.reuse else run(args.data, args.out, args.size, args.hands)
    except DriverMonitorError as err:
        print(f"phone_eval: {err}", file=sys.stderr)
        return err.exit_code
    s = summary(rows, args.rate, args.busy_rate)
    (args.out / "summary.json").write_text(json.dumps(s, indent=1), encoding="utf-8")
    if args.doc:
        write_doc(s, args.doc, "python tools/phone_eval.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                  args.size or 416)
    print(json.dumps({"found_pct_all_phone_either": s["found_pct"]["all phone"]["either"],  # type: ignore[index]
                      "false_either": {t: v["frames"] for t, v in s["false"]["either"].items()}}))  # type: ignore[index]
    return 0


if __name__ == "__main__":
    sys.exit(main())
