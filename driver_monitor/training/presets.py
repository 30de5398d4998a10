"""The network presets ``tools/train.py --arch`` chooses from (docs/model.md: the measured speed /
accuracy trade-off of each; seconds per training step: ``driver-monitor bench --training``,
docs/bench/train_speed.md)."""
from __future__ import annotations

from ..model.network import NetConfig

ARCHS: dict[str, NetConfig] = {
    "tiny": NetConfig(stem=(16, 32), widths=(48, 96, 192), extra_blocks=1),
    "fast": NetConfig(stem=(24, 48), stem_stride=2, widths=(96, 192, 256), extra_blocks=1),
    "fast2": NetConfig(stem=(32, 64), stem_stride=2, widths=(128, 256), extra_blocks=2),
    "small": NetConfig(stem=(24, 48), widths=(64, 128, 256), extra_blocks=1),
    "base": NetConfig(stem=(32, 64), widths=(128, 256, 384), extra_blocks=1),
    # base's widths on fast's stride-2 stem: 0.95 M parameters, 5x cheaper to train than base
    "wide": NetConfig(stem=(32, 64), stem_stride=2, widths=(128, 256, 384), extra_blocks=1),
    # wide with 25-33 % more channels per module: 1.59 M parameters, 1.5x wide's latency
    # (engines/MODEL_CARD.md); grown from a trained wide checkpoint (--init wide.pt --arch wider),
    # see network.grow_from()
    "wider": NetConfig(stem=(32, 64), stem_stride=2, widths=(160, 320, 512), extra_blocks=1),
}
