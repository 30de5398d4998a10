"""The emotion + action-unit network: a small Xception-style CNN for grey face crops.

Design (why, in docs/model.md and engines/MODEL_CARD.md):

* stem: two 3 x 3 convolutions at full resolution (48 x 48), batch norm, ReLU;
* ``len(widths)`` residual Xception modules: two depthwise-separable 3 x 3 convolutions
  (depthwise 3 x 3 + pointwise 1 x 1, batch norm, ReLU), squeeze-and-excitation channel gating,
  3 x 3 stride-2 max pooling, and a strided 1 x 1 projection on the residual path (the
  mini-Xception FER recipe plus SE);
* an extra residual depthwise-separable block at the last resolution;
* global average pooling, dropout, and two linear heads sharing the trunk:
  ``emotion`` (8 logits, FERPlus order) and ``au`` (13 logits, AUS order).

Region-attention variant (``NetConfig.region_names`` set, e.g. ``with_region_attention(cfg)``; the
RAN idea on the last feature map): instead of the global average, the feature map is pooled over a
fixed set of face boxes (``regions.REGION_BOXES``: eyes / brows, nose, mouth / chin, both cheeks,
whole face), each region feature is scored by its own learned linear layer + sigmoid (attention
weight), and the heads read the attention-weighted mean of the region features. A second linear
layer per region predicts whether the region is visible (trained from the regions a training
occluder covered), so an AU read from a hidden region can be flagged.

``forward`` returns what the product reads: ``(emotion_probs (N, 8), au_intensity (N, 13))``,
softmax and sigmoid applied (the ONNX contract), averaged with the mirrored crop's when
``NetConfig.flip_tta`` is set; that holds for both variants. ``forward_regions`` adds the region
attention weights and visibility probabilities ``(N, R)``; ``forward_logits`` /
``forward_logits_all`` are for training.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError
from .regions import REGIONS, cell_weights, mirror_index, region_boxes


@dataclass(frozen=True)
class NetConfig:
    """Architecture hyper-parameters (stored in every checkpoint)."""

    in_channels: int = 1
    stem: tuple[int, int] = (32, 64)
    stem_stride: int = 1  # 2: the second stem convolution halves the resolution (4x cheaper trunk)
    widths: tuple[int, ...] = (128, 256, 384)
    extra_blocks: int = 1
    se_ratio: int = 8
    dropout: float = 0.3
    num_emotions: int = 8
    num_aus: int = 13
    # test-time augmentation inside forward(): also read the mirrored crop and average the two
    # outputs (about +1 point on FERPlus; the mirrored copy rides in the same batch, so one engine
    # call). Training (forward_logits) is unaffected; tools/export_onnx.py --flip-tta sets it.
    flip_tta: bool = False
    # region attention (empty = the plain network, global average pooling): the names and boxes
    # (x0, y0, x1, y1 as fractions of the crop) of the regions pooled from the last feature map.
    # The boxes travel with the checkpoint, so a later change of regions.REGION_BOXES cannot
    # silently change what a trained network reads.
    region_names: tuple[str, ...] = ()
    region_boxes: tuple[tuple[float, float, float, float], ...] = ()

    def __post_init__(self) -> None:
        if len(self.region_names) != len(self.region_boxes):
            raise ModelError(f"NetConfig: {len(self.region_names)} region names but "
                             f"{len(self.region_boxes)} region boxes")

    @property
    def variant(self) -> str:
        """``"plain"`` (global average pooling) or ``"region_attention"``."""
        return "region_attention" if self.region_names else "plain"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        """Config from a checkpoint's ``net_config`` (keys a checkpoint predates keep their defaults)."""
        d = dict(d)
        for k in ("stem", "widths", "region_names"):
            if k in d:
                d[k] = tuple(d[k])
        if "region_boxes" in d:
            d["region_boxes"] = tuple(tuple(float(v) for v in b) for b in d["region_boxes"])
        return cls(**d)


def with_region_attention(cfg: NetConfig, names: tuple[str, ...] = REGIONS) -> NetConfig:
    """``cfg`` turned into the region-attention variant over the regions ``names``."""
    return replace(cfg, region_names=tuple(names), region_boxes=region_boxes(names))


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.05)


class SepConv(nn.Sequential):
    """Depthwise 3 x 3 + pointwise 1 x 1 convolution, batch norm (ReLU left to the caller)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            _bn(cout),
        )


class SqueezeExcite(nn.Module):
    """Channel gating: global pool -> bottleneck MLP -> sigmoid scale."""

    def __init__(self, c: int, ratio: int) -> None:
        super().__init__()
        hidden = max(8, c // ratio)
        self.fc1 = nn.Conv2d(c, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class XceptionDown(nn.Module):
    """Residual Xception module that halves the resolution."""

    def __init__(self, cin: int, cout: int, se_ratio: int) -> None:
        super().__init__()
        self.sep1 = SepConv(cin, cout)
        self.sep2 = SepConv(cout, cout)
        self.se = SqueezeExcite(cout, se_ratio)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), _bn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.sep1(x))
        y = self.se(self.sep2(y))
        return F.relu(self.pool(y) + self.proj(x))


class XceptionBlock(nn.Module):
    """Residual Xception module at constant resolution (identity shortcut)."""

    def __init__(self, c: int, se_ratio: int) -> None:
        super().__init__()
        self.sep1 = SepConv(c, c)
        self.sep2 = SepConv(c, c)
        self.se = SqueezeExcite(c, se_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.sep1(x))
        y = self.se(self.sep2(y))
        return F.relu(x + y)


class RegionAttention(nn.Module):
    """Pool ``(N, C, h, w)`` over fixed face boxes -> region features ``(N, R, C)``; per region a
    learned linear score + sigmoid (attention) and a visibility logit.

    Returns ``(attention-weighted mean of the region features (N, C), attention (N, R),
    visibility logits (N, R))``. Region features are area-weighted means over the grid cells each
    box overlaps, so the whole-crop box is exactly the global average pool of the plain network.
    The attention starts favouring the whole face (bias +2 against -1 for the parts) so that a
    network initialised from a plain checkpoint starts close to what its heads were trained on."""

    def __init__(self, c: int, boxes: tuple[tuple[float, float, float, float], ...]) -> None:
        super().__init__()
        self.boxes = tuple(boxes)
        r = len(self.boxes)
        whole = torch.tensor([b == (0.0, 0.0, 1.0, 1.0) for b in self.boxes])
        self.att_weight = nn.Parameter(torch.zeros(r, c))
        self.att_bias = nn.Parameter(torch.where(whole, 2.0, -1.0))
        self.vis_weight = nn.Parameter(torch.zeros(r, c))
        self.vis_bias = nn.Parameter(torch.full((r,), 2.0))
        self._cells: dict[tuple[int, int], torch.Tensor] = {}

    def _weights(self, h: int, w: int) -> torch.Tensor:
        """``(R, h * w)`` pooling weights. While tracing (ONNX export) the sizes arrive as traced
        values; the weights are a constant of the traced graph (fixed crop size, dynamic batch)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            key = (int(h), int(w))
            if key not in self._cells:
                self._cells[key] = torch.from_numpy(cell_weights(self.boxes, *key).reshape(len(self.boxes), -1))
            return self._cells[key]

    def pool(self, fmap: torch.Tensor) -> torch.Tensor:
        n, c, h, w = fmap.shape
        cells = self._weights(h, w).to(device=fmap.device, dtype=fmap.dtype)
        return torch.matmul(cells, fmap.reshape(n, c, h * w).transpose(1, 2))  # (N, R, C)

    def forward(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.pool(fmap)
        att = torch.sigmoid((f * self.att_weight).sum(-1) + self.att_bias)
        vis = (f * self.vis_weight).sum(-1) + self.vis_bias
        v = (att.unsqueeze(-1) * f).sum(1) / att.sum(1, keepdim=True)
        return v, att, vis


class EmotionAUNet(nn.Module):
    """Grey face crop ``(N, 1, S, S)`` -> emotion probabilities ``(N, 8)`` and AU intensities ``(N, 13)``."""

    def __init__(self, cfg: NetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or NetConfig()
        self.cfg = cfg
        s0, s1 = cfg.stem
        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, s0, 3, padding=1, bias=False), _bn(s0), nn.ReLU(inplace=True),
            nn.Conv2d(s0, s1, 3, stride=cfg.stem_stride, padding=1, bias=False), _bn(s1), nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        cin = s1
        for w in cfg.widths:
            layers.append(XceptionDown(cin, w, cfg.se_ratio))
            cin = w
        for _ in range(cfg.extra_blocks):
            layers.append(XceptionBlock(cin, cfg.se_ratio))
        self.trunk = nn.Sequential(*layers)
        # the plain network registers no extra module, so its state_dict keys stay what they were
        self.regions = RegionAttention(cin, cfg.region_boxes) if cfg.region_names else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.emotion = nn.Linear(cin, cfg.num_emotions)
        self.au = nn.Linear(cin, cfg.num_aus)
        self.feature_dim = cin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map ``(N, C, h, w)`` (Grad-CAM reads this)."""
        return self.trunk(self.stem(x))

    def heads(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emo, au, _, _ = self.heads_all(fmap)
        return emo, au

    def heads_all(self, fmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                     torch.Tensor | None]:
        """-> (emotion logits, AU logits, region attention (N, R) in [0, 1] or None, region
        visibility logits (N, R) or None); None for the plain network."""
        if self.regions is None:
            v, att, vis = fmap.mean(dim=(2, 3)), None, None
        else:
            v, att, vis = self.regions(fmap)
        v = self.dropout(v)
        return self.emotion(v), self.au(v), att, vis

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.features(x))

    def forward_logits_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None,
                                                           torch.Tensor | None]:
        """Training: ``heads_all`` of ``x`` (no softmax / sigmoid, no test-time augmentation)."""
        return self.heads_all(self.features(x))

    @property
    def region_names(self) -> tuple[str, ...]:
        return self.cfg.region_names

    def forward_regions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (emotion_probs (N, 8), au_intensity (N, 13), region attention (N, R), region
        visibility probability (N, R)), regions in ``region_names`` order; the first two are
        exactly ``forward``'s. With ``flip_tta`` the mirrored crop's region outputs are read back
        into the original's regions (left and right cheek swap) before averaging. ModelError for
        the plain network."""
        if self.regions is None:
            raise ModelError("this network has no region attention (NetConfig.region_names is empty); "
                             "train the region-attention variant (tools/train.py --region-attention)")
        n = x.shape[0]
        xx = torch.cat([x, torch.flip(x, dims=[3])], dim=0) if self.cfg.flip_tta else x
        emo, au, att, vis = self.forward_logits_all(xx)
        p, a, v = torch.softmax(emo, dim=1), torch.sigmoid(au), torch.sigmoid(vis)
        if not self.cfg.flip_tta:
            return p, a, att, v
        mirror = list(mirror_index(self.cfg.region_boxes))
        return (0.5 * (p[:n] + p[n:]), 0.5 * (a[:n] + a[n:]), 0.5 * (att[:n] + att[n:, mirror]),
                0.5 * (v[:n] + v[n:, mirror]))

    def set_flip_tta(self, on: bool = True) -> "EmotionAUNet":
        """Turn mirror-image test-time augmentation on or off (stored in ``cfg``, so it travels with
        the checkpoint and the ONNX export). Returns self."""
        self.cfg = replace(self.cfg, flip_tta=bool(on))
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.cfg.flip_tta:
            emo, au = self.forward_logits(x)
            return torch.softmax(emo, dim=1), torch.sigmoid(au)
        n = x.shape[0]
        emo, au = self.forward_logits(torch.cat([x, torch.flip(x, dims=[3])], dim=0))
        p, a = torch.softmax(emo, dim=1), torch.sigmoid(au)
        # AU targets are left/right averaged, so the mirrored crop estimates the same intensities
        return 0.5 * (p[:n] + p[n:]), 0.5 * (a[:n] + a[n:])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_plain_weights(model: EmotionAUNet, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Load a plain network's weights (stem, trunk, heads) into ``model``, which may be the
    region-attention variant of the same preset: its region layers keep their initialisation.
    Returns the keys left at their initialisation; ModelError when anything else does not fit."""
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise ModelError(f"the checkpoint's weights do not fit this network: {err}") from err
    other = [k for k in missing if not k.startswith("regions.")]
    if other or unexpected:
        raise ModelError("the checkpoint's weights do not fit this network "
                         f"(missing: {other[:3]}, unexpected: {list(unexpected)[:3]}); only the region "
                         "layers may be new")
    return list(missing)


def grow_from(model: EmotionAUNet, state_dict: dict[str, torch.Tensor]) -> EmotionAUNet:
    """Load a trained, narrower network's weights into ``model`` so that it computes the same
    function (Net2Net-style widening; ``tools/train.py --init CKPT --arch WIDER``).

    Every tensor of ``state_dict`` must exist in ``model`` with each dimension no larger. Old
    values go into the leading slice; the new channels keep ``model``'s fresh initialisation,
    except the weights that read a new *input* channel into an old output (dimension 1 of a
    convolution or linear weight), which are zeroed. The new channels are then computed but not
    read yet: batch norm, ReLU, max-pool, the residual adds and the SE gates act per channel, so
    every old output, the heads included, is unchanged. Training opens the new paths (their
    weights get gradients from the first step). Returns ``model``."""
    target = model.state_dict()
    if set(target) != set(state_dict):
        raise ModelError(
            "cannot grow the network: the layers differ "
            f"(only in the new one: {sorted(set(target) - set(state_dict))[:3]}, "
            f"only in the checkpoint: {sorted(set(state_dict) - set(target))[:3]}); "
            "only the widths (stem, widths) may grow, the number of modules must stay"
        )
    grown: dict[str, torch.Tensor] = {}
    for key, new in target.items():
        old = state_dict[key]
        if old.dim() != new.dim() or any(o > n for o, n in zip(old.shape, new.shape)):
            raise ModelError(f"cannot grow the network: {key} is {tuple(old.shape)} in the checkpoint, "
                             f"{tuple(new.shape)} in the new network (widths may only grow)")
        t = new.detach().clone()
        t[tuple(slice(0, o) for o in old.shape)] = old.to(t.dtype)
        if t.dim() >= 2 and old.shape[1] < t.shape[1]:
            t[: old.shape[0], old.shape[1]:] = 0
        grown[key] = t
    model.load_state_dict(grown)
    return model
