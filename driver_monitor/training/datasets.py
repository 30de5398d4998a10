"""Loaders for the face-expression datasets users actually download.

Every loader returns a :class:`FaceDataset`: all images in memory as ``(N, S, S)`` uint8 grey
arrays (48 x 48 FER framing by default), integer labels in the dataset's own class list, and,
where the dataset has them, vote distributions (FERPlus) or AU presence labels (CK+).

Class names are normalised to the FERPlus spelling used by :data:`preprocess.EMOTIONS`
("happiness", not "happy"), so a dataset's classes map onto the network's outputs by name.

Layouts understood:

* FERPlus: ``<root>/FER2013{Train,Valid,Test}/`` with PNGs and ``label.csv`` rows
  ``image, "(0, 0, 48, 48)", 10 vote counts`` (neutral, happiness, surprise, sadness, anger,
  disgust, fear, contempt, unknown, NF).
* FER2013: the Kaggle class folders ``<root>/{train,test}/<angry|disgust|...>/*.jpg`` or the original
  ``fer2013.csv`` (``emotion,pixels,Usage``).
* Generic class folders ``<root>/<class>/*.{png,jpg}`` (RAF-DB "basic" and similar; RAF-DB's
  numbered folders 1..7 are understood).
* CK+ (the 48 x 48 subset in ../shared/data): class folders plus ``labels.csv`` with emotion and
  FACS AU presence columns.

Wrong or partial folders raise :class:`DatasetError` saying what was expected. Pure module:
numpy + OpenCV, no torch.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..errors import DatasetError
from ..preprocess import EMOTIONS

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

#: FERPlus vote columns in label.csv, in order.
FERPLUS_VOTE_COLUMNS: tuple[str, ...] = EMOTIONS + ("unknown", "NF")
FERPLUS_SPLITS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}

#: FER2013 classes in the order of the original fer2013.csv ``emotion`` column (0..6).
FER2013_CLASSES: tuple[str, ...] = (
    "anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
)
#: RAF-DB basic: folder / label numbers 1..7.
RAFDB_CLASSES: tuple[str, ...] = (
    "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral",
)

#: Spellings seen in the wild -> the FERPlus names.
CLASS_ALIASES: dict[str, str] = {
    "angry": "anger", "anger": "anger", "mad": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear", "afraid": "fear",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt",
}


@dataclass(frozen=True)
class FaceDataset:
    """A labelled set of grey face crops held in memory.

    images: ``(N, S, S)`` uint8 grey.
    labels: ``(N,)`` int64, index into ``class_names`` (hard / majority label).
    class_names: the dataset's classes (FERPlus spelling).
    files: ``N`` file names (relative to the split folder) or CSV row ids.
    soft: ``(N, len(class_names))`` float32 label distribution summing to 1, or None.
    aus: ``(N, len(au_names))`` float32 AU presence (0/1) or intensity, or None.
    """

    name: str
    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    soft: NDArray[np.float32] | None = None
    aus: NDArray[np.float32] | None = None
    au_names: tuple[str, ...] = field(default_factory=tuple)
    groups: tuple[str, ...] = field(default_factory=tuple)  # subject / sequence ids where known

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 3:
            raise ValueError(f"images must be (N, S, S) uint8, got {self.images.shape} {self.images.dtype}")
        if self.labels.shape != (n,):
            raise ValueError(f"labels must be ({n},), got {self.labels.shape}")
        if len(self.files) != n:
            raise ValueError(f"files must have {n} entries, got {len(self.files)}")
        if self.soft is not None and self.soft.shape != (n, len(self.class_names)):
            raise ValueError(f"soft must be ({n}, {len(self.class_names)}), got {self.soft.shape}")
        if self.aus is not None and self.aus.shape != (n, len(self.au_names)):
            raise ValueError(f"aus must be ({n}, {len(self.au_names)}), got {self.aus.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {c: int(k) for c, k in zip(self.class_names, counts)}

    def subset(self, index: NDArray[np.int64] | Sequence[int]) -> "FaceDataset":
        idx = np.asarray(index, dtype=np.int64)
        return FaceDataset(
            name=self.name,
            images=self.images[idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            files=tuple(self.files[i] for i in idx),
            soft=None if self.soft is None else self.soft[idx],
            aus=None if self.aus is None else self.aus[idx],
            au_names=self.au_names,
            groups=tuple(self.groups[i] for i in idx) if self.groups else (),
        )


def canonical_class(name: str) -> str:
    """Folder / CSV class name -> FERPlus spelling; DatasetError for an unknown one."""
    key = name.strip().lower()
    if key not in CLASS_ALIASES:
        raise DatasetError(
            f"unknown emotion class {name!r}; expected one of {sorted(set(CLASS_ALIASES))}"
        )
    return CLASS_ALIASES[key]


def read_grey(path: Path, size: int) -> NDArray[np.uint8]:
    """Read an image file as ``(size, size)`` uint8 grey; DatasetError when it does not decode."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DatasetError(f"image {path} could not be decoded; remove it or replace it with a valid image")
    if img.shape != (size, size):
        interp = cv2.INTER_AREA if min(img.shape) > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return img


def _stack(images: Iterable[NDArray[np.uint8]], size: int) -> NDArray[np.uint8]:
    arr = list(images)
    if not arr:
        return np.zeros((0, size, size), np.uint8)
    return np.stack(arr).astype(np.uint8, copy=False)


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what}: folder {path} does not exist; {_hint_for(what)}")
    return path


def _hint_for(what: str) -> str:
    return {
        "FERPlus": "expected <root>/FER2013Train, FER2013Valid, FER2013Test, each with PNGs and label.csv "
                   "(https://github.com/microsoft/FERPlus: run its generate_training_data.py on fer2013.csv)",
        "FER2013": "expected <root>/train/<angry|disgust|fear|happy|neutral|sad|surprise>/*.jpg "
                   "(Kaggle 'FER-2013' folders) or the original fer2013.csv",
        "class folders": "expected <root>/<class name>/*.png|jpg with class names like anger, happy, neutral",
        "CK+": "expected <root>/labels.csv (video,folder_emotion,file,emotion,AU...) and <root>/<emotion>/<file>",
    }.get(what, "check the path")


# ----------------------------------------------------------------------------------------------
# FERPlus
# ----------------------------------------------------------------------------------------------

#: Which FERPlus images count, and with which label (see :func:`ferplus_protocol`).
FERPLUS_PROTOCOLS: dict[str, str] = {
    "plurality": "most-voted of the 8 emotions (ties: first in FERPlus order); images where "
                 "unknown or not-a-face has at least as many votes, or no emotion has a vote, are left out",
    "authors_majority": "FERPlus authors' majority protocol: a class with a single vote counts as 0, "
                        "the top class must hold more than 50 % of the remaining votes (all 10 columns), "
                        "and images whose top is unknown or not-a-face are left out",
}


def ferplus_protocol(
    votes: NDArray[np.float32] | Sequence[Sequence[float]], protocol: str = "plurality"
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """FERPlus vote counts ``(N, 10)`` -> (keep mask, label index into EMOTIONS) under ``protocol``.

    * ``"plurality"`` (training, and the project's FERPlus test figure): keep an image when its
      best emotion has at least one vote and more votes than "unknown" and than "not a face";
      label = the emotion with the most votes, ties to the first in FERPlus order.
    * ``"authors_majority"`` (the protocol of the FERPlus paper, the one published accuracies
      use): votes of 1 become 0; keep an image only when the top of the 10 columns holds strictly
      more than half of the remaining votes and is an emotion, not "unknown" / "not a face"; label
      = that emotion. A tie, or an image with only single votes, is left out. The kept images are a
      subset of the plurality ones, with the same labels (official test split: 3,137 of 3,522).

    Labels of dropped images are still filled in (plurality label) but mean nothing.
    """
    if protocol not in FERPLUS_PROTOCOLS:
        raise DatasetError(f"FERPlus protocol {protocol!r} is not one of {sorted(FERPLUS_PROTOCOLS)}")
    votes = np.asarray(votes, dtype=np.float32)
    if votes.ndim != 2 or votes.shape[1] != 10:
        raise DatasetError(f"FERPlus votes must be (N, 10), got {votes.shape}")
    emo = votes[:, :8]
    label = emo.argmax(axis=1).astype(np.int64)
    if protocol == "plurality":
        best = emo.max(axis=1)
        keep = (best > 0) & (best > votes[:, 8]) & (best > votes[:, 9])
        return keep, label
    clean = np.where(votes <= 1, 0.0, votes)
    top = clean.argmax(axis=1)
    keep = (clean.max(axis=1) > 0.5 * clean.sum(axis=1)) & (top < 8)
    return keep, np.where(keep, top, label).astype(np.int64)


def ferplus_targets(
    votes: NDArray[np.float32], *, min_vote: int = 2
) -> tuple[NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """FERPlus vote counts ``(N, 10)`` -> (keep mask, majority label, soft distribution over 8).

    Rules (documented in docs/model.md):
    * an image is dropped when "unknown" or "not a face" gets at least as many votes as the best
      emotion, or no emotion got a vote;
    * majority label = the emotion with the most votes (ties go to the first in FERPlus order);
    * soft label = emotion votes with single stray votes (< ``min_vote``) removed, normalised; if
      that removes every vote, the raw emotion votes are used.
    """
    votes = np.asarray(votes, dtype=np.float32)
    if votes.ndim != 2 or votes.shape[1] != 10:
        raise DatasetError(f"FERPlus votes must be (N, 10), got {votes.shape}")
    keep, label = ferplus_protocol(votes, "plurality")
    emo = votes[:, :8]
    clean = np.where(emo >= min_vote, emo, 0.0)
    total = clean.sum(axis=1, keepdims=True)
    raw_total = np.maximum(emo.sum(axis=1, keepdims=True), 1e-6)
    soft = np.where(total > 0, clean / np.maximum(total, 1e-6), emo / raw_total).astype(np.float32)
    return keep, label, soft


def _ferplus_split_dir(root: Path, split: str) -> Path:
    """The folder of a FERPlus split: ``root`` itself when it holds label.csv, else its split folder."""
    if (root / "label.csv").is_file():
        return root
    if split not in FERPLUS_SPLITS:
        raise DatasetError(f"FERPlus split {split!r} is not one of {sorted(FERPLUS_SPLITS)}")
    _need_dir(root, "FERPlus")
    split_dir = root / FERPLUS_SPLITS[split]
    if not split_dir.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(
            f"FERPlus: {split_dir} is missing (found folders {present}); {_hint_for('FERPlus')}"
        )
    return split_dir


def _read_ferplus_votes(label_csv: Path) -> tuple[list[str], list[list[float]]]:
    """Image names and their 10 vote counts from a FERPlus label.csv (a header row is skipped)."""
    if not label_csv.is_file():
        raise DatasetError(f"FERPlus: {label_csv} is missing; {_hint_for('FERPlus')}")
    names: list[str] = []
    votes: list[list[float]] = []
    with open(label_csv, newline="") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            if len(row) != 12:
                raise DatasetError(
                    f"FERPlus: {label_csv} line {lineno} has {len(row)} fields, expected 12 "
                    "(image, box, 10 vote counts)"
                )
            try:
                votes.append([float(v) for v in row[2:]])
            except ValueError:
                if lineno == 1:  # a header row
                    continue
                raise DatasetError(f"FERPlus: {label_csv} line {lineno} has non-numeric votes: {row[2:]}") from None
            names.append(row[0].strip())
    if not names:
        raise DatasetError(f"FERPlus: {label_csv} has no rows")
    return names, votes


def load_ferplus(
    root: str | os.PathLike, split: str = "train", *, size: int = 48, protocol: str = "plurality"
) -> FaceDataset:
    """FERPlus split ("train" | "valid" | "test", or a folder that holds label.csv).

    protocol: which images are kept and how they are labelled (:data:`FERPLUS_PROTOCOLS`);
    "plurality" is what training uses, "authors_majority" the FERPlus paper's test protocol.
    """
    if protocol not in FERPLUS_PROTOCOLS:
        raise DatasetError(f"FERPlus protocol {protocol!r} is not one of {sorted(FERPLUS_PROTOCOLS)}")
    split_dir = _ferplus_split_dir(Path(root), split)
    label_csv = split_dir / "label.csv"
    names, votes = _read_ferplus_votes(label_csv)
    v = np.asarray(votes, np.float32)
    _, _, soft = ferplus_targets(v)
    keep, label = ferplus_protocol(v, protocol)
    missing = [n for n in names if not (split_dir / n).is_file()]
    if missing:
        raise DatasetError(
            f"FERPlus: {len(missing)} of {len(names)} images listed in {label_csv} are missing "
            f"(first: {missing[0]}); the folder is partial, extract the whole split"
        )
    idx = np.flatnonzero(keep)
    images = _stack((read_grey(split_dir / names[i], size) for i in idx), size)
    return FaceDataset(
        name=f"ferplus-{split_dir.name}",
        images=images,
        labels=label[idx],
        class_names=EMOTIONS,
        files=tuple(names[i] for i in idx),
        soft=soft[idx],
    )


# ----------------------------------------------------------------------------------------------
# FER2013
# ----------------------------------------------------------------------------------------------

_FER_CSV_USAGE = {
    "train": ("Training",),
    "valid": ("PublicTest",),
    "public_test": ("PublicTest",),
    "private_test": ("PrivateTest",),
    "test": ("PublicTest", "PrivateTest"),
}


def load_fer2013(root: str | os.PathLike, split: str = "train", *, size: int = 48) -> FaceDataset:
    """FER2013 from the Kaggle folders (``<root>/<split>/<class>/``) or the original fer2013.csv.

    Splits: folders "train" | "test" (test = PublicTest + PrivateTest, 7,178 images); the CSV also
    knows "valid"/"public_test" and "private_test".
    """
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".csv":
        return _load_fer2013_csv(root, split, size)
    if (root / "fer2013.csv").is_file():
        return _load_fer2013_csv(root / "fer2013.csv", split, size)
    _need_dir(root, "FER2013")
    split_dir = root / split
    if not split_dir.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(f"FER2013: {split_dir} is missing (found {present}); {_hint_for('FER2013')}")
    ds = load_class_folders(split_dir, size=size, class_names=FER2013_CLASSES, what="FER2013")
    return FaceDataset(ds.name.replace("folders", "fer2013"), ds.images, ds.labels, ds.class_names, ds.files)


def _load_fer2013_csv(path: Path, split: str, size: int) -> FaceDataset:
    if split not in _FER_CSV_USAGE:
        raise DatasetError(f"FER2013 csv split {split!r} is not one of {sorted(_FER_CSV_USAGE)}")
    usages = _FER_CSV_USAGE[split]
    images: list[NDArray[np.uint8]] = []
    labels: list[int] = []
    files: list[str] = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"emotion", "pixels", "Usage"}
        if reader.fieldnames is None or not need.issubset(reader.fieldnames):
            raise DatasetError(
                f"FER2013: {path} has columns {reader.fieldnames}, expected emotion,pixels,Usage"
            )
        for i, row in enumerate(reader):
            if row["Usage"] not in usages:
                continue
            px = np.array(row["pixels"].split(), dtype=np.int32)
            if px.size != 48 * 48 or not (0 <= int(row["emotion"]) <= 6):
                raise DatasetError(
                    f"FER2013: {path} row {i + 2} has {px.size} pixels / emotion {row['emotion']}, "
                    "expected 2304 pixels and emotion 0..6"
                )
            img = px.reshape(48, 48).astype(np.uint8)
            if size != 48:
                img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
            images.append(img)
            labels.append(int(row["emotion"]))
            files.append(f"row{i:05d}")
    if not images:
        raise DatasetError(f"FER2013: {path} has no rows with Usage in {usages}")
    return FaceDataset(
        name=f"fer2013-{split}", images=_stack(images, size), labels=np.asarray(labels, np.int64),
        class_names=FER2013_CLASSES, files=tuple(files),
    )


# ----------------------------------------------------------------------------------------------
# Generic class folders (RAF-DB and similar)
# ----------------------------------------------------------------------------------------------

def load_class_folders(
    root: str | os.PathLike,
    *,
    size: int = 48,
    class_names: Sequence[str] | None = None,
    what: str = "class folders",
) -> FaceDataset:
    """``<root>/<class>/*.png|jpg`` -> FaceDataset. Folder names are mapped to FERPlus spelling
    (angry -> anger, happy -> happiness, ...); RAF-DB's numbered folders 1..7 are understood.

    class_names: the class list / order to use; default: the classes found, in EMOTIONS order.
    """
    root = _need_dir(Path(root), what)
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not dirs:
        raise DatasetError(f"{what}: {root} has no class sub-folders; {_hint_for(what)}")
    names = [d.name for d in dirs]
    if sorted(names) == [str(i) for i in range(1, 8)]:
        mapping = {d: RAFDB_CLASSES[int(d.name) - 1] for d in dirs}
    else:
        mapping = {}
        for d in dirs:
            try:
                mapping[d] = canonical_class(d.name)
            except DatasetError as err:
                raise DatasetError(f"{what}: folder {d} is not an emotion class ({err}); {_hint_for(what)}") from None
    found = set(mapping.values())
    if class_names is None:
        class_names = tuple(e for e in EMOTIONS if e in found)
    class_names = tuple(class_names)
    extra = found - set(class_names)
    if extra:
        raise DatasetError(f"{what}: {root} has classes {sorted(extra)} outside {list(class_names)}")
    images: list[NDArray[np.uint8]] = []
    labels: list[int] = []
    files: list[str] = []
    for d in dirs:
        cls = class_names.index(mapping[d])
        for f in sorted(d.iterdir()):
            if f.suffix.lower() in IMAGE_EXTS:
                images.append(read_grey(f, size))
                labels.append(cls)
                files.append(f"{d.name}/{f.name}")
    if not images:
        raise DatasetError(f"{what}: no images ({', '.join(IMAGE_EXTS)}) under {root}; {_hint_for(what)}")
    return FaceDataset(
        name=f"folders-{root.name}", images=_stack(images, size),
        labels=np.asarray(labels, np.int64), class_names=class_names, files=tuple(files),
    )


# ----------------------------------------------------------------------------------------------
# CK+ (48 x 48 subset with FACS AU presence)
# ----------------------------------------------------------------------------------------------

CKPLUS_CLASSES: tuple[str, ...] = (
    "anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise",
)


def load_ckplus(root: str | os.PathLike, *, size: int = 48) -> FaceDataset:
    """CK+ peak frames: ``<root>/labels.csv`` (video, folder_emotion, file, emotion, AU1..AU27) and
    ``<root>/<folder_emotion>/<file>``. ``aus`` holds the 0/1 presence of every AU column."""
    root = _need_dir(Path(root), "CK+")
    label_csv = root / "labels.csv"
    if not label_csv.is_file():
        raise DatasetError(f"CK+: {label_csv} is missing; {_hint_for('CK+')}")
    with open(label_csv, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        need = {"video", "folder_emotion", "file", "emotion"}
        if not need.issubset(cols):
            raise DatasetError(f"CK+: {label_csv} has columns {cols}; expected {sorted(need)} and AU columns")
        au_cols = tuple(c for c in cols if c.upper().startswith("AU"))
        rows = list(reader)
    if not rows:
        raise DatasetError(f"CK+: {label_csv} has no rows")
    images, labels, files, groups, aus = [], [], [], [], []
    for i, row in enumerate(rows):
        path = root / row["folder_emotion"] / row["file"]
        if not path.is_file():
            raise DatasetError(f"CK+: {path} (labels.csv row {i + 2}) is missing; the folder is partial")
        images.append(read_grey(path, size))
        labels.append(CKPLUS_CLASSES.index(canonical_class(row["emotion"])))
        files.append(f"{row['folder_emotion']}/{row['file']}")
        groups.append(row["video"].split("_")[0])  # subject id, e.g. S014
        try:
            aus.append([float(row[c]) for c in au_cols])
        except ValueError as err:
            raise DatasetError(f"CK+: {label_csv} row {i + 2} has a non-numeric AU value") from err
    return FaceDataset(
        name="ckplus", images=_stack(images, size), labels=np.asarray(labels, np.int64),
        class_names=CKPLUS_CLASSES, files=tuple(files), aus=np.asarray(aus, np.float32),
        au_names=au_cols, groups=tuple(groups),
    )


def load_dataset(kind: str, root: str | os.PathLike, split: str = "train", *, size: int = 48) -> FaceDataset:
    """Dispatch by name: "ferplus" | "fer2013" | "folders" | "ckplus"."""
    kind = kind.lower()
    if kind == "ferplus":
        return load_ferplus(root, split, size=size)
    if kind == "fer2013":
        return load_fer2013(root, split, size=size)
    if kind in ("folders", "rafdb", "raf-db"):
        root = Path(root)
        split_dir = root / split if (root / split).is_dir() else root
        return load_class_folders(split_dir, size=size)
    if kind in ("ckplus", "ck+"):
        return load_ckplus(root, size=size)
    raise DatasetError(f"unknown dataset kind {kind!r}; use ferplus, fer2013, folders or ckplus")
