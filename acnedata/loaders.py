"""Framework-neutral loading of a manifest: numpy arrays, or a PyTorch Dataset (torch extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from acnedata.errors import AcnedataError
from acnedata.images import load_rgb
from acnedata.manifest import Manifest, load_manifest

__all__ = ["load_image", "numpy_arrays", "torch_dataset"]


def _manifest(manifest: Manifest | str | Path) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest)


def _size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """(width, height); an int is a square; None keeps each image's own size."""
    return None if size is None else _pair(size)


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    width, height = (size, size) if isinstance(size, int) else size
    if width < 1 or height < 1:
        raise AcnedataError(f"size {size}: use positive pixel counts, e.g. 64 or (64, 48)")
    return int(width), int(height)


def load_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One image as uint8 RGB (height, width, 3): EXIF orientation applied, resized bilinear."""
    try:
        rgb = load_rgb(path)
    except OSError as exc:
        raise AcnedataError(
            f"{path}: cannot be read as an image ({exc}); run `acnedata verify` on its folder"
        ) from None
    if size is not None and rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def numpy_arrays(
    manifest: Manifest | str | Path,
    size: int | tuple[int, int],
    split: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of the manifest's items, or of one split's.

    images: float32 (N, height, width, 3) in [0, 1]; labels: int64 class positions in the
    manifest's class list (`manifest.class_names`). `size` is an int (square) or (width,
    height). No TensorFlow, no torch: what any training stack can take.
    """
    m = _manifest(manifest)
    wh = _pair(size)
    if split is not None:
        m = m.filter(split=split)
    index = {name: k for k, name in enumerate(m.class_names)}
    images = np.zeros((len(m), wh[1], wh[0], 3), dtype=np.float32)
    for k, path in enumerate(m.paths()):
        images[k] = load_image(path, wh) / np.float32(255)
    labels = np.array([index[item["label"]] for item in m], dtype=np.int64)
    return images, labels


def torch_dataset(
    manifest: Manifest | str | Path,
    size: int | tuple[int, int] | None = None,
    split: str | None = None,
    transform: Any = None,
) -> Any:
    """A `torch.utils.data.Dataset` of (image, label): float32 CHW tensors in [0, 1], or what
    `transform` makes of the PIL image; needs the torch extra."""
    try:
        from acnedata.torch_dataset import ManifestDataset
    except ImportError:
        raise AcnedataError(
            "torch_dataset needs PyTorch: install the torch extra: pip install 'acnedata[torch]'"
        ) from None
    m = _manifest(manifest)
    if split is not None:
        m = m.filter(split=split)
    return ManifestDataset(m, _size(size), transform)
