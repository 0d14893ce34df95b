"""Small valid manifests of Pillow-drawn images for acnemodel's tests (no network, no real data)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from acnedata.manifest import load_manifest, write_manifest

CLASSES = ("comedonal", "papular", "pustular")


def _pattern(kind: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A class-distinguishable base image: stripes one way, stripes the other, or a checker."""
    yy, xx = np.mgrid[0:size, 0:size]
    period = 6 + int(rng.integers(0, 3))
    if kind % 3 == 0:
        mask = (yy // period) % 2 == 0
    elif kind % 3 == 1:
        mask = (xx // period) % 2 == 0
    else:
        mask = ((yy // period) + (xx // period)) % 2 == 0
    colour = np.zeros(3)
    colour[kind % 3] = 200
    base = np.where(mask[..., None], colour, 40.0)
    # an off-centre blob makes augmentation (shifts, flips) visibly change the pixels
    cy, cx = rng.integers(size // 4, size // 2, size=2)
    base[(yy - cy) ** 2 + (xx - cx) ** 2 < (size // 6) ** 2] = (230, 230, 230)
    return base


def make_manifest(
    folder: str | Path,
    *,
    classes: Sequence[str] = CLASSES,
    clusters_per_class: int = 6,
    size: int = 40,
    nd_clusters: int = 0,
    splits: Mapping[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """Write images and a schema-valid manifest.json into `folder`; return the manifest path.

    Cluster k of a class holds 1 + k % 3 near-copies (the same drawing plus a little noise), so a
    default call gives 12 items per class in 6 clusters. The first `nd_clusters` clusters of each
    class carry `no_derivatives: true`. `splits` maps item id → "train" / "test" / "validation".
    Item ids are "<class>-c<k>-<j>", clusters "<class>-c<k>".
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = splits or {}
    items: list[dict[str, Any]] = []
    for kind, label in enumerate(classes):
        for k in range(clusters_per_class):
            base = _pattern(kind, size, rng)
            for j in range(1 + k % 3):
                pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
                item_id = f"{label}-c{k}-{j}"
                rel = f"images/{item_id}.png"
                Image.fromarray(pixels).save(folder / rel)
                item: dict[str, Any] = {
                    "id": item_id,
                    "file": rel,
                    "sha256": hashlib.sha256((folder / rel).read_bytes()).hexdigest(),
                    "width": size,
                    "height": size,
                    "format": "PNG",
                    "label": label,
                    "cluster": f"{label}-c{k}",
                    "source": {"name": "test-factory", "url": f"https://example.invalid/{item_id}"},
                    "licence": {
                        "spdx": "CC-BY-ND-4.0" if k < nd_clusters else "CC-BY-4.0",
                        "author": "tests",
                        "no_derivatives": k < nd_clusters,
                    },
                }
                if item_id in splits:
                    item["split"] = splits[item_id]
                items.append(item)
    data = {
        "schema_version": "1.0",
        "name": "factory",
        "created": "2024-01-01T00:00:00+00:00",
        "tool": {"name": "tests", "version": "0"},
        "classes": [{"name": c} for c in classes],
        "licence_policy": {},
        "counts": {"items": len(items)},
        "items": items,
    }
    path = write_manifest(folder / "manifest.json", data)
    load_manifest(path)  # the factory's promise: what it writes passes acnedata's validation
    return path


def edit_manifest(path: str | Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """Apply `change` to the manifest's JSON in place (tests only), keeping it schema-valid."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    return write_manifest(path, data)
