"""Occlusion conditions (driver_monitor.training.occlusion) and the benchmark tool tools/occlusion_eval.py,
on synthetic faces (no dataset needed)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from driver_monitor.training import occlusion as occ
from driver_monitor.training.occlusion import CONDITIONS, occlude, occlude_all

S = 48


def synthetic_face(size: int = S, seed: int = 0, skin: float = 170.0) -> np.ndarray:
    """A grey face in FER framing: eyes at 40 %, nose at 55-60 %, mouth at 78 %, textured skin."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 60.0, np.float32)

    def at(x: float, y: float) -> tuple[int, int]:
        return int(x * size), int(y * size)

    def ax(a: float, b: float) -> tuple[int, int]:
        return max(1, int(a * size)), max(1, int(b * size))

    cv2.ellipse(img, at(0.5, 0.55), ax(0.40, 0.52), 0, 0, 360, skin, -1)
    for x in (0.30, 0.70):
        cv2.ellipse(img, at(x, 0.40), ax(0.08, 0.035), 0, 0, 360, 50, -1)
        cv2.line(img, at(x - 0.09, 0.31), at(x + 0.09, 0.31), 80, max(1, size // 24))
    cv2.ellipse(img, at(0.5, 0.60), ax(0.06, 0.025), 0, 0, 360, skin - 40, -1)
    cv2.ellipse(img, at(0.5, 0.78), ax(0.15, 0.04), 0, 0, 360, 70, -1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def region(img: np.ndarray, rows: tuple[float, float], cols: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    s = img.shape[0]
    return img[int(rows[0] * s):int(np.ceil(rows[1] * s)), int(cols[0] * s):int(np.ceil(cols[1] * s))]


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a != b


FACE = synthetic_face()


def test_the_benchmark_conditions_are_listed():
    assert set(CONDITIONS) >= {"clean", "sunglasses", "mask", "hand_mouth", "hand_cheek", "random_patches", "blur",
                               "low_light", "ir_contrast"}
    assert CONDITIONS[0] == "clean"
    assert set(occ.DEFAULT_PARAMS) == set(CONDITIONS)


@pytest.mark.parametrize("cond", CONDITIONS)
def test_same_input_gives_byte_identical_output(cond):
    a = occlude(FACE, cond, 7)
    for cached in (occ._sunglasses_layers, occ._mask_layers, occ._hand_layers):
        cached.cache_clear()  # the drawn shapes again, not the cached ones
    b = occlude(FACE.copy(), cond, 7)
    assert a.tobytes() == b.tobytes()
    batch = occlude_all(np.stack([FACE, FACE]), cond, start=6)
    assert batch[1].tobytes() == a.tobytes()


@pytest.mark.parametrize("cond", CONDITIONS)
@pytest.mark.parametrize("size", [48, 64])
def test_shape_and_dtype_kept_and_input_untouched(cond, size):
    face = synthetic_face(size)
    before = face.copy()
    out = occlude(face, cond, 3)
    assert out.shape == (size, size) and out.dtype == np.uint8
    assert np.array_equal(face, before)
    assert out is not face
    if cond != "clean":
        assert changed(out, face).mean() > 0.02, f"{cond} left the crop (almost) unchanged"


def test_clean_is_the_crop():
    assert np.array_equal(occlude(FACE, "clean", 0), FACE)


def test_seeded_parts_follow_the_index():
    for cond in ("random_patches", "low_light", "ir_contrast"):
        assert not np.array_equal(occlude(FACE, cond, 1), occlude(FACE, cond, 2)), cond
        assert np.array_equal(occlude(FACE, cond, 1), occlude(FACE, cond, 1)), cond
    for cond in ("sunglasses", "mask", "hand_mouth", "hand_cheek", "blur"):  # no randomness
        assert np.array_equal(occlude(FACE, cond, 1), occlude(FACE, cond, 2)), cond


def test_sunglasses_darken_the_eyes_and_leave_the_mouth():
    out = occlude(FACE, "sunglasses", 0)
    eyes = (0.33, 0.46), (0.20, 0.40)
    assert region(out, *eyes).mean() < 45 and region(FACE, *eyes).mean() > 90
    right_eye = region(out, (0.33, 0.46), (0.60, 0.80))
    assert right_eye.mean() < 45
    assert np.array_equal(region(out, (0.55, 1.0)), region(FACE, (0.55, 1.0)))  # nose, mouth, chin
    assert np.array_equal(region(out, (0.0, 0.25)), region(FACE, (0.0, 0.25)))  # forehead
    lens = region(out, (0.33, 0.46), (0.20, 0.40))
    assert lens.max() > lens.min() + 20  # highlight streaks on the lens


def test_mask_covers_the_lower_face_and_leaves_the_eyes():
    out = occlude(FACE, "mask", 0)
    lower = (0.66, 0.95), (0.25, 0.75)
    assert changed(region(out, *lower), region(FACE, *lower)).mean() > 0.95
    assert region(out, *lower).mean() > 170  # light fabric over the dark mouth
    mouth = (0.76, 0.80), (0.40, 0.60)
    assert region(FACE, *mouth).mean() < 110 < 180 < region(out, *mouth).mean()
    assert np.array_equal(region(out, (0.0, 0.46)), region(FACE, (0.0, 0.46)))  # eyes, brows, forehead


def test_hand_over_the_mouth_covers_it_and_leaves_the_eyes():
    out = occlude(FACE, "hand_mouth", 0)
    mouth = (0.72, 0.84), (0.32, 0.68)
    assert changed(region(out, *mouth), region(FACE, *mouth)).mean() > 0.95
    assert region(out, *mouth).mean() > 120  # skin over the dark mouth
    assert np.array_equal(region(out, (0.0, 0.55)), region(FACE, (0.0, 0.55)))
    assert np.array_equal(region(out, (0.0, 1.0), (0.0, 0.18)), region(FACE, (0.0, 1.0), (0.0, 0.18)))


def test_hand_on_the_cheek_covers_the_lower_left_only():
    out = occlude(FACE, "hand_cheek", 0)
    cheek = (0.62, 0.85), (0.12, 0.28)
    assert changed(region(out, *cheek), region(FACE, *cheek)).mean() > 0.9
    assert np.array_equal(region(out, (0.0, 1.0), (0.52, 1.0)), region(FACE, (0.0, 1.0), (0.52, 1.0)))
    assert np.array_equal(region(out, (0.0, 0.45)), region(FACE, (0.0, 0.45)))


def test_the_hand_takes_the_face_s_tone():
    dark, bright = synthetic_face(skin=90.0), synthetic_face(skin=200.0)
    mouth = (0.72, 0.84), (0.40, 0.60)
    on_bright = region(occlude(bright, "hand_mouth", 0), *mouth).mean()
    assert on_bright > region(occlude(dark, "hand_mouth", 0), *mouth).mean() + 60


def test_random_patches_are_a_few_flat_rectangles():
    flat = np.full((S, S), 30, np.uint8)  # every patch is grey 96-160, so each shows on this
    for i in range(20):
        out = occlude(flat, "random_patches", i)
        hit = out != flat
        share = hit.mean()
        p = occ.DEFAULT_PARAMS["random_patches"]
        assert p.size[0] ** 2 * 0.8 <= share <= p.count * p.size[1] ** 2 * 1.1
        assert set(np.unique(out[hit])) <= set(range(96, 161))
        n_regions = cv2.connectedComponents(hit.astype(np.uint8))[0] - 1
        assert 1 <= n_regions <= p.count


def test_blur_smooths_and_keeps_the_brightness():
    out = occlude(FACE, "blur", 0)
    lap = lambda x: cv2.Laplacian(x.astype(np.float32), cv2.CV_32F).var()  # noqa: E731
    assert lap(out) < 0.2 * lap(FACE)
    assert abs(float(out.mean()) - float(FACE.mean())) < 2


def test_low_light_is_dark_and_noisy():
    out = occlude(FACE, "low_light", 0)
    assert out.mean() < 0.5 * FACE.mean()
    flat = np.full((S, S), 128, np.uint8)
    dark = occlude(flat, "low_light", 0).astype(np.float32)
    assert 2.0 < dark.std() < 10.0  # sensor noise on a flat grey
    assert 30 < dark.mean() < 50


def test_ir_flattens_contrast_and_blows_highlights():
    out = occlude(FACE, "ir_contrast", 0)
    assert out.std() < FACE.std()
    centre = (0.3, 0.8), (0.3, 0.7)
    assert (region(out, *centre) >= 250).mean() > 0.05 > (region(FACE, *centre) >= 250).mean()  # hot spot
    eyes_vs_skin = lambda x: region(x, (0.5, 0.6), (0.3, 0.7)).mean() - region(x, (0.38, 0.42), (0.25, 0.35)).mean()  # noqa: E731
    assert eyes_vs_skin(out) < eyes_vs_skin(FACE)


def test_parameters_move_the_shapes():
    low = occlude(FACE, "sunglasses", 0, params=occ.Sunglasses(eye_y=0.62, temples=False))
    assert region(low, (0.58, 0.66), (0.2, 0.4)).mean() < 45
    assert np.array_equal(region(low, (0.0, 0.45)), region(FACE, (0.0, 0.45)))
    stronger = occlude(FACE, "blur", 0, params=occ.Blur(sigma=3.0))
    assert stronger.std() < occlude(FACE, "blur", 0).std()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown occlusion condition"):
        occlude(FACE, "fog", 0)
    with pytest.raises(ValueError, match="uint8"):
        occlude(FACE.astype(np.float32), "mask", 0)
    with pytest.raises(ValueError, match="uint8"):
        occlude(np.stack([FACE, FACE]), "mask", 0)


# ----------------------------------------------------------------------------------------------
# The tool, end to end, on a fake FERPlus test split and a fake CK+ folder
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tool():
    from tools import occlusion_eval

    return occlusion_eval


def fake_ferplus(root: Path, crops: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """FER2013Test with these crops and labels; every third face is ambiguous (4 / 4 / 2 votes), which the
    plurality protocol keeps and the authors' majority protocol drops. -> the authors' protocol mask."""
    split = root / "FER2013Test"
    split.mkdir(parents=True)
    n = len(crops)
    ambiguous = np.arange(n) % 3 == 2
    rows = ["Image name,Usage,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"]
    for i, (c, lab) in enumerate(zip(crops, labels)):
        cv2.imwrite(str(split / f"t{i:04d}.png"), c)
        votes = [0] * 10
        votes[lab] = 4 if ambiguous[i] else 8
        votes[(lab + 3) % 8] = 4 if ambiguous[i] else 2
        votes[8] = 2 if ambiguous[i] else 0
        if ambiguous[i] and (lab + 3) % 8 < lab:  # the label must be the first of the tied classes
            votes[lab], votes[(lab + 3) % 8] = 4, 3
        rows.append(f't{i:04d}.png,"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (split / "label.csv").write_text("\n".join(rows) + "\n")
    return ~ambiguous


def fake_ckplus(root: Path, n: int) -> tuple[np.ndarray, np.ndarray]:
    from driver_monitor.training.datasets import CKPLUS_CLASSES

    aus = ["AU1", "AU2", "AU4", "AU5", "AU6", "AU9", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26"]
    rng = np.random.default_rng(5)
    crops = np.stack([synthetic_face(seed=100 + i, skin=140 + 2 * i) for i in range(n)])
    labels = np.arange(n) % 7
    rows = ["video,folder_emotion,file,emotion," + ",".join(aus)]
    for i, (c, lab) in enumerate(zip(crops, labels)):
        name = CKPLUS_CLASSES[lab]
        (root / name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name / f"S{i:03d}_001_00000010.png"), c)
        present = (np.arange(len(aus)) + i) % 3 == 0
        present[rng.integers(len(aus))] = True
        rows.append(f"S{i:03d}_001,{name},S{i:03d}_001_00000010.png,{name}," + ",".join(str(int(p)) for p in present))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return crops, labels


def export_probe(path: Path) -> Path:
    """An ONNX model with the product's contract whose outputs follow where the crop is bright: emotion i
    is the brightest of 2 x 4 blocks, AUs a fixed mix of 4 x 4 block means. Any change of the occluded
    crops (a patch moved) changes its answers, unlike a random network's."""
    import warnings

    import onnx
    import torch

    from driver_monitor.preprocess import AUS, EMOTIONS

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = torch.nn.Linear(16, len(AUS))
            with torch.no_grad():
                self.mix.weight.copy_(torch.linspace(-3, 3, 16 * len(AUS)).reshape(len(AUS), 16).cos() * 4)
                self.mix.bias.zero_()

        def forward(self, x):
            blocks = torch.nn.functional.adaptive_avg_pool2d(x, (2, 4)).flatten(1)
            fine = torch.nn.functional.adaptive_avg_pool2d(x, (4, 4)).flatten(1)
            return torch.softmax(40 * blocks, dim=-1), torch.sigmoid(self.mix(fine))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Probe().eval(), (torch.zeros(1, 1, S, S),), str(path), dynamo=False, opset_version=17,
                          input_names=["face"], output_names=["emotion_probs", "au_intensity"],
                          dynamic_axes={"face": {0: "N"}, "emotion_probs": {0: "N"}, "au_intensity": {0: "N"}})
    model = onnx.load(str(path))
    for k, v in {"dm.emotion_names": json.dumps(list(EMOTIONS)), "dm.au_names": json.dumps(list(AUS)),
                 "dm.input_size": str(S), "dm.input_mean": "0.5", "dm.input_std": "0.5",
                 "dm.model_version": "probe", "dm.training_data": "none (test model)", "dm.metrics": "{}",
                 "dm.torch_checkpoint": path.with_suffix(".pt").name}.items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.save(model, str(path))
    return path


def onnx_run(model: Path, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(emotion probabilities, AU intensities) of an ONNX file, straight through ONNX Runtime."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    x = ((crops.astype(np.float32) / 255.0 - 0.5) / 0.5)[:, None]
    return tuple(sess.run(["emotion_probs", "au_intensity"], {"face": x}))


def onnx_top1(model: Path, crops: np.ndarray, class_cols: list[int] | None = None) -> np.ndarray:
    probs = onnx_run(model, crops)[0]
    return probs.argmax(1) if class_cols is None else probs[:, class_cols].argmax(1)


def test_the_tool_end_to_end_on_fake_data(tmp_path, tool, capsys):
    from driver_monitor.preprocess import EMOTIONS
    from driver_monitor.training.datasets import CKPLUS_CLASSES

    from .test_engine_model import export_tiny

    models = [export_probe(tmp_path / "a.onnx"), export_tiny(tmp_path / "b.onnx", seed=1)]
    crops = np.stack([synthetic_face(seed=i, skin=120 + 3 * i) for i in range(24)])
    # labels: what the probe answers on the patched crops, the crop's index being its row: the tool must
    # score the probe 100 % under random_patches, and would not with the patches anywhere else
    labels = onnx_top1(models[0], occlude_all(crops, "random_patches"))
    assert not np.array_equal(labels, onnx_top1(models[0], occlude_all(crops, "random_patches", start=1)))
    authors = fake_ferplus(tmp_path / "ferplus", crops, labels)
    ck_crops, ck_labels = fake_ckplus(tmp_path / "ckplus", 14)
    z = np.random.default_rng(1)
    np.savez(tmp_path / "ckplus_aus.npz", files=np.asarray([f"{CKPLUS_CLASSES[lab]}/S{i:03d}_001_00000010.png"
                                                            for i, lab in enumerate(ck_labels)]),
             found=np.ones(14, bool), blendshapes=z.random((14, 52)).astype(np.float32),
             landmarks=z.random((14, 478, 3)).astype(np.float16))
    out = tmp_path / "out"
    rc = tool.main(["--onnx", str(models[0]), "--onnx", str(models[1]), "--ferplus", str(tmp_path / "ferplus"),
                    "--ckplus", str(tmp_path / "ckplus"), "--ckplus-aus", str(tmp_path / "ckplus_aus.npz"),
                    "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    res = json.loads((out / "occlusion.json").read_text())
    assert res["conditions"] == list(CONDITIONS)
    assert res["ferplus_n"] == {"ferplus_test": 24, "ferplus_test_authors_majority": int(authors.sum())}
    assert 0 < authors.sum() < 24
    assert [m["model"] for m in res["models"]] == [str(p) for p in models]
    probe = res["models"][0]["conditions"]
    assert probe["random_patches"]["ferplus_test"]["accuracy"] == 1.0
    assert probe["random_patches"]["ferplus_test_authors_majority"]["accuracy"] == 1.0
    assert probe["clean"]["ferplus_test"]["accuracy"] < 1.0
    ck_cols = [EMOTIONS.index(c) for c in CKPLUS_CLASSES]
    for m, path in zip(res["models"], models):
        ck_clean_aus = onnx_run(path, ck_crops)[1]
        for cond in CONDITIONS:
            r = m["conditions"][cond]
            top1 = onnx_top1(path, occlude_all(crops, cond))  # index = row of the plurality set (all 24 here)
            assert r["ferplus_test"]["accuracy"] == pytest.approx(np.mean(top1 == labels))
            assert r["ferplus_test_authors_majority"]["accuracy"] == pytest.approx(
                np.mean(top1[authors] == labels[authors]))
            assert r["ferplus_test_authors_majority"]["n"] == authors.sum()
            ck_probs, ck_aus = onnx_run(path, occlude_all(ck_crops, cond))
            assert r["ckplus"]["accuracy"] == pytest.approx(np.mean(ck_probs[:, ck_cols].argmax(1) == ck_labels))
            assert r["ckplus"]["aus"]["mean_abs_diff_vs_clean"] == pytest.approx(
                float(np.abs(ck_aus - ck_clean_aus).mean()), rel=1e-5, abs=1e-7)
            clean = m["conditions"]["clean"]["ferplus_test"]["accuracy"]
            assert r["ferplus_test"]["delta_vs_clean_points"] == pytest.approx(
                100 * (r["ferplus_test"]["accuracy"] - clean), abs=0.006)
            assert 0 <= r["ckplus"]["aus"]["macro_roc_auc_disfa12"] <= 1
            assert "mean_abs_diff_vs_clean_readout" in r["ckplus"]["aus"]
    md = (out / "occlusion.md").read_text()
    for cond in CONDITIONS:
        assert f"| `a.onnx` | {cond} |" in md and f"| `b.onnx` | {cond} |" in md
    assert "| `a.onnx` | random_patches | 100.00 (" in md
    assert "python tools/occlusion_eval.py --onnx" in md
    png = cv2.imread(str(out / "occlusion_examples.png"), cv2.IMREAD_GRAYSCALE)
    assert png is not None and png.shape[1] == 96 * len(CONDITIONS)


def test_the_tool_says_what_is_missing(tool, capsys):
    assert tool.main(["--ferplus", "x"]) != 0
    assert "no model" in capsys.readouterr().err


def test_the_tool_reads_a_region_models_visibility(tmp_path, tool):
    """A region model's visibility per condition and the AUs it would grey out, checked against the
    model run directly (ONNX file and checkpoint alike)."""
    import torch

    from driver_monitor.model.regions import AU_REGIONS
    from driver_monitor.monitor.hidden import hidden_aus
    from driver_monitor.preprocess import AUS, to_input

    from .test_engine_model import export_tiny_regions

    path, net = export_tiny_regions(tmp_path / "ra.onnx", seed=9)
    crops = np.stack([synthetic_face(seed=i, skin=120 + 3 * i) for i in range(12)])
    fake_ferplus(tmp_path / "ferplus", crops, np.arange(12) % 8)
    ck_crops, _ = fake_ckplus(tmp_path / "ckplus", 7)
    out = tmp_path / "out"
    assert tool.main(["--onnx", str(path), "--checkpoint", str(path.with_suffix(".pt")), "--ferplus",
                      str(tmp_path / "ferplus"), "--ckplus", str(tmp_path / "ckplus"), "--min-visibility", "0.4",
                      "--conditions", "clean", "mask", "--out", str(out)]) == 0
    res = json.loads((out / "occlusion.json").read_text())
    names = list(net.region_names)
    for m in res["models"]:
        for cond in ("clean", "mask"):
            with torch.no_grad():
                vis = net.forward_regions(torch.from_numpy(to_input(occlude_all(crops, cond))))[3].numpy()
                ck_vis = net.forward_regions(torch.from_numpy(to_input(occlude_all(ck_crops, cond))))[3].numpy()
            r = m["conditions"][cond]
            for i, name in enumerate(names):
                assert r["regions"][name]["mean_visibility"] == pytest.approx(vis[:, i].mean(), abs=1e-4)
                assert r["regions"][name]["hidden_share"] == pytest.approx((vis[:, i] < 0.4).mean(), abs=0.09)
            hidden = [set(hidden_aus(AUS, AU_REGIONS, dict(zip(names, v)), 0.4)) for v in ck_vis]
            assert r["ckplus"]["hidden_aus"]["all_aus"] == pytest.approx(np.mean([len(h) / 13 for h in hidden]),
                                                                         abs=0.02)
    md = (out / "occlusion.md").read_text()
    assert "What `ra.onnx` says it sees" in md and "What `ra.pt` says it sees" in md
    assert "| mask | " in md.split("What `ra.onnx` says it sees")[1]
