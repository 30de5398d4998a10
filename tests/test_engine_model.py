"""A tiny network with the product's ONNX I/O contract, and tests of reading model metadata.

The factories here (``tiny_module``, ``export_tiny``) are used by the other test_engine_* files,
so the engine code is tested without the trained model: the same input name, output names,
dynamic batch axis, opset and ``dm.*`` metadata as engines/emotion_au.onnx.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.model_contract import read_model_info
from driver_monitor.errors import ModelError
from driver_monitor.preprocess import AUS, EMOTIONS

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")


def tiny_module(seed: int = 0) -> "torch.nn.Module":
    """Conv-BN-ReLU trunk + two heads; forward -> (softmax probs (N, 8), sigmoid AUs (N, 13))."""
    from torch import nn

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.emotion = nn.Linear(32, len(EMOTIONS))
            self.au = nn.Linear(32, len(AUS))

        def forward(self, x):
            f = self.trunk(x)
            return torch.softmax(self.emotion(f), dim=-1), torch.sigmoid(self.au(f))

    torch.manual_seed(seed)
    m = Tiny()
    with torch.no_grad():  # non-trivial batch-norm statistics, sharper heads
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
        m.emotion.weight.mul_(8.0)
        m.au.weight.mul_(8.0)
    return m.eval()


def export_tiny(path: Path, *, seed: int = 0, size: int = 48, metadata: dict[str, str] | None = None,
                drop: tuple[str, ...] = ()) -> Path:
    """Export ``tiny_module(seed)`` to ``path`` with the product's I/O contract and dm.* metadata."""
    import warnings

    m = tiny_module(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.zeros(1, 1, size, size),), str(path), dynamo=False, opset_version=17,
                          input_names=["face"], output_names=["emotion_probs", "au_intensity"],
                          dynamic_axes={"face": {0: "N"}, "emotion_probs": {0: "N"}, "au_intensity": {0: "N"}})
    model = onnx.load(str(path))
    meta = {
        "dm.emotion_names": json.dumps(list(EMOTIONS)),
        "dm.au_names": json.dumps(list(AUS)),
        "dm.input_size": str(size), "dm.input_mean": "0.5", "dm.input_std": "0.5",
        "dm.model_version": f"tiny-test-{seed}", "dm.training_data": "none (test model)",
        "dm.metrics": "{}", "dm.torch_checkpoint": path.with_suffix(".pt").name,
        **(metadata or {}),
    }
    for k, v in meta.items():
        if k in drop:
            continue
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


def random_crops(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """Face-like test crops: smooth blobs plus noise (uint8, (n, size, size))."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.5)
        img = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2) + rng.normal(0, 20, (size, size))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


# documented parity tolerances against the torch reference (docs/engines.md): fp16 and int8 looser
PRECISION_TOL = {"fp32": 1e-4, "fp16": 1e-2, "int8": 0.1}


def tiny_with_copies(d: Path, *, n_calib: int = 48, seed: int = 1) -> dict[str, Path]:
    """The tiny fp32 model in ``d``, ``n_calib`` synthetic calibration crops in ``d/calib`` and its
    fp16 / int8 copies (the int8 one for TensorRT and the one for the CPU) in ``d/cache``:
    ``{"fp32", "calib", "cache"}``."""
    import cv2

    from driver_monitor.engine.precision import build_copy

    fp32 = export_tiny(d / "m.onnx")
    calib = d / "calib"
    calib.mkdir()
    for i, crop in enumerate(random_crops(n_calib, seed=seed)):
        cv2.imwrite(str(calib / f"c{i:03d}.png"), crop)
    cache = d / "cache"
    build_copy(fp32, "fp16", cache)
    build_copy(fp32, "int8", cache, calib_dir=calib)
    build_copy(fp32, "int8", cache, device="cpu", calib_dir=calib)
    return {"fp32": fp32, "calib": calib, "cache": cache}


def tiny_region_net(seed: int = 0, *, flip_tta: bool = False):
    """A tiny randomly initialised region-attention EmotionAUNet (the product's network class)
    whose attention and visibility depend on the crop (random region weights) and whose batch-norm
    statistics are not the identity."""
    from driver_monitor.model.network import EmotionAUNet, NetConfig, with_region_attention

    cfg = with_region_attention(NetConfig(stem=(8, 16), widths=(16, 32), extra_blocks=1, se_ratio=4,
                                          flip_tta=flip_tta))
    torch.manual_seed(seed)
    net = EmotionAUNet(cfg)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
        net.regions.att_weight.normal_(0, 0.5)
        net.regions.vis_weight.normal_(0, 2.0)
        net.regions.vis_bias.normal_(0, 1.0)
        net.emotion.weight.mul_(8.0)
        net.au.weight.mul_(8.0)
    return net.eval()


def export_tiny_regions(path: Path, *, seed: int = 0, flip_tta: bool = False, version: str = "tiny-regions"):
    """``tiny_region_net(seed)`` exported to ``path`` by the product's exporter with its region
    metadata, and its checkpoint beside it (``<stem>.pt``, named by dm.torch_checkpoint) for the
    torch backend. Returns (path, the network)."""
    from driver_monitor.model_contract import model_metadata
    from driver_monitor.model.checkpoint import default_meta, save_checkpoint
    from driver_monitor.model.export import export_onnx
    from driver_monitor.model.regions import AU_REGIONS

    net = tiny_region_net(seed, flip_tta=flip_tta)
    meta = default_meta(model_version=version, training_data="none (test model)")
    pt = save_checkpoint(path.with_suffix(".pt"), net, meta)
    props = model_metadata(meta, torch_checkpoint=pt.name, regions=net.region_names, au_regions=AU_REGIONS)
    return export_onnx(net, path, props), net

# --------------------------------------------------------------------------- tests


def test_metadata_is_read(tmp_path):
    info = read_model_info(export_tiny(tmp_path / "m.onnx", size=40))
    assert info.emotion_names == EMOTIONS
    assert info.au_names == AUS
    assert info.spec.size == 40
    assert info.precision == "fp32"
    assert info.torch_checkpoint == "m.pt"
    assert len(info.sha256) == 64


@pytest.mark.parametrize("drop,meta,message", [
    (("dm.emotion_names",), None, "no dm.emotion_names metadata"),
    ((), {"dm.au_names": "[not json"}, "is not a JSON list"),
    ((), {"dm.au_names": "[]"}, "non-empty JSON list"),
    ((), {"dm.input_size": "4"}, "bad input metadata"),
])
def test_bad_metadata_is_refused(tmp_path, drop, meta, message):
    path = export_tiny(tmp_path / "m.onnx", drop=drop, metadata=meta)
    with pytest.raises(ModelError, match=message):
        read_model_info(path)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        read_model_info(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        read_model_info(bad)
