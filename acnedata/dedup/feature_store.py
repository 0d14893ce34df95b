"""Region features kept on disk by image hash, so a content stage scans each image once."""

# Finding an image's keypoints costs ~60 ms of CPU; matching all images against each other is
# redone whenever the collection changes, but an image's own features are not. They are kept in
# OUT/features/<settings key>/<sha256[:2]>/<sha256>.npz: Ray workers write them next to the image
# they store (the output folder is shared), and the content stage reads them instead of scanning.
# Written atomically, so a killed run leaves either a whole file or none.

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import astuple
from pathlib import Path
from typing import Any

import numpy as np

from acnedata.dedup.keypoints import Features, RegionConfig
from acnedata.dedup.mosaics import Mosaic

FOLDER = "features"
# Bump when the file layout changes, or how its contents are found (2: mosaics found by two
# crossing seams and inside frames as well): old files are then not read.
_FORMAT = 2
_ARRAYS = ("points", "descriptors", "mirror_points", "mirror_descriptors", "thumb")


def store_dir(out_dir: str | Path, config: RegionConfig) -> Path:
    """Where features found with these settings live: other settings, other features."""
    key = hashlib.sha256(f"{_FORMAT}|{astuple(config)}".encode()).hexdigest()[:12]
    return Path(out_dir) / FOLDER / key


def _path(folder: Path, sha256: str) -> Path:
    return folder / sha256[:2] / f"{sha256}.npz"


def save(folder: Path, sha256: str, scanned: tuple[Mosaic | None, Features]) -> None:
    """Keep one image's scan result (mosaic seams or None, features)."""
    mosaic, feats = scanned
    path = _path(folder, sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    seams = mosaic and [mosaic.tiles, [list(x) for x in mosaic.seams], mosaic.score]
    meta = {"size": list(feats.size), "mosaic": seams}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, meta=np.array(json.dumps(meta)), **{k: getattr(feats, k) for k in _ARRAYS})
    os.replace(tmp, path)


def keep(folder: Path, sha256: str, scanned: tuple[Mosaic | None, Features | None] | None) -> bool:
    """save() a scan result that has features (not an unreadable or featureless image); whether
    it did."""
    if scanned is None or scanned[1] is None:
        return False
    save(folder, sha256, scanned)  # type: ignore[arg-type]
    return True


def has(folder: Path, sha256: str) -> bool:
    """Whether an image's features are kept here (without reading them)."""
    return _path(folder, sha256).is_file()


def load(folder: Path, sha256: str) -> tuple[Mosaic | None, Features] | None:
    """The kept scan result of an image, or None when there is none (or it cannot be read)."""
    try:
        with np.load(_path(folder, sha256), allow_pickle=False) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in _ARRAYS}
    except (OSError, ValueError, KeyError):
        return None
    m = meta["mosaic"]
    mosaic = None if m is None else Mosaic(m[0], tuple((a, float(p)) for a, p in m[1]), m[2])
    return mosaic, Features(size=tuple(meta["size"]), **arrays)  # type: ignore[arg-type]


def count(folder: Path) -> int:
    """How many images have features kept here."""
    return sum(1 for _ in folder.glob("*/*.npz")) if folder.is_dir() else 0
