"""Random occluders for training: what a cabin camera puts between the network and a face.

Every call draws a new occluder from a seeded ``numpy.random.Generator``: the kind (weights in
:data:`OCCLUDER_WEIGHTS`), then its shape, size, position, tilt, grey level, texture (flat, noise,
gradient, stripes), opacity, edge softness and sometimes a cast shadow. Kinds:

* ``glasses``: sunglasses / reflective glasses: two lenses (ellipse, round, rectangular or
  aviator-like) on a jittered, tilted eye line, a bridge and often the temple arms;
* ``eye_band``: a band over the eyes (sleep mask, scarf, hair) or a cap's shadow from the top;
* ``mask``: a face mask (light or dark, pleated or plain, peaked over the nose, with straps) or a
  scarf / neck gaiter over the lower face;
* ``hand``: a palm with two to four fingers (and often the thumb and the wrist) over the mouth, a
  cheek or the chin, entering from below or from a side;
* ``object``: a phone held to a cheek, a cup in front of the mouth, or a thin rod (pen, cigarette);
* ``patch``: a random rectangle, ellipse or polygon of random grey and texture anywhere;
* ``blur``: Gaussian, motion or low-resolution blur;
* ``low_light``: gain, gamma, sensor noise and coarse quantisation;
* ``ir``: a near-infrared look: smoothed, brightened skin, more contrast, an illuminator's
  vignette and specular glints.

With probability ``second_p`` a second, different kind is added on top. Each occluded crop comes
with the fraction of each face region it covers (:data:`driver_monitor.model.regions.REGIONS`:
eyes / brows, nose, mouth / chin, left and right cheek as seen in the image, whole face): the mean
of the occluder's opacity over the region's box. The photometric kinds (blur, low light, IR) cover
nothing: the face stays visible, only degraded. These coverages are the targets of the
region-attention network's visibility output.

Works on float crops in [0, 1], ``(S, S)`` or ``(N, S, S)``; numpy + OpenCV, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..model.regions import REGIONS, pixel_masks, region_boxes

#: occluder kind -> default share of the occluded crops.
OCCLUDER_WEIGHTS: dict[str, float] = {
    "glasses": 0.17, "eye_band": 0.06, "mask": 0.16, "hand": 0.18, "object": 0.08, "patch": 0.10,
    "blur": 0.07, "low_light": 0.10, "ir": 0.08,
}
#: kinds that change the pixels' look but hide no region.
PHOTOMETRIC: frozenset[str] = frozenset({"blur", "low_light", "ir"})

_SS = 4  # shapes are drawn at 4x the crop size and area-averaged down: anti-aliased edges

Layer = tuple[NDArray[np.float32], NDArray[np.float32]]  # (alpha (S, S) in [0, 1], fill grey (S, S))


@dataclass(frozen=True)
class Occlusion:
    """One occluded crop: ``image`` (S, S) float32 in [0, 1], ``coverage`` (R,) float32 = covered
    fraction of each region (``regions`` order of the generator), ``kind`` ("hand", "glasses+ir", ...)."""

    image: NDArray[np.float32]
    coverage: NDArray[np.float32]
    kind: str


class _Canvas:
    """A super-sampled uint8 drawing surface; coordinates are fractions of the crop side."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.img = np.zeros((size * _SS, size * _SS), np.uint8)

    def _p(self, x: float, y: float) -> tuple[int, int]:
        k = self.size * _SS
        return int(round(x * k)), int(round(y * k))

    def _len(self, v: float) -> int:
        return max(1, int(round(v * self.size * _SS)))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, angle: float, thickness: float = 0.0) -> None:
        t = -1 if thickness <= 0 else self._len(thickness)
        cv2.ellipse(self.img, self._p(cx, cy), (self._len(rx), self._len(ry)), angle, 0, 360, 255, t)

    def poly(self, pts: Sequence[tuple[float, float]]) -> None:
        cv2.fillPoly(self.img, [np.array([self._p(x, y) for x, y in pts], np.int32)], 255)

    def line(self, x0: float, y0: float, x1: float, y1: float, thickness: float) -> None:
        cv2.line(self.img, self._p(x0, y0), self._p(x1, y1), 255, self._len(thickness))  # round caps

    def rect(self, cx: float, cy: float, w: float, h: float, angle: float) -> None:
        self.poly([tuple(p) for p in cv2.boxPoints(((cx, cy), (w, h), angle))])

    def alpha(self, soften: float = 0.0) -> NDArray[np.float32]:
        a = cv2.resize(self.img, (self.size, self.size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if soften > 0:
            a = cv2.GaussianBlur(a, (0, 0), soften)
        return a


# ------------------------------------------------------------------------------------- textures

def _texture(rng: np.random.Generator, size: int, grey: float, amount: float = 1.0) -> NDArray[np.float32]:
    """A ``(size, size)`` fill around ``grey``: flat, smooth noise, a gradient or stripes."""
    style = rng.choice(4, p=(0.3, 0.25, 0.25, 0.2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if style == 0:
        pattern = np.zeros((size, size), np.float32)
    elif style == 1:
        pattern = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0),
                                   float(rng.uniform(0.6, 2.5))) * float(rng.uniform(0.05, 0.2))
    elif style == 2:
        a = rng.uniform(0, 2 * np.pi)
        pattern = ((np.cos(a) * xx + np.sin(a) * yy) - 0.5) * float(rng.uniform(0.1, 0.5))
    else:
        a, freq = rng.uniform(0, np.pi), rng.uniform(4, 14)
        pattern = np.sin(2 * np.pi * freq * (np.cos(a) * xx + np.sin(a) * yy)) * float(rng.uniform(0.03, 0.12))
    return np.clip(grey + amount * pattern, 0.0, 1.0).astype(np.float32)


def _dark_or_light(rng: np.random.Generator, p_dark: float) -> float:
    return float(rng.uniform(0.0, 0.3) if rng.random() < p_dark else rng.uniform(0.55, 0.95))


# ------------------------------------------------------------------------------ occluder shapes

def _glasses(rng: np.random.Generator, size: int) -> list[Layer]:
    """Two lenses on a jittered, tilted eye line, a bridge and (mostly) the temple arms."""
    ye, xc = rng.uniform(0.29, 0.43), 0.5 + rng.uniform(-0.06, 0.06)
    half, tilt = rng.uniform(0.16, 0.25), rng.uniform(-12, 12)
    style = rng.integers(4)  # ellipse, round, rectangular, aviator
    rx = rng.uniform(0.10, 0.17)
    ry = {0: rng.uniform(0.6, 0.85), 1: 1.0, 2: rng.uniform(0.55, 0.8), 3: rng.uniform(0.8, 1.0)}[style] * rx
    dy = np.tan(np.radians(tilt)) * half
    lenses, frame = _Canvas(size), _Canvas(size)
    for side in (-1, 1):
        cx, cy = xc + side * half, ye + side * dy
        if style == 2:
            lenses.rect(cx, cy, 2 * rx, 2 * ry, tilt)
        else:
            lens_tilt = tilt + (side * rng.uniform(10, 25) if style == 3 else 0.0)
            lenses.ellipse(cx, cy + (0.2 * ry if style == 3 else 0.0), rx, ry, lens_tilt)
        if rng.random() < 0.7:  # temple arm to the crop edge
            frame.line(cx + side * rx, cy - 0.3 * ry, 0.5 + side * 0.6, cy - rng.uniform(0.0, 0.12),
                       rng.uniform(0.02, 0.045))
    frame.line(xc - half + rx * 0.8, ye - dy - 0.2 * ry, xc + half - rx * 0.8, ye + dy - 0.2 * ry,
               rng.uniform(0.02, 0.045))
    reflective = rng.random() < 0.25
    lens_grey = rng.uniform(0.35, 0.8) if reflective else rng.uniform(0.0, 0.3)
    opacity = rng.uniform(0.7, 1.0) if not reflective else 1.0
    lens_a = lenses.alpha(rng.uniform(0.0, 0.6)) * opacity
    return [(lens_a, _texture(rng, size, lens_grey, 1.5 if reflective else 0.6)),
            (frame.alpha(), _texture(rng, size, rng.uniform(0.0, 0.5), 0.3))]


def _eye_band(rng: np.random.Generator, size: int) -> list[Layer]:
    """A band over the eyes (sleep mask, scarf, hair), or a cap's shadow falling from the top."""
    c = _Canvas(size)
    if rng.random() < 0.3:  # cap shadow / brim: from above the crop down to the eye line
        bottom = rng.uniform(0.25, 0.42)
        tilt = rng.uniform(-0.06, 0.06)
        c.poly([(-0.1, -0.1), (1.1, -0.1), (1.1, bottom + tilt), (-0.1, bottom - tilt)])
        grey, opacity = rng.uniform(0.0, 0.25), rng.uniform(0.6, 0.95)
    else:
        w = rng.uniform(0.7, 1.3)
        c.rect(0.5 + rng.uniform(-0.1, 0.1), rng.uniform(0.28, 0.43), w, rng.uniform(0.1, 0.22),
               rng.uniform(-10, 10))
        grey, opacity = _dark_or_light(rng, 0.7), rng.uniform(0.85, 1.0)
    return [(c.alpha(rng.uniform(0.0, 1.0)) * opacity, _texture(rng, size, grey))]


def _mask(rng: np.random.Generator, size: int) -> list[Layer]:
    """A face mask peaked over the nose (with straps), or a scarf / gaiter over the lower face."""
    c, straps = _Canvas(size), _Canvas(size)
    if rng.random() < 0.25:  # scarf / neck gaiter: a band from below the nose to the bottom
        top = rng.uniform(0.55, 0.72)
        tilt = rng.uniform(-0.05, 0.05)
        c.poly([(-0.1, top - tilt), (1.1, top + tilt), (1.1, 1.1), (-0.1, 1.1)])
    else:
        xl, xr = rng.uniform(0.02, 0.2), rng.uniform(0.8, 0.98)
        side_y, peak_y = rng.uniform(0.5, 0.64), rng.uniform(0.42, 0.58)
        xm = 0.5 + rng.uniform(-0.05, 0.05)
        bottom = rng.uniform(0.95, 1.1)
        c.poly([(xl, side_y), ((xl + xm) / 2, peak_y + 0.3 * (side_y - peak_y)), (xm, peak_y),
                ((xr + xm) / 2, peak_y + 0.3 * (side_y - peak_y)), (xr, side_y), (xr - 0.05, bottom - 0.12),
                (xm, bottom), (xl + 0.05, bottom - 0.12)])
        if rng.random() < 0.6:
            t = rng.uniform(0.015, 0.03)
            straps.line(xl, side_y + 0.03, -0.1, side_y - rng.uniform(0.05, 0.15), t)
            straps.line(xr, side_y + 0.03, 1.1, side_y - rng.uniform(0.05, 0.15), t)
    grey = _dark_or_light(rng, 0.4)
    fill = _texture(rng, size, grey)
    if rng.random() < 0.5:  # pleats
        rows = np.sin(np.arange(size, dtype=np.float32) * rng.uniform(0.6, 1.2) + rng.uniform(0, 6))
        fill = np.clip(fill + rows[:, None] * rng.uniform(0.03, 0.1), 0, 1).astype(np.float32)
    return [(c.alpha(rng.uniform(0.0, 0.7)), fill), (straps.alpha(), _texture(rng, size, grey * 0.8))]


_HAND_TARGETS = ((0.5, 0.78), (0.2, 0.62), (0.8, 0.62), (0.5, 0.95))  # mouth, cheeks, chin


def _hand(rng: np.random.Generator, size: int) -> list[Layer]:
    """Palm + fingers (+ thumb, + wrist to the crop edge) over the mouth, a cheek or the chin."""
    tx, ty = _HAND_TARGETS[rng.integers(len(_HAND_TARGETS))]
    tx, ty = tx + rng.uniform(-0.08, 0.08), ty + rng.uniform(-0.08, 0.08)
    # fingers point up (hand from below) or across the face (hand from a side)
    if rng.random() < 0.5:
        phi = np.radians(-90 + rng.uniform(-45, 45))
    else:
        phi = np.radians(rng.choice([0.0, 180.0]) + rng.uniform(-35, 35))
    d = np.array([np.cos(phi), np.sin(phi)])
    n = np.array([-d[1], d[0]])
    scale = rng.uniform(0.75, 1.3)
    pw, ph = 0.16 * scale, 0.2 * scale
    palm = np.array([tx, ty]) - d * ph * rng.uniform(0.3, 1.0)
    c = _Canvas(size)
    c.ellipse(palm[0], palm[1], ph, pw, float(np.degrees(phi)))
    k = rng.integers(2, 5)
    thick = rng.uniform(0.055, 0.08) * scale
    for i in range(k):
        off = (i - (k - 1) / 2) * thick * rng.uniform(1.0, 1.25)
        base = palm + d * ph * 0.6 + n * off
        tip = base + d * rng.uniform(0.13, 0.26) * scale + n * rng.uniform(-0.02, 0.02)
        c.line(base[0], base[1], tip[0], tip[1], thick)
    if rng.random() < 0.7:  # thumb, at an angle on one side
        side = rng.choice([-1.0, 1.0])
        base = palm + n * side * pw * 0.8
        tip = base + (d * 0.6 + n * side * 0.8) * rng.uniform(0.1, 0.18) * scale
        c.line(base[0], base[1], tip[0], tip[1], thick * 1.1)
    if rng.random() < 0.8:  # wrist / forearm out of the crop
        end = palm - d * 1.0
        c.line(palm[0], palm[1], end[0], end[1], 2 * pw * rng.uniform(0.7, 0.9))
    skin = rng.uniform(0.3, 0.85)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shade = ((xx - palm[0]) * d[0] + (yy - palm[1]) * d[1]) * rng.uniform(-0.5, 0.5)
    fill = np.clip(_texture(rng, size, skin, 0.4) + shade, 0, 1).astype(np.float32)
    return [(c.alpha(rng.uniform(0.0, 0.6)), fill)]


def _object(rng: np.random.Generator, size: int) -> list[Layer]:
    """A phone at a cheek, a cup in front of the mouth, or a thin rod (pen, cigarette) at the mouth."""
    body, detail = _Canvas(size), _Canvas(size)
    what = rng.choice(3, p=(0.45, 0.35, 0.2))
    if what == 0:  # phone held to the cheek / ear
        cx = rng.uniform(0.0, 0.3) if rng.random() < 0.5 else rng.uniform(0.7, 1.0)
        cy, w, h, ang = rng.uniform(0.45, 0.85), rng.uniform(0.18, 0.28), rng.uniform(0.35, 0.55), rng.uniform(-35, 35)
        body.rect(cx, cy, w, h, ang)
        if rng.random() < 0.4:
            detail.rect(cx, cy, 0.8 * w, 0.8 * h, ang)  # lit screen
        grey, detail_grey = rng.uniform(0.02, 0.25), rng.uniform(0.5, 0.95)
    elif what == 1:  # cup / bottle in front of the mouth, from below
        cx, cy = 0.5 + rng.uniform(-0.15, 0.15), rng.uniform(0.82, 1.0)
        w, h = rng.uniform(0.25, 0.38), rng.uniform(0.3, 0.45)
        body.rect(cx, cy, w, h, rng.uniform(-8, 8))
        body.ellipse(cx, cy - h / 2, w / 2, w * 0.15, 0.0)
        side = rng.choice([-1.0, 1.0])
        detail.ellipse(cx + side * w / 2, cy, w * 0.22, h * 0.22, 0.0, thickness=0.04)
        grey = _dark_or_light(rng, 0.5)
        detail_grey = grey
    else:  # pen / cigarette / straw from the mouth to the crop edge
        x0, y0 = 0.5 + rng.uniform(-0.12, 0.12), rng.uniform(0.72, 0.85)
        ang = np.radians(rng.uniform(-160, -20) if rng.random() < 0.2 else rng.uniform(10, 170))
        body.line(x0, y0, x0 + 0.7 * np.cos(ang), y0 + 0.7 * np.sin(ang), rng.uniform(0.03, 0.07))
        grey = _dark_or_light(rng, 0.4)
        detail_grey = grey
    return [(body.alpha(rng.uniform(0.0, 0.5)), _texture(rng, size, grey, 0.5)),
            (detail.alpha(), _texture(rng, size, detail_grey, 0.5))]


def _patch(rng: np.random.Generator, size: int) -> list[Layer]:
    """A random rectangle, ellipse or polygon of random grey, texture and opacity anywhere."""
    c = _Canvas(size)
    cx, cy, r = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95), rng.uniform(0.08, 0.25)
    shape = rng.integers(3)
    if shape == 0:
        c.rect(cx, cy, 2 * r * rng.uniform(0.5, 1.5), 2 * r * rng.uniform(0.5, 1.5), rng.uniform(0, 90))
    elif shape == 1:
        c.ellipse(cx, cy, r * rng.uniform(0.6, 1.4), r * rng.uniform(0.6, 1.4), rng.uniform(0, 180))
    else:
        k = rng.integers(5, 9)
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.5, 1.5, k)
        c.poly([(cx + q * np.cos(a), cy + q * np.sin(a)) for a, q in zip(ang, rad)])
    return [(c.alpha(rng.uniform(0.0, 0.8)) * rng.uniform(0.6, 1.0), _texture(rng, size, rng.uniform(0, 1)))]


SHAPES: dict[str, Callable[[np.random.Generator, int], list[Layer]]] = {
    "glasses": _glasses, "eye_band": _eye_band, "mask": _mask, "hand": _hand, "object": _object, "patch": _patch,
}


# ---------------------------------------------------------------------------- photometric kinds

def _blur(img: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    size = img.shape[0]
    how = rng.integers(3)
    if how == 0:
        return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.8, 2.2)))
    if how == 1:  # motion blur: a line kernel at a random angle
        k = int(rng.integers(3, 8))
        kern = np.zeros((k, k), np.float32)
        a = rng.uniform(0, np.pi)
        c = (k - 1) / 2
        cv2.line(kern, (int(round(c - c * np.cos(a))), int(round(c - c * np.sin(a)))),
                 (int(round(c + c * np.cos(a))), int(round(c + c * np.sin(a)))), 1.0, 1)
        return cv2.filter2D(img, -1, kern / kern.sum(), borderType=cv2.BORDER_REPLICATE)
    small = max(8, int(round(size * rng.uniform(0.25, 0.5))))  # low resolution
    down = cv2.resize(img, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)


def _low_light(img: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    out = np.power(np.clip(img, 0, 1), rng.uniform(1.0, 1.6)) * rng.uniform(0.12, 0.45)
    out = out + rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(0.015, 0.07)
    if rng.random() < 0.3:  # row noise of a rolling shutter sensor
        out = out + rng.standard_normal((img.shape[0], 1)).astype(np.float32) * rng.uniform(0.005, 0.02)
    if rng.random() < 0.5:  # few grey levels left
        levels = rng.uniform(12, 48)
        out = np.round(np.clip(out, 0, 1) * levels) / levels
    return out.astype(np.float32)


def _ir(img: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    size = img.shape[0]
    out = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 1.0)))
    out = np.power(np.clip(out, 0, 1), rng.uniform(0.5, 0.85))
    m = float(out.mean())
    out = (out - m) * rng.uniform(1.1, 1.7) + m
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cx, cy = 0.5 + rng.uniform(-0.2, 0.2), 0.5 + rng.uniform(-0.2, 0.2)
    out = out * (1.0 - rng.uniform(0.1, 0.4) * ((xx - cx) ** 2 + (yy - cy) ** 2) / 0.5)
    for _ in range(rng.integers(0, 3)):  # specular glints (eyes, glasses)
        g = _Canvas(size)
        g.ellipse(rng.uniform(0.2, 0.8), rng.uniform(0.28, 0.45), rng.uniform(0.01, 0.03), rng.uniform(0.01, 0.03), 0)
        out = np.maximum(out, g.alpha(0.5) * rng.uniform(0.8, 1.0))
    out = out + rng.standard_normal(img.shape).astype(np.float32) * rng.uniform(0.0, 0.03)
    return out.astype(np.float32)


PHOTOMETRIC_OPS: dict[str, Callable[[NDArray[np.float32], np.random.Generator], NDArray[np.float32]]] = {
    "blur": _blur, "low_light": _low_light, "ir": _ir,
}


# ------------------------------------------------------------------------------------ generator

def _cast_shadow(img: NDArray[np.float32], alpha: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Darken the face next to an occluder (a soft, shifted copy of its silhouette)."""
    size = img.shape[0]
    shift = np.float32([[1, 0, rng.uniform(-0.06, 0.06) * size], [0, 1, rng.uniform(0.0, 0.08) * size]])
    sh = cv2.warpAffine(alpha, shift, (size, size))
    sh = cv2.GaussianBlur(sh, (0, 0), float(rng.uniform(1.0, 2.5)))
    return (img * (1.0 - rng.uniform(0.15, 0.45) * sh * (1.0 - alpha))).astype(np.float32)


class OccluderGenerator:
    """Seeded random occluders for ``size x size`` crops, with the covered fraction of each region.

    kinds: kind -> weight (default :data:`OCCLUDER_WEIGHTS`; a subset trains on those kinds only).
    regions: region names whose coverage is reported (default :data:`REGIONS`).
    second_p: probability of a second, different kind on top of the first.
    """

    def __init__(self, size: int = 48, kinds: Mapping[str, float] | None = None,
                 regions: Sequence[str] = REGIONS, second_p: float = 0.15) -> None:
        kinds = dict(OCCLUDER_WEIGHTS if kinds is None else kinds)
        unknown = sorted(set(kinds) - set(OCCLUDER_WEIGHTS))
        if unknown or not kinds or min(kinds.values()) < 0 or sum(kinds.values()) <= 0:
            raise ValueError(f"occluder kinds must be a non-empty subset of {list(OCCLUDER_WEIGHTS)} with "
                             f"non-negative weights, got {kinds}")
        self.size = size
        self.kinds = tuple(kinds)
        w = np.array([kinds[k] for k in self.kinds], np.float64)
        self.weights = w / w.sum()
        self.regions = tuple(regions)
        masks = pixel_masks(region_boxes(self.regions), size)
        self._masks = masks / masks.sum(axis=(1, 2), keepdims=True)
        self.second_p = float(second_p)

    def coverage(self, alpha: NDArray[np.float32]) -> NDArray[np.float32]:
        """Covered fraction of each region for an opacity map ``(S, S)`` in [0, 1]."""
        return np.einsum("rhw,hw->r", self._masks, alpha).astype(np.float32)

    def _pick(self, rng: np.random.Generator, exclude: str = "") -> str:
        w = np.where(np.array(self.kinds) == exclude, 0.0, self.weights)
        if w.sum() <= 0:
            return exclude
        return str(self.kinds[rng.choice(len(self.kinds), p=w / w.sum())])

    def _apply(self, img: NDArray[np.float32], kind: str, rng: np.random.Generator,
               union: NDArray[np.float32]) -> NDArray[np.float32]:
        if kind in PHOTOMETRIC_OPS:
            return PHOTOMETRIC_OPS[kind](img, rng)
        layers = SHAPES[kind](rng, self.size)
        total = np.zeros_like(img)
        for alpha, _ in layers:
            total = 1.0 - (1.0 - total) * (1.0 - alpha)
        if rng.random() < 0.4:
            img = _cast_shadow(img, total, rng)
        for alpha, fill in layers:
            img = img * (1.0 - alpha) + fill * alpha
        union[:] = 1.0 - (1.0 - union) * (1.0 - total)
        return img

    def occlude(self, img: NDArray[np.floating], rng: np.random.Generator, kind: str | None = None) -> Occlusion:
        """One occluded copy of ``img`` (S, S) in [0, 1]; ``kind`` forces the first kind."""
        img = np.asarray(img, np.float32)
        if img.shape != (self.size, self.size):
            raise ValueError(f"expected a ({self.size}, {self.size}) crop, got {img.shape}")
        first = kind or self._pick(rng)
        if first not in OCCLUDER_WEIGHTS:
            raise ValueError(f"unknown occluder kind {first!r}; known: {list(OCCLUDER_WEIGHTS)}")
        kinds = [first]
        if rng.random() < self.second_p:
            second = self._pick(rng, exclude=first)
            if second != first:
                kinds.append(second)
        union = np.zeros_like(img)
        out = img
        for k in kinds:
            out = self._apply(out, k, rng, union)
        return Occlusion(np.clip(out, 0.0, 1.0).astype(np.float32), self.coverage(union), "+".join(kinds))

    def batch(self, images: NDArray[np.floating], rng: np.random.Generator,
              p: float = 0.5) -> tuple[NDArray[np.float32], NDArray[np.float32], tuple[str, ...]]:
        """Occlude each crop of ``images`` (N, S, S) with probability ``p``.

        Returns (images (N, S, S) float32, coverage (N, R) float32, kinds: "" where untouched)."""
        images = np.asarray(images, np.float32)
        out = images.copy()
        cover = np.zeros((len(images), len(self.regions)), np.float32)
        kinds = [""] * len(images)
        hit = rng.random(len(images)) < p
        for i in np.flatnonzero(hit):
            occ = self.occlude(images[i], rng)
            out[i], cover[i], kinds[i] = occ.image, occ.coverage, occ.kind
        return out, cover, tuple(kinds)
