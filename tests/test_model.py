"""Network, checkpoints, metrics and a few-step training run (tiny sizes, seconds on a CPU)."""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from driver_monitor.errors import DriverMonitorError, ModelError  # noqa: E402
from driver_monitor.model import EmotionAUNet, NetConfig, load_checkpoint, save_checkpoint  # noqa: E402
from driver_monitor.model.checkpoint import default_meta, read_checkpoint  # noqa: E402
from driver_monitor.model.metrics import binary_f1, classification_report, roc_auc  # noqa: E402
from driver_monitor.preprocess import AUS, EMOTIONS  # noqa: E402
from driver_monitor.training import amp  # noqa: E402
from driver_monitor.training.augment import augment  # noqa: E402
from driver_monitor.training.losses import masked_bce, soft_ce  # noqa: E402
from driver_monitor.training.networks import WeightEMA, freeze, set_frozen_bn_eval  # noqa: E402
from driver_monitor.training.presets import ARCHS  # noqa: E402
from driver_monitor.training.targets import class_weights  # noqa: E402

TINY = NetConfig(stem=(8, 16), widths=(16, 32), extra_blocks=1, se_ratio=4)


@pytest.fixture(scope="module")
def train_mod():
    from tools import train

    return train


@pytest.mark.parametrize("cfg", [TINY, NetConfig(stem=(8, 16), stem_stride=2, widths=(16, 24, 32), extra_blocks=0)])
@pytest.mark.parametrize("n", [1, 5])
def test_forward_contract(cfg, n):
    torch.manual_seed(0)
    model = EmotionAUNet(cfg).eval()
    with torch.no_grad():
        p, a = model(torch.randn(n, 1, 48, 48))
    assert p.shape == (n, len(EMOTIONS)) and a.shape == (n, len(AUS))
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-5)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_shipped_presets_stay_small():
    from driver_monitor.model import count_parameters

    for name, cfg in ARCHS.items():
        assert count_parameters(EmotionAUNet(cfg)) < 3_000_000, name


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    model = EmotionAUNet(TINY).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, default_meta(model_version="t"))
    loaded, meta = load_checkpoint(path, map_location="cpu")
    assert not loaded.training
    assert meta["emotion_names"] == list(EMOTIONS) and meta["au_names"] == list(AUS)
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        for a, b in zip(model(x), loaded(x)):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "content, message",
    [(None, "not found"), (b"not a checkpoint", "could not be read"), ("dict", "is not a")],
)
def test_bad_checkpoints(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content == "dict":
        torch.save({"hello": 1}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_checkpoint(path)


# ------------------------------------------------------------------------------------ metrics

@pytest.mark.parametrize(
    "y, s, auc",
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], 1.0),
        ([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1], 0.0),
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
    ],
)
def test_roc_auc(y, s, auc):
    assert roc_auc(np.array(y), np.array(s)) == pytest.approx(auc)


def test_roc_auc_one_class_is_nan():
    assert np.isnan(roc_auc(np.ones(3), np.arange(3)))


def test_classification_report_and_f1():
    rep = classification_report(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), ("a", "b", "c"))
    assert rep["accuracy"] == pytest.approx(0.75)
    assert rep["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rep["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert binary_f1(np.array([1, 0, 1]), np.array([0.9, 0.6, 0.1]), 0.5) == pytest.approx(0.5)


# ------------------------------------------------------------------------------- training parts

def test_class_weights_favour_rare_classes():
    hard = np.array([0] * 90 + [1] * 9 + [7] * 1)
    w = class_weights(hard, power=0.5, cap=5.0)
    assert w[7] > w[1] > w[0]
    assert w[hard].mean() == pytest.approx(1.0, rel=1e-5)
    assert np.allclose(class_weights(hard, power=0.0, cap=5.0)[[0, 1, 7]], 1.0)


def test_augment_is_seeded_and_in_range():
    x = torch.rand(16, 1, 48, 48)
    a1, f1 = augment(x, torch.Generator().manual_seed(3))
    a2, f2 = augment(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a1, a2)
    assert torch.equal(f1, f2)
    assert a1.shape == x.shape and float(a1.min()) >= 0 and float(a1.max()) <= 1
    assert not torch.allclose(a1, x)


def test_masked_bce_ignores_unlabelled_rows():
    logits = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    target = torch.tensor([[1.0, 0.0], [float("nan"), float("nan")]])
    loss = masked_bce(logits, target)
    assert loss.item() == pytest.approx(float(np.log(2)), rel=1e-5)
    assert masked_bce(logits, torch.full((2, 2), float("nan"))).item() == 0.0


def test_freeze_keeps_weights_and_bn_stats():
    torch.manual_seed(0)
    model = EmotionAUNet(TINY)
    frozen = freeze(model, ["stem", "trunk.0"])
    assert frozen and all(n.startswith(("stem", "trunk.0")) for n in frozen)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    set_frozen_bn_eval(model, ["stem", "trunk.0"])
    e, a = model.forward_logits(torch.randn(8, 1, 48, 48))
    (e.sum() + a.sum()).backward()
    opt.step()
    after = model.state_dict()
    for k in before:
        same = torch.equal(before[k], after[k])
        if k.startswith(("stem.", "trunk.0.")):
            assert same, k
    assert not torch.equal(before["emotion.weight"], after["emotion.weight"])
    with pytest.raises(Exception, match="matched no parameter"):
        freeze(EmotionAUNet(TINY), ["nothing"])


def test_few_steps_lower_the_loss():
    """Joint loss on a fixed, learnable batch goes down within a few optimiser steps."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 32
    labels = torch.tensor(rng.integers(0, 4, n))
    x = torch.randn(n, 1, 48, 48) * 0.3
    for c in range(4):  # class c: a bright square in quadrant c
        r, q = divmod(c, 2)
        x[labels == c, :, r * 24:(r + 1) * 24, q * 24:(q + 1) * 24] += 1.5
    soft = torch.nn.functional.one_hot(labels, len(EMOTIONS)).float()
    aus = torch.rand(n, len(AUS))
    aus[::4] = float("nan")
    model = EmotionAUNet(NetConfig.from_dict({**TINY.to_dict(), "dropout": 0.0}))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    w = torch.ones(n)

    def loss_fn():
        e, a = model.forward_logits(x)
        return soft_ce(e, soft, w) + 0.5 * masked_bce(a, aus)

    model.train()  # batch statistics throughout, so the comparison is like for like
    with torch.no_grad():
        first = loss_fn().item()
    for _ in range(15):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = loss_fn().item()
    assert last < 0.7 * first, (first, last)


def _tiny_ferplus(root: Path, n: int = 48) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for split in ("FER2013Train", "FER2013Valid"):
        d = root / split
        d.mkdir(parents=True)
        rows = []
        for i in range(n):
            c = i % 2  # neutral vs happiness: a bright bar at the top or at the bottom
            img = rng.integers(0, 60, (48, 48)).astype(np.uint8)
            img[(0 if c else 30):(18 if c else 48)] += 150
            cv2.imwrite(str(d / f"f{i:03d}.png"), img)
            votes = [0] * 10
            votes[c] = 8
            votes[1 - c] = 2
            rows.append([f"f{i:03d}.png", "(0, 0, 48, 48)", *votes])
        with open(d / "label.csv", "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    return root


def test_train_tool_end_to_end_with_resume_and_finetune(tmp_path, train_mod, monkeypatch):
    data = _tiny_ferplus(tmp_path / "ferplus")
    monkeypatch.setitem(ARCHS, "test", TINY)
    common = ["--data", str(data), "--arch", "test", "--batch", "16", "--threads", "1", "--no-progress",
              "--lr", "3e-3", "--aug-strength", "0.3"]
    out = tmp_path / "run"
    assert train_mod.main(common + ["--out", str(out), "--epochs", "2"]) == 0
    assert train_mod.main(common + ["--out", str(out), "--epochs", "4", "--resume"]) == 0
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert float(rows[-1]["train_emo_loss"]) < float(rows[0]["train_emo_loss"])
    model, meta = load_checkpoint(out / "best.pt")
    assert meta["seed"] == 0 and "ferplus" in meta["training_data"]
    # transfer learning: fine-tune with the stem and first module frozen
    ft = tmp_path / "ft"
    assert train_mod.main(common + ["--out", str(ft), "--epochs", "1", "--init", str(out / "best.pt"),
                                    "--freeze", "stem,trunk.0"]) == 0
    tuned, _ = load_checkpoint(ft / "last.pt")
    torch.testing.assert_close(tuned.stem[0].weight, model.stem[0].weight)
    assert not torch.equal(tuned.emotion.weight, model.emotion.weight)


def _with_bn_statistics(model: EmotionAUNet, seed: int) -> EmotionAUNet:
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model.forward_logits(torch.randn(8, 1, 48, 48))
    return model.eval()


def test_grow_from_keeps_the_function_and_trains_the_new_channels():
    from driver_monitor.model.network import grow_from

    small = _with_bn_statistics(EmotionAUNet(TINY), 0)
    wider_cfg = NetConfig(stem=(8, 24), widths=(24, 40), extra_blocks=1, se_ratio=4)
    wider = grow_from(_with_bn_statistics(EmotionAUNet(wider_cfg), 1), small.state_dict()).eval()
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        for a, b in zip(small(x), wider(x)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    # the new channels are computed but not read yet: one step later they are
    assert torch.count_nonzero(wider.emotion.weight[:, 32:]) == 0
    wider.train()
    emo, au = wider.forward_logits(x)
    (emo.logsumexp(1).mean() - emo[:, 0].mean() + au.mean()).backward()
    assert wider.emotion.weight.grad[:, 32:].abs().sum() > 0
    # zeroed "old output <- new input" weights (here a projection shortcut's) get gradients too
    assert torch.count_nonzero(wider.trunk[1].proj[0].weight[:32, 16:]) == 0
    assert wider.trunk[1].proj[0].weight.grad[:32, 16:].abs().sum() > 0


@pytest.mark.parametrize("cfg, message", [
    (NetConfig(stem=(8, 16), widths=(16, 24), extra_blocks=1, se_ratio=4), "may only grow"),
    (NetConfig(stem=(8, 16), widths=(16, 32, 48), extra_blocks=1, se_ratio=4), "the layers differ"),
])
def test_grow_from_refuses_what_it_cannot_carry(cfg, message):
    from driver_monitor.model.network import grow_from

    with pytest.raises(ModelError, match=message):
        grow_from(EmotionAUNet(cfg), EmotionAUNet(TINY).state_dict())


def test_train_tool_grows_a_checkpoint_into_a_wider_preset(tmp_path, train_mod, monkeypatch):
    data = _tiny_ferplus(tmp_path / "ferplus")
    monkeypatch.setitem(ARCHS, "test", TINY)
    monkeypatch.setitem(ARCHS, "test_wider", NetConfig(stem=(8, 24), widths=(24, 40), se_ratio=4))
    common = ["--data", str(data), "--batch", "16", "--threads", "1", "--no-progress", "--lr", "3e-3"]
    assert train_mod.main(common + ["--arch", "test", "--out", str(tmp_path / "a"), "--epochs", "1"]) == 0
    assert train_mod.main(common + ["--arch", "test_wider", "--init", str(tmp_path / "a" / "best.pt"),
                                    "--out", str(tmp_path / "b"), "--epochs", "1"]) == 0
    grown, _ = load_checkpoint(tmp_path / "b" / "last.pt")
    assert grown.cfg.widths == (24, 40) and grown.emotion.weight.shape == (8, 40)
    assert torch.count_nonzero(grown.emotion.weight[:, 32:]) > 0  # the new channels were trained
    # narrowing is refused with a message, not a traceback
    assert train_mod.main(common + ["--arch", "test", "--init", str(tmp_path / "b" / "best.pt"),
                                    "--out", str(tmp_path / "c"), "--epochs", "1"]) != 0


def test_weight_ema_averages_weights_and_buffers():
    torch.manual_seed(0)
    model = EmotionAUNet(TINY)
    ema = WeightEMA(model, decay=0.99)
    start = copy.deepcopy(ema.module.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model.stem[1].running_mean.add_(1.0)
    for _ in range(3):
        ema.update(model)
    w0, w_new = start["stem.0.weight"], model.stem[0].weight
    w_ema = ema.module.stem[0].weight
    # strictly between the old and the new weights, and not yet at the new ones
    assert torch.all(w_ema > w0) and torch.all(w_ema < w_new)
    assert torch.all(ema.module.stem[1].running_mean > start["stem.1.running_mean"])
    assert ema.module.stem[1].num_batches_tracked == model.stem[1].num_batches_tracked
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(DriverMonitorError, match="--ema"):
        WeightEMA(model, decay=1.5)


def test_train_tool_with_ema_saves_the_average_and_resumes_it(tmp_path, train_mod, monkeypatch):
    data = _tiny_ferplus(tmp_path / "ferplus")
    monkeypatch.setitem(ARCHS, "test", TINY)
    common = ["--data", str(data), "--arch", "test", "--batch", "16", "--threads", "1", "--no-progress",
              "--lr", "3e-3", "--aug-strength", "0.3", "--ema", "0.9", "--patience", "99"]
    out = tmp_path / "run"
    assert train_mod.main(common + ["--out", str(out), "--epochs", "1"]) == 0
    blob = read_checkpoint(out / "last.pt")
    best, meta = load_checkpoint(out / "best.pt")  # epoch 1 is always the best so far
    # best.pt holds the averaged weights, last.pt the raw iterate (for --resume) plus the average
    torch.testing.assert_close(best.emotion.weight, blob["train_state"]["ema"]["state_dict"]["emotion.weight"])
    assert not torch.equal(best.emotion.weight, blob["state_dict"]["emotion.weight"])
    assert train_mod.main(common + ["--out", str(out), "--epochs", "2", "--resume"]) == 0
    blob = read_checkpoint(out / "last.pt")
    assert blob["train_state"]["ema"]["updates"] == blob["train_state"]["step"] > 0
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(r["val_acc_raw"] for r in rows)


# --------------------------------------------------------------------------------- explanations

def test_grad_cam_and_occlusion_maps():
    from driver_monitor.model.explain import grad_cam, occlusion_map

    torch.manual_seed(0)
    model = EmotionAUNet(TINY).eval()
    x = torch.randn(1, 1, 48, 48)
    cam = grad_cam(model, x, target=1)
    assert cam.shape == (48, 48) and cam.min() >= 0 and cam.max() <= 1
    au_cam = grad_cam(model, x, target=AUS.index("AU12"), head="au")
    assert au_cam.shape == (48, 48)
    occ = occlusion_map(model, x, target=1, patch=8, stride=8)
    assert occ.shape == (48, 48) and np.isfinite(occ).all()
    with pytest.raises(ValueError, match="one image"):
        grad_cam(model, torch.randn(2, 1, 48, 48), 0)


def test_occlusion_finds_the_region_a_model_reads():
    """A hand-built 'model' whose class-0 logit reads only the top-left quadrant: occluding it must
    hurt most there."""
    from driver_monitor.model.explain import occlusion_map

    class Quadrant(EmotionAUNet):
        def forward(self, x):
            s = x[:, 0, :24, :24].mean(dim=(1, 2))
            logits = torch.stack([s * 10] + [torch.zeros_like(s)] * 7, 1)
            return torch.softmax(logits, 1), torch.zeros(x.shape[0], len(AUS))

    occ = occlusion_map(Quadrant(TINY), torch.ones(1, 1, 48, 48), target=0, patch=8, stride=8)
    assert occ[:24, :24].mean() > 10 * abs(occ[24:, 24:].mean()) and occ[:24, :24].mean() > 0


def test_train_tool_holdout_validation_on_class_folders(tmp_path, train_mod, monkeypatch):
    import cv2

    rng = np.random.default_rng(1)
    for cls in ("happy", "sad"):
        for i in range(20):
            d = tmp_path / "fer" / "train" / cls
            d.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 255, (48, 48)).astype(np.uint8))
    monkeypatch.setitem(ARCHS, "test", TINY)
    out = tmp_path / "run"
    args = ["--kind", "fer2013", "--data", str(tmp_path / "fer"), "--val-split", "holdout:0.25", "--arch", "test",
            "--batch", "10", "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out)]
    assert train_mod.main(args) == 0
    assert (out / "best.pt").is_file()
    assert train_mod.main(args[:4] + ["--val-split", "holdout:0.9"] + args[6:]) == 2


def test_flip_tta_averages_the_crop_and_its_mirror(tmp_path):
    import dataclasses

    torch.manual_seed(3)
    plain = EmotionAUNet(TINY).eval()
    tta = EmotionAUNet(dataclasses.replace(TINY, flip_tta=True)).eval()
    tta.load_state_dict(plain.state_dict())
    # set_flip_tta (what the tools call) gives the same network as the config flag
    assert EmotionAUNet(TINY).set_flip_tta().cfg == tta.cfg
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        p1, a1 = plain(x)
        p2, a2 = plain(torch.flip(x, dims=[3]))
        pt, at = tta(x)
        pm, am = tta(torch.flip(x, dims=[3]))
    np.testing.assert_allclose(pt.numpy(), (0.5 * (p1 + p2)).numpy(), atol=1e-6)
    np.testing.assert_allclose(at.numpy(), (0.5 * (a1 + a2)).numpy(), atol=1e-6)
    # a mirrored face gets the same answer, and the plain model really did differ between the two
    np.testing.assert_allclose(pm.numpy(), pt.numpy(), atol=1e-6)
    assert float((p1 - p2).abs().max()) > 1e-4
    # the setting travels with the checkpoint (old checkpoints without the key load as False)
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "t.pt", tta, default_meta()), map_location="cpu")
    assert loaded.cfg.flip_tta is True
    assert NetConfig.from_dict({k: v for k, v in TINY.to_dict().items() if k != "flip_tta"}).flip_tta is False


def test_amp_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert amp.pick_amp("off", cpu) is None
    assert amp.pick_amp("bf16", cpu) is torch.bfloat16
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: False)
    assert amp.pick_amp("auto", cpu) is None
    monkeypatch.setattr(amp, "cpu_has_bf16", lambda: True)
    assert amp.pick_amp("auto", cpu) is torch.bfloat16


def test_bench_training_writes_its_table(tmp_path, capsys):
    from driver_monitor.cli import main

    assert main(["bench", "--training", "tiny", "--amp", "off", "--steps", "1", "--train-batch", "4", "--threads",
                 "1", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "train_speed.json").read_text())["rows"]
    assert [(r["arch"], r["amp"]) for r in rows] == [("tiny", "off")] and rows[0]["median_s_per_step"] > 0
    assert "| tiny |" in (tmp_path / "train_speed.md").read_text()
    assert main(["bench", "--training", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown preset(s) ['huge']" in capsys.readouterr().err
