"""The content stage of a collection: mosaics found, region links between its stored images."""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any

import cv2
from PIL import Image, ImageOps

from acnedata.dedup import feature_store, mosaics, regions

log = logging.getLogger(__name__)

# exclude: mosaics leave the manifest; group: their links join groups like any other;
# follow: their links stay links (pipeline.group), which a split honours (acnemodel.split)
EXCLUDE, GROUP, FOLLOW = "exclude", "group", "follow"
_FINGERPRINT = "regions_fingerprint"  # catalog meta: what the stored links were computed from
# Bump when the mosaic finder or the matcher finds differently, so stored links are recomputed
# (2: crossing seams, mosaics on frames; covering copies ranked by what they span).
_METHOD = 2


@dataclass
class ContentReport:
    """What the content stage found: counts for the summary, and the links for the catalog."""

    scanned: int = 0
    unreadable: int = 0
    mosaics: int = 0
    excluded: int = 0
    links: int = 0
    relations: dict[str, int] = field(default_factory=dict)
    reused: bool = False  # nothing changed since the last run: its results were kept
    stored_features: int = 0  # images whose features were read from OUT/features, not scanned


def scan_image(image: Image.Image, config: regions.RegionConfig) -> tuple[Any, Any]:
    """(mosaic seams or None, region features) of one decoded image; a mosaic's features are
    found tile by tile (see regions.tiled_features)."""
    if min(image.size) < config.min_side:  # too small for seams or keypoints to mean much
        return None, regions.features(image.convert("L"), config)
    mosaic = mosaics.find_mosaic(image)
    if mosaic is not None:
        return mosaic, regions.tiled_features(image, mosaic.cells(), config)
    return None, regions.features(image.convert("L"), config)


def scan_file(path: str, config: regions.RegionConfig) -> tuple[Any, Any] | None:
    """scan_image of a stored file, decoded at the work size; None if it cannot be read."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (config.work_side, config.work_side))
            rgb = ImageOps.exif_transpose(im).convert("RGB")
        return scan_image(rgb, config)
    except Exception:  # unreadable: no content to share; counted by the caller
        return None


def _scan_chunk(paths: list[str], config: regions.RegionConfig) -> list[tuple[Any, Any] | None]:
    cv2.setNumThreads(1)  # one process per core already
    return [scan_file(p, config) for p in paths]


def scan_files(
    paths: Sequence[str],
    config: regions.RegionConfig = regions.DEFAULT_REGION_CONFIG,
    workers: int | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> list[tuple[Any, Any] | None]:
    """scan_image of each file, in order (None where unreadable), in `workers` processes."""
    paths = list(paths)
    workers = workers or (os.cpu_count() or 1)
    size = max(16, math.ceil(len(paths) / (workers * 8)))
    chunks = [paths[k : k + size] for k in range(0, len(paths), size)]
    out: list[tuple[Any, Any] | None] = []
    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            out += _scan_chunk(chunk, config)
            advance(len(chunk))
        return out
    with regions.process_pool(workers) as pool:
        for chunk, part in zip(
            chunks, pool.map(_scan_chunk, chunks, [config] * len(chunks)), strict=True
        ):
            out += part
            advance(len(chunk))
    return out


def _scan_or_load(
    rows: Sequence[Any],
    out_dir: Path,
    config: regions.RegionConfig,
    workers: int | None,
    advance: Callable[[int], None],
) -> tuple[list[tuple[Any, Any] | None], int]:
    """(mosaic, features) of each row's image, None where unreadable: the feature store's where
    it has them (a Ray worker's, or an earlier run's), scanned (and stored) where not; and how
    many came from the store."""
    folder = feature_store.store_dir(out_dir, config)
    out = [feature_store.load(folder, row["sha256"]) for row in rows]
    todo = [k for k, result in enumerate(out) if result is None]
    advance(len(rows) - len(todo))
    fresh = scan_files([str(out_dir / rows[k]["file"]) for k in todo], config, workers, advance)
    for k, result in zip(todo, fresh, strict=True):
        if result is not None:  # unreadable: nothing to keep, asked again next time
            out[k] = result
            feature_store.keep(folder, rows[k]["sha256"], result)
    return out, len(rows) - len(todo)


def mosaic_indices(scanned: Sequence[tuple[Any, Any] | None]) -> set[int]:
    """Positions of the scan results (scan_files) that found a mosaic."""
    return {k for k, result in enumerate(scanned) if result and result[0] is not None}


def fingerprint(shas: Sequence[str], policy: str, config: regions.RegionConfig) -> str:
    """What the links depend on: the images (by content), the mosaic policy and the settings."""
    h = hashlib.sha256(f"{_METHOD}|{policy}|{astuple(config)}".encode())
    for sha in sorted(shas):
        h.update(sha.encode())
    return h.hexdigest()


def content_stage(
    catalog: Any,
    out_dir: Path,
    *,
    policy: str = EXCLUDE,
    config: regions.RegionConfig = regions.DEFAULT_REGION_CONFIG,
    workers: int | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> ContentReport:
    """Find the mosaics among the stored representatives and the regions they share.

    Mosaics are marked (and, under the `exclude` policy, kept out of the manifest with a
    reason); every verified pair of images sharing a region becomes a region link, which the
    group stage turns into groups. Run again on unchanged images, it keeps the stored results.
    """
    rows = catalog.items(
        "state = 'stored' AND duplicate_of IS NULL AND cluster IS NOT NULL",
        columns="id, file, sha256",
    )
    report = ContentReport(scanned=len(rows))
    stamp = fingerprint([r["sha256"] for r in rows], policy, config)
    if catalog.get_meta(_FINGERPRINT) == stamp:
        report.reused = True
        log.info("content stage: %d images unchanged since the last run, links kept", len(rows))
        _count_stored(catalog, report)
        advance(len(rows))
        return report
    scanned, report.stored_features = _scan_or_load(rows, out_dir, config, workers, advance)
    marks, feats, ids, tiled = [], [], [], set()  # tiled: mosaics' positions in feats
    for row, result in zip(rows, scanned, strict=True):
        mosaic, feat = result if result else (None, None)
        report.unreadable += result is None
        reason = mosaic.reason if mosaic else None
        excluded = (
            f'{reason}; [dedup] mosaics = "exclude"' if reason and policy == EXCLUDE else None
        )
        marks.append((row["id"], reason, excluded))
        if feat is not None and not excluded:
            if reason:
                tiled.add(len(feats))
            feats.append(feat)
            ids.append(row["id"])
    matches = regions.match_within(feats, config, workers, tiled)
    links = [(ids[m.a], ids[m.b], m.relation, m.area_a, m.area_b, m.inliers) for m in matches]
    with catalog.transaction():
        catalog.set_mosaics(marks)
        catalog.set_region_links(links)
        catalog.set_meta(_FINGERPRINT, stamp)
    _count_stored(catalog, report)
    log.info(
        "content stage: %d images (%d with features from the store), %d unreadable, "
        "%d mosaics, %d region links",
        len(rows),
        report.stored_features,
        report.unreadable,
        report.mosaics,
        report.links,
    )
    return report


def _count_stored(catalog: Any, report: ContentReport) -> None:
    report.mosaics = catalog.count("state = 'stored' AND mosaic IS NOT NULL")
    report.excluded = catalog.count("state = 'stored' AND excluded IS NOT NULL")
    links = catalog.region_links()
    report.links = len(links)
    report.relations = dict(Counter(link[2] for link in links))


__all__ = [
    "EXCLUDE",
    "FOLLOW",
    "GROUP",
    "ContentReport",
    "content_stage",
    "mosaic_indices",
    "scan_file",
    "scan_files",
    "scan_image",
]


def paths_content(
    paths: Sequence[str], config: regions.RegionConfig = regions.DEFAULT_REGION_CONFIG
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(region links, mosaics) among files, for the standalone `acnedata dedup PATH... --json`:
    every verified pair that shares a region, and every image found to be a mosaic."""
    scanned = scan_files(paths, config)
    feats = [s[1] if s else None for s in scanned]
    tiled = mosaic_indices(scanned)
    links = [
        {
            "a": paths[m.a],
            "b": paths[m.b],
            "relation": m.relation,
            "area_a": m.area_a,
            "area_b": m.area_b,
            "inliers": m.inliers,
        }
        for m in regions.match_within(feats, config, mosaics=tiled)
    ]
    found = [
        {"path": p, "reason": s[0].reason}
        for p, s in zip(paths, scanned, strict=True)
        if s and s[0] is not None
    ]
    return links, found
