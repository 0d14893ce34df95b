"""Roboflow-style augmentations for benchmarks: crops, turns, flips, shear, rotation, tone."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def crop(im: Image.Image, rng: random.Random, removed: tuple[float, float] = (0.1, 0.5)
         ) -> Image.Image:  # fmt: skip
    """A random crop that removes a share of the area in `removed`, resized back to the frame."""
    w, h = im.size
    keep = 1 - rng.uniform(*removed)
    aspect = rng.uniform(0.8, 1.25)
    cw = min(w, round(w * (keep * aspect) ** 0.5))
    ch = min(h, round(h * keep * w / max(cw, 1)))
    x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return im.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.BILINEAR)


def shear(im: Image.Image, rng: random.Random, degrees: float = 15) -> Image.Image:
    k = np.tan(np.deg2rad(rng.uniform(-degrees, degrees)))
    w, h = im.size
    data = (1, k, -k * h / 2, 0, 1, 0) if rng.random() < 0.5 else (1, 0, 0, k, 1, -k * w / 2)
    return im.transform((w, h), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR)


def rotate(im: Image.Image, rng: random.Random, degrees: float = 15) -> Image.Image:
    return im.rotate(rng.uniform(-degrees, degrees), Image.Resampling.BILINEAR)


def tone(im: Image.Image, rng: random.Random) -> Image.Image:
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.75, 1.25))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.75, 1.25))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + rng.randint(-10, 10)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def blur(im: Image.Image, rng: random.Random) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))


def noise(im: Image.Image, rng: random.Random) -> Image.Image:
    a = np.asarray(im).copy()
    mask = np.random.default_rng(rng.randrange(1 << 30)).random(a.shape[:2]) < 0.04
    a[mask] = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, (mask.sum(), 3))
    return Image.fromarray(a)


def turn_and_flip(im: Image.Image, rng: random.Random) -> Image.Image:
    im = im.rotate(90 * rng.randrange(4), expand=True)
    return ImageOps.mirror(im) if rng.random() < 0.5 else im


STEPS = (crop, turn_and_flip, shear, rotate, tone, blur, noise)


def roboflow_variant(im: Image.Image, rng: random.Random) -> Image.Image:
    """One augmented copy: each step applied with probability 1/2 (at least one applied)."""
    chosen = [step for step in STEPS if rng.random() < 0.5] or [rng.choice(STEPS)]
    out = im.convert("RGB")
    for step in chosen:
        out = step(out, rng)
    return out
