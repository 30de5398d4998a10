"""``driver-monitor bench --training``: training speed of the network presets on this machine.

    driver-monitor bench --training --out docs/bench             # every preset, float32 and --amp auto
    driver-monitor bench --training fast wide --amp off bf16 --steps 10

One step is what ``tools/train.py`` does per batch (``training.trainer``): channels-last input,
forward under the chosen autocast, soft-label cross-entropy + masked AU BCE, backward, AdamW step
(random data, so no augmentation or data loading; those cost about 10 ms per batch). Writes
``train_speed.json`` and ``train_speed.md`` to ``--out``; the median over ``--steps`` timed steps
after 2 warm-up steps. Needs torch (the training extra); the run-time app does not.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import DriverMonitorError
from .common import Log, write_report

DEFAULT_PRESETS = ("fast", "wide", "small", "base")


def time_steps(arch: str, amp: str, *, batch: int, steps: int, threads: int) -> dict[str, Any]:
    import torch

    from ..model.checkpoint import build_model
    from ..model.network import count_parameters
    from ..training.amp import pick_amp
    from ..training.losses import masked_bce, soft_ce
    from ..training.presets import ARCHS

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


def bench_training(presets: Sequence[str], amps: Sequence[str], *, batch: int, steps: int, threads: int,
                   out_dir: str | Path, command: str, log: Log = print) -> dict[str, Any]:
    """Time a training step of each preset under each ``--amp`` choice; the report (also written)."""
    try:
        from ..training.amp import cpu_has_bf16
        from ..training.presets import ARCHS
    except ImportError as exc:  # torch missing
        raise DriverMonitorError(f"bench --training needs torch ({exc}); install the training extra: "
                                 f"pip install -e '.[train]' (README: Install)") from None
    unknown = [a for a in presets if a not in ARCHS]
    if unknown:
        raise DriverMonitorError(f"unknown preset(s) {unknown}; choose from {sorted(ARCHS)}")
    rows = []
    for arch in presets:
        for amp in amps:
            r = time_steps(arch, amp, batch=batch, steps=steps, threads=threads)
            log(f"{arch:6s} amp {amp:4s} ({r['autocast']}): {r['median_s_per_step']:.3f} s/step, "
                f"{r['images_per_s']:.0f} images/s")
            rows.append(r)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, bf16 native: {cpu_has_bf16()}"
    report = {"command": command, "machine": machine, "batch": batch, "rows": rows,
              "date": time.strftime("%Y-%m-%d %H:%MZ", time.gmtime())}
    return write_report(report, out_dir, "train_speed", markdown)


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Training speed (`{report['command']}`), {report['date']}; machine: {report['machine']}.", "",
             "| preset | parameters | --amp | autocast | s / step (batch %d) | images / s |" % report["batch"],
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['arch']} | {r['parameters']:,} | {r['amp']} | {r['autocast']} | "
              f"{r['median_s_per_step']:.3f} | {r['images_per_s']:.0f} |" for r in report["rows"]]
    return "\n".join(lines) + "\n"
