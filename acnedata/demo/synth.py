"""Procedurally drawn skin-like images with a distinct lesion pattern per acne class."""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

CLASSES = ("comedonal", "papular", "pustular", "nodulocystic")
NEAR_COPY_KINDS = ("recompress", "brightness", "crop")

# Anchor skin tones from light to deep (sRGB, 0..1); a random point between two neighbours gives
# the background colour, so the demo covers a range of skin types rather than one pink.
_SKIN_ANCHORS = np.array(
    [
        (0.95, 0.78, 0.68),
        (0.89, 0.69, 0.55),
        (0.78, 0.55, 0.40),
        (0.58, 0.37, 0.25),
        (0.38, 0.24, 0.17),
    ],
    dtype=np.float32,
)


def draw_lesion_image(class_name: str, seed: int, size: int = 256) -> Image.Image:
    """Draw one RGB `size`×`size` skin image with lesions of `class_name`, the same for a seed."""
    if class_name not in CLASSES:
        raise ValueError(f"unknown class {class_name!r}; use one of {', '.join(CLASSES)}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    # The class goes into the seed so that seed 3 of two classes are unrelated pictures.
    rng = np.random.default_rng([zlib.crc32(class_name.encode()), seed & (2**64 - 1)])
    k = size / 256.0
    skin = _skin_tone(rng)
    img = _skin_background(rng, size, skin)
    light = rng.uniform(0, 2 * np.pi)  # direction the light comes from, for highlights/shadows
    painter = _Painter(img, rng, light)
    if class_name == "comedonal":
        _draw_comedones(painter, rng, size, k, skin)
    elif class_name == "papular":
        _draw_papules(painter, rng, size, k, skin, pustules=False)
    elif class_name == "pustular":
        _draw_papules(painter, rng, size, k, skin, pustules=True)
    else:
        _draw_nodules(painter, rng, size, k, skin)
    img = img * _lighting(rng, size, light)
    return Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")


def near_copy(img: Image.Image, kind: str, seed: int) -> Image.Image:
    """A near duplicate of `img`: "recompress" (resize + JPEG), "brightness" or "crop"."""
    rng = np.random.default_rng(seed & (2**64 - 1))
    img = img.convert("RGB")
    w, h = img.size
    if kind == "recompress":
        # What a re-upload does: someone downscaled and re-saved the photo at a lower quality.
        scale = rng.uniform(0.7, 0.9)
        small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, "JPEG", quality=int(rng.integers(60, 80)))
        buf.seek(0)
        out = Image.open(buf)
        out.load()
        return out.convert("RGB")
    if kind == "brightness":
        factor = 1.0 + float(rng.choice([-1, 1])) * rng.uniform(0.05, 0.1)
        return ImageEnhance.Brightness(img).enhance(factor)
    if kind == "crop":
        # A few percent off each edge: enough to change every byte, not the perceptual hash.
        dx = max(1, round(w * rng.uniform(0.004, 0.01)))
        dy = max(1, round(h * rng.uniform(0.004, 0.01)))
        return img.crop((dx, dy, w - dx, h - dy))
    raise ValueError(f"unknown near-copy kind {kind!r}; use one of {', '.join(NEAR_COPY_KINDS)}")


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN_ANCHORS) - 1)
    i = min(int(t), len(_SKIN_ANCHORS) - 2)
    f = t - i
    tone = _SKIN_ANCHORS[i] * (1 - f) + _SKIN_ANCHORS[i + 1] * f
    return (tone * rng.uniform(0.97, 1.03, 3)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Noise with features about size/cells wide, in roughly [-1, 1]."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((size, size), Image.BICUBIC))


def _skin_background(rng: np.random.Generator, size: int, skin: np.ndarray) -> np.ndarray:
    # Blotchy tone variation (redder and paler patches), fine relief, grain and pores; built as
    # 2-D fields and applied per channel, which is several times faster than (H, W, 3) temporaries.
    blotch = _smooth_noise(rng, size, int(rng.integers(4, 8)))
    relief = _smooth_noise(rng, size, max(8, size // 6))
    grain = 0.012 * rng.standard_normal((size, size), dtype=np.float32)
    # Pores: sparse points, blurred into small soft dark dots.
    pores = np.zeros((size, size), np.uint8)
    n = int(size * size / rng.uniform(120, 260))
    pores[rng.integers(0, size, n), rng.integers(0, size, n)] = rng.integers(120, 255, n)
    soft = np.asarray(Image.fromarray(pores, "L").filter(ImageFilter.GaussianBlur(0.7)))
    lum = (1.0 + 0.02 * relief) * (1.0 - (0.35 / 255.0) * soft.astype(np.float32))
    img = np.empty((size, size, 3), np.float32)
    for ch, tint in enumerate((0.6, 1.0, 1.0)):
        img[..., ch] = float(skin[ch]) * (1.0 + 0.05 * tint * blotch) * lum + grain
    return img


def _lighting(rng: np.random.Generator, size: int, light: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    strength = rng.uniform(0.12, 0.35)
    grad = 1.0 + strength * (x * np.cos(light) + y * np.sin(light))
    vignette = 1.0 - rng.uniform(0.05, 0.2) * (x * x + y * y) * 2
    return (grad * vignette * rng.uniform(0.92, 1.08))[..., None].astype(np.float32)


class _Painter:
    """Alpha-blends soft elliptical blobs into a float image, touching only a local patch."""

    def __init__(self, img: np.ndarray, rng: np.random.Generator, light: float):
        self.img, self.rng = img, rng
        self.lx, self.ly = float(np.cos(light)), float(np.sin(light))

    def blob(self, cx, cy, rx, ry, color, alpha, power=2.0, angle=0.0):
        h, w, _ = self.img.shape
        reach = 2.6 * max(rx, ry)
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 2)
        y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 2)
        if x0 >= x1 or y0 >= y1:
            return
        # Open grids: a column and a row that broadcast, instead of two full coordinate arrays.
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        u, v = (dx * c + dy * s) / rx, (-dx * s + dy * c) / ry
        # power 2 is a Gaussian; higher powers give a flat top with a sharper rim (a papule's
        # dome or a pustule's head) instead of a smudge.
        d2 = u * u + v * v
        if power == 2.0:
            a = alpha * np.exp(-d2)
        elif power == 4.0:
            a = alpha * np.exp(-(d2 * d2))
        else:
            a = alpha * np.exp(-(d2 ** (power / 2.0)))
        patch = self.img[y0:y1, x0:x1]
        patch += (np.asarray(color, np.float32) - patch) * a[..., None]

    def dome(self, cx, cy, r, color, alpha, power=3.0, relief=1.0):
        """A raised lesion: body, a shadow on the far side and a highlight towards the light."""
        angle = self.rng.uniform(0, np.pi)
        ry = r * self.rng.uniform(0.8, 1.0)
        self.blob(cx, cy, r, ry, color, alpha, power, angle)
        shade = np.asarray(color, np.float32) * 0.6
        self.blob(
            cx - self.lx * r * 0.35,
            cy - self.ly * r * 0.35,
            r * 0.7,
            ry * 0.7,
            shade,
            0.25 * relief,
            2.0,
            angle,
        )
        self.blob(
            cx + self.lx * r * 0.35,
            cy + self.ly * r * 0.35,
            r * 0.35,
            r * 0.3,
            (1.0, 0.97, 0.95),
            0.28 * relief,
            2.0,
            angle,
        )


def _positions(rng: np.random.Generator, n: int, size: int, margin: float) -> np.ndarray:
    """Lesion centres: partly clustered (lesions group on cheeks, forehead), partly scattered."""
    n_clustered = int(n * rng.uniform(0.3, 0.7))
    centres = rng.uniform(margin, size - margin, (int(rng.integers(1, 4)), 2))
    pick = centres[rng.integers(0, len(centres), n_clustered)]
    clustered = pick + rng.normal(0, size * 0.12, (n_clustered, 2))
    scattered = rng.uniform(margin, size - margin, (n - n_clustered, 2))
    return np.clip(np.vstack([clustered, scattered]), margin, size - margin)


def _red_for(skin: np.ndarray, depth: float) -> np.ndarray:
    # Inflammation looks pinker on light skin and darker, browner-red on deep skin.
    red = np.array([0.80, 0.20, 0.22], np.float32)
    return (red * (0.55 + 0.45 * float(skin.mean())) * depth).astype(np.float32)


def _draw_comedones(p: _Painter, rng, size: int, k: float, skin: np.ndarray) -> None:
    n = int(rng.integers(45, 110))
    for cx, cy in _positions(rng, n, size, 4 * k):
        if rng.random() < 0.55:
            # Open comedo (blackhead): a tiny dark plug with a faint darker rim.
            r = rng.uniform(1.0, 2.3) * k
            plug = np.array([0.16, 0.11, 0.08], np.float32) * rng.uniform(0.7, 1.3)
            p.blob(cx, cy, r * 2.0, r * 2.0, skin * 0.8, 0.3, 2.0)
            p.blob(
                cx,
                cy,
                r,
                r * rng.uniform(0.7, 1.0),
                plug,
                rng.uniform(0.75, 0.95),
                4.0,
                rng.uniform(0, np.pi),
            )
        else:
            # Closed comedo (whitehead): a small pale skin-coloured bump, no redness.
            r = rng.uniform(2.0, 3.5) * k
            pale = np.minimum(skin * 1.1 + np.array([0.14, 0.14, 0.12], np.float32), 1.0)
            p.dome(cx, cy, r, pale, rng.uniform(0.6, 0.85), 3.0, relief=0.8)


def _draw_papules(
    p: _Painter, rng, size: int, k: float, skin: np.ndarray, *, pustules: bool
) -> None:
    n = int(rng.integers(6, 16) if pustules else rng.integers(8, 22))
    for cx, cy in _positions(rng, n, size, 10 * k):
        r = rng.uniform(4.0, 8.0) * k if pustules else rng.uniform(3.0, 7.0) * k
        red = _red_for(skin, rng.uniform(0.9, 1.1))
        # Erythema halo first, then the raised dome on top of it.
        p.blob(cx, cy, r * 2.2, r * 2.0, red, rng.uniform(0.25, 0.4), 2.0, rng.uniform(0, np.pi))
        p.dome(cx, cy, r, red, rng.uniform(0.7, 0.9), 3.0)
        if pustules:
            # The yellow-white head of pus that tells a pustule from a papule.
            head = np.array([0.98, 0.93, 0.68], np.float32) * rng.uniform(0.92, 1.0)
            hr = r * rng.uniform(0.4, 0.6)
            p.blob(
                cx,
                cy,
                hr,
                hr * rng.uniform(0.8, 1.0),
                head,
                rng.uniform(0.85, 0.97),
                4.0,
                rng.uniform(0, np.pi),
            )
            p.blob(
                cx + p.lx * hr * 0.3,
                cy + p.ly * hr * 0.3,
                hr * 0.3,
                hr * 0.3,
                (1.0, 1.0, 0.97),
                0.5,
                2.0,
            )


def _draw_nodules(p: _Painter, rng, size: int, k: float, skin: np.ndarray) -> None:
    n = int(rng.integers(2, 6))
    for cx, cy in _positions(rng, n, size, 30 * k):
        r = rng.uniform(16.0, 34.0) * k
        # Deep lesions: red shifted to purple, wide diffuse swelling rather than a sharp dome.
        deep = _red_for(skin, rng.uniform(0.7, 0.85)) + np.array([0.0, 0.0, 0.12], np.float32)
        p.blob(cx, cy, r * 1.7, r * 1.5, deep, rng.uniform(0.3, 0.45), 2.0, rng.uniform(0, np.pi))
        p.dome(cx, cy, r, deep, rng.uniform(0.6, 0.8), 2.0, relief=0.7)
