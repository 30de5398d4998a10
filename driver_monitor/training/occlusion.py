"""Deterministic occlusion and capture conditions for grey aligned face crops.

The benchmark in ``tools/occlusion_eval.py`` scores the emotion / action-unit network on the same
test faces under each condition below. A condition is a pure function of (crop, index): the crop
is a ``(S, S)`` uint8 grey aligned face (48 x 48 FER framing: eyes at about 35-45 % of the height,
nose tip near 58 %, mouth at 75-80 %), the index is the crop's position in its test set and fixes
the seed of whatever is random (patch positions, sensor noise), so the same input always gives
byte-identical output.

Conditions (:data:`CONDITIONS`):

* ``clean``: the crop unchanged;
* ``sunglasses``: two dark lenses over the eyes with a frame, a bridge and temple arms, and faint
  highlight streaks on the lenses;
* ``mask``: a light surgical-mask-like patch from the nose tip over the mouth and chin, with
  pleats and the straps leaving its corners;
* ``hand_mouth``: a hand-like shape (four fingers and a palm, toned from the face's own cheeks)
  held across the mouth from the image's right, covering the lower cheek on that side;
* ``hand_cheek``: the same kind of hand over the lower left cheek (image left), fingers up;
* ``random_patches``: a few flat grey rectangles at positions drawn from the index's seed;
* ``blur``: Gaussian blur (focus / motion);
* ``low_light``: a dark tone curve and sensor noise (read + shot noise);
* ``ir_contrast``: a near-infrared look: lifted, smoothed skin tones, flattened contrast and an
  illuminator hot spot that blows the highlights.

Shapes and strengths are parameters (frozen dataclasses, fractions of the crop side), so a
training-time generator can draw its own; the benchmark uses :data:`DEFAULT_PARAMS`. Shapes are
drawn 8x super-sampled and reduced by area, so their edges are anti-aliased at any crop size.
Pure module: numpy + OpenCV.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import cv2
import numpy as np
from numpy.typing import NDArray

#: Base of every condition's seed: (SEED, condition, index) -> numpy Generator.
SEED = 20_261_124
_SS = 8  # super-sampling of the drawn shapes

Point = tuple[float, float]  # (x, y), fractions of the crop side


@dataclass(frozen=True)
class Sunglasses:
    eye_y: float = 0.40           # lens centre height
    eye_dx: float = 0.20          # lens centre distance from the vertical mid-line
    lens_w: float = 0.30
    lens_h: float = 0.21
    lens_level: float = 22.0      # grey level of the lens
    transmission: float = 0.08    # share of the eye seen through the lens
    frame_level: float = 8.0
    frame_w: float = 0.025        # frame, bridge and arm thickness
    bridge_dy: float = -0.03      # bridge height relative to eye_y
    temples: bool = True
    glint: float = 70.0           # grey added by the highlight streaks
    glint_w: float = 0.025


@dataclass(frozen=True)
class Mask:
    top_y: float = 0.55           # top edge on the mid-line (over the nose tip)
    side_top_y: float = 0.60      # top edge at the sides
    left: float = 0.10
    right: float = 0.90
    bottom_y: float = 1.04        # under the chin (beyond the crop)
    level: float = 212.0
    pleats: int = 3
    pleat_depth: float = 0.08     # darkening along a pleat
    shade: float = 0.12           # darkening toward the mask's edges
    strap_level: float = 185.0
    strap_w: float = 0.03
    strap_to: tuple[float, float] = (0.50, 0.78)  # heights where the upper / lower straps leave the crop


@dataclass(frozen=True)
class Hand:
    fingers: tuple[tuple[Point, Point], ...]  # (base, tip) of each finger
    palm: tuple[float, float, float, float, float]  # centre x, centre y, half axes, angle (deg)
    finger_w: float = 0.085
    tone: float = 1.06            # hand grey = tone x the median of the face's cheeks
    shade: float = 0.22           # darkening at the edges of each finger and of the palm


@dataclass(frozen=True)
class RandomPatches:
    count: int = 3
    size: tuple[float, float] = (0.16, 0.26)     # side range, fraction of the crop
    level: tuple[float, float] = (96.0, 160.0)   # grey range


@dataclass(frozen=True)
class Blur:
    sigma: float = 1.5            # pixels at 48 px (scaled with the crop size)


@dataclass(frozen=True)
class LowLight:
    brightness: float = 0.5
    gamma: float = 1.6            # > 1 crushes the shadows
    read_noise: float = 3.0       # grey levels
    shot_noise: float = 0.6       # grey levels per sqrt(grey level)


@dataclass(frozen=True)
class IRContrast:
    skin_gamma: float = 0.6       # < 1 lifts mid-tones: skin reflects more in near infrared
    smooth_sigma: float = 1.0     # pixels at 48 px: fine skin texture fades
    smooth_mix: float = 0.5
    contrast: float = 0.6         # global contrast kept around the mean
    target_mean: float = 0.55     # exposure control: mean grey (0-1) before the illuminator's light
    hot_spot: tuple[float, float] = (0.5, 0.45)  # where the illuminator's light peaks (x, y)
    hot_sigma: float = 0.22       # its spread, fraction of the side
    gain: float = 1.6             # its gain at the peak (blows the highlights)
    falloff: float = 0.25         # gain lost toward the corners (vignetting)
    noise: float = 2.0            # grey levels


HAND_MOUTH = Hand(
    fingers=(((0.94, 0.69), (0.30, 0.635)), ((0.95, 0.755), (0.24, 0.725)),
             ((0.95, 0.82), (0.27, 0.815)), ((0.94, 0.885), (0.34, 0.905))),
    palm=(1.02, 0.84, 0.18, 0.2, 0.0),
)
HAND_CHEEK = Hand(
    fingers=(((0.06, 0.82), (0.12, 0.54)), ((0.13, 0.85), (0.21, 0.55)),
             ((0.20, 0.88), (0.29, 0.59)), ((0.27, 0.92), (0.35, 0.67))),
    palm=(0.08, 0.97, 0.22, 0.14, -20.0),
)

#: The benchmark's parameters, one per condition.
DEFAULT_PARAMS: dict[str, Any] = {
    "clean": None, "sunglasses": Sunglasses(), "mask": Mask(), "hand_mouth": HAND_MOUTH,
    "hand_cheek": HAND_CHEEK, "random_patches": RandomPatches(), "blur": Blur(), "low_light": LowLight(),
    "ir_contrast": IRContrast(),
}


# ----------------------------------------------------------------------------------------------
# Drawing: shapes in fractions of the side, rendered super-sampled into a coverage in [0, 1]
# ----------------------------------------------------------------------------------------------

class _Canvas:
    def __init__(self, size: int) -> None:
        self.size = size
        self.n = size * _SS
        self.img = np.zeros((self.n, self.n), np.uint8)

    def pt(self, p: Point) -> tuple[int, int]:
        return int(round(p[0] * self.n)), int(round(p[1] * self.n))

    def px(self, f: float) -> int:
        return max(1, int(round(f * self.n)))

    def ellipse(self, c: Point, half: tuple[float, float], angle: float = 0.0, thickness: float = 0.0) -> None:
        cv2.ellipse(self.img, self.pt(c), (self.px(half[0]), self.px(half[1])), angle, 0, 360, 255,
                    -1 if thickness <= 0 else self.px(thickness))

    def line(self, a: Point, b: Point, width: float) -> None:
        cv2.line(self.img, self.pt(a), self.pt(b), 255, self.px(width))  # thick lines have round ends

    def poly(self, pts: list[Point]) -> None:
        cv2.fillPoly(self.img, [np.array([self.pt(p) for p in pts], np.int32)], 255)

    def coverage(self, blur: float = 0.0) -> NDArray[np.float32]:
        """The drawing at the crop's size: area-averaged, optionally blurred first (``blur`` in fractions)."""
        a = self.img.astype(np.float32) / 255.0
        if blur > 0:
            a = cv2.GaussianBlur(a, (0, 0), blur * self.n)
        out = cv2.resize(a, (self.size, self.size), interpolation=cv2.INTER_AREA)
        out[out < 1e-4] = 0.0  # exact zero outside the shape (blurred tails)
        out.setflags(write=False)
        return out


def _blend(base: NDArray[np.float32], value: NDArray[np.float32] | float,
           alpha: NDArray[np.float32]) -> NDArray[np.float32]:
    return base * (1.0 - alpha) + value * alpha


def _to_uint8(x: NDArray[np.floating]) -> NDArray[np.uint8]:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@lru_cache(maxsize=32)
def _illumination(p: IRContrast, size: int) -> NDArray[np.float32]:
    """Gain of an active near-infrared illuminator: a hot spot over vignetting, 1 - falloff at the corners."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    dx, dy = c[None, :] - p.hot_spot[0], c[:, None] - p.hot_spot[1]
    r2 = ((c[None, :] - 0.5) ** 2 + (c[:, None] - 0.5) ** 2) / 0.5
    g = (1.0 - p.falloff * r2) * (1.0 + (p.gain - 1.0) * np.exp(-(dx ** 2 + dy ** 2) / (2 * p.hot_sigma ** 2)))
    g = g.astype(np.float32)
    g.setflags(write=False)
    return g


# ----------------------------------------------------------------------------------------------
# Conditions
# ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=32)
def _sunglasses_layers(p: Sunglasses, size: int) -> tuple[NDArray[np.float32], ...]:
    lens, frame, glint = _Canvas(size), _Canvas(size), _Canvas(size)
    half = (p.lens_w / 2, p.lens_h / 2)
    for side in (-1, 1):
        c = (0.5 + side * p.eye_dx, p.eye_y)
        lens.ellipse(c, half)
        frame.ellipse(c, half, thickness=p.frame_w)
        if p.temples:
            outer = 0.5 + side * (p.eye_dx + half[0])
            frame.line((outer, p.eye_y - 0.02), (0.5 + side * 0.6, p.eye_y - 0.03), p.frame_w)
        glint.line((c[0] - 0.30 * p.lens_w, c[1] + 0.15 * p.lens_h),
                   (c[0] - 0.05 * p.lens_w, c[1] - 0.30 * p.lens_h), p.glint_w)
        glint.line((c[0] + 0.05 * p.lens_w, c[1] + 0.30 * p.lens_h),
                   (c[0] + 0.15 * p.lens_w, c[1] + 0.12 * p.lens_h), p.glint_w * 0.6)
    inner = 0.5 - p.eye_dx + half[0]
    frame.line((inner - 0.02, p.eye_y + p.bridge_dy), (1.0 - inner + 0.02, p.eye_y + p.bridge_dy), p.frame_w)
    lens_a = lens.coverage()
    glint_a = np.minimum(glint.coverage(), lens_a) * 0.6
    return lens_a, frame.coverage(), glint_a


def sunglasses(img: NDArray[np.uint8], p: Sunglasses, rng: np.random.Generator) -> NDArray[np.uint8]:
    lens, frame, glint = _sunglasses_layers(p, img.shape[0])
    x = img.astype(np.float32)
    x = _blend(x, p.lens_level + p.transmission * x, lens)
    x = x + p.glint * glint
    return _to_uint8(_blend(x, p.frame_level, frame))


@lru_cache(maxsize=32)
def _mask_layers(p: Mask, size: int) -> tuple[NDArray[np.float32], ...]:
    body, pleats, straps = _Canvas(size), _Canvas(size), _Canvas(size)
    waist = (p.left + 0.04, 0.86), (p.right - 0.04, 0.86)
    body.poly([(p.left, p.side_top_y), (0.3, p.top_y + 0.02), (0.5, p.top_y), (0.7, p.top_y + 0.02),
               (p.right, p.side_top_y), waist[1], (0.68, p.bottom_y), (0.32, p.bottom_y), waist[0]])
    for k in range(p.pleats):
        y = p.side_top_y + (k + 1) * (0.86 - p.side_top_y) / (p.pleats + 1)
        pleats.line((p.left + 0.02, y + 0.01), (p.right - 0.02, y + 0.01), 0.025)
    for top_x, waist_x, edge in ((p.left, waist[0][0], 0.0), (p.right, waist[1][0], 1.0)):
        straps.line((top_x, p.side_top_y + 0.01), (edge, p.strap_to[0]), p.strap_w)
        straps.line((waist_x, 0.85), (edge, p.strap_to[1]), p.strap_w)
    body_a = body.coverage()
    inner = body.coverage(blur=0.06)
    return body_a, np.minimum(pleats.coverage(), body_a), np.clip(straps.coverage() - body_a, 0, 1), inner


def mask(img: NDArray[np.uint8], p: Mask, rng: np.random.Generator) -> NDArray[np.uint8]:
    body, pleats, straps, inner = _mask_layers(p, img.shape[0])
    fabric = p.level * (1.0 - p.shade * (1.0 - inner)) * (1.0 - p.pleat_depth * pleats)
    x = _blend(img.astype(np.float32), p.strap_level, straps)
    return _to_uint8(_blend(x, fabric, body))


@lru_cache(maxsize=32)
def _hand_layers(p: Hand, size: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    body, ridge = _Canvas(size), _Canvas(size)
    cx, cy, ax, ay, angle = p.palm
    body.ellipse((cx, cy), (ax, ay), angle)
    ridge.ellipse((cx, cy), (0.7 * ax, 0.7 * ay), angle)
    for base, tip in p.fingers:
        body.line(base, tip, p.finger_w)
        ridge.line(base, tip, 0.35 * p.finger_w)
    return body.coverage(), ridge.coverage(blur=0.2 * p.finger_w)


def cheek_level(img: NDArray[np.uint8]) -> float:
    """Median grey of both cheeks (rows 50-62 %, columns 18-32 % and 68-82 % of the crop)."""
    s = img.shape[0]
    r = slice(int(0.50 * s), int(0.62 * s))
    cheeks = np.concatenate([img[r, int(0.18 * s):int(0.32 * s)].ravel(), img[r, int(0.68 * s):int(0.82 * s)].ravel()])
    return float(np.median(cheeks))


def hand(img: NDArray[np.uint8], p: Hand, rng: np.random.Generator) -> NDArray[np.uint8]:
    body, ridge = _hand_layers(p, img.shape[0])
    ridge_n = ridge / max(float(ridge.max()), 1e-6)
    skin = min(p.tone * cheek_level(img), 235.0) * (1.0 - p.shade + p.shade * ridge_n)
    return _to_uint8(_blend(img.astype(np.float32), skin, body))


def random_patches(img: NDArray[np.uint8], p: RandomPatches, rng: np.random.Generator) -> NDArray[np.uint8]:
    s = img.shape[0]
    out = img.copy()
    for _ in range(p.count):
        w, h = (max(1, int(round(rng.uniform(*p.size) * s))) for _ in range(2))
        x0, y0 = int(rng.integers(0, s - w + 1)), int(rng.integers(0, s - h + 1))
        out[y0:y0 + h, x0:x0 + w] = int(round(rng.uniform(*p.level)))
    return out


def blur(img: NDArray[np.uint8], p: Blur, rng: np.random.Generator) -> NDArray[np.uint8]:
    return cv2.GaussianBlur(img, (0, 0), p.sigma * img.shape[0] / 48.0, borderType=cv2.BORDER_REFLECT_101)


def low_light(img: NDArray[np.uint8], p: LowLight, rng: np.random.Generator) -> NDArray[np.uint8]:
    y = 255.0 * p.brightness * (img.astype(np.float64) / 255.0) ** p.gamma
    sigma = np.sqrt(p.read_noise ** 2 + p.shot_noise ** 2 * y)
    return _to_uint8(y + sigma * rng.standard_normal(img.shape))


def ir_contrast(img: NDArray[np.uint8], p: IRContrast, rng: np.random.Generator) -> NDArray[np.uint8]:
    s = img.shape[0]
    x = (img.astype(np.float32) / 255.0) ** p.skin_gamma
    smooth = cv2.GaussianBlur(x, (0, 0), p.smooth_sigma * s / 48.0, borderType=cv2.BORDER_REFLECT_101)
    x = (1.0 - p.smooth_mix) * x + p.smooth_mix * smooth
    x = p.target_mean + p.contrast * (x - x.mean())
    x = x * _illumination(p, s)
    return _to_uint8(255.0 * x + p.noise * rng.standard_normal(img.shape))


def clean(img: NDArray[np.uint8], p: None, rng: np.random.Generator) -> NDArray[np.uint8]:
    return img.copy()


_APPLY: dict[str, Callable[[NDArray[np.uint8], Any, np.random.Generator], NDArray[np.uint8]]] = {
    "clean": clean, "sunglasses": sunglasses, "mask": mask, "hand_mouth": hand, "hand_cheek": hand,
    "random_patches": random_patches, "blur": blur, "low_light": low_light, "ir_contrast": ir_contrast,
}
#: Condition names, in report order.
CONDITIONS: tuple[str, ...] = tuple(_APPLY)


def rng_for(condition: str, index: int) -> np.random.Generator:
    """The generator of ``condition`` for the crop at ``index``: the same (condition, index), the same draws."""
    return np.random.default_rng([SEED, zlib.crc32(condition.encode()), int(index)])


def occlude(image: NDArray[np.uint8], condition: str, index: int, params: Any = None) -> NDArray[np.uint8]:
    """``image`` (S, S) uint8 grey under ``condition``; ``index`` seeds its random parts,
    ``params`` replaces the benchmark's :data:`DEFAULT_PARAMS` (same type)."""
    if condition not in _APPLY:
        raise ValueError(f"unknown occlusion condition {condition!r}; expected one of {list(CONDITIONS)}")
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 2 or img.shape[0] != img.shape[1]:
        raise ValueError(f"occlusion needs one (S, S) uint8 grey crop, got {img.shape} {img.dtype}")
    p = DEFAULT_PARAMS[condition] if params is None else params
    return _APPLY[condition](img, p, rng_for(condition, index))


def occlude_all(images: NDArray[np.uint8], condition: str, *, start: int = 0, params: Any = None) -> NDArray[np.uint8]:
    """``(N, S, S)`` crops under ``condition``; crop ``i`` gets index ``start + i``."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = occlude(img, condition, start + i, params)
    return out
