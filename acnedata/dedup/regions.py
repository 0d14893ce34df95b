"""Region-level near-copies: RANSAC-verified affine fits between voted candidate images."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from acnedata.dedup.corroborate import corroborate
from acnedata.dedup.fill import border_fill
from acnedata.dedup.keypoints import (
    DEFAULT_REGION_CONFIG,
    Cell,
    Features,
    RegionConfig,
    features,
    tiled_features,
)
from acnedata.dedup.votes import AS_IS, BOTH, MIRRORED, index_keys, loner_pairs, vote_pairs

__all__ = [  # the region API in one place: keypoints and votes live in modules of their own
    "AS_IS",
    "BOTH",
    "DEFAULT_REGION_CONFIG",
    "MIRRORED",
    "RELATIONS",
    "Cell",
    "Features",
    "RegionConfig",
    "RegionMatch",
    "can_fork",
    "corroborated",
    "features",
    "index_keys",
    "match_across",
    "match_within",
    "process_pool",
    "tiled_features",
    "verify_loners",
    "verify_pair",
    "verify_pairs",
    "vote_pairs",
]

RELATIONS = ("same", "crop", "contains", "overlap")


@dataclass(frozen=True)
class RegionMatch:
    """Two images that share a region. relation is a's: `crop` = a is a crop of b,
    `contains` = a holds b (e.g. as a mosaic tile), `same`, or `overlap`. area_a / area_b: the
    share of each image the shared region covers; inliers: matches kept by the affine fit;
    span: the larger share of either image that the inliers' convex hull covers."""

    a: int
    b: int
    relation: str
    area_a: float
    area_b: float
    inliers: int
    mirrored: bool
    span: float = 1.0

    def swapped(self) -> RegionMatch:
        inverse = {"crop": "contains", "contains": "crop"}
        return RegionMatch(
            self.b,
            self.a,
            inverse.get(self.relation, self.relation),
            self.area_b,
            self.area_a,
            self.inliers,
            self.mirrored,
            self.span,
        )


# --- verification -------------------------------------------------------------------------------


def _matches(da: np.ndarray, db: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (into da, into db) that pass Lowe's ratio test."""
    if len(da) < 2 or len(db) < 2:
        return np.zeros(0, int), np.zeros(0, int)
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(da, db, k=2)
    pairs = [
        (m[0].queryIdx, m[0].trainIdx)
        for m in knn
        if len(m) == 2 and m[0].distance < ratio * m[1].distance
    ]
    if not pairs:
        return np.zeros(0, int), np.zeros(0, int)
    qa, qb = np.array(pairs).T
    return qa, qb


def _rect(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def _covered(matrix: np.ndarray, src: tuple[int, int], dst: tuple[int, int]) -> float:
    """Share of dst's area that src's rectangle covers once mapped by the affine matrix."""
    mapped = cv2.transform(_rect(src)[None], matrix)[0].astype(np.float32)
    area, _ = cv2.intersectConvexConvex(mapped, _rect(dst))
    return max(0.0, float(area)) / (dst[0] * dst[1])


def _spread(
    matrix: np.ndarray, inliers: np.ndarray, points: np.ndarray, other: tuple[int, int]
) -> float:
    """How much of the shared part of an image its inliers cover: the share of the cells of a
    4x4 grid over the image's keypoints that the affine map puts inside the other image
    (cells that hold any of those keypoints) that hold an inlier too."""
    mapped = cv2.transform(points.astype(np.float32)[None], matrix)[0]
    inside = (
        (mapped[:, 0] >= 0)
        & (mapped[:, 0] <= other[0])
        & (mapped[:, 1] >= 0)
        & (mapped[:, 1] <= other[1])
    )
    shared = points[inside]
    if len(shared) < 2:
        return 1.0  # nothing to compare against: leave it to the other tests
    low, high = shared.min(axis=0), shared.max(axis=0)

    def cells(p: np.ndarray) -> set[tuple[int, int]]:
        k = np.clip(((p - low) / np.maximum(high - low, 1e-6) * 4).astype(int), 0, 3)
        return set(map(tuple, k.tolist()))

    return len(cells(inliers) & cells(shared)) / len(cells(shared))


def _plausible(matrix: np.ndarray, inliers_a: np.ndarray, size_a: tuple[int, int]) -> bool:
    """A copy's affine map keeps orientation (mirrors have their own pass), is not wildly
    anisotropic, and its matches spread over a real area rather than one textured spot."""
    linear = matrix[:, :2]
    if np.linalg.det(linear) <= 0:
        return False
    s = np.linalg.svd(linear, compute_uv=False)
    if s[1] < 1 / 8 or s[0] > 8 or s[0] / s[1] > 2.5:
        return False
    span = inliers_a.max(axis=0) - inliers_a.min(axis=0)
    return bool(span[0] >= 0.1 * size_a[0] and span[1] >= 0.1 * size_a[1])


def _fit(
    pa: np.ndarray,
    da: np.ndarray,
    pb: np.ndarray,
    db: np.ndarray,
    sizes: tuple[tuple[int, int], tuple[int, int]],
    config: RegionConfig,
) -> tuple[int, np.ndarray, float] | None:
    """(inlier count, affine map a → b, span: see RegionMatch), or None for no plausible fit."""
    qa, qb = _matches(da, db, config.ratio)
    if len(qa) < config.min_inliers:
        return None
    src, dst = pa[qa], pb[qb]
    matrix, mask = cv2.estimateAffine2D(
        src,
        dst,
        method=cv2.RANSAC,
        ransacReprojThreshold=config.ransac_px,
        maxIters=2000,
        confidence=0.995,
        refineIters=10,
    )
    if matrix is None:
        return None
    keep = mask.ravel().astype(bool)
    inliers = int(keep.sum())
    if inliers < config.min_inliers or inliers < config.min_inlier_share * len(qa):
        return None
    if not _plausible(matrix, src[keep], sizes[0]):
        return None
    # A shared watermark, logo or caption bar: its matches fit an affine map as well as a
    # photo's do, but they sit in a small patch of what the two images share, while the rest
    # of it (full of keypoints) matches nothing. A copy's matches spread over the shared part
    # of at least one side (tests/test_regions.py's logos: 0.07-0.13 of the grid's cells; a
    # crop with 20 inliers: 0.44; a copy: 0.8-0.9).
    spread = max(
        _spread(matrix, src[keep], pa, sizes[1]),
        _spread(cv2.invertAffineTransform(matrix), dst[keep], pb, sizes[0]),
    )
    if spread < config.min_spread:
        return None
    return inliers, matrix, max(_hull_share(src[keep], sizes[0]), _hull_share(dst[keep], sizes[1]))


def _hull_share(points: np.ndarray, size: tuple[int, int]) -> float:
    """Share of an image (work pixels) inside the convex hull of some of its points."""
    hull = cv2.convexHull(points.astype(np.float32))
    return round(float(cv2.contourArea(hull)) / (size[0] * size[1]), 4)


def _agreement(
    matrix: np.ndarray,
    thumb_a: np.ndarray,
    size_a: tuple[int, int],
    thumb_b: np.ndarray,
    size_b: tuple[int, int],
) -> float:
    """Correlation of the two equalised thumbnails over the area they share, b laid onto a by
    the fitted map (work pixels scaled to thumbnail pixels at both ends)."""
    ka = np.array([thumb_a.shape[1] / size_a[0], thumb_a.shape[0] / size_a[1]])
    kb = np.array([thumb_b.shape[1] / size_b[0], thumb_b.shape[0] / size_b[1]])
    # thumb_a pixel -> work a -> work b -> thumb_b pixel
    to_b = np.diag(kb) @ matrix[:, :2] @ np.diag(1 / ka)
    shift = kb * matrix[:, 2]
    m = np.hstack([to_b, shift[:, None]]).astype(np.float32)
    shape = (thumb_a.shape[1], thumb_a.shape[0])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    laid = cv2.warpAffine(thumb_b.astype(np.float32), m, shape, flags=flags)
    # Only picture against picture: a black frame or turned corner on either side is left out,
    # or its step to the picture agrees between two different framed pictures.
    fill_a, fill_b = border_fill(thumb_a), border_fill(thumb_b)
    picture_b = (
        np.ones(thumb_b.shape, np.float32) if fill_b is None else (~fill_b).astype(np.float32)
    )
    inside = cv2.warpAffine(picture_b, m, shape, flags=flags) > 0.99
    if fill_a is not None:
        inside &= ~fill_a
    rows, cols = np.nonzero(inside)
    a = thumb_a.astype(np.float32)
    if len(rows) < 16:  # too little shared area at this size to judge: trust the fit
        return 1.0
    scores = []
    # Cell by cell (8x8) over the shared area, and the median: an overlay two different photos
    # share agrees in its own cells only, and a copy with a logo added disagrees in those only.
    # (At 4x4, a caption bar across the middle touched half the cells and scored 0.6-0.9.)
    for ys in np.array_split(np.arange(rows.min(), rows.max() + 1), 8):
        for xs in np.array_split(np.arange(cols.min(), cols.max() + 1), 8):
            cell = np.ix_(ys, xs)
            keep = inside[cell]
            if keep.sum() < 12:
                continue
            score = _correlation(a[cell][keep], laid[cell][keep])
            if score is not None:
                scores.append(score)
    if scores:
        return float(np.median(scores))
    # No cell large enough (a small picture on a frame is a few thumbnail pixels a cell): one
    # correlation over all of the shared area, or trust the fit if even that is flat.
    whole = _correlation(a[inside], laid[inside])
    return 1.0 if whole is None else whole


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of two pixel sets, None if either is flat (a black fill or frame,
    a clipped sky: says nothing either way)."""
    if x.std() < 2 or y.std() < 2:
        return None
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def verify_pair(
    a: Features,
    b: Features,
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    ia: int = 0,
    ib: int = 1,
    orientations: int = 3,
) -> RegionMatch | None:
    """The region a and b share, checked geometrically, or None if they share none.

    Both orientations are tried unless `orientations` (1 as is, 2 mirrored, 3 both) says
    otherwise: b as it is and b mirrored (ORB descriptors are not mirror-invariant). Areas
    come from each image's rectangle mapped onto the other.
    """
    best: tuple | None = None
    passes = (
        (False, b.points, b.descriptors),
        (True, b.mirror_points, b.mirror_descriptors),
    )
    for mirrored, pb, db in (p for k, p in enumerate(passes) if orientations >> k & 1):
        fit = _fit(a.points, a.descriptors, pb, db, (a.size, b.size), config)
        if fit and (best is None or fit[0] > best[0]):
            best = (*fit, mirrored)
    if best is None:
        return None
    inliers, matrix, span, mirrored = best
    thumb_b = b.thumb[:, ::-1] if mirrored else b.thumb
    if _agreement(matrix, a.thumb, a.size, thumb_b, b.size) < config.min_agreement:
        return None
    inverse = cv2.invertAffineTransform(matrix)
    area_a = _covered(inverse, b.size, a.size)
    area_b = _covered(matrix, a.size, b.size)
    whole_a, whole_b = area_a >= config.same_area, area_b >= config.same_area
    relation = (
        "same"
        if whole_a and whole_b
        else "crop"
        if whole_a
        else "contains"
        if whole_b
        else "overlap"
    )
    return RegionMatch(
        ia, ib, relation, round(area_a, 3), round(area_b, 3), inliers, mirrored, span
    )


# --- matching collections -----------------------------------------------------------------------

_SHARED: dict[str, Sequence[Features | None]] = {}  # what forked verification workers read


Pair = tuple[int, int] | tuple[int, int, int]  # (i, j) or (i, j, orientations)


def _verify_chunk(pairs: list[Pair], config: RegionConfig) -> list[RegionMatch]:
    cv2.setNumThreads(1)
    a, b = _SHARED["a"], _SHARED["b"]
    found = (
        verify_pair(a[p[0]], b[p[1]], config, p[0], p[1], *p[2:])  # type: ignore[arg-type]
        for p in pairs
    )
    return [m for m in found if m is not None]


def can_fork() -> bool:
    # Forking a process that has started TensorFlow's threads can deadlock the child.
    return "tensorflow" not in sys.modules and "fork" in mp.get_all_start_methods()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes: forked (cheap) unless TensorFlow is loaded here, then spawned."""
    return ProcessPoolExecutor(
        workers, mp_context=mp.get_context("fork" if can_fork() else "spawn")
    )


def verify_pairs(
    a: Sequence[Features | None],
    b: Sequence[Features | None],
    pairs: Sequence[Pair],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
) -> list[RegionMatch]:
    """verify_pair on each (index into a, index into b[, orientations]) pair, as vote_pairs
    gives them; the matches found, in pair order."""
    pairs = [p for p in pairs if a[p[0]] is not None and b[p[1]] is not None]
    workers = workers or (os.cpu_count() or 1)
    _SHARED.update(a=a, b=b)
    try:
        if workers <= 1 or len(pairs) < 200 or not can_fork():
            return _verify_chunk(pairs, config)
        size = math.ceil(len(pairs) / (workers * 8))
        chunks = [pairs[k : k + size] for k in range(0, len(pairs), size)]
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
            return [
                m for part in pool.map(_verify_chunk, chunks, [config] * len(chunks)) for m in part
            ]
    finally:
        _SHARED.clear()


def match_within(
    feats: Sequence[Features | None],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
    mosaics: set[int] = frozenset(),
) -> list[RegionMatch]:
    """Every verified pair (i < j) of images of one collection that share a region; mosaics
    (indices into feats) take no second chance (votes.loner_pairs)."""
    keys = index_keys(feats, config)
    pairs = vote_pairs(feats, feats, config, self_join=True, keys=keys)
    found = verify_pairs(feats, feats, pairs, config, workers)
    found += verify_loners(feats, pairs, found, config, workers, mosaics, keys)
    return corroborated(feats, found, config) if config.corroborate else found


def verify_loners(
    feats: Sequence[Features | None],
    tried: Sequence[Pair],
    found: Sequence[RegionMatch],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
    mosaics: set[int] = frozenset(),
    keys: np.ndarray | None = None,
) -> list[RegionMatch]:
    """The pairs that the images no found match links verify in their second chance
    (votes.loner_pairs; keys: the collection's votes.index_keys, if made already)."""
    linked = {m.a for m in found} | {m.b for m in found}
    asked = loner_pairs(feats, tried, linked, config, mosaics, keys)
    return verify_pairs(feats, feats, asked, config, workers)


def corroborated(
    feats: Sequence[Features | None],
    found: list[RegionMatch],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
) -> list[RegionMatch]:
    """found (one collection's verified pairs) less the links an overlay made: see
    corroborate.py; the few pairs it must check are verified here, in this process."""

    # In this process: the pairs are few (bench/region_speed.py). A forked pool was once blamed
    # for the Ctrl-C test failures; their cause was elsewhere (download.WAKE_SECONDS).
    def verify(more: list[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(m.a, m.b) for m in verify_pairs(feats, feats, more, config, workers=1)}

    return corroborate(feats, found, verify)


def match_across(
    a: Sequence[Features | None],
    b: Sequence[Features | None],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
) -> list[RegionMatch]:
    """Every verified pair (index into a, index into b) of images that share a region."""
    return verify_pairs(a, b, vote_pairs(a, b, config), config, workers)
