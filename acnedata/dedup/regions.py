"""Region-level near-copies: ORB keypoints, an LSH vote index, RANSAC-verified affine fits."""

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
from PIL import Image

from acnedata.images import to_rgb

RELATIONS = ("same", "crop", "contains", "overlap")


@dataclass(frozen=True)
class RegionConfig:
    """Region matching settings; the defaults come from bench/region_quality.py (bench/README).

    work_side: images are resized so their longer side is this many pixels before keypoints are
      found (small dataset images are enlarged: ORB needs a 31 px patch around each keypoint).
    features: ORB keypoints kept per image (and per mirror image: ORB is not mirror-invariant).
    ratio: Lowe's ratio test on the two nearest descriptors.
    ransac_px: RANSAC reprojection threshold in work pixels.
    min_inliers: a pair shares a region when the affine fit keeps at least this many matches.
    candidates: per image, how many of its best-voted partners are verified.
    lsh_tables / lsh_bits / bucket_cap: the vote index (see vote_pairs).
    same_area: both images covered this much by the shared region → `same`; one → crop/contains.
    clahe_clip / clahe_tiles: local contrast equalisation (CLAHE) of the work image before
      keypoints are found; clahe_tiles 0 turns it off.
    """

    work_side: int = 256
    min_side: int = 64  # smaller images have too little detail for local features to mean much
    features: int = 300
    fast_threshold: int = 7
    ratio: float = 0.8
    ransac_px: float = 4.0
    min_inliers: int = 15
    min_inlier_share: float = 0.2
    candidates: int = 16
    min_votes: int = 3
    lsh_tables: int = 16
    lsh_bits: int = 18
    bucket_cap: int = 24
    same_area: float = 0.85
    clahe_clip: float = 2.0
    clahe_tiles: int = 4


DEFAULT_REGION_CONFIG = RegionConfig()


@dataclass
class Features:
    """ORB keypoints of one image and of its mirror image, in work-size pixels."""

    size: tuple[int, int]  # work size (w, h)
    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 32) uint8
    mirror_points: np.ndarray
    mirror_descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.descriptors)


@dataclass(frozen=True)
class RegionMatch:
    """Two images that share a region. relation is a's: `crop` = a is a crop of b,
    `contains` = a holds b (e.g. as a mosaic tile), `same`, or `overlap`. area_a / area_b: the
    share of each image the shared region covers; inliers: matches kept by the affine fit."""

    a: int
    b: int
    relation: str
    area_a: float
    area_b: float
    inliers: int
    mirrored: bool

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
        )


# --- features -----------------------------------------------------------------------------------


def _orb(config: RegionConfig) -> cv2.ORB:
    return cv2.ORB_create(
        nfeatures=config.features,
        edgeThreshold=15,
        patchSize=31,
        fastThreshold=config.fast_threshold,
    )


def _work_gray(image: Image.Image | np.ndarray, config: RegionConfig) -> np.ndarray:
    gray = np.asarray(image if isinstance(image, np.ndarray) else to_rgb(image).convert("L"))
    h, w = gray.shape[:2]
    k = config.work_side / max(w, h)
    size = (max(8, round(w * k)), max(8, round(h * k)))
    # A 3x3 median at the image's own scale (or at work size, for a large image) removes
    # speckle noise and JPEG grain, whose corners would crowd out the picture's own keypoints:
    # on augmented copies of real photos it raised verified pairs from 60% to 75%.
    if k < 1:
        work = cv2.medianBlur(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), 3)
    else:
        smooth = cv2.medianBlur(np.ascontiguousarray(gray), 3)
        work = cv2.resize(smooth, size, interpolation=cv2.INTER_LINEAR)
    if not config.clahe_tiles:
        return work
    # Skin close-ups are smooth and low in contrast: FAST finds few corners, and a blurred or
    # re-toned copy shares even fewer. Equalised locally, pores and faint marks give corners
    # that survive those changes: on the augmented bench, copies linked to no other copy of
    # their photo fell from 91 to 11 of 1,400, and false links from 17 to 5.
    tiles = (config.clahe_tiles, config.clahe_tiles)
    return cv2.createCLAHE(clipLimit=config.clahe_clip, tileGridSize=tiles).apply(work)


def _detect(orb: cv2.ORB, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keypoints, desc = orb.detectAndCompute(gray, None)
    if desc is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2), desc


def features(
    image: Image.Image | np.ndarray, config: RegionConfig = DEFAULT_REGION_CONFIG
) -> Features:
    """Keypoints and descriptors of an image (PIL, or a grayscale array) and of its mirror.

    An image under config.min_side pixels on its shorter side gets none: enlarged to the work
    size, its keypoints would sit on interpolation steps, and a 40 px stripe pattern matched
    every other stripe pattern. Whole-image dedup still compares such images.
    """
    gray = _work_gray(image, config)
    size = image.shape[:2] if isinstance(image, np.ndarray) else image.size[::-1]
    if min(size) < config.min_side:
        empty_p, empty_d = np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
        return Features((gray.shape[1], gray.shape[0]), empty_p, empty_d, empty_p, empty_d)
    orb = _orb(config)
    points, desc = _detect(orb, gray)
    mirror_points, mirror_desc = _detect(orb, np.ascontiguousarray(gray[:, ::-1]))
    return Features((gray.shape[1], gray.shape[0]), points, desc, mirror_points, mirror_desc)


Cell = tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the width and height


def _cell_keypoints(
    orb: cv2.ORB,
    gray: np.ndarray,
    cells: list[Cell],
    work: tuple[int, int],
    config: RegionConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of each cell found at full work size, placed back in the whole image's frame."""
    h, w = gray.shape
    points, descs = [], []
    for x0, y0, x1, y1 in cells:
        box = (round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h))
        if box[2] - box[0] < 8 or box[3] - box[1] < 8:
            continue
        cell = _work_gray(np.ascontiguousarray(gray[box[1] : box[3], box[0] : box[2]]), config)
        p, d = _detect(orb, cell)
        scale = np.array([(box[2] - box[0]) / cell.shape[1], (box[3] - box[1]) / cell.shape[0]])
        to_work = np.array([work[0] / w, work[1] / h])
        points.append(((p * scale + box[:2]) * to_work).astype(np.float32))
        descs.append(d)
    if not points:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.concatenate(points), np.concatenate(descs)


def tiled_features(
    image: Image.Image, cells: list[Cell], config: RegionConfig = DEFAULT_REGION_CONFIG
) -> Features:
    """features() of a mosaic, found tile by tile: each tile is enlarged to the work size first,
    so a photo shown at half size in a tile keeps as many keypoints as the photo itself."""
    gray = np.asarray(to_rgb(image).convert("L"))
    whole = _work_gray(gray, config)
    work = (whole.shape[1], whole.shape[0])
    orb = _orb(config)
    points, desc = _cell_keypoints(orb, gray, cells, work, config)
    mirrored = [(1 - x1, y0, 1 - x0, y1) for x0, y0, x1, y1 in cells]
    mirror_gray = np.ascontiguousarray(gray[:, ::-1])
    mirror_points, mirror_desc = _cell_keypoints(orb, mirror_gray, mirrored, work, config)
    return Features(work, points, desc, mirror_points, mirror_desc)


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
    size_a: tuple[int, int],
    config: RegionConfig,
) -> tuple[int, np.ndarray] | None:
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
    if not _plausible(matrix, src[keep], size_a):
        return None
    return inliers, matrix


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
        fit = _fit(a.points, a.descriptors, pb, db, a.size, config)
        if fit and (best is None or fit[0] > best[0]):
            best = (*fit, mirrored)
    if best is None:
        return None
    inliers, matrix, mirrored = best
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
    return RegionMatch(ia, ib, relation, round(area_a, 3), round(area_b, 3), inliers, mirrored)


# --- the vote index -----------------------------------------------------------------------------


def _table_bits(config: RegionConfig) -> np.ndarray:
    """(tables, bits) descriptor bit positions that make each table's key; fixed by a seed so
    every run (and every worker) builds the same index."""
    rng = np.random.default_rng(20261205)
    return np.stack(
        [rng.choice(256, config.lsh_bits, replace=False) for _ in range(config.lsh_tables)]
    )


def _keys(descriptors: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """(tables, n) int64 LSH keys: each table's chosen bits of each descriptor."""
    out = np.empty((len(bits), len(descriptors)), np.int64)
    weights = 1 << np.arange(bits.shape[1], dtype=np.int64)
    for start in range(0, len(descriptors), 1 << 16):  # unpacked bits are 8x the descriptors
        unpacked = np.unpackbits(descriptors[start : start + (1 << 16)], axis=1)
        for t, chosen in enumerate(bits):
            out[t, start : start + len(unpacked)] = unpacked[:, chosen].astype(np.int64) @ weights
    return out


def _stack(feats: Sequence[Features | None], mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    """All descriptors of the collection and the image index of each."""
    parts = [
        (f.mirror_descriptors if mirror else f.descriptors) if f else np.zeros((0, 32), np.uint8)
        for f in feats
    ]
    owners = np.repeat(np.arange(len(parts)), [len(p) for p in parts])
    return np.concatenate(parts) if parts else np.zeros((0, 32), np.uint8), owners


def _bucket_pairs(
    keys: np.ndarray, owners: np.ndarray, side: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, owner) of every two entries in one bucket, one from side 0 and one from side 1.

    Buckets of more than `cap` entries are left out: a key that many descriptors share is a
    common texture (skin pores, JPEG blocks), not evidence of a shared region.
    """
    order = np.argsort(keys, kind="stable")
    k, o, s = keys[order], owners[order], side[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    ok = np.repeat(sizes <= cap, sizes)
    k, o, s = k[ok], o[ok], s[ok]
    left, right = [], []
    for d in range(1, cap):
        same = k[d:] == k[:-d]
        if not same.any():
            break
        i, j = np.flatnonzero(same), np.flatnonzero(same) + d
        cross = s[i] != s[j]
        i, j = i[cross], j[cross]
        first = np.where(s[i] == 0, o[i], o[j])
        second = np.where(s[i] == 0, o[j], o[i])
        left.append(first)
        right.append(second)
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


AS_IS, MIRRORED, BOTH = 1, 2, 3  # which orientations of b a candidate pair is verified in


def vote_pairs(
    queries: Sequence[Features | None],
    index: Sequence[Features | None],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    self_join: bool = False,
) -> list[tuple[int, int, int]]:
    """Candidate (query, index, orientations) image pairs, by descriptor collisions in LSH tables.

    Each table keys a descriptor by a fixed random subset of its 256 bits, so two descriptors
    a few bits apart often share a key in some table. A query's descriptors, and those of its
    mirror image, vote for every index image they collide with; each query keeps its
    `candidates` best-voted partners with at least `min_votes` votes. With self_join, queries and
    index are the same collection and pairs are (i, j) with i < j, each once.

    orientations says which of verify_pair's two passes to run: the one whose descriptors cast
    most of the votes (AS_IS or MIRRORED), or BOTH when neither has 1.5 times the other's. On
    augmented copies the votes chose the orientation that verified in 1,450 of 1,466 pairs, and
    each pass is a brute-force match, the bulk of the stage's time.
    """
    bits = _table_bits(config)
    qd, qo = _stack(queries, mirror=False)
    md, mo = _stack(queries, mirror=True)
    idx_d, idx_o = _stack(index, mirror=False)
    q_desc = np.concatenate([qd, md])
    # Owners carry the orientation in their lowest bit: 1 for a query's mirror descriptors.
    q_own = np.r_[qo * 2, mo * 2 + 1]
    side = np.r_[np.zeros(len(q_desc), np.int8), np.ones(len(idx_d), np.int8)]
    owners = np.r_[q_own, idx_o * 2]
    keys = _keys(np.concatenate([q_desc, idx_d]), bits)
    n_index = max(len(index), 1)
    codes_all = []
    for t in range(len(bits)):
        qi, ii = _bucket_pairs(keys[t], owners, side, config.bucket_cap)
        flag, qi, ii = qi % 2, qi // 2, ii // 2
        if self_join:
            keep = qi != ii
            flag, qi, ii = flag[keep], qi[keep], ii[keep]
            # a vote from i's descriptor for j is also one from j's for i (mirroring is mutual)
            qi, ii = np.minimum(qi, ii), np.maximum(qi, ii)
        codes_all.append((qi * n_index + ii) * 2 + flag)
    codes = np.concatenate(codes_all) if codes_all else np.zeros(0, np.int64)
    uniq, counts = np.unique(codes, return_counts=True)
    pair_codes = np.unique(uniq // 2)
    by_flag = np.zeros((len(pair_codes), 2), np.int64)
    by_flag[np.searchsorted(pair_codes, uniq // 2), uniq % 2] = counts
    counts = by_flag.sum(axis=1)
    strong = counts >= config.min_votes
    pair_codes, counts, by_flag = pair_codes[strong], counts[strong], by_flag[strong]
    as_is, mirrored = by_flag[:, 0], by_flag[:, 1]
    orientation = np.where(
        np.maximum(as_is, mirrored) >= 1.5 * np.minimum(as_is, mirrored),
        np.where(as_is >= mirrored, AS_IS, MIRRORED),
        BOTH,
    )
    qi, ii = pair_codes // n_index, pair_codes % n_index
    # Each side keeps its best-voted partners: a pair stays if either end ranks it high.
    chosen: set[int] = set()
    for owner_col in (qi, ii) if self_join else (qi,):
        order = np.lexsort((-counts, owner_col))
        ranked = owner_col[order]
        starts = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1]
        rank = np.arange(len(ranked)) - np.repeat(starts, np.diff(np.r_[starts, len(ranked)]))
        chosen.update(order[rank < config.candidates].tolist())
    picked = sorted(chosen)
    return list(
        zip(qi[picked].tolist(), ii[picked].tolist(), orientation[picked].tolist(), strict=True)
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
) -> list[RegionMatch]:
    """Every verified pair (i < j) of images of one collection that share a region."""
    pairs = vote_pairs(feats, feats, config, self_join=True)
    return verify_pairs(feats, feats, pairs, config, workers)


def match_across(
    a: Sequence[Features | None],
    b: Sequence[Features | None],
    config: RegionConfig = DEFAULT_REGION_CONFIG,
    workers: int | None = None,
) -> list[RegionMatch]:
    """Every verified pair (index into a, index into b) of images that share a region."""
    return verify_pairs(a, b, vote_pairs(a, b, config), config, workers)
