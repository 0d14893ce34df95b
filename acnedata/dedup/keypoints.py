"""Keypoints for region matching: ORB on each image and its mirror, a mosaic's tile by tile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from acnedata.images import to_rgb

# OpenCV's own worker threads off: the region stage runs one process per core instead, and a
# process forked while OpenCV's thread pool is up (features found here, then verification
# forked) hangs in its first parallel call. Found when a bench did exactly that.
cv2.setNumThreads(1)


@dataclass(frozen=True)
class RegionConfig:
    """Region matching settings, chosen on bench/leak_content.py and bench/dedup_quality.py.

    work_side: images are resized so their longer side is this many pixels before keypoints are
      found (small dataset images are enlarged: ORB needs a 31 px patch around each keypoint).
    features: ORB keypoints kept per image (and per mirror image: ORB is not mirror-invariant).
    ratio: Lowe's ratio test on the two nearest descriptors.
    ransac_px: RANSAC reprojection threshold in work pixels.
    min_inliers: a pair shares a region when the affine fit keeps at least this many matches.
    min_spread: ... and they fall in this share of the cells (4x4) that hold the keypoints of
      the shared part, on at least one side (a shared logo's matches sit in one or two).
    min_agreement: ... and the two images' equalised 64 px thumbnails, laid one on the other
      by the fitted map, correlate at least this well (median over an 8x8 grid of the shared
      area). On the augmented copies of bench/region_recall.py (build_set, scored one by one in
      a diagnostic that is not committed), 99% of 3,731 true pairs scored 0.70 or more and 16
      of 18 false links 0.49 or less.
    candidates: per image, how many of its best-voted partners are verified.
    lsh_tables / lsh_bits / bucket_cap: the vote index (see vote_pairs).
    loner_bucket_cap / loner_candidates: the wider index that images left unlinked query again,
      and how many new partners each verifies (votes.loner_pairs); a cap of 0 turns it off.
    same_area: both images covered this much by the shared region → `same`; one → crop/contains.
    clahe_clip / clahe_tiles: local contrast equalisation (CLAHE) of the work image before
      keypoints are found; clahe_tiles 0 turns it off.
    corroborate: within one collection, keep a link only if a copy covering either image also
      shares a region with the other (see corroborate.py: drops links made by an overlay).
    """

    work_side: int = 256
    min_side: int = 64  # smaller images have too little detail for local features to mean much
    features: int = 300
    fast_threshold: int = 7
    ratio: float = 0.8
    ransac_px: float = 4.0
    min_inliers: int = 12
    min_inlier_share: float = 0.2
    min_spread: float = 0.25
    min_agreement: float = 0.6
    candidates: int = 16
    min_votes: int = 3
    lsh_tables: int = 16
    lsh_bits: int = 18
    bucket_cap: int = 24
    loner_bucket_cap: int = 96
    loner_candidates: int = 8
    same_area: float = 0.85
    clahe_clip: float = 2.0
    clahe_tiles: int = 4
    corroborate: bool = True


DEFAULT_REGION_CONFIG = RegionConfig()


@dataclass
class Features:
    """ORB keypoints of one image and of its mirror image, in work-size pixels."""

    size: tuple[int, int]  # work size (w, h)
    points: np.ndarray  # (n, 2) float32
    descriptors: np.ndarray  # (n, 32) uint8
    mirror_points: np.ndarray
    mirror_descriptors: np.ndarray
    thumb: np.ndarray  # the equalised work image at THUMB px (longer side), to compare pixels

    def __len__(self) -> int:
        return len(self.descriptors)


THUMB = 64


def _thumb(work: np.ndarray) -> np.ndarray:
    h, w = work.shape
    k = THUMB / max(w, h)
    size = (max(4, round(w * k)), max(4, round(h * k)))
    return cv2.resize(work, size, interpolation=cv2.INTER_AREA)


_POOL = 3  # candidates detected per keypoint kept, for the spatial balancing in _detect
_GRID = 4


def _orb(config: RegionConfig, features: int | None = None) -> cv2.ORB:
    return cv2.ORB_create(
        nfeatures=_POOL * (features or config.features),
        edgeThreshold=15,
        patchSize=31,
        fastThreshold=config.fast_threshold,
    )


def _balanced(keypoints: Sequence[cv2.KeyPoint], shape: tuple[int, int], n: int) -> list:
    """The n strongest keypoints, but at most n/16 from any cell of a 4x4 grid while others
    have some left: a caption or logo has the sharpest corners of a skin photo and took 95-100%
    of the 300 before, leaving the photo nothing to be matched by."""
    h, w = shape
    ranked = sorted(keypoints, key=lambda k: -k.response)
    quota = max(1, n // (_GRID * _GRID))
    taken: dict[tuple[int, int], int] = {}
    kept, rest = [], []
    for k in ranked:
        cell = (min(_GRID - 1, int(k.pt[0] * _GRID / w)), min(_GRID - 1, int(k.pt[1] * _GRID / h)))
        if taken.get(cell, 0) < quota:
            taken[cell] = taken.get(cell, 0) + 1
            kept.append(k)
        else:
            rest.append(k)
    return (kept + rest)[:n]


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
    chosen = _balanced(orb.detect(gray, None), gray.shape, orb.getMaxFeatures() // _POOL)
    keypoints, desc = orb.compute(gray, chosen)
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
        work = (gray.shape[1], gray.shape[0])
        return Features(work, empty_p, empty_d, empty_p, empty_d, _thumb(gray))
    orb = _orb(config)
    points, desc = _detect(orb, gray)
    mirror_points, mirror_desc = _detect(orb, np.ascontiguousarray(gray[:, ::-1]))
    work = (gray.shape[1], gray.shape[0])
    return Features(work, points, desc, mirror_points, mirror_desc, _thumb(gray))


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
    # Two tiles' worth of keypoints in all: each verified pair costs a brute-force match of the
    # two keypoint sets, and a mosaic with a full set per tile made 1k images of the shared
    # kind (3 in 4 of them mosaics) take 130 s to verify instead of 44 s.
    orb = _orb(config, max(64, 2 * config.features // max(1, len(cells))))
    points, desc = _cell_keypoints(orb, gray, cells, work, config)
    mirrored = [(1 - x1, y0, 1 - x0, y1) for x0, y0, x1, y1 in cells]
    mirror_gray = np.ascontiguousarray(gray[:, ::-1])
    mirror_points, mirror_desc = _cell_keypoints(orb, mirror_gray, mirrored, work, config)
    return Features(work, points, desc, mirror_points, mirror_desc, _thumb(whole))
