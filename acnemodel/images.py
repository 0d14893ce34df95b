"""Read one image file into RGB pixels and resize it to a model's input, the same way everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from acnemodel.errors import ModelError

# Pillow's filters: `nearest` is what Keras's old load_img / flow_from_directory used; Pillow's
# bilinear antialiases when shrinking, which keeps 128→32 downscales from aliasing.
INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}


class ImageReadError(ModelError):
    """One image could not be decoded; the message says why."""


def check_interpolation(name: str) -> str:
    if name not in INTERPOLATIONS:
        raise ModelError(f"interpolation {name!r} is not one of {', '.join(INTERPOLATIONS)}")
    return name


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode a file to uint8 RGB (H, W, 3), EXIF orientation applied; ImageReadError if not."""
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path}: not a readable image ({reason})") from None


def to_input(pixels: np.ndarray, image_size: tuple[int, int], interpolation: str) -> np.ndarray:
    """uint8 RGB → float32 (height, width, 3) in [0, 1] at the model's input size."""
    height, width = image_size
    if pixels.shape[:2] != (height, width):
        img = Image.fromarray(pixels).resize((width, height), INTERPOLATIONS[interpolation])
        pixels = np.asarray(img, dtype=np.uint8)
    return pixels.astype(np.float32) / 255.0


def load_input(path: str | Path, image_size: tuple[int, int], interpolation: str) -> np.ndarray:
    """read_rgb + to_input: what training and prediction both feed the model."""
    return to_input(read_rgb(path), image_size, interpolation)
