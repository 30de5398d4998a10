"""What a training run of the emotion + AU network is asked to do (``tools/train.py``'s options).

The fields are the command line's options, in its order and with its defaults; the checkpoint
metadata stores them as ``train_args``."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainOptions:
    data: str = ""                     # the dataset root
    kind: str = "ferplus"
    train_split: str = "train"
    val_split: str = "valid"           # or holdout:0.1 = a seeded 10 % of the training split
    aus_dir: str | None = None
    out: str = ""                      # the run folder
    arch: str | None = None            # a preset of training.presets.ARCHS (default small)
    epochs: int = 30
    batch: int = 128
    amp: str = "auto"
    lr: float = 3e-3
    weight_decay: float = 0.01
    dropout: float = 0.3
    emo_weight: float = 1.0
    au_weight: float = 0.5
    soft: bool = True
    class_weight_power: float = 0.5
    class_weight_cap: float = 5.0
    aug_strength: float = 1.0
    ema: float = 0.0
    occlusion_p: float = 0.0
    occlusion_kinds: str = ""
    teacher: str | None = None
    distill_weight: float = 1.0
    distill_au_weight: float = 1.0
    region_attention: bool = False
    visibility_weight: float = 0.2
    select: str = "clean"
    init: str | None = None
    freeze: str = ""
    resume: bool = False
    patience: int = 6
    time_budget_min: float = 0.0
    seed: int = 0
    threads: int = 2
    device: str = "auto"
    limit: int = 0
    training_data: str = ""
    no_progress: bool = False

    def as_meta(self) -> dict[str, Any]:
        """The options as the checkpoint stores them (``train_args``), paths as strings."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
