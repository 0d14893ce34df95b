"""Tests for acnedata.dedup's batched signatures: same values as one at a time, exact resizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from imagefactory import make_image, to_bytes
from PIL import Image

from acnedata import dedup
from acnedata.dedup import (
    DEFAULT_CONFIG,
    hamming,
    perceptual_hash,
    signature,
    signature_files,
    signature_gray,
    signatures,
)

LANCZOS, BOX = Image.Resampling.LANCZOS, Image.Resampling.BOX


def _framed(seed: int) -> Image.Image:
    canvas = Image.new("RGB", (160, 160), (0, 0, 0))
    canvas.paste(make_image(seed, size=(64, 64), seed=seed), (48, 48))
    return canvas


def _mixed() -> list:
    """Inputs of every kind and many sizes, interleaved so that equal sizes are not adjacent."""
    return [
        make_image(1, size=(160, 128), seed=1),
        to_bytes(make_image(2, size=(256, 256), seed=2), "JPEG", quality=90),
        make_image(3, size=(64, 64), seed=3).convert("L"),
        to_bytes(make_image(4, size=(128, 96), seed=4), "PNG"),
        _framed(5),
        make_image(6, size=(160, 128), seed=6),
        to_bytes(make_image(7, size=(300, 200), seed=7), "JPEG", quality=80),
        make_image(8, size=(40, 90), seed=8),
        to_bytes(make_image(9, size=(256, 256), seed=9), "JPEG", quality=70),
        make_image(10, size=(7, 5), seed=10),
        _framed(11),
    ]


def test_signatures_equal_signature_one_by_one_and_keep_order():
    inputs = _mixed()
    batched = signatures(inputs)
    assert batched == [signature(x) for x in inputs]
    assert len({s.phash for s in batched}) == len(inputs)  # order kept, nothing swapped
    assert batched[4].content and batched[10].content  # framed ones, found inside a batch
    assert signatures([]) == []


def test_signatures_of_a_path_and_of_its_bytes_agree(tmp_path):
    data = to_bytes(make_image(12, size=(200, 150), seed=12), "JPEG", quality=85)
    path = tmp_path / "a.jpg"
    path.write_bytes(data)
    assert signatures([path, str(path), data]) == [signature(data)] * 3


def test_gray_images_skip_the_rgb_round_trip_with_the_same_result():
    gray = make_image(13, size=(96, 80), seed=13).convert("L")
    assert signature(gray) == signature(gray.convert("RGB"))


def test_a_batch_long_enough_for_the_cached_passes_keeps_imagehash_phash():
    # 70 images of one unusual size: past _PROBE_AFTER, so the batched integer passes (not
    # Pillow) make the 32x32 copies, and every phash must still be imagehash's, bit for bit.
    images = [make_image(k, size=(93, 71), seed=k) for k in range(70)]
    assert [s.phash for s in signatures(images)] == [perceptual_hash(im) for im in images]
    assert dedup._resize_ops(93, 71, (32, 32), LANCZOS, 0) is not None  # the passes were used


# Square, landscape, portrait, odd sizes, a draft-decoded 1600x1200 photo, an enlargement (7x5).
SIZES = [(64, 64), (64, 48), (48, 64), (100, 75), (127, 85), (128, 128), (33, 17), (200, 150),
         (7, 5)]  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("resample", [LANCZOS, BOX], ids=["lanczos", "box"])
def test_resize_passes_reproduce_pillow_bit_for_bit(size, resample):
    w, h = size
    out = (32, 32) if resample == LANCZOS else dedup._thumb_size(w, h, 32)
    passes = dedup._find_passes(w, h, out, resample)
    assert passes is not None, "neither pass order reproduces this Pillow"
    rng = np.random.default_rng(w * 1000 + h)
    images = [Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)) for _ in range(3)]
    images += [make_image(k, size=size, seed=k).convert("L") for k in range(3)]
    want = np.stack([np.asarray(im.resize(out, resample)).ravel() for im in images], axis=1)
    columns = dedup._columns(images).astype(np.int32)
    assert np.array_equal(dedup._apply(passes, columns), want)  # batched: sparse products
    for k in range(len(images)):  # one image: dense products
        assert np.array_equal(dedup._apply(passes, columns[:, k : k + 1])[:, 0], want[:, k])


def _decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("size", [(128, 128), (256, 256), (300, 200), (1600, 1200)])
def test_signature_gray_of_a_decoded_jpeg_is_close_to_the_bytes_path(size):
    for seed in range(3):
        data = to_bytes(make_image(seed, size=size, seed=20 + seed), "JPEG", quality=90)
        gray = signature_gray(_decoded(data))
        assert gray.mode == "L"
        assert gray.size == dedup._open_gray(data).size  # the reduction draft mode picks
        from_pixels, from_bytes = signatures([gray, data])
        assert hamming(from_pixels.phash, from_bytes.phash) <= 2
        bits = [hamming(a, b) for a, b in zip(from_pixels.queries, from_bytes.queries, strict=True)]
        assert max(bits) <= 4 and sum(bits) <= 18  # under a bit per hash on average
        assert from_pixels.thumb[:2] == from_bytes.thumb[:2]
        a, b = (np.frombuffer(s.thumb[2:], np.uint8).astype(int) for s in (from_pixels, from_bytes))
        assert np.abs(a - b).mean() < 1.0


def test_signature_gray_leaves_small_images_alone():
    small = make_image(30, size=(100, 80), seed=30)
    assert signature_gray(small).size == (100, 80)
    assert signature(signature_gray(small)) == signature(small)


def test_signature_files_batches_skip_unreadable_files_in_order(tmp_path):
    paths = []
    for k in range(7):
        path = tmp_path / f"{k}.jpg"
        if k == 3:
            path.write_bytes(b"not an image")
        else:
            path.write_bytes(to_bytes(make_image(k, size=(128, 128), seed=40 + k), "JPEG"))
        paths.append(str(path))
    paths.append(str(tmp_path / "missing.jpg"))
    for workers in (1, 2):
        found = signature_files(paths, DEFAULT_CONFIG, workers=workers)
        assert [f is None for f in found] == [k in (3, 7) for k in range(8)]
        good = [p for k, p in enumerate(paths) if k not in (3, 7)]
        assert [f[0] for f in found if f] == good
        assert [f[2] for f in found if f] == signatures(good)


def test_file_bytes_reads_whole_files(tmp_path):
    for size in (0, 1, 65_537, 3_000_000):
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
        assert dedup._file_bytes(str(path)) == path.read_bytes()
