#!/usr/bin/env python
"""Training speed of the network presets on this machine: seconds per training step.

    python tools/bench_train.py --out docs/bench            # every preset, float32 and --amp auto
    python tools/bench_train.py --arch fast wide --amp off bf16 --steps 10

One step is what ``tools/train.py`` does per batch: channels-last input, forward under the chosen
autocast, soft-label cross-entropy + masked AU BCE, backward, AdamW step (random data, so no
augmentation or data loading; those cost about 10 ms per batch). Writes ``train_speed.json`` and
``train_speed.md`` to ``--out``; the median over ``--steps`` timed steps after 2 warm-up steps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from driver_monitor.errors import DriverMonitorError, report


def time_steps(arch: str, amp: str, *, batch: int, steps: int, threads: int) -> dict:
    import torch

    from driver_monitor.model.checkpoint import build_model
    from driver_monitor.model.network import count_parameters
    from driver_monitor.training.amp import pick_amp
    from driver_monitor.training.losses import masked_bce, soft_ce
    from driver_monitor.training.presets import ARCHS

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device("cpu")
    model = build_model(ARCHS[arch]).to(memory_format=torch.channels_last).train()
    amp_dtype = pick_amp(amp, device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    target = torch.softmax(torch.randn(batch, 8), 1)
    aus = torch.rand(batch, 13)
    weights = torch.ones(batch)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            emo, au = model.forward_logits(x)
        loss = soft_ce(emo.float(), target, weights) + 0.5 * masked_bce(au.float(), aus)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return {"arch": arch, "amp": amp, "autocast": str(amp_dtype or "off (float32)"), "batch": batch,
            "threads": threads, "steps": steps, "median_s_per_step": statistics.median(times),
            "images_per_s": batch / statistics.median(times),
            "parameters": count_parameters(model)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", nargs="+", default=["fast", "wide", "small", "base"])
    ap.add_argument("--amp", nargs="+", default=["off", "auto"], choices=["off", "auto", "bf16"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args(argv)
    try:
        from driver_monitor.training.amp import cpu_has_bf16
        from driver_monitor.training.presets import ARCHS

        unknown = [a for a in args.arch if a not in ARCHS]
        if unknown:
            raise DriverMonitorError(f"unknown preset(s) {unknown}; choose from {sorted(ARCHS)}")
        rows = []
        for arch in args.arch:
            for amp in args.amp:
                r = time_steps(arch, amp, batch=args.batch, steps=args.steps, threads=args.threads)
                print(f"{arch:6s} amp {amp:4s} ({r['autocast']}): {r['median_s_per_step']:.3f} s/step, "
                      f"{r['images_per_s']:.0f} images/s", flush=True)
                rows.append(r)
        cmd = "python tools/bench_train.py " + " ".join(argv if argv is not None else sys.argv[1:])
        machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, bf16 native: "
                   f"{cpu_has_bf16()}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_speed.json").write_text(json.dumps({"command": cmd, "machine": machine, "rows": rows}, indent=2))
        lines = [f"Training speed (`{cmd.strip()}`), {time.strftime('%Y-%m-%d %H:%MZ', time.gmtime())}; "
                 f"machine: {machine}.", "",
                 "| preset | parameters | --amp | autocast | s / step (batch %d) | images / s |" % args.batch,
                 "|---|---|---|---|---|---|"]
        lines += [f"| {r['arch']} | {r['parameters']:,} | {r['amp']} | {r['autocast']} | "
                  f"{r['median_s_per_step']:.3f} | {r['images_per_s']:.0f} |" for r in rows]
        (out / "train_speed.md").write_text("\n".join(lines) + "\n")
        print(f"wrote {out / 'train_speed.md'} and {out / 'train_speed.json'}")
        return 0
    except DriverMonitorError as err:
        return report(err)


if __name__ == "__main__":
    sys.exit(main())
