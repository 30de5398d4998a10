"""The mixed-precision choice of a training run (``--amp auto|bf16|off``)."""
from __future__ import annotations

from pathlib import Path

import torch


def cpu_has_bf16() -> bool:
    """True when the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast
    trains about 2x faster than float32; elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_amp(choice: str, device: torch.device) -> torch.dtype | None:
    """--amp auto|bf16|off -> the autocast dtype (None = float32 throughout). Weights, optimiser
    state, losses and evaluation stay float32; only the forward / backward convolutions run in bf16."""
    if choice == "off":
        return None
    if choice == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bf16() else None
