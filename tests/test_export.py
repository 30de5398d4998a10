"""ONNX export: contract (names, dynamic batch, opset), parity with PyTorch, metadata round trip,
and the shipped engines/emotion_au.onnx + .pt pair."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from driver_monitor.errors import ModelError  # noqa: E402
from driver_monitor.model import EmotionAUNet, NetConfig, load_checkpoint  # noqa: E402
from driver_monitor.model.checkpoint import default_meta  # noqa: E402
from driver_monitor.model_contract import META_KEYS, model_metadata, read_metadata  # noqa: E402
from driver_monitor.model.export import check_parity, export_onnx  # noqa: E402
from driver_monitor.preprocess import AUS, EMOTIONS, to_input  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = NetConfig(stem=(8, 16), widths=(16, 32), extra_blocks=1, se_ratio=4)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = EmotionAUNet(TINY).eval()
    # non-trivial batch-norm statistics, so folding them is exercised
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    meta = default_meta(model_version="9.9.9", training_data="synthetic",
                        metrics={"ferplus_test_accuracy": 0.5})
    props = model_metadata(meta, torch_checkpoint="tiny.pt")
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", props)
    return model, path, props


def test_contract_names_shapes_opset(exported):
    _, path, _ = exported
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["face"]
    assert [o.name for o in proto.graph.output] == ["emotion_probs", "au_intensity"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [1, 48, 48]
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == 17


@pytest.mark.parametrize("batch", [1, 3, 16])
def test_dynamic_batch_and_parity(exported, batch):
    model, path, _ = exported
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    crops = np.random.default_rng(batch).integers(0, 256, (batch, 48, 48), dtype=np.uint8)
    x = to_input(crops)
    p, a = sess.run(["emotion_probs", "au_intensity"], {"face": x})
    assert p.shape == (batch, len(EMOTIONS)) and a.shape == (batch, len(AUS))
    with torch.no_grad():
        rp, ra = model(torch.from_numpy(x))
    np.testing.assert_allclose(p, rp.numpy(), atol=1e-4)
    np.testing.assert_allclose(a, ra.numpy(), atol=1e-4)


def test_check_parity_passes_and_catches_a_mismatch(exported):
    model, path, _ = exported
    assert check_parity(model, path) < 1e-4
    other = EmotionAUNet(TINY).eval()
    with pytest.raises(ModelError, match="differs from PyTorch"):
        check_parity(other, path)


def test_metadata_round_trip(exported):
    _, path, props = exported
    got = read_metadata(path)
    assert {k: got[k] for k in META_KEYS} == props
    assert json.loads(got["dm.emotion_names"]) == list(EMOTIONS)
    assert json.loads(got["dm.au_names"]) == list(AUS)
    assert (int(got["dm.input_size"]), float(got["dm.input_mean"]), float(got["dm.input_std"])) == (48, 0.5, 0.5)
    assert json.loads(got["dm.metrics"]) == {"ferplus_test_accuracy": 0.5}
    assert got["dm.model_version"] == "9.9.9" and got["dm.torch_checkpoint"] == "tiny.pt"


def test_missing_metadata_is_a_model_error(tmp_path, exported):
    _, path, _ = exported
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.raises(ModelError, match="lacks metadata"):
        read_metadata(bare)
    with pytest.raises(ModelError, match="not found"):
        read_metadata(tmp_path / "nope.onnx")


def test_shipped_model_matches_its_checkpoint():
    onnx_path = ROOT / "engines" / "emotion_au.onnx"
    props = read_metadata(onnx_path)
    assert onnx_path.stat().st_size < 10_000_000
    pt = onnx_path.parent / props["dm.torch_checkpoint"]
    assert pt.stat().st_size < 10_000_000
    model, meta = load_checkpoint(pt, map_location="cpu")
    assert meta["emotion_names"] == json.loads(props["dm.emotion_names"]) == list(EMOTIONS)
    assert meta["au_names"] == json.loads(props["dm.au_names"]) == list(AUS)
    assert check_parity(model, onnx_path, batches=(1, 4)) < 1e-4
    metrics = json.loads(props["dm.metrics"])
    assert "ferplus_test_accuracy" in metrics


def test_flip_tta_exports_with_parity(tmp_path):
    import dataclasses

    torch.manual_seed(4)
    model = EmotionAUNet(dataclasses.replace(TINY, flip_tta=True)).eval()
    props = model_metadata(default_meta(), torch_checkpoint="tta.pt")
    path = export_onnx(model, tmp_path / "tta.onnx", props)
    assert check_parity(model, path, batches=(1, 5)) < 1e-4
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_input(np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8))
    p, _ = sess.run(["emotion_probs", "au_intensity"], {"face": x})
    pm, _ = sess.run(["emotion_probs", "au_intensity"], {"face": np.ascontiguousarray(x[..., ::-1])})
    np.testing.assert_allclose(p, pm, atol=1e-5)


# --------------------------------------------------------------------------- region outputs


def test_plain_network_exports_exactly_the_two_output_graph(exported, tmp_path):
    """The plain network's file is the one the two-output export always wrote: the same graph,
    byte for byte, the same two outputs and exactly the dm.* keys of META_KEYS."""
    model, path, props = exported
    ref = tmp_path / "ref.onnx"
    with torch.no_grad():  # the call the exporter made before region outputs existed
        torch.onnx.export(model, (torch.zeros(2, 1, 48, 48),), str(ref), dynamo=False, opset_version=17,
                          input_names=["face"], output_names=["emotion_probs", "au_intensity"],
                          dynamic_axes={"face": {0: "N"}, "emotion_probs": {0: "N"}, "au_intensity": {0: "N"}},
                          do_constant_folding=True)
    got = onnx.load(str(path))
    assert got.graph.SerializeToString() == onnx.load(str(ref)).graph.SerializeToString()
    assert [o.name for o in got.graph.output] == ["emotion_probs", "au_intensity"]
    assert sorted(p.key for p in got.metadata_props) == sorted(META_KEYS)
    assert not any(k.startswith("dm.region") or k == "dm.au_regions" for k in props)


@pytest.fixture(scope="module")
def exported_regions(tmp_path_factory):
    from .test_engine_model import export_tiny_regions

    path, net = export_tiny_regions(tmp_path_factory.mktemp("regions") / "ra.onnx", seed=3)
    return net, path


def test_region_network_exports_attention_and_visibility(exported_regions):
    from driver_monitor.model_contract import read_model_info
    from driver_monitor.model.regions import AU_REGIONS, REGIONS

    net, path = exported_regions
    proto = onnx.load(str(path))
    outs = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert outs == {"emotion_probs": ["N", 8], "au_intensity": ["N", 13], "region_attention": ["N", 6],
                    "region_visibility": ["N", 6]}
    props = read_metadata(path)
    assert json.loads(props["dm.regions"]) == list(REGIONS) == list(net.region_names)
    assert json.loads(props["dm.au_regions"]) == {au: list(AU_REGIONS[au]) for au in AUS}
    info = read_model_info(path)
    assert info.region_names == REGIONS and info.au_region_map()["AU12"] == ("mouth",)
    assert info.au_region_map()["AU6"] == ("eyes", "left_cheek", "right_cheek")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = to_input(np.random.default_rng(1).integers(0, 256, (5, 48, 48), dtype=np.uint8))
    got = sess.run(["emotion_probs", "au_intensity", "region_attention", "region_visibility"], {"face": x})
    with torch.no_grad():
        ref = [t.numpy() for t in net.forward_regions(torch.from_numpy(x))]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, atol=1e-4)
    vis = got[3]
    assert vis.shape == (5, 6) and ((vis >= 0) & (vis <= 1)).all() and vis.std() > 0.01  # probabilities, not logits
    assert not net.training  # the exporter leaves the network in eval mode


def test_check_parity_covers_the_region_outputs(exported_regions):
    net, path = exported_regions
    assert check_parity(net, path, batches=(1, 3)) < 1e-4
    import copy

    other = copy.deepcopy(net)
    with torch.no_grad():  # only the visibility head differs: the two usual outputs still match
        other.regions.vis_weight.mul_(-1.0)
    with pytest.raises(ModelError, match="differs from PyTorch"):
        check_parity(other, path, batches=(2,))


def test_region_network_with_flip_tta_exports_with_parity(tmp_path):
    from .test_engine_model import export_tiny_regions

    path, net = export_tiny_regions(tmp_path / "ra_tta.onnx", seed=4, flip_tta=True)
    assert check_parity(net, path, batches=(1, 4)) < 1e-4


def test_export_refuses_metadata_that_does_not_name_the_regions(exported, tmp_path):
    from driver_monitor.model.regions import AU_REGIONS

    from .test_engine_model import tiny_region_net

    plain, _, props = exported
    with pytest.raises(ModelError, match="has regions .* but the metadata says dm.regions=None"):
        export_onnx(tiny_region_net(), tmp_path / "a.onnx", props)
    with_regions = model_metadata(default_meta(), torch_checkpoint="x.pt", regions=("eyes", "mouth"),
                                  au_regions=AU_REGIONS)
    with pytest.raises(ModelError, match="the network is the plain one"):
        export_onnx(plain, tmp_path / "b.onnx", with_regions)
    assert not list(tmp_path.iterdir())


def test_region_metadata_maps_every_au_to_the_regions_the_model_has():
    from driver_monitor.model_contract import region_metadata
    from driver_monitor.model.regions import AU_REGIONS

    meta = region_metadata(("eyes", "mouth"), AU_REGIONS, AUS)
    amap = json.loads(meta["dm.au_regions"])
    assert json.loads(meta["dm.regions"]) == ["eyes", "mouth"] and list(amap) == list(AUS)
    assert amap["AU6"] == ["eyes"] and amap["AU9"] == [] and amap["AU26"] == ["mouth"]
    with pytest.raises(ModelError, match="distinct"):
        region_metadata(("eyes", "eyes"), AU_REGIONS, AUS)


def _edited(path, tmp_path, *, drop_outputs=(), props=None, drop_props=()):
    proto = onnx.load(str(path))
    keep = [o for o in proto.graph.output if o.name not in drop_outputs]
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    meta = {p.key: p.value for p in proto.metadata_props if p.key not in drop_props}
    meta.update(props or {})
    del proto.metadata_props[:]
    for k, v in meta.items():
        e = proto.metadata_props.add()
        e.key, e.value = k, v
    out = tmp_path / "edited.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.mark.parametrize("edit,message", [
    ({"drop_props": ("dm.regions", "dm.au_regions")}, "has output 'region_attention' but no dm.regions"),
    ({"drop_outputs": ("region_visibility",)}, "dm.regions is set but output 'region_visibility' is missing"),
    ({"props": {"dm.regions": '["eyes", "mouth"]', "dm.au_regions": "{}"}}, "lists 2 regions but region_attention"),
    ({"drop_props": ("dm.au_regions",)}, "has dm.regions without"),
    ({"props": {"dm.au_regions": '{"AU12": ["ears"]}'}}, "dm.au_regions must map"),
    ({"props": {"dm.au_regions": '{"AU99": ["mouth"]}'}}, "dm.au_regions must map"),
    ({"props": {"dm.au_regions": "[1"}}, "dm.au_regions must map"),
])
def test_region_contract_is_checked_when_the_model_is_read(exported_regions, tmp_path, edit, message):
    from driver_monitor.model_contract import read_model_info

    with pytest.raises(ModelError, match=message):
        read_model_info(_edited(exported_regions[1], tmp_path, **edit))


def test_export_tool_writes_the_region_outputs(tmp_path, capsys):

    from driver_monitor.model_contract import read_model_info
    from driver_monitor.model.checkpoint import save_checkpoint

    from .test_engine_model import tiny_region_net

    ckpt = save_checkpoint(tmp_path / "best.pt", tiny_region_net(seed=6), default_meta())
    from tools import export_onnx as tool

    out = tmp_path / "engines" / "m.onnx"
    assert tool.main(["--checkpoint", str(ckpt), "--out", str(out), "--version", "2.0.0-ra"]) == 0
    assert "regions eyes, nose, mouth, left_cheek, right_cheek, face" in capsys.readouterr().out
    info = read_model_info(out)
    assert info.region_names[0] == "eyes" and info.torch_checkpoint == "m.pt"
    assert (tmp_path / "engines" / "m.pt").is_file()
