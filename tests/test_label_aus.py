"""AU pseudo-labels: the blendshape/mesh -> AU mapping (synthetic, exact) and the MediaPipe
labeller on the real CK+ subset (AU presence ranked correctly) when ../shared/data is present."""
from __future__ import annotations


import numpy as np
import pytest

from driver_monitor.errors import ModelError
from driver_monitor.training.face_au import BLENDSHAPES, aus_from_mediapipe, face_geometry
from driver_monitor.model.metrics import roc_auc
from driver_monitor.preprocess import AUS
from tests.conftest import need_data, unpack_data
from tools import label_aus as mod



def _mesh(lip_gap=0.05, corner_drop=0.0, brow=0.3, lid=0.3, scale=1.0, angle_deg=0.0):
    """A (478, 3) mesh with just the points the cues read; eye centres 1.0 apart before scaling."""
    p = np.zeros((478, 3), np.float32)
    pts = {
        33: (-0.7, 0), 133: (-0.3, 0), 362: (0.3, 0), 263: (0.7, 0),          # eye corners
        159: (-0.5, -lid * 0.2), 145: (-0.5, lid * 0.2),                       # right lids
        386: (0.5, -lid * 0.2), 374: (0.5, lid * 0.2),                          # left lids
        55: (-0.3, -brow), 285: (0.3, -brow),                                   # inner brows
        13: (0, 1.0 - lip_gap / 2), 14: (0, 1.0 + lip_gap / 2),                 # inner lips
        61: (-0.4, 1.0 + corner_drop), 291: (0.4, 1.0 + corner_drop),           # mouth corners
    }
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    for i, xy in pts.items():
        p[i, :2] = rot @ np.asarray(xy) * scale + 0.5
    return p


@pytest.mark.parametrize("scale, angle", [(1.0, 0.0), (0.2, 0.0), (0.3, 25.0), (3.0, -40.0)])
def test_geometry_is_scale_and_roll_free(scale, angle):
    ref = face_geometry(_mesh(lip_gap=0.1, corner_drop=0.05)[None])
    got = face_geometry(_mesh(lip_gap=0.1, corner_drop=0.05, scale=scale, angle_deg=angle)[None])
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], atol=1e-4, err_msg=k)
    assert ref["lip_gap"][0] == pytest.approx(0.1, abs=1e-5)
    assert ref["corner_drop"][0] == pytest.approx(0.05, abs=1e-5)


@pytest.mark.parametrize(
    "kwargs, au, direction",
    [
        ({"lip_gap": 0.15}, "AU25", +1),          # lips apart
        ({"corner_drop": 0.1}, "AU15", +1),       # corners pulled down
        ({"brow": 0.12, "lid": 0.05}, "AU9", +1),  # brows down, eyes narrowed
    ],
)
def test_geometric_aus_respond(kwargs, au, direction):
    bs = np.zeros((2, 52), np.float32)
    lms = np.stack([_mesh(lip_gap=0.0, corner_drop=-0.02), _mesh(**kwargs)])
    aus = aus_from_mediapipe(bs, lms, np.array([True, True]))
    j = AUS.index(au)
    assert direction * (aus[1, j] - aus[0, j]) > 0.5


def test_mapping_shape_range_and_missing_faces():
    rng = np.random.default_rng(0)
    bs = rng.uniform(0, 1, (5, 52)).astype(np.float32)
    lms = np.stack([_mesh(lip_gap=g) for g in (0, 0.05, 0.1, 0.2, 0.3)])
    found = np.array([True, True, False, True, True])
    aus = aus_from_mediapipe(bs, lms, found)
    assert aus.shape == (5, len(AUS)) and aus.dtype == np.float32
    assert np.isnan(aus[2]).all() and not np.isnan(aus[found]).any()
    assert aus[found].min() >= 0 and aus[found].max() <= 1


def test_blendshape_units_follow_their_blendshapes():
    bs = np.zeros((2, 52), np.float32)
    for name in ("mouthSmileLeft", "mouthSmileRight", "eyeBlinkLeft", "eyeBlinkRight", "jawOpen"):
        bs[1, BLENDSHAPES.index(name)] = 0.8
    aus = aus_from_mediapipe(bs, np.stack([_mesh(), _mesh()]), np.ones(2, bool))
    for au in ("AU12", "AU45", "AU26", "AU6"):
        assert aus[1, AUS.index(au)] > aus[0, AUS.index(au)], au


def test_missing_landmarker_file_says_where_to_get_it(tmp_path):
    from driver_monitor.training.face_au import BlendshapeExtractor

    with pytest.raises(ModelError, match="storage.googleapis.com"):
        BlendshapeExtractor(tmp_path / "face_landmarker.task")


@pytest.fixture(scope="module")
def ckplus_dir(tmp_path_factory):
    return unpack_data("ckplus48_dev.tar.gz", tmp_path_factory.mktemp("ck")) / "ckplus48_dev"


@pytest.mark.data
def test_label_tool_writes_cache(tmp_path, ckplus_dir):
    model = need_data("models/face_landmarker.task")
    out = tmp_path / "ck.npz"
    assert mod.main(["--model", str(model), "--dataset", "ckplus", "--root", str(ckplus_dir),
                     "--out", str(out), "--limit", "4"]) == 0
    z = np.load(out)
    assert z["blendshapes"].shape == (4, 52) and z["landmarks"].shape == (4, 478, 3)
    assert z["aus"].shape == (4, len(AUS)) and list(z["au_names"]) == list(AUS)
    assert mod.main(["--out", str(out), "--remap"]) == 0
    assert mod.main(["--model", str(tmp_path / "missing.task"), "--dataset", "ckplus",
                     "--root", str(ckplus_dir), "--out", str(out)]) == ModelError.exit_code


@pytest.mark.data
@pytest.mark.slow
def test_pseudo_labels_rank_ckplus_au_presence(ckplus_dir):
    """On every third CK+ peak frame, the mapped AUs rank FACS presence the right way round,
    including AU9 and AU25, which a naive blendshape lookup ranks backwards / poorly."""
    from driver_monitor.training.datasets import load_ckplus
    from driver_monitor.training.face_au import BlendshapeExtractor

    ds = load_ckplus(ckplus_dir).subset(np.arange(0, 327, 3))
    with BlendshapeExtractor(need_data("models/face_landmarker.task")) as ex:
        reads = [ex.read(img) for img in ds.images]
    found = np.array([r.found for r in reads])
    assert found.mean() > 0.95
    aus = aus_from_mediapipe(np.stack([r.blendshapes for r in reads]), np.stack([r.landmarks for r in reads]), found)
    aucs = {au: roc_auc(ds.aus[found, ds.au_names.index(au)], aus[found, AUS.index(au)])
            for au in ("AU1", "AU2", "AU5", "AU6", "AU9", "AU12", "AU25")}
    assert min(aucs.values()) > 0.8, aucs
