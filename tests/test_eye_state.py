"""The eye-state model: its patches, its file, its accuracy on CEW's test people, its training."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from driver_monitor.config import PROJECT_ROOT, load_config
from driver_monitor.engine.eye_state import EyeStateModel, open_eye_model
from tests.conftest import unpack_data
from tests.test_pipeline import real_face  # noqa: F401  (fixture: single_face.mp4's first frame)

MODEL = PROJECT_ROOT / "engines" / "eye_state.onnx"


def test_patches_are_level_centred_and_mirrored(real_face):  # noqa: F811
    from driver_monitor.face.eyes import eye_patches

    img, face = real_face
    p = eye_patches(img, face, 32)
    assert p.shape == (2, 32, 32) and p.dtype == np.uint8
    # the iris is the darkest part of an open eye: near the middle of each patch
    for patch in p:
        y, x = np.unravel_index(np.argmin(cv2.GaussianBlur(patch, (5, 5), 0)), patch.shape)
        assert 8 <= x <= 24 and 8 <= y <= 24
    # the left eye is mirrored: the same face flipped gives the two patches swapped
    flipped = img[:, ::-1].copy()
    lm = face.landmarks.copy()
    lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
    swap = np.arange(len(lm))
    from driver_monitor.face.eyes import LEFT_CONTOUR, RIGHT_CONTOUR
    for a, b in zip(RIGHT_CONTOUR, (263, 387, 385, 362, 380, 373)):
        swap[a], swap[b] = b, a
    from driver_monitor.types import Face

    mirrored = Face(bbox=face.bbox, landmarks=lm[swap])
    q = eye_patches(flipped, mirrored, 32)
    assert np.abs(q[0].astype(int) - p[1].astype(int)).mean() < 12
    assert set(LEFT_CONTOUR) == {362, 385, 387, 263, 373, 380}


def test_the_shipped_model_reads_a_frame(real_face):  # noqa: F811
    from driver_monitor.face.eyes import eye_patches

    img, face = real_face
    model = EyeStateModel(MODEL)
    assert model.size == 32 and model.scale == 1.5 and model.version == "1.1.0"
    p = model.p_closed(eye_patches(img, face, model.size, model.scale))
    assert p.shape == (2,) and (p < 0.5).all()  # single_face.mp4 opens with open eyes
    model.close()


def test_the_model_can_be_switched_off():
    cfg = load_config(None, ["eyes.model_enabled=false"])
    assert open_eye_model(cfg.eyes) is None


@pytest.fixture(scope="module")
def cew_test(tmp_path_factory):
    from driver_monitor.training.eye_state import load_cew

    cew = load_cew(unpack_data("eyes/cew_eye_patches.tar.gz", tmp_path_factory.mktemp("cew")), size=32)
    return cew.take(cew.split == "test")


def test_the_shipped_model_on_cews_test_people(cew_test):
    """CEW's subject-disjoint test split (934 patches): 96.1 % when the model was made
    (engines/MODEL_CARD.md); a model that reads much worse fails here."""
    from driver_monitor.training.eye_state import accuracy_report

    model = EyeStateModel(MODEL)
    r = accuracy_report(cew_test.labels, model.p_closed(cew_test.patches))
    assert r["n"] == 934 and r["accuracy"] >= 0.95 and r["acc_open"] >= 0.94 and r["acc_closed"] >= 0.93


def test_training_learns_open_from_closed_and_exports(cew_test, tmp_path: Path):
    torch = pytest.importorskip("torch")
    from driver_monitor.model.eye_net import export_onnx
    from driver_monitor.training.eye_state import TrainConfig, accuracy_report, predict, train

    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.where(cew_test.labels == k)[0], 150, replace=False) for k in (0, 1)])
    small = cew_test.take(np.isin(np.arange(len(cew_test)), idx))
    net, history = train(small, TrainConfig(epochs=8, batch=64), log=lambda s: None)
    assert history[-1]["loss"] < history[0]["loss"]
    assert accuracy_report(small.labels, predict(net, small.patches))["accuracy"] > 0.8
    export_onnx(net, str(tmp_path / "m.onnx"), {"dm.model_version": "t", "dm.patch_size": "32"})
    model = EyeStateModel(tmp_path / "m.onnx")
    with torch.no_grad():
        want = predict(net, small.patches[:8])
    assert np.allclose(model.p_closed(small.patches[:8]), want, atol=1e-4)


def test_an_ensemble_averages_members_trained_from_successive_seeds(cew_test, tmp_path: Path):
    """``train_ensemble``: member k is what ``train`` makes with seed + k; the model's logit is the
    members' mean, in torch and in the exported file alike."""
    torch = pytest.importorskip("torch")
    from dataclasses import replace

    from driver_monitor.model.eye_net import export_onnx
    from driver_monitor.training.eye_state import TrainConfig, predict, train, train_ensemble

    rng = np.random.default_rng(1)
    small = cew_test.take(np.isin(np.arange(len(cew_test)), rng.choice(len(cew_test), 128, replace=False)))
    cfg = TrainConfig(epochs=2, batch=64, seed=5, members=2)
    ens, history = train_ensemble(small, cfg, log=lambda s: None)
    assert len(ens.members) == 2 and [r["member"] for r in history] == [0, 0, 1, 1]
    alone, _ = train(small, replace(cfg, seed=6), log=lambda s: None)
    x = small.patches[:16]
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    with torch.no_grad():
        assert np.allclose(predict(ens.members[1], x), predict(alone, x), atol=1e-6)
        mean = 1 / (1 + np.exp(-(logit(predict(ens.members[0], x)) + logit(predict(ens.members[1], x))) / 2))
    assert np.allclose(predict(ens, x), mean, atol=1e-5)
    export_onnx(ens, str(tmp_path / "e.onnx"), {"dm.model_version": "t", "dm.patch_size": "32"})
    assert np.allclose(EyeStateModel(tmp_path / "e.onnx").p_closed(x), mean, atol=1e-4)


def test_the_shipped_int8_copy_is_current_and_reads_like_the_model(cew_test):
    """engines/eye_state.int8cpu.onnx is the copy the app runs (``eyes.precision: auto``): made from
    the shipped model as it is, and with its verdicts on CEW's test people (934 patches: 7 of 5,433
    CEW and video patches changed side when it was made)."""
    from driver_monitor.engine.eye_state import copy_problem, int8_path

    assert copy_problem(MODEL, int8_path(MODEL)) is None
    app = open_eye_model(load_config(None, []).eyes)
    assert app is not None and app.path == int8_path(MODEL) and app.precision == "int8" and app.version == "1.1.0"
    p32 = EyeStateModel(MODEL).p_closed(cew_test.patches)
    p8 = app.p_closed(cew_test.patches)
    assert np.mean((p8 >= 0.5) == (p32 >= 0.5)) >= 0.995 and np.abs(p8 - p32).max() < 0.2
    assert np.mean((p8 >= 0.5) == cew_test.labels) >= 0.95


def test_the_int8_copy_is_used_only_while_current(cew_test, tmp_path: Path):
    import shutil

    from driver_monitor.engine.eye_state import int8_path, make_int8, resolve_model
    from driver_monitor.errors import ModelError

    model = tmp_path / "eyes.onnx"
    shutil.copy(MODEL, model)
    assert resolve_model(model, "auto") == model  # no copy: the model itself
    with pytest.raises(ModelError, match="does not exist; make it with `python tools/train_eye_state.py quantize"):
        resolve_model(model, "int8")
    copy = make_int8(model, cew_test.patches[:64])
    assert copy == int8_path(model) == tmp_path / "eyes.int8cpu.onnx"
    assert resolve_model(model, "auto") == copy and resolve_model(model, "int8") == copy
    assert resolve_model(model, "fp32") == model
    int8 = EyeStateModel(copy)
    assert int8.precision == "int8" and int8.metadata["dm.source_file"] == "eyes.onnx"
    assert int8.metadata["dm.model_version"] == "1.1.0" and int8.metadata["dm.calibration"] == "64 eye patches"
    model.write_bytes(model.read_bytes() + b"\0")  # the model changed after the copy was made
    assert resolve_model(model, "auto") == model
    with pytest.raises(ModelError, match="stale"):
        resolve_model(model, "int8")
    with pytest.raises(ModelError, match="eyes.precision 'bf16' is unknown"):
        resolve_model(model, "bf16")
