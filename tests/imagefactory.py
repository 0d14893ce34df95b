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
