"""Leak audit: near-copies across two sides of a split, found by content (region matching)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from acnedata.dedup import regions
from acnedata.dedup.content import scan_files
from acnedata.dedup.regions import DEFAULT_REGION_CONFIG, RegionConfig
from acnedata.errors import AcnedataError
from acnedata.manifest import load_manifest
from acnedata.sources.folder import IMAGE_SUFFIXES

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Leak:
    """A test image that shares content with a train image. relation is the test image's:
    `same`, `crop` (test is a crop of train), `contains` (test holds train, e.g. as a mosaic
    tile) or `overlap`; areas are the share of each image the shared region covers."""

    test: str
    train: str
    relation: str
    area_test: float
    area_train: float
    inliers: int

    def line(self) -> str:
        return (
            f"{self.test} ~ {self.train} ({self.relation}: {self.area_test:.0%} of the test "
            f"image, {self.area_train:.0%} of the train image, {self.inliers} matched points)"
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def side_paths(spec: str) -> list[Path]:
    """The image files of one side: a folder (searched recursively), a manifest, or a
    manifest with a split (`manifest.json:test`: only the items whose split is test)."""
    head, sep, tail = spec.rpartition(":")
    path, split = (head, tail) if sep and tail in SPLITS else (spec, "")
    target = Path(path)
    if target.is_dir() and not (target / "manifest.json").is_file():
        files = sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise AcnedataError(f"{spec}: no images in this folder; give a folder of images")
        return files
    if target.is_dir():
        target = target / "manifest.json"
    if not target.is_file():
        raise AcnedataError(
            f"{spec}: not found; give a folder of images, a manifest.json, or MANIFEST:SPLIT"
        )
    manifest = load_manifest(target)
    items = [i for i in manifest.items if not split or i.get("split") == split]
    if not items:
        raise AcnedataError(
            f"{spec}: no items{' with split ' + split if split else ''}; give a split its "
            "items have (train, validation or test)"
        )
    return [manifest.file_path(i) for i in items]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def audit_paths(
    train: Sequence[Path],
    test: Sequence[Path],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
) -> list[Leak]:
    """Every (test, train) pair that shares content: byte-identical files, or a region the
    matcher verifies. One line per pair, test images in the order given."""
    train, test = list(train), list(test)
    leaks: dict[tuple[int, int], Leak] = {}
    by_sha: dict[str, list[int]] = {}
    for j, path in enumerate(train):
        by_sha.setdefault(_sha256(path), []).append(j)
    for i, path in enumerate(test):
        for j in by_sha.get(_sha256(path), []):
            leaks[(i, j)] = Leak(str(test[i]), str(train[j]), "same", 1.0, 1.0, 0)
    scanned = scan_files([str(p) for p in [*test, *train]], config, workers)
    feats = [s[1] if s else None for s in scanned]
    for m in regions.match_across(feats[: len(test)], feats[len(test) :], config, workers):
        leaks.setdefault(
            (m.a, m.b),
            Leak(str(test[m.a]), str(train[m.b]), m.relation, m.area_a, m.area_b, m.inliers),
        )
    return [leaks[k] for k in sorted(leaks)]


def audit(train_spec: str, test_spec: str, workers: int | None = None) -> list[Leak]:
    """audit_paths for two sides given as folders, manifests or MANIFEST:SPLIT."""
    return audit_paths(side_paths(train_spec), side_paths(test_spec), workers=workers)
