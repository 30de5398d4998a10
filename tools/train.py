#!/usr/bin/env python
"""Train the emotion + action-unit network.

    python tools/train.py --data /work/cache/ferplus --aus-dir /work/cache/aus --out runs/ferplus \
        --epochs 30 --seed 0

Whole dataset held in memory as uint8; augmentation is done batch-wise on tensors (flip, small
rotations / scales / shifts = crops, brightness / contrast, blur, noise, random erasing), so no
DataLoader workers are needed. Loss = ``emo_weight * soft-label cross-entropy (class re-weighted)
+ au_weight * masked BCE against the AU pseudo-labels`` (tools/label_aus.py). Per-epoch metrics go
to ``<out>/metrics.csv``; ``<out>/last.pt`` (with optimiser state, for --resume) and
``<out>/best.pt`` (best validation accuracy) are written every epoch; early stopping after
``--patience`` epochs without improvement. Fine-tuning / transfer learning: ``--init CKPT`` loads a
trained network and ``--freeze stem,trunk.0`` keeps those parameter groups (and their batch-norm
statistics) fixed; ``--init CKPT --arch wider`` grows the checkpoint's network into a wider
preset that starts out computing the same function (``network.grow_from``). ``--ema 0.999``
keeps an exponential moving average of the weights; that average is what is validated and saved
as ``best.pt`` (``metrics.csv`` then also logs the raw iterate's ``val_acc_raw``). Uses CUDA when
available (``--device``).

Occlusion-aware training: ``--occlusion-p 0.5`` draws a random occluder (sunglasses, eye bands,
masks, hands, phones / cups, patches, blur, low light, IR look; ``training/occlusion_aug.py``) on
that share of the augmented crops (it replaces the random erasing) and validates on a fixed
occluded copy of the validation split too (``val_acc_occ``; ``--select clean+occluded`` picks
``best.pt`` by the mean of both). ``--teacher CKPT`` distils from a frozen network: the teacher
reads the clean augmented crop, the student the occluded one, and ``--distill-weight`` x KL on the
emotion distribution + ``--distill-au-weight`` x binary KL on the AU intensities pull the student
towards the teacher (without ``--aus-dir`` the teacher's AU outputs are the AU head's only target,
and ``val_au_mae`` is measured against the teacher's on the clean validation crops).
``--region-attention`` trains the region-attention variant (``network.RegionAttention``; with
``--init`` of a plain checkpoint its weights are kept and the region layers start fresh) with a
``--visibility-weight`` x BCE of its region-visibility output against the regions the occluder
covered. Fine-tuning the shipped model for occlusion:

    python tools/train.py --data /work/cache/ferplus --out runs/occ --init engines/emotion_au.pt \
        --teacher engines/emotion_au.pt --occlusion-p 0.5 --epochs 40 --lr 1e-3 --ema 0.999 \
        --select clean+occluded --time-budget-min 75

Dataset kinds: ferplus (soft labels from votes), fer2013 (folders or csv), folders (RAF-DB-like).
"""
from __future__ import annotations

import argparse
import sys

from driver_monitor.errors import DriverMonitorError, report
from driver_monitor.training.occlusion_aug import OCCLUDER_WEIGHTS
from driver_monitor.training.options import TrainOptions
from driver_monitor.training.presets import ARCHS
from driver_monitor.training.trainer import train


def _add_data_options(ap: argparse.ArgumentParser) -> None:
    """The data set, its splits and labels, the run folder, the preset."""
    ap.add_argument("--data", required=True, help="dataset root (e.g. the FERPlus folder with FER2013Train/...)")
    ap.add_argument("--kind", default="ferplus", help="ferplus | fer2013 | folders")
    ap.add_argument("--train-split", default="train")
    ap.add_argument("--val-split", default="valid",
                    help="validation split, or holdout:0.1 = a seeded 10%% of the training split "
                         "(FER2013 Kaggle folders have no validation split)")
    ap.add_argument("--aus-dir", default=None,
                    help="folder with <kind>_<split>.npz AU pseudo-labels (tools/label_aus.py)")
    ap.add_argument("--out", required=True, help="run folder: metrics.csv, last.pt, best.pt")
    ap.add_argument("--arch", default=None, choices=sorted(ARCHS),
                    help="network preset (default small); with --init: grow the checkpoint's network into "
                         "this wider preset (same function at the start, new channels then train)")


def _add_optimiser_options(ap: argparse.ArgumentParser) -> None:
    """Epochs, batches, precision, optimiser and loss weights."""
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"],
                    help="mixed precision: auto = bfloat16 autocast on a CUDA GPU or a CPU with native "
                         "bf16 (AVX512-BF16 / AMX), float32 elsewhere")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--emo-weight", type=float, default=1.0, help="weight of the emotion loss")
    ap.add_argument("--au-weight", type=float, default=0.5, help="weight of the AU loss")
    ap.add_argument("--no-soft", dest="soft", action="store_false", help="train on majority labels only")
    ap.add_argument("--class-weight-power", type=float, default=0.5,
                    help="class weight = (n_c / n_max) ** -power (0 = no re-weighting)")
    ap.add_argument("--class-weight-cap", type=float, default=5.0)
    ap.add_argument("--aug-strength", type=float, default=1.0)


def _add_occlusion_options(ap: argparse.ArgumentParser) -> None:
    """Weight averaging, occluders, distillation and region attention."""
    ap.add_argument("--ema", type=float, default=0.0,
                    help="keep an exponential moving average of the weights with this decay (e.g. 0.999) "
                         "and validate / save that as best.pt; 0 = off")
    ap.add_argument("--occlusion-p", type=float, default=0.0,
                    help="occlude this share of the training crops with random occluders (sunglasses, masks, "
                         "hands, objects, patches, blur, low light, IR look; training/occlusion_aug.py), e.g. 0.5; "
                         "replaces the random erasing; also validates on a fixed occluded copy (val_acc_occ)")
    ap.add_argument("--occlusion-kinds", default="",
                    help="comma-separated occluder kinds to draw from (default: all, " +
                         ",".join(OCCLUDER_WEIGHTS) + ")")
    ap.add_argument("--teacher", default=None,
                    help="frozen teacher checkpoint (e.g. engines/emotion_au.pt): it reads the clean augmented "
                         "crop, the student the occluded one, and the student is pulled towards the teacher's "
                         "emotion probabilities and AU intensities (the AU head's only target without --aus-dir)")
    ap.add_argument("--distill-weight", type=float, default=1.0,
                    help="weight of the KL term towards the teacher's emotion probabilities (with --teacher)")
    ap.add_argument("--distill-au-weight", type=float, default=1.0,
                    help="weight of the binary KL term towards the teacher's AU intensities (with --teacher)")
    ap.add_argument("--region-attention", action="store_true",
                    help="train the region-attention variant (region features of eyes, nose, mouth, cheeks and "
                         "the whole face, learned attention weights, region visibility); with --init of a plain "
                         "checkpoint its weights are kept and the region layers are new")
    ap.add_argument("--visibility-weight", type=float, default=0.2,
                    help="weight of the region-visibility BCE (region-attention network only)")


def _add_run_options(ap: argparse.ArgumentParser) -> None:
    """Model selection, fine-tuning, resuming, stopping, seeds and devices."""
    ap.add_argument("--select", default="clean", choices=["clean", "clean+occluded"],
                    help="best.pt = best validation accuracy (clean) or best mean of the clean and the occluded "
                         "validation accuracy (needs --occlusion-p)")
    ap.add_argument("--init", default=None, help="checkpoint to fine-tune from (transfer learning)")
    ap.add_argument("--freeze", default="",
                    help="comma-separated parameter prefixes to freeze, e.g. stem,trunk.0,trunk.1")
    ap.add_argument("--resume", action="store_true", help="continue from <out>/last.pt")
    ap.add_argument("--patience", type=int, default=6, help="early stopping patience (epochs)")
    ap.add_argument("--time-budget-min", type=float, default=0.0,
                    help="training wall-time budget: the LR schedule anneals by then and training stops (0 = no limit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke runs)")
    ap.add_argument("--training-data", default="", help="description stored in the checkpoint metadata")
    ap.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for add in (_add_data_options, _add_optimiser_options, _add_occlusion_options, _add_run_options):
        add(ap)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = train(TrainOptions(**vars(args)))
    except DriverMonitorError as err:
        return report(err)
    print("done:", summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
