"""The eye-state network: a small CNN on one grey eye patch -> the probability the eye is closed.

Input ``(N, 1, S, S)`` float32 in [0, 1] (``face.eyes.eye_patches`` / 255, S = 32 in the shipped
model). Each patch is standardised inside the network (its own mean and standard deviation), so a
dim infrared patch and a bright daylight one look alike to the convolutions. Three stages of two
3x3 convolutions with batch norm and ReLU (16, 32, 48 channels; max-pooling between), global
average pooling, dropout and one linear unit: about 50 k parameters, 0.1 ms an eye on one CPU
thread (a wider one, 24 / 48 / 64 with the mirror image averaged, measured no better on the
held-out drivers at five times the cost: docs/eye_state.md). Eye-openness CNNs of this size reach
97-98 % on CEW's patches (the field's figure; ours, subject-disjoint: docs/eye_state.md).
"""
from __future__ import annotations

import torch
from torch import nn

PATCH = 24
OUTPUT_NAME = "p_closed"
INPUT_NAME = "eye"


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class EyeStateNet(nn.Module):
    """``forward(x) -> logits (N,)``; :meth:`probability` -> P(closed) (N,)."""

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 48), dropout: float = 0.3) -> None:
        super().__init__()
        a, b, c = widths
        self.features = nn.Sequential(
            _block(1, a), nn.MaxPool2d(2),      # 24 -> 12
            _block(a, b), nn.MaxPool2d(2),      # 12 -> 6
            _block(b, c),
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c, 1)

    @staticmethod
    def standardise(x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (std + 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.standardise(x))
        return self.head(self.drop(f.mean(dim=(2, 3)))).squeeze(1)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(x))


class EyeEnsemble(nn.Module):
    """Several :class:`EyeStateNet` trained alike from different seeds: the logit is the mean of
    theirs (averaging steadies what one training run gets by chance, docs/eye_state.md). Logits,
    not probabilities: a mean of probabilities is less sure than its members, and the monitor's
    per-driver threshold works in logits up to a cap (``eyes.adapt_max_p``)."""

    def __init__(self, members: list[EyeStateNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an eye-state ensemble needs at least one network")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.forward(x))


class _Exported(nn.Module):
    """What the ONNX file computes: P(closed) per patch."""

    def __init__(self, net: EyeStateNet | EyeEnsemble) -> None:
        super().__init__()
        self.net = net

    def forward(self, eye: torch.Tensor) -> torch.Tensor:
        return self.net.probability(eye)


def export_onnx(net: EyeStateNet | EyeEnsemble, path: str, metadata: dict[str, str]) -> None:
    """Write the network as ONNX (opset 17, dynamic batch) with ``metadata`` in its props."""
    import onnx

    net = net.eval()
    size = int(metadata.get("dm.patch_size", PATCH))
    dummy = torch.zeros(2, 1, size, size)
    torch.onnx.export(_Exported(net), dummy, path, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "n"}, OUTPUT_NAME: {0: "n"}}, opset_version=17,
                      dynamo=False)
    model = onnx.load(path)
    for k, v in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = k, v
    onnx.save(model, path)
