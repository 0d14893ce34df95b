"""Exact and near-duplicate detection: robust hashes, a multi-index near-pair search, clusters."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import itertools
import math
import os
import struct
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import imagehash
import numpy as np
from PIL import Image, ImageOps

from acnedata.dedup.detail import high_pass
from acnedata.dedup.fill import border_fill
from acnedata.images import ALLOWED_FORMATS, load_rgb, to_rgb

IMAGE_EXTENSIONS = frozenset(
    {f".{ext}" for ext in ALLOWED_FORMATS.values()} | {".jpeg", ".jpe", ".jfif", ".tiff"}
)
_BLOCK = 1024  # brute-force tile side: 1024² uint64 = 8 MiB; measured ~2.5x faster than 2048²


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DedupConfig:
    """Near-duplicate settings; the defaults come from bench/dedup_quality.py (see bench/README).

    Hash-time settings (stored in each Signature, so changing them means re-hashing):
      query_angles: the image is also hashed rotated by ± each angle, so rotated copies match.
      crop_side: the image is also hashed cropped to this fraction of each side (centre and the
        four corners), so crops that keep >= 80% of the area match.
      thumb_size: side of the verification thumbnail (<= 255; verification must use the same).
    Compare-time settings:
      hash_threshold: a pair is a candidate when one image's pHash is within this many bits of
        any hash of the other (its own pHash, the 7 flips/turns, rotations, crops).
      verify_threshold: a candidate is joined when the best-alignment correlation of the two
        verification thumbnails reaches this value (1 = identical up to a monotone tone curve).
      sure_threshold / detail_threshold: a candidate verified below sure_threshold is joined
        only if the two thumbnails' fine detail (detail.high_pass: the shading taken out) also
        correlates at detail_threshold or more at its best alignment. Smooth skin close-ups lit
        alike reach 0.94 on shading alone while their detail does not correlate (0.12-0.19);
        95% of true copies in that band keep 0.36 or more (bench/dedup_quality.py). Over
        sure_threshold the shading is trusted alone: no two different photos there reached
        it, and checking every pair's detail doubled the verification's time.
      verify_angles / verify_zooms: alignments tried by verification, besides the 8 flips/turns.
    """

    hash_threshold: int = 8
    verify_threshold: float = 0.94
    sure_threshold: float = 0.97
    detail_threshold: float = 0.25
    query_angles: tuple[float, ...] = (5.0, 10.0, 15.0)
    crop_side: float = 0.9
    verify_angles: tuple[float, ...] = (2.5, 5.0, 7.5, 10.0, 12.5, 15.0)
    verify_zooms: tuple[float, ...] = (1.05, 1.12)
    thumb_size: int = 32


DEFAULT_CONFIG = DedupConfig()


# --- plain perceptual hashes --------------------------------------------------------------------


def _as_rgb(image: Image.Image | Path | str | bytes) -> Image.Image:
    if isinstance(image, Image.Image):
        return to_rgb(image)
    return load_rgb(image)


def _phash(rgb: Image.Image) -> str:
    return str(imagehash.phash(rgb, hash_size=8))


def perceptual_hash(image: Image.Image | Path | str | bytes) -> str:
    """64-bit DCT perceptual hash (imagehash.phash, hash_size 8) as 16 hex characters.

    Paths and bytes are opened with their EXIF orientation applied; a PIL image is used as is.
    """
    return _phash(_as_rgb(image))


def perceptual_hashes(image: Image.Image | Path | str | bytes) -> list[str]:
    """[pHash of the image, pHash of its horizontal mirror] (the legacy two-hash form).

    pHash is not mirror-invariant (a flip negates every odd horizontal DCT coefficient, so about
    half the bits change). signature() supersedes this with all 8 flips/turns and more.
    """
    rgb = _as_rgb(image)
    return [_phash(rgb), _phash(ImageOps.mirror(rgb))]


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two equal-length hex hashes."""
    if len(a) != len(b):
        raise ValueError(f"hashes differ in length: {a!r} vs {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


# --- robust signatures --------------------------------------------------------------------------

# Rows 0..7 of the unnormalised DCT-II matrix for 32 samples (what scipy.fftpack.dct computes, and
# so what imagehash.phash uses): the 8x8 low-frequency block of many 32x32 images is then two
# batched matrix products instead of two full FFT-based DCTs per image.
_N = np.arange(32)
_DCT8 = 2.0 * np.cos(np.pi * np.arange(8)[:, None] * (2 * _N[None, :] + 1) / 64.0)
_ODD = np.array([(-1.0) ** k for k in range(8)])
_ORIENTATION = 0x0112  # EXIF tag
_SMALL = 64  # rotations, crops and thumbnails are made from a copy at most this large


# Sign patterns of the flips: none, columns (mirror), rows (flip), both (half turn).
_SIGNS = np.stack(
    [np.ones((8, 8)), np.outer(np.ones(8), _ODD), np.outer(_ODD, np.ones(8)), np.outer(_ODD, _ODD)]
)


def _dihedral_blocks(blocks: np.ndarray) -> np.ndarray:
    """(n, 8, 8, 8): the DCT blocks of each image's 8 flips/turns, identity first, derived from
    its (n, 8, 8) blocks without re-hashing.

    Mirroring an image multiplies DCT column v by (-1)^v, flipping multiplies row u by (-1)^u and
    transposing transposes the block; those three generate all 8 flips and quarter turns.
    """
    b = blocks[:, None]
    return np.concatenate([b * _SIGNS, b.swapaxes(-1, -2) * _SIGNS], axis=1)


def _hex_hashes(blocks: np.ndarray) -> list[str]:
    """The pHash of each (8, 8) block as 16 hex digits: bit = coefficient > the block's median,
    first coefficient = most significant bit."""
    flat = blocks.reshape(len(blocks), 64)
    ordered = np.sort(flat, axis=1)  # the median of 64 values, without np.median's overhead
    above = flat > ((ordered[:, 31] + ordered[:, 32]) / 2)[:, None]
    text = np.packbits(above, axis=1).tobytes().hex()  # one call, not a format per hash
    return [text[k : k + 16] for k in range(0, len(text), 16)]


def _fit(gray: Image.Image, side: int) -> Image.Image:
    w, h = gray.size
    if max(w, h) <= side:
        return gray
    k = side / max(w, h)
    return gray.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BOX)


# --- batches of small grayscale images -----------------------------------------------------------
# A batch of B equal-size images is held as "columns": a (h*w, B) array, one column per image.
# Every linear step (resize passes, rotations and crops) is then one sparse x dense product with
# the batch as the contiguous axis, whose cost per image falls as B grows.

_LANCZOS, _BOX, _BILINEAR = (
    Image.Resampling.LANCZOS,
    Image.Resampling.BOX,
    Image.Resampling.BILINEAR,
)
_PASS_PIXELS = 256 * 256  # bigger images are resized by Pillow itself (see _resize_ops)
# One image up to this size gets dense products, small enough that OpenBLAS stays on one thread
# (beyond 2**18 multiply-adds it starts more, which the other worker processes need).
_DENSE_PIXELS = 2**18 // 32


def _transposed(data: bytes, width: int, height: int) -> bytes:
    """The bytes of a height x width uint8 matrix, transposed (Pillow's blocked C transpose is
    ~4x faster than numpy's strided copy)."""
    matrix = Image.frombytes("L", (width, height), data)
    return matrix.transpose(Image.Transpose.TRANSPOSE).tobytes()


def _columns(images: Sequence[Image.Image]) -> np.ndarray:
    """(h*w, B) uint8 columns of B equal-size L images."""
    w, h = images[0].size
    data = b"".join(im.tobytes() for im in images)
    if len(images) > 1:
        data = _transposed(data, w * h, len(images))
    return np.frombuffer(data, np.uint8).reshape(w * h, len(images))


def _rows(columns: np.ndarray) -> list[bytes]:
    """The pixels (bytes, row-major) of each image in (h*w, B) columns of 0..255 values."""
    n, b = columns.shape
    data = columns.astype(np.uint8).tobytes()
    if b > 1:
        data = _transposed(data, b, n)
    return [data[k * n : (k + 1) * n] for k in range(b)]


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


def _box(x: float) -> float:
    return 1.0 if -0.5 < x <= 0.5 else 0.0


_FILTERS = {_LANCZOS: (_lanczos, 3.0), _BOX: (_box, 0.5)}  # (function, support), as Pillow's
_PRECISION = 22  # Pillow's fixed-point bits for 8-bit resampling (PRECISION_BITS in Resample.c)


def _resample_weights(in_size: int, out_size: int, resample: int) -> np.ndarray:
    """(out_size, in_size) matrix of the integer weights Pillow's resize uses along one axis.

    The same arithmetic as Pillow's precompute_coeffs and normalize_coeffs_8bpc, in the same
    order, so every weight is the same integer (math.sin is the same C library function).
    """
    func, support = _FILTERS[resample]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support *= filterscale
    ss = 1.0 / filterscale
    out = np.zeros((out_size, in_size))
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        taps = [func((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for tap in taps:  # summed in C's order: float addition is not associative
            total += tap
        for x, tap in enumerate(taps):
            k = tap / total if total != 0.0 else tap
            out[xx, xmin + x] = int(k * (1 << _PRECISION) + (0.5 if k >= 0 else -0.5))
    return out


@dataclass(frozen=True)
class _Pass:
    """One of Image.resize's two 1-D passes over a w x h image: Pillow's integer weights along
    one axis ("h": along rows, "v": along columns), then its rounding back to 8 bits."""

    axis: str
    w: int
    h: int
    weights: np.ndarray  # (out, in) integers, as float64 (every sum stays exact)

    @cached_property
    def halving(self) -> bool:
        """Two weights of 2**21 per output (BOX halving a side, the usual thumbnail)."""
        out, n = self.weights.shape
        pair = np.full((1, 2), 1 << (_PRECISION - 1))
        return n == 2 * out and np.array_equal(self.weights, np.kron(np.eye(out), pair))

    @cached_property
    def scaled(self) -> np.ndarray:
        """weights / 2**22 (exact: a power of two), so a product is the shifted sum directly."""
        return self.weights * 0.5**_PRECISION

    @cached_property
    def operator(self) -> Any:
        """The pass as a sparse operator on (h*w, B) columns: kron(I, W) for rows (each row on
        its own), kron(W, I) for columns."""
        import scipy.sparse as sp  # imagehash depends on scipy; imported here to keep import light

        weights = self.weights.astype(np.int32)
        if self.axis == "h":
            return sp.kron(sp.identity(self.h, np.int32), weights, format="csr")
        return sp.kron(weights, sp.identity(self.w, np.int32), format="csr")

    def __call__(self, columns: np.ndarray) -> np.ndarray:
        """The pass on (h*w, B) columns of whole numbers (int32, or float64 for one image),
        rounded as Pillow rounds (add half, shift right, clip)."""
        b = columns.shape[1]
        if self.halving:  # (a + b + 1) // 2 of neighbours: no product at all
            if self.axis == "h":  # neighbours in a row are neighbouring pixel indices
                pairs = columns.reshape(-1, 2, b)
                return (pairs[:, 0] + pairs[:, 1] + 1) // 2
            pairs = columns.reshape(self.h // 2, 2 * self.w, b)  # in a column: w indices apart
            return ((pairs[:, : self.w] + pairs[:, self.w :] + 1) // 2).reshape(-1, b)
        if b == 1 and self.w * self.h <= _DENSE_PIXELS:  # dense beats sparse's overheads here
            image = columns.reshape(self.h, self.w)
            out = image @ self.scaled.T if self.axis == "h" else self.scaled @ image
            out += 0.5  # then floor: Pillow's add-half-and-shift, exact in float64
            return np.clip(np.floor(out, out=out), 0, 255, out=out).reshape(-1, 1)
        acc = self.operator @ columns.astype(np.int32, copy=False)
        return np.clip((acc + (1 << (_PRECISION - 1))) >> _PRECISION, 0, 255)


def _passes(w: int, h: int, size: tuple[int, int], resample: int, order: str) -> list[_Pass]:
    """The resize's 1-D passes (those that change a side) in the given order."""
    out = []
    for axis in order:
        if axis == "h" and size[0] != w:
            out.append(_Pass("h", w, h, _resample_weights(w, size[0], resample)))
            w = size[0]
        elif axis == "v" and size[1] != h:
            out.append(_Pass("v", w, h, _resample_weights(h, size[1], resample)))
            h = size[1]
    return out


def _apply(passes: list[_Pass], columns: np.ndarray) -> np.ndarray:
    for one in passes:
        columns = one(columns)
    return columns


def _find_passes(w: int, h: int, size: tuple[int, int], resample: int) -> list[_Pass] | None:
    """The passes that reproduce Image.resize from w x h to size bit for bit, or None.

    Image.resize filters rows and columns in two passes, rounding to 8 bits in between; which
    pass comes first depends on the Pillow version and the sizes, so both orders are checked
    against Pillow itself, on two probe images (noise and a ramp) batched and one at a time.
    """
    rng = np.random.default_rng(w * 65_537 + h)
    ramp = (np.arange(w)[None, :] * 7 + np.arange(h)[:, None] * 3) % 256
    probes = [rng.integers(0, 256, (h, w)).astype(np.uint8), ramp.astype(np.uint8)]
    want = np.stack([np.asarray(Image.fromarray(p).resize(size, resample)).ravel() for p in probes])
    columns = np.stack([p.ravel() for p in probes], axis=1).astype(np.int32)
    for order in ("hv", "vh"):
        ops = _passes(w, h, size, resample, order)
        singles = [_apply(ops, columns[:, k : k + 1])[:, 0] for k in range(len(probes))]
        if np.array_equal(_apply(ops, columns).T, want) and np.array_equal(singles, want):
            return ops
    return None


_PROBE_AFTER = 64  # images of one size change before _find_passes runs (~4 ms: ~60 resizes)
_found_passes: dict[tuple[int, int, tuple[int, int], int], list[_Pass] | None] = {}
_resizes_seen: Counter[tuple[int, int, tuple[int, int], int]] = Counter()


def _resize_ops(
    w: int, h: int, size: tuple[int, int], resample: int, count: int
) -> list[_Pass] | None:
    """_find_passes for this size change, once it has been asked for count images in all and
    at least _PROBE_AFTER of them; None until then (Pillow resizes them one by one), and for
    images over _PASS_PIXELS."""
    key = (w, h, size, int(resample))
    with contextlib.suppress(KeyError):  # (one lookup: another thread may clear it meanwhile)
        return _found_passes[key]
    _resizes_seen[key] += count
    if w * h > _PASS_PIXELS or _resizes_seen[key] < _PROBE_AFTER:
        if len(_resizes_seen) > 4096:  # many one-off sizes: forget them, stay bounded
            _resizes_seen.clear()
        return None
    if len(_found_passes) >= 256:
        _found_passes.clear()
    ops = _found_passes[key] = _find_passes(w, h, size, resample)
    return ops


def _resized(
    images: Sequence[Image.Image],
    columns: Callable[[], np.ndarray],
    size: tuple[int, int],
    resample: int,
) -> np.ndarray:
    """Image.resize(size, resample) of each of equal-size images, bit for bit, as
    (size[1]*size[0], B) columns: by the cached passes on columns() (the images' own columns)
    when there are some for this size change, else by Pillow one at a time.

    Pillow spends ~50 us on one LANCZOS 64->32 resize (weights recomputed on every call, then
    scalar filtering); the same integer arithmetic as sparse products over a batch costs ~10.
    """
    ops = _resize_ops(*images[0].size, size, resample, len(images))
    if ops is None:
        return _columns([im.resize(size, resample) for im in images])
    return _apply(ops, columns().astype(np.int32))


@lru_cache(maxsize=256)
def _query_matrix(w: int, h: int, angles: tuple[float, ...], crop_side: float) -> Any:
    """Sparse map from a w x h image to the 32x32 pHash grids of its rotations and crops.

    Rows: for each query, 32x32 cells; each cell averages 2x2 bilinear samples of the rotated
    (black corners, as Image.rotate leaves them) or cropped image. One sparse product then
    replaces ~11 Pillow rotate/crop/resize calls. (Sampling the 32x32 pHash grid instead was
    measured: no faster, and rotated queries drifted ~5 bits from the rotated copies' pHash.)
    """
    import scipy.sparse as sp  # imagehash depends on scipy; imported here to keep import light

    cx, cy = w / 2, h / 2
    sub = (np.arange(64) + 0.5) / 64  # 2 samples per cell per axis, as fractions of the side
    fy, fx = np.meshgrid(sub, sub, indexing="ij")
    maps: list[tuple[np.ndarray, np.ndarray]] = []
    for angle in angles:
        for signed in (angle, -angle):
            a = math.radians(signed)
            x, y = fx * w - cx, fy * h - cy
            # Image.rotate's reverse mapping: destination point -> source point.
            maps.append(
                (cx + math.cos(a) * x - math.sin(a) * y, cy + math.sin(a) * x + math.cos(a) * y)
            )
    cw, ch = w * crop_side, h * crop_side
    for left, top in (
        ((w - cw) / 2, (h - ch) / 2),
        (0, 0),
        (w - cw, 0),
        (0, h - ch),
        (w - cw, h - ch),
    ):
        maps.append((left + fx * cw, top + fy * ch))
    rows, cols, vals = [], [], []
    cell = (np.arange(64)[:, None] // 2) * 32 + np.arange(64)[None, :] // 2
    for q, (sx, sy) in enumerate(maps):
        px, py = sx - 0.5, sy - 0.5  # pixel centres sit at +0.5
        inside = (px > -0.5) & (px < w - 0.5) & (py > -0.5) & (py < h - 0.5)
        x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
        ax, ay = px - x0, py - y0
        for dx, dy, wgt in (
            (0, 0, (1 - ax) * (1 - ay)),
            (1, 0, ax * (1 - ay)),
            (0, 1, (1 - ax) * ay),
            (1, 1, ax * ay),
        ):
            xi, yi = np.clip(x0 + dx, 0, w - 1), np.clip(y0 + dy, 0, h - 1)
            ok = inside & (wgt > 1e-9)
            rows.append(q * 1024 + cell[ok])
            cols.append((yi * w + xi)[ok])
            vals.append(wgt[ok] / 4)
    matrix = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(maps) * 1024, w * h),
    )
    # float32 halves the memory the product streams through (~2x faster batched); its rounding
    # (~1e-5 grey levels) changed none of the 19 x 2,576 hashes of the benchmark dataset.
    return matrix.astype(np.float32)


def _query_grids(columns: np.ndarray, w: int, h: int, config: DedupConfig) -> np.ndarray:
    """(queries*1024, B): the 32x32 pHash grids of each image's rotations and crops, for (h*w, B)
    columns, in one sparse x dense product."""
    matrix = _query_matrix(w, h, config.query_angles, config.crop_side)
    if columns.shape[1] == 1:  # one image: scipy's matrix x vector is the cheaper call
        return (matrix @ columns[:, 0].astype(np.float32))[:, None]
    return matrix @ columns.astype(np.float32)


def _framed(columns: np.ndarray, w: int, h: int) -> list[int]:
    """The images among (h*w, B) columns whose four corners are alike (a uniform frame would
    make them so): the only ones _content_box needs to look at."""
    if h < 8 or w < 8:
        return []
    if columns.shape[1] == 1:  # one image: four Python ints are cheaper than array calls
        values = [int(columns[k, 0]) for k in (0, w - 1, (h - 1) * w, h * w - 1)]
        return [0] if max(values) - min(values) <= 12 else []
    corners = columns[[0, w - 1, (h - 1) * w, h * w - 1]].astype(np.int16)
    return np.flatnonzero(corners.max(axis=0) - corners.min(axis=0) <= 12).tolist()


def _content_box(a: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of the picture inside a uniform frame (letterbox), or None if there is none.

    Two unrelated photos pasted on the same black canvas correlate on the frame alone; comparing
    only what is inside the frame keeps them apart. The frame must be near-perfectly uniform so
    that ordinary photos with a smooth background are left alone. a: (h, w) grey levels.
    """
    a = a.astype(np.int16)
    h, w = a.shape
    corners = (a[0, 0], a[0, -1], a[-1, 0], a[-1, -1])
    if h < 8 or w < 8 or max(corners) - min(corners) > 12:
        return None  # fast path: a frame would make the four corners alike
    ring = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    bg = float(np.median(ring))
    if np.mean(np.abs(ring - bg) <= 6) < 0.98:
        return None
    diff = np.abs(a - bg) > 12
    rows = np.flatnonzero(diff.mean(axis=1) > 0.05)
    cols = np.flatnonzero(diff.mean(axis=0) > 0.05)
    if not len(rows) or not len(cols):
        return None
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if y1 - y0 < 0.1 * h or x1 - x0 < 0.1 * w or (y1 - y0) * (x1 - x0) > 0.9 * h * w:
        return None
    return x0, y0, x1, y1


def _thumb_size(w: int, h: int, size: int) -> tuple[int, int]:
    """w x h fitted inside size x size with even sides.

    Even sides centre the picture exactly on an even canvas, so a flip of the thumbnail is the
    thumbnail of the flip (an odd side shifted flipped copies by one pixel).
    """
    k = size / max(w, h)
    return min(size, max(2, 2 * round(w * k / 2))), min(size, max(2, 2 * round(h * k / 2)))


def _thumbs(images: list[Image.Image], columns: np.ndarray, size: int) -> list[bytes]:
    """bytes([tw, th]) + the tw*th pixels of each image BOX-resized to _thumb_size."""
    tw, th = _thumb_size(*images[0].size, size)
    head = bytes((tw, th))
    return [head + row for row in _rows(_resized(images, lambda: columns, (tw, th), _BOX))]


def _contents(columns: np.ndarray, w: int, h: int, size: int) -> list[bytes]:
    """The thumbnail of the picture inside each image's uniform frame, b"" where there is none."""
    out = [b""] * columns.shape[1]
    for k in _framed(columns, w, h):
        box = _content_box(columns[:, k].reshape(h, w))
        if box:
            inner = Image.frombytes("L", (w, h), columns[:, k].tobytes()).crop(box)
            # Pillow directly: crops come in any size, not worth a cached operator each.
            thumb = inner.resize(_thumb_size(*inner.size, size), _BOX)
            out[k] = bytes(thumb.size) + thumb.tobytes()
    return out


@dataclass(frozen=True)
class Signature:
    """What near-duplicate search needs of one image, compact enough to keep in the catalog.

    phash: the plain imagehash pHash (16 hex). queries: pHashes of the image's other 7 flips and
    quarter turns, of its rotations by ± each config.query_angles, and of its centre and corner
    crops. thumb: a verification thumbnail (grayscale, <= thumb_size px a side); content: the
    same of the picture inside a uniform frame, when it has one (else b"").
    """

    phash: str
    queries: tuple[str, ...]
    thumb: bytes
    content: bytes = b""

    PREFIX: ClassVar[str] = "d1:"  # to_text() output starts with this

    def to_text(self) -> str:
        """One ASCII string (~1.6 KB): 'd1:' + base64 of the packed hashes and thumbnails."""
        hashes = [self.phash, *self.queries]
        payload = struct.pack(f">B{len(hashes)}Q", len(self.queries), *(int(h, 16) for h in hashes))
        payload += self.thumb + (self.content or b"\x00\x00")
        return self.PREFIX + base64.b64encode(payload).decode("ascii")

    @classmethod
    def from_text(cls, text: str | None) -> Signature | None:
        """Parse to_text() output; None for anything else (e.g. a legacy mirror hash)."""
        if not text or not text.startswith(cls.PREFIX):
            return None
        try:
            data = base64.b64decode(text[len(cls.PREFIX) :], validate=True)
            count = data[0]
            pos = 1 + 8 * (count + 1)
            if pos > len(data):
                return None
            thumbs = []
            for _ in range(2):
                w, h = data[pos], data[pos + 1]
                end = pos + 2 + w * h
                if end > len(data):
                    return None
                thumbs.append(data[pos:end] if w and h else b"")
                pos = end
        except (ValueError, IndexError):
            return None
        # Big-endian 64-bit values: the hex of each 8 bytes is its 16-digit hex.
        hexes = data[1 : 1 + 8 * (count + 1)].hex(" ", 8).split()
        return cls(hexes[0], tuple(hexes[1:]), thumbs[0], thumbs[1])


def _open_gray(source: Path | str | bytes) -> Image.Image:
    """Decode a file as grayscale, EXIF orientation applied, JPEGs at reduced scale.

    A JPEG can be decoded at 1/2..1/8 scale and straight to grayscale (draft mode) for a
    fraction of the full cost; signatures need no more than 64 px a side plus a 32 px pHash.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    im = Image.open(io.BytesIO(data))  # in-memory: nothing to close
    if im.format == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
        im.draft("L", (_SMALL, _SMALL))
    im.load()
    # exif_transpose copies even when there is nothing to undo, and parsing EXIF costs too.
    if ("exif" in im.info or im.format == "TIFF") and im.getexif().get(_ORIENTATION, 1) != 1:
        im = ImageOps.exif_transpose(im)
    return im if im.mode == "L" else to_rgb(im).convert("L")


ImageSource = Image.Image | Path | str | bytes
_CHUNK = 128  # images per batch: amortises per-call costs; keeps BLAS calls single-threaded


def _even_batches(n: int) -> Iterator[slice]:
    """Consecutive slices of range(n), as even as possible and at most _CHUNK long."""
    count = math.ceil(n / _CHUNK)
    for k in range(count):
        yield slice(k * n // count, (k + 1) * n // count)


def _gray(image: ImageSource) -> Image.Image:
    """The grayscale image signatures work from (see signature and signature_gray)."""
    if isinstance(image, Image.Image):
        # L -> RGB -> L is the identity (Pillow's luma weights sum to exactly 1), so skip it.
        return image if image.mode == "L" else to_rgb(image).convert("L")
    return _open_gray(image)


def _draft_scale(w: int, h: int) -> int:
    """The reduction (8, 4, 2 or 1) Pillow's JPEG draft() picks for a _SMALL x _SMALL target."""
    scale = min(w // _SMALL, h // _SMALL)
    return next(s for s in (8, 4, 2, 1) if scale >= s)


def signature_gray(image: Image.Image) -> Image.Image:
    """The grayscale copy signatures() decodes from a JPEG, made from an already decoded image.

    image: any mode, EXIF orientation already applied (e.g. the RGB of a full decode). It is
    converted to L and reduced by the power of two JPEG draft mode would use (_open_gray), so
    signatures([signature_gray(im)]) is within a bit or two of signatures([jpeg_bytes]) without
    decoding the file a second time.
    """
    gray = _gray(image)
    scale = _draft_scale(*gray.size)
    return gray.reduce(scale) if scale > 1 else gray


def _lazy(make: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """make(), computed on the first call only."""
    made: list[np.ndarray] = []

    def get() -> np.ndarray:
        if not made:
            made.append(make())
        return made[0]

    return get


def _by_size(images: dict[int, Image.Image]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in images.items():
        groups[im.size].append(i)
    return groups


def _dct_columns(grids: np.ndarray) -> np.ndarray:
    """(B, grids, 8, 8): the low-frequency DCT block of each of (grids, 1024, B) 32x32 grids,
    in the grids' dtype."""
    g, _, b = grids.shape
    dct = _DCT8.astype(grids.dtype, copy=False)
    if b == 1:  # one image: plain small products, no reshuffling
        return (dct @ grids.reshape(g, 32, 32) @ dct.T)[None]
    # The batch stays the last axis: rows of every grid first, then columns. (Many small
    # products: a large one would let OpenBLAS start threads that the other worker processes
    # need; see signature_files.)
    half = dct @ grids.reshape(g * 32, 32, b)  # (grid, row i, v, image)
    blocks = dct @ half.reshape(g, 32, 8 * b)  # (grid, u, v * image)
    return np.ascontiguousarray(blocks.reshape(g, 8, 8, b).transpose(3, 0, 1, 2))


def _hashes(to32: np.ndarray, queries: np.ndarray) -> list[list[str]]:
    """Per image, the 16-hex pHashes of its 8 flips/turns (identity first) and of its queries.

    to32: (1024, B) columns of each image's 32x32 copy (float64: its pHash must be imagehash's
    bit for bit). queries: (queries, 1024, B) float32 grids of its rotations and crops.
    """
    if to32.shape[1] == 1:  # one image: one small float64 DCT for all its grids
        blocks = _dct_columns(np.concatenate([to32[None], queries], dtype=np.float64))
        own, others = blocks[:, 0], blocks[:, 1:]
    else:
        own = _dct_columns(to32.astype(np.float64)[None])[:, 0]
        others = _dct_columns(queries)
    every = np.concatenate([_dihedral_blocks(own), others], axis=1)
    hexes = _hex_hashes(every.reshape(-1, 8, 8))
    per = every.shape[1]
    return [hexes[k * per : (k + 1) * per] for k in range(len(every))]


def _gray_signatures(grays: list[Image.Image], config: DedupConfig) -> list[Signature]:
    """Signatures of grayscale images, batched by size (see signatures)."""
    n, queries = len(grays), 5 + 2 * len(config.query_angles)
    hashes: list[list[str]] = [[] for _ in range(n)]
    thumbs, contents = [b""] * n, [b""] * n
    smalls: dict[int, Image.Image] = {}
    own: dict[int, np.ndarray] = {}  # index -> its 32x32 column, for images shrunk first

    def finish(
        idx: list[int], group: list[Image.Image], columns: np.ndarray, to32: np.ndarray
    ) -> None:
        w, h = group[0].size
        grids = _query_grids(columns, w, h, config).reshape(queries, 1024, -1)
        parts = _hashes(to32, grids), _thumbs(group, columns, config.thumb_size)
        for i, found, thumb, content in zip(
            idx, *parts, _contents(columns, w, h, config.thumb_size), strict=True
        ):
            hashes[i], thumbs[i], contents[i] = found, thumb, content

    for (w, h), idx in _by_size(dict(enumerate(grays))).items():
        group = [grays[i] for i in idx]
        columns = _lazy(lambda group=group: _columns(group))
        to32 = _resized(group, columns, (32, 32), _LANCZOS)  # imagehash.phash's resize
        if max(w, h) <= _SMALL:
            finish(idx, group, columns(), to32)
        else:
            for k, (i, g) in enumerate(zip(idx, group, strict=True)):
                smalls[i], own[i] = _fit(g, _SMALL), to32[:, k]
    for idx in _by_size(smalls).values():
        group = [smalls[i] for i in idx]
        finish(idx, group, _columns(group), np.stack([own[i] for i in idx], axis=1))
    return [
        Signature(found[0], tuple(found[1:]), thumbs[k], contents[k])
        for k, found in enumerate(hashes)
    ]


def signatures(
    images: Sequence[ImageSource], config: DedupConfig = DEFAULT_CONFIG
) -> list[Signature]:
    """signature() of each image, in order: the same values, several times faster per image.

    Images are processed in batches; within a batch, those of the same size share one resize
    call, one sparse product for their rotations and crops, and one DCT for all their pHashes.
    Raises on the first image that cannot be read (signature_files skips those instead).
    """
    out: list[Signature] = []
    for batch in _even_batches(len(images)):
        out += _gray_signatures([_gray(im) for im in images[batch]], config)
    return out


def signature(image: ImageSource, config: DedupConfig = DEFAULT_CONFIG) -> Signature:
    """The robust near-duplicate signature of one image (see Signature); signatures([image])[0].

    For a PIL image, phash equals perceptual_hash(image). Paths and bytes are decoded at reduced
    scale when they are JPEGs (see _open_gray), which can move their phash by a bit or two;
    signature_gray() gives an already decoded image the same treatment. Everything else comes
    from one grayscale copy of at most 64 px a side: rotations and crops through one cached
    sparse product, all pHashes through one batched DCT.
    """
    return signatures([image], config)[0]


def _file_bytes(path: str) -> bytes:
    """The whole file, through plain os calls: ~4x cheaper than Path.read_bytes (its buffered
    file object costs more than reading a small image)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        parts = [os.read(fd, os.fstat(fd).st_size + 1)]
        while parts[-1]:  # to the end, even if the file grew since fstat
            parts.append(os.read(fd, 1 << 20))
        return b"".join(parts)
    finally:
        os.close(fd)


def _read(path: str) -> tuple[str, Image.Image] | None:
    """(sha256 of the file, its grayscale decode), or None if it cannot be read as an image."""
    try:
        data = _file_bytes(path)
        return hashlib.sha256(data).hexdigest(), _open_gray(data)
    except Exception:
        return None  # unreadable or not an image: nothing to compare


def _safe_signatures(grays: list[Image.Image], config: DedupConfig) -> list[Signature | None]:
    """_gray_signatures, with None for an image that makes it fail."""
    try:
        return list(_gray_signatures(grays, config))
    except Exception:  # one odd image must not cost the rest of the batch their signatures
        if len(grays) == 1:
            return [None]
        return [s for g in grays for s in _safe_signatures([g], config)]


def _signature_chunk(
    paths: list[str], config: DedupConfig
) -> list[tuple[str, str, Signature] | None]:
    out: list[tuple[str, str, Signature] | None] = []
    for batch in _even_batches(len(paths)):
        part = paths[batch]
        read = [(k, r) for k, path in enumerate(part) if (r := _read(path)) is not None]
        sigs = _safe_signatures([gray for _, (_, gray) in read], config)
        found: list[tuple[str, str, Signature] | None] = [None] * len(part)
        for (k, (sha, _)), sig in zip(read, sigs, strict=True):
            if sig is not None:
                found[k] = (part[k], sha, sig)
        out += found
    return out


def _warm_up(config: DedupConfig) -> None:
    """Build here what each worker would otherwise build for itself on its first batch, for
    the usual 64 px images: forked workers inherit it. (~0.1 s: mostly importing scipy.sparse;
    pipeline.dedup starts a pool per chunk, which would pay it every time.)"""
    Image.preinit()  # the common format plugins, which Image.open imports on first use
    _query_matrix(_SMALL, _SMALL, config.query_angles, config.crop_side)
    thumb = _thumb_size(_SMALL, _SMALL, config.thumb_size)
    for size, resample in (((32, 32), _LANCZOS), (thumb, _BOX)):
        for one in _resize_ops(_SMALL, _SMALL, size, resample, _PROBE_AFTER) or []:
            _ = one.operator


def signature_files(
    paths: Sequence[str], config: DedupConfig = DEFAULT_CONFIG, workers: int | None = None
) -> list[tuple[str, str, Signature] | None]:
    """(path, sha256 of the bytes, Signature) per file, in order; None where it is unreadable.

    workers > 1 hashes in that many processes (decoding holds the GIL often enough that threads
    gain little); default: one per CPU when there are more than 64 files.
    """
    paths = list(paths)
    if workers is None:
        workers = (os.cpu_count() or 1) if len(paths) > 64 else 1
    if workers <= 1:
        return _signature_chunk(paths, config)
    _warm_up(config)
    # ~8 tasks per worker balance the load; at most one batch each keeps batches full.
    size = min(_CHUNK, max(16, math.ceil(len(paths) / (workers * 8))))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(_signature_chunk, chunks, itertools.repeat(config))
        return [result for part in parts for result in part]


# --- verification -------------------------------------------------------------------------------


def _alignments(angles: tuple[float, ...], zooms: tuple[float, ...]) -> list[tuple]:
    """(dihedral, angle, zoom, anchor) tried when comparing two thumbnails.

    The set is closed under inversion (every flip/turn's inverse is a flip/turn, -angle undoes
    angle, zooming out about a point undoes zooming in about it), so comparing a with b covers
    b with a as well.
    """
    out: list[tuple] = [(k, 0.0, 1.0, (0, 0)) for k in range(8)]
    out += [(0, s * a, 1.0, (0, 0)) for a in angles for s in (1, -1)]
    anchors = ((0, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))  # centre and the four corners
    out += [(0, 0.0, zz, anc) for z in zooms for zz in (z, 1 / z) for anc in anchors]
    return out


def _warp_matrix(size: int, dihedral: int, angle: float, zoom: float, anchor: tuple) -> Any:
    """Sparse (size² x size²) bilinear resampling: output pixel <- transformed input position."""
    import scipy.sparse as sp  # imagehash depends on scipy; imported here to keep import light

    c = (size - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    shift = (1 - 1 / zoom) * c
    u = (xx - c) / zoom + anchor[0] * shift
    v = (yy - c) / zoom + anchor[1] * shift
    t = np.deg2rad(angle)
    u, v = np.cos(t) * u - np.sin(t) * v, np.sin(t) * u + np.cos(t) * v
    if dihedral & 1:
        u = -u
    if dihedral & 2:
        v = -v
    if dihedral & 4:
        u, v = v, u
    x, y = u + c, v + c
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    out = np.arange(size * size).reshape(size, size)
    rows, cols, vals = [], [], []
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size) & (wgt > 1e-9)
        rows.append(out[ok])
        cols.append((yi * size + xi)[ok])
        vals.append(wgt[ok])
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(size * size, size * size),
    )


@lru_cache(maxsize=4)
def _warps(size: int, angles: tuple[float, ...], zooms: tuple[float, ...]) -> tuple[Any, int]:
    import scipy.sparse as sp

    aligns = _alignments(angles, zooms)
    return sp.vstack([_warp_matrix(size, *a) for a in aligns]).tocsr(), len(aligns)


def _detail_canvas(thumb: bytes, size: int, stretch: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """_canvas with its shading taken out (detail.high_pass): the fine detail and its mask."""
    values, mask = _canvas(thumb, size, stretch)
    return high_pass(values, mask, size), mask


def _canvas(thumb: bytes, size: int, stretch: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Thumbnail → (values, mask) on a size x size canvas, values = normalised average ranks;
    the mask leaves out the canvas around the thumbnail and any black fill on its border.

    Ranks make the comparison blind to any monotone tone change (brightness, contrast, gamma,
    grayscale conversion); average ranks keep flat areas flat instead of inventing a gradient.
    stretch: fill the whole canvas (aspect ratio dropped), for pairs whose shapes differ.
    """
    w, h = thumb[0], thumb[1]
    pix = np.frombuffer(thumb, dtype=np.uint8, offset=2, count=w * h)
    if stretch and (w, h) != (size, size):
        square = Image.frombytes("L", (w, h), pix.tobytes()).resize((size, size), _BILINEAR)
        pix, w, h = np.asarray(square).ravel(), size, size
    counts = np.bincount(pix, minlength=256)
    below = np.cumsum(counts) - counts
    ranks = (below + counts / 2.0) / max(len(pix), 1)
    values = np.zeros((size, size), np.float32)
    mask = np.zeros((size, size), np.float32)
    y0, x0 = (size - h) // 2, (size - w) // 2
    values[y0 : y0 + h, x0 : x0 + w] = ranks[pix].reshape(h, w)
    fill = border_fill(pix.reshape(h, w), grow=0)
    mask[y0 : y0 + h, x0 : x0 + w] = 1.0 if fill is None else ~fill
    return values.ravel(), mask.ravel()


def _aspects_differ(ta: bytes, tb: bytes) -> bool:
    """True when two thumbnails' shapes differ by more than their rounding to even sides can.

    An aspect-changing resize (a photo stretched to a square, as dataset exports do by default)
    keeps pHash but not the letterboxed thumbnail; such pairs are compared stretched to a square.
    A turn by 90° swaps the sides and is covered by the flips and turns instead.
    """
    (wa, ha), (wb, hb) = ta[:2], tb[:2]
    if not (wa and ha and wb and hb):
        return False
    ra, rb = wa / ha, wb / hb
    return min(abs(math.log(ra / rb)), abs(math.log(ra * rb))) > math.log(1.15)


def _pick_thumbs(a: Signature, b: Signature) -> tuple[bytes, bytes]:
    # Both framed: compare what is inside the frames. Only one framed: the other copy lost its
    # uniform frame (rotated, watermarked), so compare the whole pictures.
    if a.content and b.content:
        return a.content, b.content
    return a.thumb, b.thumb


def _scores_for(
    sigs: Sequence[Signature],
    pairs: list[tuple[int, int]],
    config: DedupConfig,
    canvas: Callable[[bytes, int, bool], tuple[np.ndarray, np.ndarray]] = _canvas,
) -> np.ndarray:
    """Best-alignment masked correlation of each pair's thumbnails, in pairs' order.

    For each alignment j, with x = warped a and y = b over the pixels valid in both, the
    correlation needs six sums (n, Σx, Σy, Σx², Σy², Σxy); they are all entries of one matrix
    product [A; A²; Ma] @ [B, Mb, B²], batched over every b paired with the same a.
    """
    size = config.thumb_size
    warp, n_align = _warps(size, config.verify_angles, config.verify_zooms)
    npx = size * size
    out = np.full(len(pairs), -1.0)
    by_first: dict[tuple[int, bool, bool], list[int]] = defaultdict(list)
    for k, (i, j) in enumerate(pairs):
        ta, tb = _pick_thumbs(sigs[i], sigs[j])
        by_first[(i, bool(sigs[i].content and sigs[j].content), _aspects_differ(ta, tb))].append(k)
    for (i, framed, stretch), ks in by_first.items():
        ta = sigs[i].content if framed else sigs[i].thumb
        va, ma = canvas(ta, size, stretch)
        wm = (warp @ ma).reshape(n_align, npx)
        ok = (wm > 0.999).astype(np.float32)
        wa = (warp @ (va * ma)).reshape(n_align, npx) / np.maximum(wm, 1e-6) * ok
        left = np.concatenate([wa, wa * wa, ok]).astype(np.float32)
        cols = []
        for k in ks:
            _, tb = _pick_thumbs(sigs[i], sigs[pairs[k][1]])
            vb, mb = canvas(tb, size, stretch)
            vb = vb * mb
            cols.append(np.stack([vb, mb, vb * vb], axis=1))
        prod = (left @ np.concatenate(cols, axis=1)).reshape(3, n_align, len(ks), 3)
        sxy, sx, sxx = prod[0, ..., 0], prod[0, ..., 1], prod[1, ..., 1]
        sy, n, syy = prod[2, ..., 0], prod[2, ..., 1], prod[2, ..., 2]
        nn = np.maximum(n, 1.0)
        cov = sxy - sx * sy / nn
        var = (sxx - sx * sx / nn) * (syy - sy * sy / nn)
        r = cov / np.sqrt(np.maximum(var, 1e-12))
        r[n < 0.4 * npx] = -1.0  # alignments that overlap too little say nothing
        out[ks] = r.max(axis=0)
    return out


def similarity(a: Signature, b: Signature, config: DedupConfig = DEFAULT_CONFIG) -> float:
    """Best-alignment correlation (-1..1) of two signatures' verification thumbnails."""
    return float(_scores_for([a, b], [(0, 1)], config)[0])


# --- union-find ---------------------------------------------------------------------------------


class UnionFind:
    """Disjoint sets over hashable items; iterative find with path halving, union by size."""

    def __init__(self) -> None:
        self._parent: dict[Hashable, Hashable] = {}
        self._size: dict[Hashable, int] = {}

    def add(self, x: Hashable) -> None:
        if x not in self._parent:
            self._parent[x] = x
            self._size[x] = 1

    def find(self, x: Hashable) -> Hashable:
        self.add(x)
        parent = self._parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> Hashable:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]
        return ra

    def groups(self) -> dict[Hashable, list[Hashable]]:
        """root → members, members in the order they were added."""
        out: dict[Hashable, list[Hashable]] = defaultdict(list)
        for x in self._parent:
            out[self.find(x)].append(x)
        return dict(out)


# --- near pairs: brute force and multi-index hashing --------------------------------------------


def _to_uint64(hashes: Sequence[str]) -> np.ndarray:
    bad = [h for h in hashes if len(h) != 16]
    if bad:
        raise ValueError(f"expected 16-hex-digit (64-bit) hashes, got {bad[0]!r}")
    if not hashes:
        return np.zeros(0, dtype=np.uint64)
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8").astype(np.uint64)


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_lut(x: np.ndarray) -> np.ndarray:
    """Per-element popcount of a uint64 array through a byte table (numpy < 2.0)."""
    as_bytes = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=-1, dtype=np.uint8)


def _popcount_into(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x, out=out)
    out[...] = _popcount_lut(x)
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    return _popcount_into(x, np.empty(x.shape, dtype=np.uint8))


def _tile_pairs(
    rows: np.ndarray, cols: np.ndarray, threshold: int, *, triangular: bool
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index arrays (i, j) with popcount(rows[i] ^ cols[j]) <= threshold, tile by tile.

    triangular: rows and cols are the same array and only i < j is wanted, so tiles below the
    diagonal are skipped and the diagonal tiles are masked. The three tile buffers are reused:
    allocating them per tile cost more than the arithmetic.
    """
    side = min(_BLOCK, max(len(rows), 1)), min(_BLOCK, max(len(cols), 1))
    xor_buf = np.empty(side, dtype=np.uint64)
    count_buf = np.empty(side, dtype=np.uint8)
    close_buf = np.empty(side, dtype=bool)
    for r0 in range(0, len(rows), _BLOCK):
        block = rows[r0 : r0 + _BLOCK, None]
        for c0 in range(r0 if triangular else 0, len(cols), _BLOCK):
            tile = cols[None, c0 : c0 + _BLOCK]
            shape = (block.shape[0], tile.shape[1])
            xor = np.bitwise_xor(block, tile, out=xor_buf[: shape[0], : shape[1]])
            counts = _popcount_into(xor, count_buf[: shape[0], : shape[1]])
            close = np.less_equal(counts, threshold, out=close_buf[: shape[0], : shape[1]])
            if triangular and c0 == r0:
                close = np.triu(close, k=1)
            if close.any():
                i, j = np.nonzero(close)
                yield i + r0, j + c0


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False),
        np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False),
    )


# Cost model (seconds per unit, measured on the 2-core dev machine) for choosing between brute
# force and multi-index plans; only the ratios matter.
_COST_BRUTE = 1.3e-9  # per pair, tiled XOR + popcount
_COST_PADDED = 2.0e-9  # per padded pair slot in a batch of buckets
_COST_SORT = 6e-8  # per hash per table: key extraction, sort, bucket bounds, gathers
_BATCH = 1 << 22  # pair slots per batch of buckets (~40 MB of temporaries)


@dataclass(frozen=True)
class _Plan:
    """Multi-index plan: 64 bits in m chunks; any pair within t bits has >= c = m - t chunks
    equal (t differing bits touch at most t chunks), so every such pair shares the key of at
    least one c-subset of chunks. Each c-subset is one table: sort by key, compare within
    equal-key buckets only."""

    m: int
    c: int
    starts: tuple[int, ...] = field(default=())
    widths: tuple[int, ...] = field(default=())

    @classmethod
    def make(cls, m: int, c: int) -> _Plan:
        q, r = divmod(64, m)
        widths = tuple([q + 1] * r + [q] * (m - r))
        starts = tuple(int(s) for s in np.cumsum((0, *widths[:-1])))
        return cls(m, c, starts, widths)

    def tables(self) -> list[tuple[int, ...]]:
        return list(itertools.combinations(range(self.m), self.c))

    def key(self, h: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
        key = np.zeros(len(h), dtype=np.uint64)
        for k in table:
            part = (h >> np.uint64(self.starts[k])) & np.uint64((1 << self.widths[k]) - 1)
            key = (key << np.uint64(self.widths[k])) | part
        bits = sum(self.widths[k] for k in table)
        # Narrow keys sort much faster (numpy radix-sorts 16-bit integers).
        return key.astype(np.uint16 if bits <= 16 else np.uint32 if bits <= 32 else np.uint64)

    def first_table_only(self, x: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
        """Mask of pairs (by XOR x) for which table is the first (lexicographic) c-subset of
        equal chunks, so each pair is reported by exactly one table without a global unique."""
        clean = np.zeros(len(x), dtype=np.int64)
        for k in range(self.m):
            chunk = (x >> np.uint64(self.starts[k])) & np.uint64((1 << self.widths[k]) - 1)
            clean |= (chunk == 0).astype(np.int64) << k
        in_table = sum(1 << k for k in table)
        before = ((1 << max(table)) - 1) & ~in_table
        return (clean & before) == 0

    def cost(self, n_a: int, n_b: int, self_join: bool) -> float:
        """Estimated seconds: per table a sort of every hash, plus the padded bucket-by-bucket
        comparisons (a Poisson bucket of mean size mu holds mu + 1 members on average as seen
        from one of its members, hence the + 1; 1.3 for padding)."""
        total = 0.0
        for table in self.tables():
            buckets = 2.0 ** sum(self.widths[k] for k in table)
            slots = n_a * (n_b / buckets + 1) * 1.3
            total += _COST_SORT * (n_a + (0 if self_join else n_b)) + _COST_PADDED * slots
        return total


def _choose_plan(n_a: int, n_b: int, threshold: int, self_join: bool) -> _Plan | None:
    pairs = n_a * (n_a - 1) / 2 if self_join else float(n_a) * n_b
    best, best_cost = None, _COST_BRUTE * pairs
    for c in range(1, 5):
        m = threshold + c
        if m > 32 or math.comb(m, c) > 3000:
            break
        plan = _Plan.make(m, c)
        cost = plan.cost(n_a, n_b, self_join)
        if cost < best_cost:
            best, best_cost = plan, cost
    return best


def _buckets(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(order, sorted keys, bucket starts, bucket lengths) of a key array."""
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    bounds = np.flatnonzero(ks[1:] != ks[:-1]) + 1
    starts = np.concatenate(([0], bounds)).astype(np.int64)
    lengths = np.diff(np.concatenate((starts, [len(ks)])))
    return order, ks, starts, lengths


def _batches(la: np.ndarray, lb: np.ndarray) -> Iterator[np.ndarray]:
    """Bucket indices in batches of similar sizes whose padded la x lb blocks fit _BATCH.

    Sizes are grouped in classes 25% wide (so padding to the batch's largest wastes little),
    and each class is cut into batches of at most _BATCH padded pair slots.
    """
    ca = np.floor(np.log(la) / np.log(1.25)).astype(np.int64)
    cb = np.floor(np.log(lb) / np.log(1.25)).astype(np.int64)
    order = np.lexsort((cb, ca))
    cls = ca[order] * 4096 + cb[order]
    for group in np.split(order, np.flatnonzero(np.diff(cls)) + 1):
        if not len(group):
            continue
        size = max(1, _BATCH // int(la[group].max() * lb[group].max()))
        for k in range(0, len(group), size):
            yield group[k : k + size]


def _bucket_pairs(
    ha: np.ndarray,
    sa: np.ndarray,
    la: np.ndarray,
    hb: np.ndarray,
    sb: np.ndarray,
    lb: np.ndarray,
    threshold: int,
    triangular: bool,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Positions (p in ha, q in hb) within threshold, for every bucket pair (sa..sa+la) x
    (sb..sb+lb), p < q if triangular. Buckets of similar size are padded into one (G, La, Lb)
    block per batch, so the work is a few large numpy operations, not a Python loop per bucket.

    Hits are rare, so padding and order are checked on the hits only, not as masks over the
    whole block, and flatnonzero (then divmod) is cheaper than nonzero on a 3-d array.
    """
    for g in _batches(la, lb):
        lag, lbg = la[g], lb[g]
        wa, wb = int(lag.max()), int(lbg.max())
        ia = sa[g, None] + np.minimum(np.arange(wa), lag[:, None] - 1)  # padding repeats the last
        ib = sb[g, None] + np.minimum(np.arange(wb), lbg[:, None] - 1)
        hits = np.flatnonzero(_popcount(ha[ia][:, :, None] ^ hb[ib][:, None, :]) <= threshold)
        k, rest = np.divmod(hits, wa * wb)
        p, q = np.divmod(rest, wb)
        keep = (p < lag[k]) & (q < lbg[k])  # hits on padding repeat a real pair: drop them
        if triangular:
            keep &= p < q
        yield ia[k[keep], p[keep]], ib[k[keep], q[keep]]


def _table_pairs(
    plan: _Plan, table: tuple[int, ...], a: np.ndarray, b: np.ndarray | None, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within threshold that share this table's key (and no earlier table's)."""
    oa, ka, sa, la = _buckets(plan.key(a, table))
    ha = a[oa]
    if b is None:
        keep = la >= 2
        ob, hb, sa, la = oa, ha, sa[keep], la[keep]
        sb, lb = sa, la
    else:
        ob, kb, sb, lb = _buckets(plan.key(b, table))
        hb = b[ob]
        _, ia, ib = np.intersect1d(ka[sa], kb[sb], assume_unique=True, return_indices=True)
        sa, la, sb, lb = sa[ia], la[ia], sb[ib], lb[ib]
    i, j = _concat(list(_bucket_pairs(ha, sa, la, hb, sb, lb, threshold, b is None)))
    if len(i):
        first = plan.first_table_only(ha[i] ^ hb[j], table)
        i, j = i[first], j[first]
    return oa[i], ob[j]


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _pair_arrays(
    a: np.ndarray, b: np.ndarray | None, threshold: int, plan: _Plan | str | None = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Exactly the pairs within threshold bits: (i, j) with i < j over a (b None), or i in a and
    j in b. plan: "auto" (cheapest by the cost model), None (brute force) or a _Plan."""
    if threshold < 0 or not len(a) or (b is not None and not len(b)):
        return _concat([])
    if plan == "auto":
        n_b = len(a) if b is None else len(b)
        plan = _choose_plan(len(a), n_b, min(threshold, 64), b is None)
    if plan is None or not isinstance(plan, _Plan):
        cols = a if b is None else b
        return _concat(list(_tile_pairs(a, cols, threshold, triangular=b is None)))
    tables = plan.tables()
    # numpy releases the GIL inside the big array operations, so tables run in parallel threads.
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        parts = list(pool.map(lambda t: _table_pairs(plan, t, a, b, threshold), tables))
    i, j = _concat(parts)
    if b is None:
        i, j = np.minimum(i, j), np.maximum(i, j)
    return i, j


def _sorted_list(i: np.ndarray, j: np.ndarray) -> list[tuple[int, int]]:
    order = np.lexsort((j, i))
    return list(zip(i[order].tolist(), j[order].tolist(), strict=True))


def near_pairs(hashes: Sequence[str], threshold: int) -> list[tuple[int, int]]:
    """All (i, j), i < j, whose 64-bit hex hashes differ in at most threshold bits, sorted.

    Large inputs use multi-index hashing (see _Plan): no pass over all n² pairs and no
    recursion; small ones, or very high thresholds, use blocked vectorised XOR + popcount.
    Both give exactly the brute-force pair set.
    """
    if threshold < 0:
        return []
    return _sorted_list(*_pair_arrays(_to_uint64(hashes), None, threshold))


def _cross_pairs(a: Sequence[str], b: Sequence[str], threshold: int) -> list[tuple[int, int]]:
    """All (i, j) with hamming(a[i], b[j]) <= threshold (full rectangle), sorted."""
    if threshold < 0 or not a or not b:
        return []
    return _sorted_list(*_pair_arrays(_to_uint64(a), _to_uint64(b), threshold))


# --- clustering ---------------------------------------------------------------------------------


@dataclass
class DedupItem:
    """One image to cluster. rank: sort key, lower = better representative.

    With a signature, near pairs are found through all its query hashes and then verified on
    its thumbnail; without one (phash and alt_phashes only) a hash match alone joins.
    """

    key: Any
    sha256: str
    phash: str | None
    pixel_sha256: str | None = None
    rank: tuple = ()
    alt_phashes: tuple[str, ...] = ()  # e.g. the mirror hash from perceptual_hashes()
    signature: Signature | None = None

    def __post_init__(self) -> None:
        if self.signature is not None and not self.phash:
            self.phash = self.signature.phash


def _ordered(indices: list[int], items: Sequence[DedupItem]) -> list[int]:
    """indices sorted by (rank, key); keys that do not compare fall back to their repr."""
    try:
        return sorted(indices, key=lambda i: (items[i].rank, items[i].key))
    except TypeError:
        return sorted(indices, key=lambda i: (items[i].rank, type(items[i].key).__name__,
                                              repr(items[i].key)))  # fmt: skip


def candidate_pairs(items: Sequence[DedupItem], threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique (i, j), i < j, item indices whose pHash is within threshold bits of any hash of
    the other (its pHash, or one of its signature queries / alt_phashes)."""
    hashed = np.array([k for k, item in enumerate(items) if item.phash], dtype=np.int64)
    primaries = _to_uint64([str(items[k].phash) for k in hashed])
    owner, queries = [], []
    for pos, k in enumerate(hashed.tolist()):
        item = items[k]
        extra = (item.signature.queries if item.signature else ()) + tuple(item.alt_phashes)
        owner.extend([pos] * len(extra))
        queries.extend(extra)
    i1, j1 = _pair_arrays(primaries, None, threshold)
    i2, q = _pair_arrays(primaries, _to_uint64(queries), threshold)
    j2 = np.asarray(owner, dtype=np.int64)[q] if len(q) else q
    i = np.concatenate([i1, i2])
    j = np.concatenate([j1, j2])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    codes = np.unique(hashed[lo[keep]] * len(items) + hashed[hi[keep]])
    return codes // max(len(items), 1), codes % max(len(items), 1)


def verification_scores(
    items: Sequence[DedupItem], pairs: Sequence[tuple[int, int]], config: DedupConfig | None = None
) -> np.ndarray:
    """similarity() of each (i, j) pair of items, which must all carry signatures."""
    sigs = [item.signature for item in items]
    if any(sigs[i] is None or sigs[j] is None for i, j in pairs):
        raise ValueError("verification needs a signature on both items of every pair")
    return _scores_for(sigs, list(pairs), config or DEFAULT_CONFIG)  # type: ignore[arg-type]


def verified(
    items: Sequence[DedupItem],
    pairs: Sequence[tuple[int, int]],
    scores: Sequence[float],
    config: DedupConfig | None = None,
) -> list[bool]:
    """Which scored pairs (verification_scores) are joined: those at sure_threshold or over,
    and those at verify_threshold or over whose fine detail agrees too (see DedupConfig)."""
    cfg = config or DEFAULT_CONFIG
    sigs = [item.signature for item in items]
    doubtful = [p for p, s in zip(pairs, scores, strict=True) if _doubtful(s, cfg)]
    agreed = set(_detail_agrees(sigs, doubtful, cfg))  # type: ignore[arg-type]
    return [
        s >= cfg.sure_threshold or (_doubtful(s, cfg) and p in agreed)
        for p, s in zip(pairs, scores, strict=True)
    ]


def _doubtful(score: float, cfg: DedupConfig) -> bool:
    return cfg.verify_threshold <= score < cfg.sure_threshold


def _detail_agrees(
    sigs: Sequence[Signature], pairs: list[tuple[int, int]], cfg: DedupConfig
) -> list[tuple[int, int]]:
    """The pairs whose fine detail also correlates at detail_threshold or more."""
    if not pairs:
        return []
    detail = _scores_for(sigs, pairs, cfg, _detail_canvas).tolist()
    return [p for p, d in zip(pairs, detail, strict=True) if d >= cfg.detail_threshold]


_VERIFY_BATCH = 4096


def _near_duplicates(
    items: Sequence[DedupItem], cfg: DedupConfig, joined: Callable[[int, int], bool] | None
) -> Iterator[list[tuple[int, int]]]:
    """Accepted pairs, batch by batch; joined(i, j) is asked before each batch so pairs the
    caller has already connected (directly or transitively) are not verified at all."""
    ci, cj = candidate_pairs(items, cfg.hash_threshold)
    pending: list[tuple[int, int]] = []
    unverifiable: list[tuple[int, int]] = []
    for i, j in zip(ci.tolist(), cj.tolist(), strict=True):
        sig_i, sig_j = items[i].signature, items[j].signature
        if sig_i is not None and sig_j is not None and sig_i.thumb and sig_j.thumb:
            pending.append((i, j))
        else:
            unverifiable.append((i, j))
    yield unverifiable
    sigs = [item.signature for item in items]
    for start in range(0, len(pending), _VERIFY_BATCH):
        batch = pending[start : start + _VERIFY_BATCH]
        if joined is not None:
            batch = [(i, j) for i, j in batch if not joined(i, j)]
        if not batch:
            continue
        scores = _scores_for(sigs, batch, cfg).tolist()  # type: ignore[arg-type]
        yield [p for p, s in zip(batch, scores, strict=True) if s >= cfg.sure_threshold]
        # The doubtful ones after the sure ones are joined: most are copies that the sure
        # pairs have joined by now, and their detail need not be asked (as verified() does)
        doubtful = [
            p
            for p, s in zip(batch, scores, strict=True)
            if _doubtful(s, cfg) and not (joined is not None and joined(*p))
        ]
        yield _detail_agrees(sigs, doubtful, cfg)  # type: ignore[arg-type]


def near_duplicates(
    items: Sequence[DedupItem], config: DedupConfig | None = None
) -> list[tuple[int, int]]:
    """Item index pairs (i < j) judged near duplicates: hash candidates (candidate_pairs), kept
    when both carry a thumbnail and verify, or when either lacks one (the hash match alone then
    decides, as before signatures existed)."""
    cfg = config or DEFAULT_CONFIG
    return sorted(p for batch in _near_duplicates(items, cfg, None) for p in batch)


def cluster_items(
    items: Sequence[DedupItem],
    threshold: int | None = None,
    *,
    config: DedupConfig | None = None,
) -> dict[Any, tuple[str, Any]]:
    """Map every key to (cluster_id, representative_key).

    Items join when their sha256 or pixel_sha256 match, or when they are near duplicates:
    candidates by hash (candidate_pairs at config.hash_threshold, or threshold if given), then,
    when both carry a Signature, verified by thumbnail (see verified()).
    Joins are transitive (union-find). cluster_id is "c" + the first 12 hex digits of the
    smallest sha256 in the cluster: it does not depend on input order or ranks, only on which
    files are in the cluster. (If two clusters' smallest sha256 share 12 digits, odds ~2e-5 at
    10⁵ clusters, both use the full digest.) The representative has the lowest (rank, key).
    """
    cfg = config or DEFAULT_CONFIG
    if threshold is not None:
        cfg = replace(cfg, hash_threshold=threshold)
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise ValueError("cluster_items needs unique keys")
    uf = UnionFind()
    for i in range(len(items)):
        uf.add(i)

    first_by: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        for kind, value in (("sha", item.sha256), ("pix", item.pixel_sha256)):
            if value:
                j = first_by.setdefault((kind, value), i)
                if j != i:
                    uf.union(j, i)

    # Verified lazily: a big cluster of copies needs only a spanning set of its pairs verified,
    # so pairs already joined (by exact hashes or earlier batches) are skipped.
    for batch in _near_duplicates(items, cfg, lambda i, j: uf.find(i) == uf.find(j)):
        for i, j in batch:
            uf.union(i, j)

    clusters = []  # (smallest sha256, representative, members)
    for members in uf.groups().values():
        if len(members) == 1:  # most items: no min or sort to do
            clusters.append((items[members[0]].sha256, members[0], members))
        else:
            smallest = min(items[i].sha256 for i in members)
            clusters.append((smallest, _ordered(members, items)[0], members))
    prefix_count: dict[str, int] = defaultdict(int)
    for smallest, _, _ in clusters:
        prefix_count[smallest[:12]] += 1

    result: dict[Any, tuple[str, Any]] = {}
    for smallest, rep, members in clusters:
        cluster_id = "c" + (smallest[:12] if prefix_count[smallest[:12]] == 1 else smallest)
        for i in members:
            result[items[i].key] = (cluster_id, items[rep].key)
    return result


# --- standalone use -----------------------------------------------------------------------------


def walk_images(paths: Sequence[str | Path]) -> list[str]:
    """Files given directly, plus image files under given folders (recursive)."""
    found: list[str] = []
    for given in paths:
        if os.path.isdir(given):
            for root, _dirs, files in os.walk(given):
                for name in files:
                    if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                        found.append(os.path.join(root, name))
        else:
            found.append(str(given))
    return list(dict.fromkeys(found))  # a file named twice is one file


def dedup_paths(
    paths: Sequence[str | Path],
    threshold: int | None = None,
    *,
    config: DedupConfig | None = None,
    workers: int | None = None,
) -> list[list[str]]:
    """Clusters of two or more duplicate images among files and folders, as sorted path lists.

    Like imagededup's find_duplicates, standalone: exact bytes, identical pixels, or verified
    near duplicates (see cluster_items; threshold overrides config.hash_threshold). Files that
    cannot be read as images are skipped. Paths come back exactly as given.
    """
    cfg = config or DEFAULT_CONFIG
    # Identical pixels need no pixel sha256 here: their signatures match and verify at 1.0.
    items = [
        DedupItem(
            key=found[0],
            sha256=found[1],
            phash=found[2].phash,
            rank=(found[0],),
            signature=found[2],
        )
        for found in signature_files(walk_images(paths), cfg, workers)
        if found is not None
    ]
    members: dict[str, list[str]] = defaultdict(list)
    for key, (cluster_id, _) in cluster_items(items, threshold, config=cfg).items():
        members[cluster_id].append(key)
    return sorted(sorted(group) for group in members.values() if len(group) > 1)
