"""A manifest as a `torch.utils.data.Dataset` (imported only through acnedata.loaders)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from acnedata.loaders import load_image
from acnedata.manifest import Manifest


class ManifestDataset(Dataset):
    """(image, label) per item; images decoded on access, so DataLoader workers share the load."""

    def __init__(self, manifest: Manifest, size: tuple[int, int] | None, transform: Any = None):
        self.manifest = manifest
        self.size = size
        self.transform = transform
        self.class_names = manifest.class_names
        self._paths = manifest.paths()
        index = {name: k for k, name in enumerate(self.class_names)}
        self._labels = [index[item["label"]] for item in manifest]

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, k: int) -> tuple[Any, int]:
        pixels = load_image(self._paths[k], self.size)
        if self.transform is not None:
            return self.transform(Image.fromarray(pixels)), self._labels[k]
        chw = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / 255
        return torch.from_numpy(chw), self._labels[k]
