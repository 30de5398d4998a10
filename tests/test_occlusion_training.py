"""Occlusion-aware training: the random occluder generator, the region-attention network, its
checkpoints and export, and distillation from a frozen teacher (tiny sizes, synthetic data)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from driver_monitor.model.regions import (
    AU_REGIONS, REGION_BOXES, REGIONS, cell_weights, mirror_index, pixel_masks, region_boxes,
)
from driver_monitor.preprocess import AUS, EMOTIONS
from tests.test_model import _tiny_ferplus
from driver_monitor.training.occlusion_aug import OCCLUDER_WEIGHTS, PHOTOMETRIC, OccluderGenerator

ROOT = Path(__file__).resolve().parent.parent
R = {name: i for i, name in enumerate(REGIONS)}


def _faces(n: int = 8, seed: int = 0) -> np.ndarray:
    """Smooth random 'faces' in [0, 1] (N, 48, 48)."""
    import cv2

    rng = np.random.default_rng(seed)
    return np.stack([cv2.GaussianBlur(rng.uniform(0.2, 0.8, (48, 48)).astype(np.float32), (0, 0), 2.0)
                     for _ in range(n)])


# ------------------------------------------------------------------------------------- regions

def test_regions_cover_the_face_parts_and_every_au():
    assert REGIONS == ("eyes", "nose", "mouth", "left_cheek", "right_cheek", "face")
    assert set(AU_REGIONS) == set(AUS) and all(set(r) <= set(REGIONS) for r in AU_REGIONS.values())
    eyes, mouth = REGION_BOXES["eyes"], REGION_BOXES["mouth"]
    assert eyes[3] < mouth[1]  # the eye band lies above the mouth box
    with pytest.raises(KeyError, match="unknown face region"):
        region_boxes(["eyes", "ears"])


def test_cell_weights_average_each_box():
    w = cell_weights(region_boxes(REGIONS), 3, 3)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w[R["face"]], np.full((3, 3), 1 / 9), rtol=1e-6)  # the whole crop = the mean
    assert w[R["mouth"]][2].sum() > 0.9 and w[R["eyes"]][2].sum() == 0  # mouth in the bottom row, eyes not
    px = pixel_masks([(0.25, 0.5, 0.75, 1.0)], 4)[0]
    np.testing.assert_array_equal(px, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0]])


def test_mirror_index_swaps_the_cheeks():
    m = mirror_index(region_boxes(REGIONS))
    assert m[R["left_cheek"]] == R["right_cheek"] and m[R["right_cheek"]] == R["left_cheek"]
    assert all(m[R[k]] == R[k] for k in ("eyes", "nose", "mouth", "face"))
    with pytest.raises(ValueError, match="no mirror"):
        mirror_index([(0.0, 0.0, 0.3, 0.3)])


# -------------------------------------------------------------------------- occluder generator

def test_batch_shapes_dtypes_and_range():
    gen = OccluderGenerator()
    x = _faces(16)
    out, cover, kinds = gen.batch(x, np.random.default_rng(0), p=1.0)
    assert out.shape == x.shape and out.dtype == np.float32
    assert cover.shape == (16, len(REGIONS)) and cover.dtype == np.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert float(cover.min()) >= 0 and float(cover.max()) <= 1 + 1e-6
    assert len(kinds) == 16 and all(k for k in kinds)
    assert all(not np.array_equal(o, i) for o, i in zip(out, x))
    # p = 0: untouched, nothing covered; the input array itself is never modified
    before = x.copy()
    out0, cover0, kinds0 = gen.batch(x, np.random.default_rng(0), p=0.0)
    np.testing.assert_array_equal(out0, x)
    assert not cover0.any() and kinds0 == ("",) * 16
    np.testing.assert_array_equal(x, before)


def test_seeded_determinism():
    gen = OccluderGenerator()
    x = _faces(12)
    a = gen.batch(x, np.random.default_rng(7), p=0.6)
    b = gen.batch(x, np.random.default_rng(7), p=0.6)
    c = gen.batch(x, np.random.default_rng(8), p=0.6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[0], c[0])


def test_every_kind_varies_from_draw_to_draw():
    gen = OccluderGenerator(second_p=0.0)
    face = _faces(1)[0]
    rng = np.random.default_rng(0)
    for kind in OCCLUDER_WEIGHTS:
        a, b = gen.occlude(face, rng, kind=kind), gen.occlude(face, rng, kind=kind)
        assert a.kind == b.kind == kind
        assert not np.allclose(a.image, b.image), kind


def _mean_cover(kind: str, n: int = 60) -> np.ndarray:
    gen = OccluderGenerator(second_p=0.0)
    face = _faces(1)[0]
    rng = np.random.default_rng(1)
    return np.mean([gen.occlude(face, rng, kind=kind).coverage for _ in range(n)], axis=0)


@pytest.mark.parametrize("kind, covered, free", [
    ("glasses", "eyes", "mouth"),
    ("eye_band", "eyes", "mouth"),
    ("mask", "mouth", "eyes"),
])
def test_occluders_cover_the_region_they_say(kind, covered, free):
    c = _mean_cover(kind)
    assert c[R[covered]] > 0.3, c
    assert c[R[free]] < 0.05, c
    assert c[R[covered]] > 5 * c[R[free]]


def test_hands_cover_the_lower_face_more_than_the_eyes():
    c = _mean_cover("hand")
    lower = max(c[R["mouth"]], c[R["left_cheek"]], c[R["right_cheek"]])
    assert lower > 0.2 and lower > 2 * c[R["eyes"]], c


@pytest.mark.parametrize("kind", sorted(PHOTOMETRIC))
def test_photometric_kinds_change_the_look_but_cover_nothing(kind):
    gen = OccluderGenerator(second_p=0.0)
    face = _faces(1)[0]
    occ = gen.occlude(face, np.random.default_rng(2), kind=kind)
    assert not occ.coverage.any()
    assert np.abs(occ.image - face).mean() > 0.005


def test_coverage_is_the_mean_opacity_over_each_box():
    gen = OccluderGenerator()
    alpha = np.zeros((48, 48), np.float32)
    x0, y0 = np.floor(np.array(REGION_BOXES["mouth"][:2]) * 48).astype(int)
    x1, y1 = np.ceil(np.array(REGION_BOXES["mouth"][2:]) * 48).astype(int)
    alpha[y0:y1, x0:x1] = 1.0  # the box and the pixels it touches
    cov = gen.coverage(alpha)
    assert cov[R["mouth"]] == pytest.approx(1.0, abs=1e-5)
    alpha[y0:y1, x0:(x0 + x1) // 2] = 0.5  # half of it at half opacity
    assert gen.coverage(alpha)[R["mouth"]] == pytest.approx(0.75, abs=0.03)
    assert cov[R["eyes"]] == 0.0
    assert gen.coverage(alpha)[R["face"]] == pytest.approx(alpha.mean(), abs=1e-6)


def test_pixels_change_where_coverage_says():
    """With no shadow and no second kind, the crop changes inside the covered regions and not in
    a region the occluder did not reach."""
    gen = OccluderGenerator(kinds={"mask": 1.0}, second_p=0.0)
    face = np.full((48, 48), 0.5, np.float32)
    rng = np.random.default_rng(3)
    for _ in range(10):
        occ = gen.occlude(face, rng)
        changed = np.abs(occ.image - face) > 1e-3
        ex0, ey0, ex1, ey1 = (np.array(REGION_BOXES["eyes"]) * 48).astype(int)
        mx0, my0, mx1, my1 = (np.array(REGION_BOXES["mouth"]) * 48).astype(int)
        assert occ.coverage[R["mouth"]] > 0.5 and changed[my0:my1, mx0:mx1].mean() > 0.3
        if occ.coverage[R["eyes"]] == 0:
            assert changed[ey0:ey1 - 4, ex0:ex1].mean() < 0.1  # a cast shadow may reach the lowest rows


def test_kind_subsets_second_kinds_and_bad_arguments():
    gen = OccluderGenerator(kinds={"hand": 1.0, "blur": 1.0}, second_p=1.0)
    rng = np.random.default_rng(4)
    kinds = {gen.occlude(_faces(1)[0], rng).kind for _ in range(20)}
    assert kinds <= {"hand+blur", "blur+hand"} and kinds
    with pytest.raises(ValueError, match="kinds must be"):
        OccluderGenerator(kinds={"umbrella": 1.0})
    with pytest.raises(ValueError, match="unknown occluder kind"):
        OccluderGenerator().occlude(_faces(1)[0], rng, kind="umbrella")
    with pytest.raises(ValueError, match="expected a"):
        OccluderGenerator().occlude(np.zeros((32, 32)), rng)


# ------------------------------------------------------------------------------------- network

torch = pytest.importorskip("torch")

from driver_monitor.errors import ModelError  # noqa: E402
from driver_monitor.model import EmotionAUNet, NetConfig, load_checkpoint, save_checkpoint  # noqa: E402
from driver_monitor.model.checkpoint import default_meta, read_checkpoint  # noqa: E402
from driver_monitor.model.network import load_plain_weights, with_region_attention  # noqa: E402
from driver_monitor.training.losses import distill_loss, visibility_loss  # noqa: E402
from driver_monitor.training.presets import ARCHS  # noqa: E402

TINY = NetConfig(stem=(8, 16), widths=(16, 32), extra_blocks=1, se_ratio=4)
TINY_RA = with_region_attention(TINY)


def _net(cfg: NetConfig, seed: int = 0) -> EmotionAUNet:
    torch.manual_seed(seed)
    model = EmotionAUNet(cfg)
    model.train()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for _ in range(2):
            model.forward_logits(torch.randn(8, 1, 48, 48))
    return model.eval()


@pytest.mark.parametrize("cfg", [TINY_RA, with_region_attention(
    NetConfig(stem=(8, 16), stem_stride=2, widths=(16, 24, 32), extra_blocks=0))])
def test_region_attention_forward_shapes_and_extra_outputs(cfg):
    model = _net(cfg)
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        out = model(x)
        p, a, att, vis = model.forward_regions(x)
    assert len(out) == 2  # forward keeps the two-output contract
    torch.testing.assert_close(out[0], p)
    torch.testing.assert_close(out[1], a)
    assert p.shape == (5, len(EMOTIONS)) and a.shape == (5, len(AUS))
    assert att.shape == vis.shape == (5, len(REGIONS))
    for t in (att, vis):
        assert float(t.min()) >= 0 and float(t.max()) <= 1
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-5)
    assert model.region_names == REGIONS and model.cfg.variant == "region_attention"


def test_plain_network_is_unchanged_and_has_no_region_outputs():
    model = _net(TINY)
    assert model.cfg.variant == "plain" and model.regions is None
    assert not any(k.startswith("regions") for k in model.state_dict())
    with pytest.raises(ModelError, match="no region attention"):
        model.forward_regions(torch.randn(1, 1, 48, 48))


def test_whole_face_attention_alone_is_the_plain_network():
    """Plain weights in the region variant, attention forced onto the whole-face region: the same
    outputs as the plain network (the whole-crop region feature is the global average pool)."""
    plain = _net(TINY, seed=1)
    ra = EmotionAUNet(TINY_RA)
    new = load_plain_weights(ra, plain.state_dict())
    assert sorted(new) == ["regions.att_bias", "regions.att_weight", "regions.vis_bias", "regions.vis_weight"]
    ra.eval()
    with torch.no_grad():
        ra.regions.att_bias.copy_(torch.tensor([-40.0] * 5 + [40.0]))
        x = torch.randn(4, 1, 48, 48)
        for a, b in zip(plain(x), ra(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    with pytest.raises(ModelError, match="do not fit"):
        load_plain_weights(EmotionAUNet(with_region_attention(NetConfig(stem=(8, 16), widths=(16, 24)))),
                           plain.state_dict())


def test_flip_tta_reads_the_mirrored_regions_back():
    model = _net(TINY_RA, seed=2)
    with torch.no_grad():
        model.regions.att_weight.normal_(0, 0.5)  # attention that depends on the input
        model.regions.vis_weight.normal_(0, 0.5)
    model.set_flip_tta()
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        a = model.forward_regions(x)
        b = model.forward_regions(torch.flip(x, dims=[3]))
    mirror = list(mirror_index(model.cfg.region_boxes))
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(a[2], b[2][:, mirror], atol=1e-6, rtol=0)
    torch.testing.assert_close(a[3], b[3][:, mirror], atol=1e-6, rtol=0)
    assert float((a[2][:, R["left_cheek"]] - a[2][:, R["right_cheek"]]).abs().max()) > 1e-4


@pytest.mark.parametrize("cfg", [TINY, TINY_RA])
def test_checkpoint_round_trip_of_both_variants(tmp_path, cfg):
    model = _net(cfg, seed=3)
    path = save_checkpoint(tmp_path / "m.pt", model, default_meta(model_version="t"))
    assert read_checkpoint(path)["variant"] == cfg.variant
    loaded, _ = load_checkpoint(path)
    assert loaded.cfg == cfg and loaded.cfg.variant == cfg.variant
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            torch.testing.assert_close(a, b)
        if cfg.region_names:
            for a, b in zip(model.forward_regions(x), loaded.forward_regions(x)):
                torch.testing.assert_close(a, b)


def test_old_checkpoints_load_as_the_plain_network(tmp_path):
    """A file written before the variant existed: no "variant", no region or flip_tta keys."""
    model = _net(TINY, seed=4)
    cfg = {k: v for k, v in TINY.to_dict().items() if k not in ("region_names", "region_boxes", "flip_tta")}
    torch.save({"format": "driver-monitor/emotion-au/1", "net_config": cfg,
                "state_dict": model.state_dict(), "meta": default_meta()}, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert loaded.cfg.variant == "plain"
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], loaded(x)[0])


def test_shipped_checkpoint_still_loads():
    shipped = ROOT / "engines" / "emotion_au.pt"
    if not shipped.is_file():
        pytest.skip("engines/emotion_au.pt is not in this checkout")
    model, meta = load_checkpoint(shipped)
    assert model.cfg.variant == "region_attention" and meta["emotion_names"] == list(EMOTIONS)
    assert model.region_names == REGIONS


def test_a_variant_that_contradicts_the_config_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _net(TINY), default_meta())
    blob = torch.load(path, weights_only=True)
    blob["variant"] = "region_attention"
    torch.save(blob, path)
    with pytest.raises(ModelError, match="says it is"):
        load_checkpoint(path)


def test_region_variant_exports_the_two_outputs_and_the_region_outputs(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    from driver_monitor.model_contract import OUTPUT_NAMES, REGION_OUTPUT_NAMES, model_metadata
    from driver_monitor.model.export import check_parity, export_onnx

    model = _net(TINY_RA, seed=5)
    props = model_metadata(default_meta(), torch_checkpoint="ra.pt", regions=model.region_names,
                           au_regions=AU_REGIONS)
    path = export_onnx(model, tmp_path / "ra.onnx", props)
    assert [o.name for o in onnx.load(str(path)).graph.output] == [*OUTPUT_NAMES, *REGION_OUTPUT_NAMES]
    assert check_parity(model, path) < 1e-4


# --------------------------------------------------------------------------------- distillation

@pytest.fixture(scope="module")
def train_mod():
    from tools import train

    return train


def test_distill_loss_is_zero_at_the_teacher_and_pulls_towards_it():
    torch.manual_seed(0)
    t_logits, t_au_logits = torch.randn(6, 8), torch.randn(6, 13)
    t_p, t_au = torch.softmax(t_logits, 1), torch.sigmoid(t_au_logits)
    kd_emo, kd_au = distill_loss(t_logits, t_au_logits, t_p, t_au)
    assert abs(kd_emo.item()) < 1e-5 and abs(kd_au.item()) < 1e-5
    s_logits = torch.randn(6, 8, requires_grad=True)
    s_au = torch.randn(6, 13, requires_grad=True)
    kd_emo, kd_au = distill_loss(s_logits, s_au, t_p, t_au)
    assert kd_emo.item() > 0.05 and kd_au.item() > 0.05
    (kd_emo + kd_au).backward()
    # the gradient of the AU term is the BCE one: (sigmoid(student) - teacher) / numel
    torch.testing.assert_close(s_au.grad, (torch.sigmoid(s_au) - t_au).detach() / s_au.numel())
    torch.testing.assert_close(s_logits.grad, (torch.softmax(s_logits, 1) - t_p).detach() / 6)


def test_visibility_loss_prefers_the_truth():
    cover = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    good = visibility_loss(torch.tensor([[-6.0, 6.0], [6.0, 6.0]]), cover)
    bad = visibility_loss(torch.tensor([[6.0, -6.0], [-6.0, 6.0]]), cover)
    assert good.item() < 0.01 < bad.item()


def test_batch_inputs_give_the_teacher_the_clean_crop():
    from dataclasses import replace

    from driver_monitor.preprocess import InputSpec
    from driver_monitor.training.augment import batch_inputs, make_occluder
    from driver_monitor.training.options import TrainOptions

    args = TrainOptions(data="x", out="y", occlusion_p=1.0)
    occluder = make_occluder(args, 48)
    x01 = torch.from_numpy(_faces(6))[:, None]
    student, clean, cover = batch_inputs(x01, torch.Generator().manual_seed(0), args, occluder, InputSpec())
    assert student.shape == clean.shape == (6, 1, 48, 48) and cover.shape == (6, len(REGIONS))
    assert all(not torch.equal(s, c) for s, c in zip(student, clean))
    again = batch_inputs(x01, torch.Generator().manual_seed(0), args, occluder, InputSpec())
    torch.testing.assert_close(again[0], student)
    args = replace(args, occlusion_p=0.0)
    assert make_occluder(args, 48) is None
    student, clean, cover = batch_inputs(x01, torch.Generator().manual_seed(0), args, None, InputSpec())
    assert student is clean and cover is None
    args = replace(args, occlusion_kinds="mask,umbrella", occlusion_p=0.5)
    with pytest.raises(Exception, match="umbrella"):
        make_occluder(args, 48)


def _rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_distillation_alone_brings_the_student_to_the_teacher(tmp_path, train_mod, monkeypatch):
    """No emotion labels, no AU labels: only the teacher's outputs. The student's AU outputs on the
    validation crops move towards the teacher's (val_au_mae is measured against the teacher)."""
    data = _tiny_ferplus(tmp_path / "ferplus")
    monkeypatch.setitem(ARCHS, "test", TINY)
    net = _net(TINY, seed=11)
    with torch.no_grad():  # AU intensities far from the 0.5 a fresh student starts at
        net.au.bias.copy_(torch.linspace(-2.5, 2.5, len(AUS)))
    teacher = save_checkpoint(tmp_path / "teacher.pt", net, default_meta(model_version="t"))
    out = tmp_path / "run"
    args = ["--data", str(data), "--arch", "test", "--batch", "8", "--threads", "1", "--no-progress",
            "--lr", "2e-2", "--aug-strength", "0.3", "--epochs", "5", "--patience", "99", "--dropout", "0",
            "--teacher", str(teacher), "--emo-weight", "0", "--out", str(out)]
    assert train_mod.main(args) == 0
    rows = _rows(out / "metrics.csv")
    assert float(rows[-1]["val_au_mae"]) < 0.7 * float(rows[0]["val_au_mae"]), rows
    assert float(rows[-1]["train_kd_au"]) < float(rows[0]["train_kd_au"])
    assert float(rows[0]["train_emo_loss"]) > 0 and rows[0]["val_acc_occ"] == "nan"


def test_train_tool_occlusion_distillation_and_region_attention(tmp_path, train_mod, monkeypatch):
    data = _tiny_ferplus(tmp_path / "ferplus")
    monkeypatch.setitem(ARCHS, "test", TINY)
    teacher = save_checkpoint(tmp_path / "teacher.pt", _net(TINY, seed=12), default_meta(model_version="t"))
    common = ["--data", str(data), "--batch", "16", "--threads", "1", "--no-progress", "--lr", "3e-3",
              "--epochs", "2", "--init", str(teacher), "--teacher", str(teacher), "--occlusion-p", "0.5"]
    out = tmp_path / "ra"
    assert train_mod.main(common + ["--out", str(out), "--region-attention", "--select", "clean+occluded"]) == 0
    rows = _rows(out / "metrics.csv")
    assert len(rows) == 2
    for r in rows:
        assert float(r["train_kd_emo"]) > 0 and float(r["train_kd_au"]) > 0 and float(r["train_vis_loss"]) > 0
        assert 0 <= float(r["val_acc_occ"]) <= 1 and float(r["val_vis_mae_occ"]) >= 0
    model, meta = load_checkpoint(out / "best.pt")
    assert model.cfg.variant == "region_attention"
    assert "distilled from teacher.pt" in meta["training_data"] and "occluders" in meta["training_data"]
    assert any(k.endswith("_occluded_accuracy") for k in meta["metrics"])
    # the backbone started from the teacher and moved; the region layers trained
    t, _ = load_checkpoint(teacher)
    assert not torch.equal(model.stem[0].weight, t.stem[0].weight)
    assert torch.count_nonzero(model.regions.vis_weight) > 0
    # resume continues the region-attention run
    assert train_mod.main(common[:-8] + ["--epochs", "3", "--resume", "--teacher", str(teacher),
                                         "--occlusion-p", "0.5", "--out", str(out)]) == 0
    assert [int(r["epoch"]) for r in _rows(out / "metrics.csv")] == [1, 2, 3]
    # the plain network with the same recipe has no visibility term; --select needs the occluded copy
    plain = tmp_path / "plain"
    assert train_mod.main(common + ["--out", str(plain)]) == 0
    assert {float(r["train_vis_loss"]) for r in _rows(plain / "metrics.csv")} == {0.0}
    assert load_checkpoint(plain / "best.pt")[0].cfg.variant == "plain"
    assert train_mod.main(common[:-2] + ["--out", str(tmp_path / "x"), "--select", "clean+occluded"]) != 0
