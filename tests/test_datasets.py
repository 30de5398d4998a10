"""Dataset loaders on tiny fixtures built here, plus the real CK+ subset when ../shared/data is present."""
from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from driver_monitor.training.datasets import (
    CKPLUS_CLASSES, FER2013_CLASSES, FERPLUS_PROTOCOLS, FaceDataset, canonical_class, ferplus_protocol,
    ferplus_targets, load_ckplus, load_class_folders, load_dataset, load_fer2013, load_ferplus,
)
from driver_monitor.errors import DatasetError
from driver_monitor.preprocess import EMOTIONS
from tests.conftest import need_data


def _img(path: Path, value: int, size: int = 48) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size, size), value, np.uint8)
    img[size // 4: size // 2, size // 4: size // 2] = 255 - value
    assert cv2.imwrite(str(path), img)


def _ferplus(root: Path, rows: list[tuple[str, list[int]]], split: str = "FER2013Train",
             write_images: bool = True) -> Path:
    d = root / split
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "label.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        for i, (name, votes) in enumerate(rows):
            w.writerow([name, "(0, 0, 48, 48)", *votes])
            if write_images:
                _img(d / name, 10 * i)
    return root


# ------------------------------------------------------------------------------------ FERPlus

@pytest.mark.parametrize(
    "votes, keep, label, soft_top",
    [
        ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], True, 0, 1.0),          # unanimous neutral
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], True, 0, 4 / 9),         # single stray vote removed
        ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], False, 0, None),         # not a face
        ([3, 0, 0, 0, 0, 0, 0, 0, 5, 2], False, 0, None),         # unknown wins
        ([0, 5, 5, 0, 0, 0, 0, 0, 0, 0], True, 1, 0.5),           # tie -> first in FERPlus order
        ([0, 0, 0, 0, 0, 0, 0, 1, 0, 0], True, 7, 1.0),           # only one vote: kept, raw votes used
    ],
)
def test_ferplus_targets(votes, keep, label, soft_top):
    k, lab, soft = ferplus_targets(np.array([votes], np.float32))
    assert bool(k[0]) is keep
    if keep:
        assert lab[0] == label
        assert soft[0].sum() == pytest.approx(1.0)
        assert soft[0].max() == pytest.approx(soft_top)


def test_load_ferplus_drops_unknown_and_keeps_votes(tmp_path):
    root = _ferplus(tmp_path, [
        ("a.png", [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]),
        ("b.png", [0, 0, 0, 0, 0, 0, 0, 0, 1, 9]),
        ("c.png", [2, 0, 0, 0, 0, 0, 6, 0, 2, 0]),
    ])
    ds = load_ferplus(root, "train")
    assert ds.files == ("a.png", "c.png")
    assert ds.images.shape == (2, 48, 48) and ds.images.dtype == np.uint8
    assert list(ds.labels) == [EMOTIONS.index("happiness"), EMOTIONS.index("fear")]
    np.testing.assert_allclose(ds.soft.sum(1), 1.0, atol=1e-6)
    assert ds.class_names == EMOTIONS


def test_ferplus_split_folder_given_directly(tmp_path):
    root = _ferplus(tmp_path, [("a.png", [5, 0, 0, 0, 0, 0, 0, 0, 0, 0])], split="FER2013Test")
    assert len(load_ferplus(root / "FER2013Test")) == 1
    assert len(load_ferplus(root, "test")) == 1


@pytest.mark.parametrize(
    "make, split, message",
    [
        (lambda r: r.mkdir(), "train", "FER2013Train is missing"),
        (lambda r: (r / "FER2013Train").mkdir(parents=True), "train", "label.csv is missing"),
        (lambda r: _ferplus(r, [("a.png", [5] + [0] * 9)], write_images=False), "train", "partial"),
        (lambda r: _ferplus(r, [("a.png", [5] + [0] * 9)]), "holdout", "not one of"),
        (lambda r: None, "train", "does not exist"),
    ],
)
def test_ferplus_wrong_folders_say_what_was_expected(tmp_path, make, split, message):
    root = tmp_path / "ferplus"
    make(root)
    with pytest.raises(DatasetError, match=message):
        load_ferplus(root, split)


def test_ferplus_bad_row_is_reported(tmp_path):
    d = tmp_path / "FER2013Train"
    d.mkdir()
    (d / "label.csv").write_text('a.png,"(0, 0, 48, 48)",1,2,3\n')
    with pytest.raises(DatasetError, match="expected 12"):
        load_ferplus(tmp_path, "train")


@pytest.mark.parametrize(
    "votes, plurality, authors",
    [   # votes: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
        # expected: label kept under each protocol, or None when the image is left out
        ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0, 0),          # unanimous
        ([0, 0, 7, 0, 0, 0, 3, 0, 0, 0], 2, 2),           # clear majority
        ([5, 1, 1, 1, 1, 1, 0, 0, 0, 0], 0, 0),           # 5/10 raw, but 5/5 once single votes are dropped
        ([5, 0, 0, 0, 4, 0, 0, 0, 1, 0], 0, 0),           # a single "unknown" vote is dropped too: 5/9
        ([4, 0, 0, 1, 3, 2, 0, 0, 0, 0], 0, None),        # 4/9 after dropping: ambiguous
        ([5, 3, 2, 0, 0, 0, 0, 0, 0, 0], 0, None),        # exactly 50 %: not more than half
        ([6, 4, 0, 0, 0, 0, 0, 0, 0, 0], 0, 0),           # 60 %
        ([0, 5, 5, 0, 0, 0, 0, 0, 0, 0], 1, None),        # tie: first in FERPlus order / left out
        ([5, 0, 0, 0, 0, 0, 0, 0, 3, 2], 0, None),        # unknown / NF votes count in the total
        ([6, 0, 0, 0, 0, 0, 0, 0, 4, 0], 0, 0),           # 6/10 with 4 unknown votes
        ([3, 0, 0, 0, 0, 0, 0, 0, 5, 2], None, None),     # unknown on top
        ([2, 0, 0, 0, 0, 0, 0, 0, 0, 8], None, None),     # not a face on top
        ([0, 0, 0, 0, 0, 0, 0, 0, 2, 8], None, None),     # no emotion vote
        ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], None, None),     # only single votes
        ([0, 0, 0, 0, 0, 0, 0, 1, 0, 0], 7, None),        # one vote in all: kept only by plurality
    ],
)
def test_ferplus_protocol(votes, plurality, authors):
    for protocol, want in (("plurality", plurality), ("authors_majority", authors)):
        keep, label = ferplus_protocol([votes], protocol)
        assert bool(keep[0]) is (want is not None), protocol
        if want is not None:
            assert label[0] == want, protocol


def test_ferplus_protocol_authors_subset_of_plurality():
    rng = np.random.default_rng(0)
    votes = np.zeros((2000, 10), np.float32)  # 10 annotators per image, skewed towards a few classes
    for row in votes:
        np.add.at(row, rng.choice(10, size=10, p=rng.dirichlet(np.full(10, 0.3))), 1)
    k_p, l_p = ferplus_protocol(votes, "plurality")
    k_a, l_a = ferplus_protocol(votes, "authors_majority")
    assert 0 < k_a.sum() < k_p.sum()
    assert not (k_a & ~k_p).any()
    np.testing.assert_array_equal(l_a[k_a], l_p[k_a])
    # plurality is what ferplus_targets (training) keeps and labels
    k_t, l_t, _ = ferplus_targets(votes)
    np.testing.assert_array_equal(k_t, k_p)
    np.testing.assert_array_equal(l_t, l_p)


@pytest.mark.parametrize("votes, protocol, message", [
    ([[1] * 10], "majority", "not one of"),
    ([[1] * 8], "authors_majority", r"\(N, 10\)"),
])
def test_ferplus_protocol_errors(votes, protocol, message):
    with pytest.raises(DatasetError, match=message):
        ferplus_protocol(votes, protocol)
    assert set(FERPLUS_PROTOCOLS) == {"plurality", "authors_majority"}


def test_load_ferplus_authors_majority(tmp_path):
    root = _ferplus(tmp_path, [
        ("a.png", [0, 9, 1, 0, 0, 0, 0, 0, 0, 0]),
        ("b.png", [4, 0, 0, 1, 3, 2, 0, 0, 0, 0]),   # ambiguous: plurality only
        ("c.png", [2, 0, 0, 0, 0, 0, 6, 0, 2, 0]),
        ("d.png", [0, 0, 0, 0, 0, 0, 0, 0, 1, 9]),   # not a face: neither
    ], split="FER2013Test")
    assert load_ferplus(root, "test").files == ("a.png", "b.png", "c.png")
    ds = load_ferplus(root, "test", protocol="authors_majority")
    assert ds.files == ("a.png", "c.png")
    assert list(ds.labels) == [EMOTIONS.index("happiness"), EMOTIONS.index("fear")]
    with pytest.raises(DatasetError, match="protocol"):
        load_ferplus(root, "test", protocol="vote")


@pytest.mark.data
def test_real_ferplus_test_protocol_counts(tmp_path):
    tar = need_data("ferplus.tar.gz")
    with tarfile.open(tar) as tf:
        members = [m for m in tf if m.name.startswith("ferplus/FER2013Test/")]
        tf.extractall(tmp_path, members=members, filter="data")
    root = tmp_path / "ferplus"
    assert len(load_ferplus(root, "test", protocol="authors_majority")) == 3137
    assert len(load_ferplus(root, "test")) == 3522


# ------------------------------------------------------------------------------------ FER2013

def test_fer2013_kaggle_folders(tmp_path):
    for cls, n in (("angry", 2), ("happy", 3), ("neutral", 1)):
        for i in range(n):
            _img(tmp_path / "test" / cls / f"PrivateTest_{i}.jpg", 20 * i)
    ds = load_fer2013(tmp_path, "test")
    assert ds.class_names == FER2013_CLASSES
    assert len(ds) == 6
    assert ds.class_counts() == {"anger": 2, "disgust": 0, "fear": 0, "happiness": 3, "sadness": 0,
                                 "surprise": 0, "neutral": 1}


def test_fer2013_csv_usage_splits(tmp_path):
    px = " ".join(["128"] * 2304)
    rows = [("3", "Training"), ("0", "PublicTest"), ("6", "PrivateTest"), ("5", "Training")]
    path = tmp_path / "fer2013.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        for e, u in rows:
            w.writerow([e, px, u])
    assert [FER2013_CLASSES[i] for i in load_fer2013(path, "train").labels] == ["happiness", "surprise"]
    assert len(load_fer2013(tmp_path, "test")) == 2
    assert load_fer2013(path, "private_test").images.shape == (1, 48, 48)


def test_fer2013_csv_wrong_columns(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("label,image\n1,2\n")
    with pytest.raises(DatasetError, match="emotion,pixels,Usage"):
        load_fer2013(path, "train")


# ------------------------------------------------------------------------------ class folders

@pytest.mark.parametrize(
    "folders, classes",
    [
        (["happy", "sad", "Surprised"], ("happiness", "surprise", "sadness")),
        ([str(i) for i in range(1, 8)], ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")),
    ],
)
def test_class_folders_names_are_normalised(tmp_path, folders, classes):
    for f in folders:
        _img(tmp_path / f / "x.png", 50, size=100)  # resized to 48
    ds = load_class_folders(tmp_path)
    assert ds.class_names == classes
    assert ds.images.shape == (len(folders), 48, 48)


@pytest.mark.parametrize(
    "layout, message",
    [
        (["cats"], "not an emotion class"),
        ([], "no class sub-folders"),
    ],
)
def test_class_folders_errors(tmp_path, layout, message):
    for f in layout:
        _img(tmp_path / f / "x.png", 50)
    with pytest.raises(DatasetError, match=message):
        load_class_folders(tmp_path)


def test_class_folders_without_images(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        load_class_folders(tmp_path)


def test_canonical_class_unknown():
    assert canonical_class(" Angry ") == "anger"
    with pytest.raises(DatasetError, match="unknown emotion class"):
        canonical_class("bored")


def test_load_dataset_unknown_kind(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset kind"):
        load_dataset("affectnet", tmp_path)


def test_dataset_checks_shapes():
    with pytest.raises(ValueError, match="labels"):
        FaceDataset("x", np.zeros((2, 48, 48), np.uint8), np.zeros(3, np.int64), EMOTIONS, ("a", "b"))


# ------------------------------------------------------------------------------------- CK+

def _ckplus(root: Path, n_missing: int = 0) -> Path:
    rows = [("S010_004", "happy", "S010_004_00000019.png", "happy", [1, 0, 1]),
            ("S011_001", "sadness", "S011_001_00000016.png", "sadness", [0, 1, 0])]
    with open(root / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["video", "folder_emotion", "file", "emotion", "AU6", "AU15", "AU25"])
        for i, (v, fe, f, e, aus) in enumerate(rows):
            w.writerow([v, fe, f, e, *aus])
            if i >= n_missing:
                _img(root / fe / f, 30 * i)
    return root


def test_ckplus_loader(tmp_path):
    ds = load_ckplus(_ckplus(tmp_path))
    assert ds.class_names == CKPLUS_CLASSES
    assert [ds.class_names[i] for i in ds.labels] == ["happiness", "sadness"]
    assert ds.au_names == ("AU6", "AU15", "AU25")
    np.testing.assert_array_equal(ds.aus, [[1, 0, 1], [0, 1, 0]])
    assert ds.groups == ("S010", "S011")


def test_ckplus_partial_folder(tmp_path):
    with pytest.raises(DatasetError, match="partial"):
        load_ckplus(_ckplus(tmp_path, n_missing=1))


@pytest.mark.data
def test_real_ckplus_subset(tmp_path):
    tar = need_data("ckplus48_dev.tar.gz")
    with tarfile.open(tar) as tf:
        tf.extractall(tmp_path, filter="data")
    ds = load_ckplus(tmp_path / "ckplus48_dev")
    assert len(ds) == 327
    assert len(set(ds.groups)) == 40
    assert ds.images.shape == (327, 48, 48)
    assert {"AU1", "AU12", "AU25", "AU26"} <= set(ds.au_names)
    # every emotion of CK+ is present and happiness comes with AU12 in most peak frames
    assert set(ds.labels.tolist()) == set(range(7))
    happy = ds.labels == CKPLUS_CLASSES.index("happiness")
    assert ds.aus[happy, ds.au_names.index("AU12")].mean() > 0.9
