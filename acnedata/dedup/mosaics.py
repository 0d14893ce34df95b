"""Mosaics: images tiled from 2–4 photos (an augmentation in dataset exports), found by seams."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image, ImageOps

from acnedata.images import to_rgb

SIDE = 128  # images are compared at this size: seams stay one or two pixels wide
# A seam column is one whose step beats its neighbours' in this share of rows. On the shared
# Roboflow export, photos scored at most 0.38 and mosaics 0.45 or more but one (0.449: the
# crossing rule below finds it); generated 64 px test photos reached 0.42.
SEAM_SHARE = 0.45
# Two crossing seams vouch for each other: each may then be weaker (a rotated tile's black
# corner breaks a seam into pieces a pixel apart). On the shared export no photo scored 0.30 on
# both axes; one 2x2 mosaic of turned tiles scored 0.35 and 0.449; generated photos at most 0.23.
CROSS_SHARE = 0.33
_MARGIN = 6  # seams this close to an edge are frames or crop borders, not tile boundaries


@dataclass(frozen=True)
class Mosaic:
    """A mosaic's seams: full-length straight lines where one tile meets the next."""

    tiles: int  # 4 for a 2x2 grid, 2 for two tiles side by side or stacked
    seams: tuple[tuple[str, float], ...]  # ("x" or "y", position as a share of the side)
    score: float

    def cells(self) -> list[tuple[float, float, float, float]]:
        """The tiles as (x0, y0, x1, y1) shares of the width and height."""
        xs = [0.0, *(p for axis, p in self.seams if axis == "x"), 1.0]
        ys = [0.0, *(p for axis, p in self.seams if axis == "y"), 1.0]
        return [(x0, y0, x1, y1) for y0, y1 in pairwise(ys) for x0, x1 in pairwise(xs)]

    @property
    def reason(self) -> str:
        where = ", ".join(f"{axis}={pos:.0%}" for axis, pos in self.seams)
        return f"mosaic of {self.tiles} tiles (seams at {where}): an augmentation, not a photo"


def _seam_scores(rgb: np.ndarray) -> np.ndarray:
    """Per column c: the share of rows where the colour step across c is a sharp edge.

    A row counts when the step over c-1..c+1 is more than twice the steps three pixels to either
    side plus a margin; rows where both sides are flat and dark (the black fill of a rotated
    tile) count neither way, so a seam that runs into fill still scores as a whole seam.
    """
    h, w, _ = rgb.shape
    step = np.abs(rgb[:, 2:] - rgb[:, :-2]).sum(axis=2)  # step[:, x] is centred on column x+1
    lum = rgb.mean(axis=2)
    windows = sliding_window_view(lum, 4, axis=1)  # windows[:, s] = lum[:, s : s + 4]
    flat = (windows.max(axis=2) - windows.min(axis=2) < 4) & (windows.mean(axis=2) < 40)
    scores = np.zeros(w)
    cols = np.arange(_MARGIN, w - _MARGIN)
    x = cols - 1
    loc, near = step[:, x], np.maximum(step[:, x - 3], step[:, x + 3])
    fill = flat[:, cols - 5] & flat[:, cols + 2]
    strong = (loc > 2 * near + 10) & ~fill
    counted = (~fill).sum(axis=0)
    scores[cols] = strong.sum(axis=0) / np.maximum(counted, 0.5 * h)
    # One side uniform along nearly the whole line: the edge of a banner, a bar or a letterbox
    # laid over one picture, not two tiles meeting (text banners scored as 2-tile mosaics).
    even = windows.max(axis=2) - windows.min(axis=2) < 4
    banner = (even[:, cols - 5].mean(axis=0) >= 0.8) | (even[:, cols + 2].mean(axis=0) >= 0.8)
    scores[cols[banner]] = 0.0
    return scores


def _ring(lum: np.ndarray) -> np.ndarray:
    """The outermost pixels of a luminance image: where a frame would be."""
    return np.concatenate([lum[0], lum[-1], lum[:, 0], lum[:, -1]])


def _framed(rgb: np.ndarray) -> bool:
    """A picture on a uniform frame (a crop pasted on black) has straight edges too."""
    ring = _ring(rgb.mean(axis=2))
    return bool(np.mean(np.abs(ring - np.median(ring)) <= 6) >= 0.98)


def find_mosaic(image: Image.Image) -> Mosaic | None:
    """The image's mosaic seams, or None when it is an ordinary photo (or a framed one)."""
    rgb_image = to_rgb(image)
    if min(rgb_image.size) < 4 * _MARGIN:
        return None  # too small to hold tiles
    # Larger images are reduced to SIDE; smaller ones are read as they are: enlarging them
    # repeats pixels in steps that score like seams (a 72x64 photo scored 0.52).
    if max(rgb_image.size) > SIDE:
        rgb_image = rgb_image.resize((SIDE, SIDE), Image.Resampling.BOX)
    rgb = np.asarray(rgb_image, dtype=np.float32)
    return _framed_mosaic(rgb) if _framed(rgb) else _mosaic_of(rgb)


def _framed_mosaic(rgb: np.ndarray) -> Mosaic | None:
    """A mosaic shrunk onto a frame (its tiles pasted on black): the seams inside the picture,
    as shares of the whole image. A photo on a frame has none, as any photo."""
    lum = rgb.mean(axis=2)
    picture = np.abs(lum - np.median(_ring(lum))) > 12
    rows = np.flatnonzero(picture.sum(axis=1) >= 3)  # a few stray pixels are JPEG noise
    cols = np.flatnonzero(picture.sum(axis=0) >= 3)
    if len(rows) < 4 * _MARGIN or len(cols) < 4 * _MARGIN:
        return None
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    inner = rgb[y0:y1, x0:x1]
    if _framed(inner):
        return None  # a frame inside the frame: too little of a picture to tell
    found = _mosaic_of(inner)
    if found is None:
        return None
    h, w = lum.shape

    def on_whole(axis: str, pos: float) -> float:
        start, length, side = (x0, x1 - x0, w) if axis == "x" else (y0, y1 - y0, h)
        return round(float(start + pos * length) / side, 3)

    seams = tuple((axis, on_whole(axis, pos)) for axis, pos in found.seams)
    return Mosaic(found.tiles, seams, found.score)


def _mosaic_of(rgb: np.ndarray) -> Mosaic | None:
    """The seams of an unframed image (SIDE px or less), or None."""
    peaks = []  # per axis: (score, axis, position)
    for axis, array in (("x", rgb), ("y", rgb.transpose(1, 0, 2))):
        scores = _seam_scores(array)
        at = int(scores.argmax())
        peaks.append((float(scores[at]), axis, round(at / array.shape[1], 3)))
    crossing = min(score for score, _, _ in peaks) >= CROSS_SHARE
    seams = tuple((axis, pos) for score, axis, pos in peaks if crossing or score >= SEAM_SHARE)
    if not seams:
        return None
    best = max(score for score, _, _ in peaks)
    return Mosaic(4 if len(seams) == 2 else 2, seams, round(best, 3))


def find_mosaic_file(path: str | Path) -> Mosaic | None:
    """find_mosaic on a file; None for a file that cannot be read (the caller counts those)."""
    try:
        with Image.open(path) as im:
            im.draft("RGB", (SIDE * 2, SIDE * 2))
            return find_mosaic(ImageOps.exif_transpose(im))
    except Exception:
        return None
