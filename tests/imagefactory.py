"""Deterministic, textured, mutually distinct test images made with numpy and Pillow."""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image

KINDS = ("blobs", "gradient", "waves", "noise")


def make_image(kind: int | str, size: tuple[int, int] = (128, 128), seed: int = 0) -> Image.Image:
    """An RGB image whose low-frequency structure (what pHash sees) differs per (kind, seed)."""
    if isinstance(kind, str) and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use an int or one of {KINDS}")
    rng = np.random.default_rng(zlib.crc32(f"{kind}:{seed}".encode()))
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    xx /= max(width - 1, 1)
    yy /= max(height - 1, 1)
    canvas = np.zeros((height, width, 3))

    # A random linear gradient per channel sets the overall layout.
    for c in range(3):
        gx, gy = rng.uniform(-1, 1, size=2)
        canvas[..., c] += 0.5 + 0.4 * (gx * (xx - 0.5) + gy * (yy - 0.5))

    style = kind if isinstance(kind, str) else KINDS[0]
    if style in ("blobs", "noise") or isinstance(kind, int):
        for _ in range(14):
            cx, cy = rng.uniform(0, 1, size=2)
            sigma = rng.uniform(0.04, 0.18)
            colour = rng.uniform(-0.7, 0.7, size=3)
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
            canvas += blob[..., None] * colour
    if style in ("waves", "gradient") or isinstance(kind, int):
        for _ in range(3):
            fx, fy = rng.uniform(-6, 6, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            colour = rng.uniform(-0.25, 0.25, size=3)
            canvas += np.sin(2 * np.pi * (fx * xx + fy * yy) + phase)[..., None] * colour
    # Fine texture so JPEG has something to lose and no two images are bit-identical.
    amount = 0.15 if style == "noise" else 0.04
    canvas += rng.normal(0, amount, size=canvas.shape)
    return Image.fromarray(np.clip(canvas * 255, 0, 255).astype(np.uint8), "RGB")


def to_bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    """Encode img as fmt (a Pillow format name) with the given save options."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_skin(seed: int, side: int = 128) -> Image.Image:
    """A skin close-up as acne datasets hold them: a smooth skin tone with a gentle gradient and
    25 small red spots. Such photos have few corners, so an overlay can dominate their keypoints."""
    from PIL import ImageFilter

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    base = np.array([205, 150, 125.0]) + rng.uniform(-25, 25, 3)
    tilt = 0.15 * ((xx - 0.5) * rng.uniform(-1, 1) + (yy - 0.5) * rng.uniform(-1, 1))
    img = base[None, None, :] * (1 + tilt)[..., None]
    for _ in range(25):
        cx, cy = rng.uniform(0, 1, 2)
        s = rng.uniform(0.01, 0.04)
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        img += spot[..., None] * np.array([20, -45, -40]) * rng.uniform(0.5, 1.2)
    img += rng.normal(0, 3, img.shape)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(0.7))


def make_soft_skin(seed: int, side: int = 128) -> Image.Image:
    """An even smoother close-up: a skin tone with three broad soft patches. At thumbnail size
    two of these differ little, the hard case for whole-image verification."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = np.full((side, side, 3), [200, 150, 130.0])
    for _ in range(3):
        cx, cy = rng.uniform(0.2, 0.8, 2)
        s = rng.uniform(0.15, 0.3)
        patch = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        img += patch[..., None] * np.array([25, -20, -20]) * rng.uniform(-1, 1)
    img += rng.normal(0, 2, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_lit_cheek(detail_seed: int, side: int = 128) -> Image.Image:
    """A cheek lit from one side: the same light fall-off for every seed, and 150 faint pores
    and spots of the seed's own. Two of these share their shading and nothing else."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    shade = 1 + 0.25 * (xx - 0.5) + 0.15 * np.exp(-((xx - 0.3) ** 2 + (yy - 0.4) ** 2) / 0.08)
    img = np.array([200, 150, 130.0])[None, None, :] * shade[..., None]
    rng = np.random.default_rng(detail_seed)
    for _ in range(150):
        cx, cy = rng.uniform(0, 1, 2)
        s = rng.uniform(0.008, 0.02)
        spot = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))
        img += spot[..., None] * np.array([7, -17.5, -14]) * rng.uniform(0.5, 1.0)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
