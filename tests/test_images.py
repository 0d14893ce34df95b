"""Tests for acnedata.images: formats, bombs, truncation, EXIF, metadata stripping, storage."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import time
import zlib

import numpy as np
import pytest
from imagefactory import make_image, to_bytes
from PIL import Image, ImageOps, PngImagePlugin

from acnedata.images import (
    ALLOWED_FORMATS,
    ValidatedImage,
    load_rgb,
    pixel_sha256_of,
    sniff_format,
    store_image,
    to_rgb,
    validate_image,
)

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def _reopen(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _exif_with_gps(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (37.0, 30.0, 15.5), "E", (127.0, 0.0, 1.0)
    return exif


def _assert_no_metadata(data: bytes) -> None:
    im = _reopen(data)
    assert dict(im.getexif()) == {}
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "Comment", "photoshop"):
        assert key not in im.info
    assert b"PhoneMaker" not in data and b"secret" not in data


def _bomb_png(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR (with a correct CRC) claims width x height."""
    data = bytearray(to_bytes(Image.new("RGB", (1, 1), "red"), "PNG"))
    assert data[12:16] == b"IHDR"
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(ALLOWED_FORMATS))
def test_each_allowed_format_decodes_and_stores(fmt, tmp_path):
    img = make_image("blobs", size=(80, 60), seed=3)
    data = to_bytes(img, fmt)
    result = validate_image(data, min_width=64, min_height=32)
    assert result.ok, result.reason
    assert result.format == fmt
    assert (result.width, result.height) == (80, 60)
    assert result.original_sha256 == hashlib.sha256(data).hexdigest()
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    # TIFF tags are metadata: always re-encoded, as PNG. Clean files are stored byte for byte.
    if fmt == "TIFF":
        assert result.ext == "png" and result.data != data
        assert _reopen(result.data).format == "PNG"
    else:
        assert result.ext == ALLOWED_FORMATS[fmt] and result.data == data
    if fmt in ("PNG", "TIFF", "BMP"):  # lossless: the pixels are the generator's pixels
        assert result.pixel_sha256 == pixel_sha256_of(img)
    path = store_image(tmp_path, result)
    assert path == tmp_path / result.sha256[:2] / f"{result.sha256}.{result.ext}"
    assert path.read_bytes() == result.data
    assert pixel_sha256_of(load_rgb(path)) == result.pixel_sha256


def test_sniff_format_magic_bytes():
    img = make_image(1)
    for fmt in ALLOWED_FORMATS:
        assert sniff_format(to_bytes(img, fmt)) == fmt
    assert sniff_format(b"\xef\xbb\xbf  \n<!DOCTYPE html><html><body>403</body></html>") == "HTML"
    assert sniff_format(b"<html><head><title>Not found</title></head></html>") == "HTML"
    assert sniff_format(b"BMW is a car, not a bitmap at all") is None
    assert sniff_format(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None
    assert sniff_format(b"") is None
    assert sniff_format(os.urandom(64).replace(b"\xff", b"\x00")) is None


def test_html_served_as_jpeg():
    page = b"<!doctype html>\n<html><head><title>Access denied</title></head></html>"
    result = validate_image(page, content_type="image/jpeg")
    assert not result.ok and result.reason == "not an image (HTML)"
    assert result.original_sha256 == hashlib.sha256(page).hexdigest()


@pytest.mark.parametrize(
    ("content_type", "ok"),
    [
        (None, True),
        ("image/jpeg", True),
        ("image/jpg", True),
        ("image/pjpeg", True),
        ("Image/JPEG; charset=binary", True),
        ("application/octet-stream", True),
        ("image/png", False),
        ("text/html; charset=utf-8", False),
    ],
)
def test_content_type_must_agree_with_magic_bytes(content_type, ok):
    result = validate_image(to_bytes(make_image(2), "JPEG"), content_type=content_type)
    assert result.ok is ok
    if not ok:
        mime = content_type.split(";")[0]
        assert result.reason == f"content-type {mime} does not match JPEG data"


def test_png_served_as_html_is_a_mismatch():
    result = validate_image(to_bytes(make_image(2), "PNG"), content_type="text/html")
    assert result.reason == "content-type text/html does not match PNG data"


def test_unsupported_and_garbage_inputs():
    ico = to_bytes(make_image(0, size=(32, 32)), "ICO")
    assert validate_image(ico).reason == "unsupported format: ICO"
    assert validate_image(b"").reason == "empty file"
    assert validate_image(b'{"error": "rate limited"}').reason == "not an image (JSON)"
    assert validate_image(b"Forbidden\n").reason == "not an image (text)"
    assert validate_image(bytes(range(256))).reason == "not an image (unrecognised data)"


# --- broken and hostile files -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_fails(fmt):
    data = to_bytes(make_image("noise", size=(256, 256)), fmt)
    result = validate_image(data[: len(data) // 2])
    assert not result.ok
    assert result.reason == "truncated image"


def test_decompression_bomb_rejected_from_header_before_decoding():
    data = _bomb_png(100_000, 100_000)
    start = time.perf_counter()
    result = validate_image(data)
    # decoding 10^10 pixels would take minutes and ~30 GB: seconds mean it never started
    assert time.perf_counter() - start < 10.0
    assert not result.ok
    assert result.reason == "decompression bomb: 100000x100000 pixels"
    assert result.format == "PNG"


def test_max_pixels_parameter():
    data = to_bytes(make_image(0, size=(100, 100)), "PNG")
    assert validate_image(data, max_pixels=10_000).ok
    assert validate_image(data, max_pixels=9_999).reason == "decompression bomb: 100x100 pixels"


def test_too_small():
    data = to_bytes(make_image(0, size=(20, 20)), "PNG")
    result = validate_image(data, min_width=64, min_height=64)
    assert result.reason == "too small: 20x20 < 64x64"
    assert validate_image(data, min_width=20, min_height=20).ok


def test_corrupted_bytes_never_raise():
    rng = random.Random(7)
    sources = [to_bytes(make_image(k, size=(64, 64)), f) for k, f in enumerate(ALLOWED_FORMATS)]
    for _ in range(150):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        result = validate_image(bytes(data), content_type=rng.choice([None, "image/png"]))
        assert isinstance(result, ValidatedImage)
        assert result.ok or result.reason


# --- modes --------------------------------------------------------------------------------------


def test_cmyk_jpeg():
    result = validate_image(to_bytes(make_image(4).convert("CMYK"), "JPEG"))
    assert result.ok and result.format == "JPEG" and result.pixel_sha256
    assert load_rgb(result.data).mode == "RGB"


def test_palette_and_la_png():
    img = make_image(5)
    palette = img.quantize(64)
    transparent = img.quantize(64)
    transparent.info["transparency"] = 0
    for variant in (palette, transparent, img.convert("LA"), img.convert("RGBA")):
        result = validate_image(to_bytes(variant, "PNG"))
        assert result.ok, (variant.mode, result.reason)
        assert result.pixel_sha256 == pixel_sha256_of(to_rgb(variant))
    # Alpha is composited over white, not dropped: a fully transparent image hashes as white.
    clear = Image.new("RGBA", (8, 8), (10, 200, 30, 0))
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)


def _png16(values: np.ndarray) -> bytes:
    im = Image.frombytes("I;16", values.shape[::-1], values.astype("<u2").tobytes())
    return to_bytes(im, "PNG")


def test_16_bit_png_is_scaled_not_clipped():
    ramp = np.linspace(1000, 65535, 64 * 64).reshape(64, 64)
    first, second = validate_image(_png16(ramp)), validate_image(_png16(ramp * 0.5))
    assert first.ok and second.ok
    assert _reopen(first.data).mode == "I;16"
    # Clipping at 255 (Pillow's plain convert) would make both all-white and "identical".
    assert first.pixel_sha256 != second.pixel_sha256
    rgb = np.asarray(load_rgb(first.data))
    assert rgb.min() < 10 and rgb.max() == 255
    # 16-bit values map to value/257, not stretched to the image's own range.
    mid = np.full((8, 8), 100 * 257)
    mid[0, 0] = 200 * 257
    assert np.unique(np.asarray(load_rgb(_png16(mid)))).tolist() == [100, 200]


def test_animated_gif_uses_first_frame():
    frames = [make_image(k, size=(48, 48)).quantize(32) for k in range(3)]
    data = to_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    result = validate_image(data)
    assert result.ok and result.ext == "gif" and result.data == data
    assert result.pixel_sha256 == pixel_sha256_of(to_rgb(frames[0]))


# --- EXIF orientation and metadata --------------------------------------------------------------


def test_exif_orientation_applied_and_exif_gps_stripped():
    img = make_image("waves", size=(96, 64))
    data = to_bytes(img, "JPEG", exif=_exif_with_gps(6), xmp=b"<x>secret</x>", quality=95)
    assert _reopen(data).getexif().get_ifd(GPS_IFD)  # the fixture really carries GPS
    result = validate_image(data, min_width=64, min_height=90)
    assert result.ok, result.reason
    assert (result.width, result.height) == (64, 96)
    assert result.ext == "jpg"
    _assert_no_metadata(result.data)
    stored = _reopen(result.data)
    assert stored.size == (64, 96)
    expected = np.asarray(ImageOps.exif_transpose(_reopen(data)).convert("RGB"), dtype=float)
    assert np.abs(np.asarray(stored.convert("RGB"), dtype=float) - expected).mean() < 4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_exif_transpose(orientation):
    img = make_image(2, size=(40, 24))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    data = to_bytes(img, "PNG", exif=exif)
    result = validate_image(data)
    expected = ImageOps.exif_transpose(_reopen(data)).convert("RGB")
    assert result.ok and result.ext == "png"
    assert (result.width, result.height) == expected.size
    assert pixel_sha256_of(load_rgb(result.data)) == pixel_sha256_of(expected)
    assert result.pixel_sha256 == pixel_sha256_of(expected)
    assert dict(_reopen(result.data).getexif()) == {}


def test_orientation_counts_for_min_size():
    data = to_bytes(make_image(0, size=(100, 40)), "JPEG", exif=_exif_with_gps(8))
    assert validate_image(data, min_width=40, min_height=100).ok
    assert validate_image(data, min_width=100, min_height=40).reason == "too small: 40x100 < 100x40"


@pytest.mark.parametrize(
    "options", [{}, {"progressive": True}, {"restart_marker_rows": 1}, {"subsampling": 0}]
)
def test_jpeg_metadata_stripped_without_recompression(options):
    img = make_image("blobs", size=(96, 64))
    data = to_bytes(img, "JPEG", exif=_exif_with_gps(1), comment=b"secret", quality=80, **options)
    data += b"SEFH trailer secret"  # phone vendors append data after EOI
    result = validate_image(data)
    assert result.ok and result.ext == "jpg"
    _assert_no_metadata(result.data)
    assert result.data.endswith(b"\xff\xd9")
    # Same decoded pixels as the original: segments were dropped, nothing re-encoded.
    assert (
        pixel_sha256_of(load_rgb(result.data))
        == result.pixel_sha256
        == (pixel_sha256_of(load_rgb(data)))
    )


def test_png_metadata_stripped_losslessly():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret")
    info.add_itxt("XML:com.adobe.xmp", "<x>secret</x>")
    img = make_image(6, size=(70, 50))
    data = to_bytes(img, "PNG", exif=_exif_with_gps(1), pnginfo=info)
    result = validate_image(data)
    assert result.ok and result.ext == "png" and result.data != data
    _assert_no_metadata(result.data)
    assert pixel_sha256_of(load_rgb(result.data)) == pixel_sha256_of(img)


@pytest.mark.parametrize("lossless", [False, True])
def test_webp_metadata_stripped_and_rotated(lossless):
    img = make_image(7, size=(90, 60))
    for orientation, size in ((1, (90, 60)), (8, (60, 90))):
        data = to_bytes(img, "WEBP", exif=_exif_with_gps(orientation), xmp=b"<x>secret</x>",
                        lossless=lossless)  # fmt: skip
        result = validate_image(data)
        assert result.ok and result.ext == "webp"
        _assert_no_metadata(result.data)
        assert _reopen(result.data).size == size == (result.width, result.height)
        vp8x = result.data.find(b"VP8X")
        assert vp8x < 0 or result.data[vp8x + 8] & 0x0C == 0  # no EXIF/XMP flags left
        if lossless or orientation == 1:
            assert pixel_sha256_of(load_rgb(result.data)) == result.pixel_sha256


def test_mpo_is_stored_as_plain_jpeg():
    first, second = make_image(1, size=(64, 64)), make_image(2, size=(64, 64))
    data = to_bytes(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    result = validate_image(data)
    assert result.ok and result.format == "JPEG" and result.ext == "jpg"
    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "JPEG" and getattr(stored, "n_frames", 1) == 1
    assert pixel_sha256_of(load_rgb(result.data)) == result.pixel_sha256  # not re-encoded
    assert len(result.data) < len(data) * 0.6


# --- storage ------------------------------------------------------------------------------------


def test_store_image_is_content_addressed_idempotent_and_clean(tmp_path):
    result = validate_image(to_bytes(make_image(8), "PNG"))
    path = store_image(tmp_path, result)
    assert path.relative_to(tmp_path).as_posix() == f"{result.sha256[:2]}/{result.sha256}.png"
    stamp = path.stat().st_mtime_ns
    assert store_image(tmp_path, result) == path
    assert path.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted([result.sha256[:2], path.name])
    assert path.stat().st_mode & 0o644 == 0o644


def test_store_image_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError):
        store_image(tmp_path, validate_image(b"<html></html>"))
    good = validate_image(to_bytes(make_image(9), "PNG"))
    tampered = ValidatedImage(**{**good.__dict__, "data": good.data + b"x"})
    with pytest.raises(ValueError):
        store_image(tmp_path, tampered)
    escaping = ValidatedImage(**{**good.__dict__, "ext": "png/../../x"})
    with pytest.raises(ValueError):
        store_image(tmp_path, escaping)
    assert list(tmp_path.iterdir()) == []
