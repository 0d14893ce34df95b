"""Decode, validate and normalise downloaded images: formats, bombs, truncation, EXIF, size."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import os
import re
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

ALLOWED_FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "GIF": "gif",
    "TIFF": "tif",
    "BMP": "bmp",
}
MAX_PIXELS = 64_000_000  # decompression-bomb cap; validate_image(max_pixels=...) overrides it

_ORIENTATION_TAG = 0x0112

# Servers that do not know what they are sending say so with these; they make no claim.
_NO_CLAIM_TYPES = {
    "",
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/unknown",
    "application/download",
    "application/force-download",
}
_CONTENT_TYPES = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/png": "PNG",
    "image/x-png": "PNG",
    "image/apng": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/tiff": "TIFF",
    "image/tif": "TIFF",
    "image/x-tiff": "TIFF",
    "image/bmp": "BMP",
    "image/x-bmp": "BMP",
    "image/x-ms-bmp": "BMP",
}
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<script", b"<meta")
# Formats we recognise only to name them in the rejection reason.
_OTHER_MAGIC = (
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x02\x00", "CUR"),
    (b"8BPS", "PSD"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
    (b"qoif", "QOI"),
    (b"\xff\x0a", "JPEGXL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEGXL"),
)
_BMP_DIB_SIZES = {size.to_bytes(4, "little") for size in (12, 16, 40, 52, 56, 64, 108, 124)}
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_STORED_EXTS = set(ALLOWED_FORMATS.values())


@dataclass
class ValidatedImage:
    """The verdict on one downloaded file and, when ok, the normalised bytes to store."""

    ok: bool
    reason: str | None = None
    format: str | None = None  # Pillow format name of the INPUT ("MPO" is reported as "JPEG")
    ext: str | None = None  # extension of the STORED file (TIFF/GIF re-encodes are stored as png)
    width: int = 0  # after EXIF orientation
    height: int = 0
    data: bytes | None = None
    original_sha256: str | None = None
    sha256: str | None = None
    pixel_sha256: str | None = None
    # The decoded, oriented RGB pixels, kept only when asked (validate_image(keep_rgb=True)) so
    # a caller can hash them for dedup without decoding the file a second time.
    rgb: Image.Image | None = None


def sniff_format(data: bytes) -> str | None:
    """Name the format from its magic bytes: JPEG, PNG, WEBP, GIF, TIFF, BMP, HTML, or None."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    # "BM" alone is too common a text prefix; also require a known DIB header size.
    if head.startswith(b"BM") and data[14:18] in _BMP_DIB_SIZES:
        return "BMP"
    text = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<") and any(marker in text for marker in _HTML_MARKERS):
        return "HTML"
    return None


def _name_unknown(data: bytes) -> str:
    """A short reason for data that is none of the allowed formats."""
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return f"unsupported format: {name}"
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace").strip().upper() or "ISOBMFF"
        return f"unsupported format: {'AVIF' if brand.startswith('AVI') else 'HEIF/' + brand}"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<svg" in head.lower():
        return "unsupported format: SVG"
    if head[:1] in (b"{", b"["):
        return "not an image (JSON)"
    # A multi-byte character cut at the 1024-byte boundary decodes as one replacement char.
    text = head.decode("utf-8", "replace")
    if (
        text
        and text.count("\ufffd") <= 1
        and all(c.isprintable() or c in "\t\r\n\ufffd" for c in text)
    ):
        return "not an image (text)"
    return "not an image (unrecognised data)"


def _claimed_format(content_type: str | None) -> str | None:
    """The format a Content-Type claims: a name, "" for no claim, or the raw type if not ours."""
    if content_type is None:
        return ""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime in _NO_CLAIM_TYPES:
        return ""
    return _CONTENT_TYPES.get(mime, mime)


def _open_header(data: bytes, fmt: str) -> ImageFile.ImageFile:
    """Parse only the header with the one plugin that the magic bytes name.

    Image.open() would run Pillow's own global bomb check (a process-wide MAX_IMAGE_PIXELS that
    we must not change from download threads) and try every plugin; calling the registered
    factory directly keeps our max_pixels the single authority and the decoder matched to the
    magic bytes.
    """
    Image.init()
    factory, accept = Image.OPEN[fmt]
    if accept is not None and not accept(data[:16]):
        raise SyntaxError(f"not a {fmt} file")
    return factory(io.BytesIO(data), "")


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        im.mode == "P" and "transparency" in im.info
    )


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB: alpha over white, 16-bit/int/float scaled, not clipped."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        # Pillow's convert("RGB") clips I;16/I/F at 255, which turns most 16-bit photos white and
        # would make different images hash alike; scale the real range down instead.
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if im.mode.startswith("I;16") or (im.mode == "I" and lo >= 0 and hi <= 65535):
            arr = arr / 257.0
        elif im.mode == "F" and lo >= 0 and hi <= 1:
            arr = arr * 255.0
        elif hi > lo:
            arr = (arr - lo) * (255.0 / (hi - lo))
        else:
            arr = np.zeros_like(arr)
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if _has_alpha(im):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def load_rgb(path_or_bytes: str | os.PathLike[str] | bytes) -> Image.Image:
    """Open an image file or bytes, apply its EXIF orientation and return it as 8-bit RGB."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as im:
        im.load()
        return to_rgb(_apply_orientation(im, _orientation(im)))


def pixel_sha256_of(rgb: Image.Image) -> str:
    """sha256 of an RGB image's size and pixels: equal for lossless re-encodes of the same image."""
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}\n".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def _decoded_pixel_sha256(data: bytes, fmt: str) -> str | None:
    """pixel_sha256 of bytes we produced ourselves, or None if they do not decode."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
            return pixel_sha256_of(to_rgb(im))
    except Exception:
        return None


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:
        return 1  # unreadable EXIF: nothing to apply, and it is stripped anyway


# EXIF orientation → the transpose that undoes it (the table ImageOps.exif_transpose uses). Done
# by hand because exif_transpose also rewrites the EXIF/XMP it carries along, and can fail on
# malformed metadata that we are about to drop anyway.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _apply_orientation(im: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return im if method is None else im.transpose(method)


# --- lossless metadata stripping --------------------------------------------------------------
# Each returns the bytes without EXIF/XMP/comments/text, or None if the structure is not one we
# fully understand (the caller then re-encodes instead).

_JPEG_KEEP_APP = {
    0xE0: (b"JFIF\x00", b"JFXX\x00"),  # JFIF density and colour-space hints
    0xE2: (b"ICC_PROFILE\x00",),  # colour profile: dropping it changes how colours look
    0xEE: (b"Adobe",),  # Adobe transform flag: needed to decode CMYK/YCCK correctly
}


_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]", re.DOTALL)


def _strip_jpeg(data: bytes) -> bytes | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    out = bytearray(b"\xff\xd8")
    n, pos = len(data), 2
    while pos < n:
        if data[pos] != 0xFF:
            return None
        while pos < n and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: anything after it (phone trailers, polyglots) is dropped
            out += b"\xff\xd9"
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > n:
            return None
        seglen = int.from_bytes(data[pos : pos + 2], "big")
        end = pos + seglen
        if seglen < 2 or end > n:
            return None
        payload = data[pos + 2 : end]
        is_app = 0xE0 <= marker <= 0xEF
        drop = marker == 0xFE or (
            is_app and not payload.startswith(_JPEG_KEEP_APP.get(marker, (b"\x00\x00unused",)))
        )
        if not drop:
            out += bytes((0xFF, marker)) + data[pos:end]
        pos = end
        if marker == 0xDA:
            # Entropy-coded data runs to the next 0xFF that is neither stuffing (FF00) nor RSTn
            # (one regex search in C: a byte loop in Python cost ~0.1 ms per photo).
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return None
            j = found.start()
            out += data[pos:j]
            pos = j
    return None


# Critical chunks plus the ancillary chunks that only affect how pixels look or animate.
_PNG_KEEP = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"bKGD", b"pHYs", b"hIST", b"sPLT", b"cICP", b"mDCv", b"cLLi", b"acTL", b"fcTL", b"fdAT",
}  # fmt: skip


def _strip_png(data: bytes) -> bytes | None:
    out = bytearray(data[:8])
    n, pos = len(data), 8
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            return None
        # Unknown critical chunks (upper-case first letter) are kept: the decoder needs them.
        if ctype in _PNG_KEEP or ctype[:1].isupper():
            out += data[pos:end]
        pos = end
        if ctype == b"IEND":
            return bytes(out)
    return None


_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}
_WEBP_EXIF_XMP_FLAGS = 0x08 | 0x04


def _strip_webp(data: bytes) -> bytes | None:
    if len(data) < 12:
        return None
    riff_end = min(len(data), 8 + struct.unpack("<I", data[4:8])[0])
    out = bytearray(b"RIFF\x00\x00\x00\x00WEBP")
    pos = 12
    while pos + 8 <= riff_end:
        fourcc = data[pos : pos + 4]
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > riff_end:
            return None
        if fourcc in _WEBP_KEEP:
            chunk = bytearray(data[pos : min(end, riff_end)])
            if len(chunk) < 8 + size + (size & 1):
                chunk += b"\x00"
            if fourcc == b"VP8X" and size >= 1:
                chunk[8] &= ~_WEBP_EXIF_XMP_FLAGS & 0xFF
            out += chunk
        pos = end
    struct.pack_into("<I", out, 4, len(out) - 8)
    return bytes(out)


def _webp_is_lossless(data: bytes) -> bool:
    pos = 12
    while pos + 8 <= len(data):
        fourcc = data[pos : pos + 4]
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8L"
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        pos += 8 + size + (size & 1)
    return False


_STRIPPERS = {"JPEG": _strip_jpeg, "PNG": _strip_png, "WEBP": _strip_webp}

_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


def _reencode(im: Image.Image, fmt: str, source: bytes) -> tuple[bytes, str]:
    """Encode an (already transposed) image without any metadata; returns (bytes, ext)."""
    target = {"JPEG": "JPEG", "WEBP": "WEBP"}.get(fmt, "PNG")
    icc = im.info.get("icc_profile")
    transparency = im.info.get("transparency")
    if target == "JPEG" and im.mode not in ("L", "RGB"):
        im, icc = to_rgb(im), None  # a CMYK profile would be wrong for the RGB pixels
    elif im.mode not in (("RGB", "RGBA") if target == "WEBP" else _PNG_MODES):
        im, icc = (im.convert("RGBA") if _has_alpha(im) else to_rgb(im)), None
    clean = im.copy()
    # Savers pick up XMP and friends from .info; start from an empty one.
    clean.info = {}
    params: dict[str, object] = {}
    if icc:
        params["icc_profile"] = icc
    if target == "JPEG":
        params["quality"] = 95
    elif target == "WEBP":
        if _webp_is_lossless(source):
            params["lossless"] = True
        else:
            params["quality"] = 95
    elif transparency is not None and clean.mode in ("P", "L", "RGB", "I", "I;16"):
        params["transparency"] = transparency
    buf = io.BytesIO()
    clean.save(buf, format=target, **params)
    return buf.getvalue(), ALLOWED_FORMATS[target]


def _has_metadata(im: Image.Image) -> bool:
    if any(key in im.info for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop")):
        return True
    try:
        return len(im.getexif()) > 0
    except Exception:
        return True


def _storage_bytes(im: Image.Image, fmt: str, data: bytes, pixel_sha: str) -> tuple[bytes, str]:
    """Decide what to store.

    The policy: never recompress without a reason. Orientation other than 1 needs new pixels, so
    those images are re-encoded (JPEG q95, PNG/WEBP stay themselves; GIF/TIFF/BMP become PNG).
    TIFF is always re-encoded to PNG: its tags ARE its metadata and few viewers read it.
    Otherwise JPEG, PNG and WEBP lose their EXIF/XMP/comment segments losslessly (a segment
    walk, verified by decoding the result to the same pixels; for MPO phone photos this also
    drops the extra images after the first EOI); GIF with metadata becomes a PNG of frame 0;
    BMP carries no metadata and is kept. ICC profiles are kept: they are colour, not privacy,
    and dropping them changes how wide-gamut photos look.
    """
    orientation = _orientation(im)
    if orientation == 1 and fmt != "TIFF":
        if fmt == "BMP" or (fmt == "GIF" and not _has_metadata(im)):
            return data, ALLOWED_FORMATS[fmt]
        stripper = _STRIPPERS.get(fmt)
        if stripper is not None:
            stripped = stripper(data)
            if stripped == data:
                return data, ALLOWED_FORMATS[fmt]
            if stripped is not None and _decoded_pixel_sha256(stripped, fmt) == pixel_sha:
                return stripped, ALLOWED_FORMATS[fmt]
    return _reencode(_apply_orientation(im, orientation), fmt, data)


def _fail(reason: str, original_sha: str, fmt: str | None = None) -> ValidatedImage:
    return ValidatedImage(ok=False, reason=reason, format=fmt, original_sha256=original_sha)


def validate_image(
    data: bytes,
    *,
    content_type: str | None = None,
    min_width: int = 1,
    min_height: int = 1,
    max_pixels: int = MAX_PIXELS,
    keep_rgb: bool = False,
) -> ValidatedImage:
    """Check that data is a complete, allowed, big-enough image and prepare the copy to store.

    Never raises for bad data: every problem becomes ok=False with a short, stable reason.
    keep_rgb=True also returns the decoded pixels (oriented, 8-bit RGB) in .rgb.
    """
    original_sha = hashlib.sha256(data).hexdigest()
    if not data:
        return _fail("empty file", original_sha)
    fmt = sniff_format(data)
    if fmt == "HTML":
        return _fail("not an image (HTML)", original_sha)
    if fmt is None:
        return _fail(_name_unknown(data), original_sha)
    claimed = _claimed_format(content_type)
    if claimed and claimed != fmt:
        shown = (content_type or "").split(";", 1)[0].strip().lower()
        return _fail(f"content-type {shown} does not match {fmt} data", original_sha, fmt)

    try:
        im = _open_header(data, fmt)
    except Image.DecompressionBombError:
        return _fail("decompression bomb: over Pillow's pixel limit", original_sha, fmt)
    except Exception:
        return _fail(f"corrupt image: unreadable {fmt} header", original_sha, fmt)
    with im:
        width, height = im.size
        # Checked from the header, before a single pixel is allocated.
        if width * height > max_pixels:
            return _fail(f"decompression bomb: {width}x{height} pixels", original_sha, fmt)
        if width <= 0 or height <= 0:
            return _fail(f"corrupt image: {width}x{height} pixels", original_sha, fmt)
        try:
            # Multi-frame files (GIF, APNG, animated WEBP, multi-page TIFF): frame 0 only.
            # We never set ImageFile.LOAD_TRUNCATED_IMAGES, so incomplete data raises here.
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            return _fail(f"decompression bomb: {width}x{height} pixels", original_sha, fmt)
        except (OSError, EOFError) as exc:
            if isinstance(exc, EOFError) or "truncated" in str(exc) or "broken data" in str(exc):
                return _fail("truncated image", original_sha, fmt)
            return _fail(f"corrupt image: {str(exc)[:80]}", original_sha, fmt)
        except Exception as exc:
            return _fail(f"corrupt image: {type(exc).__name__}", original_sha, fmt)

        try:
            oriented = _apply_orientation(im, _orientation(im))
            width, height = oriented.size
            if width < min_width or height < min_height:
                return _fail(
                    f"too small: {width}x{height} < {min_width}x{min_height}",
                    original_sha,
                    fmt,
                )
            rgb = to_rgb(oriented)
            # The full decode stays: a reduced-size JPEG decode (Image.draft, ~half the time)
            # still catches truncation, but this hash needs every pixel (two images alike at
            # 1/8 scale are not exact duplicates), and the signatures reuse these pixels.
            pixel_sha = pixel_sha256_of(rgb)
            stored, ext = _storage_bytes(im, fmt, data, pixel_sha)
        except Exception as exc:
            return _fail(f"corrupt image: {type(exc).__name__}", original_sha, fmt)

    return ValidatedImage(
        ok=True,
        format=fmt,
        ext=ext,
        width=width,
        height=height,
        data=stored,
        original_sha256=original_sha,
        sha256=original_sha if stored is data else hashlib.sha256(stored).hexdigest(),
        pixel_sha256=pixel_sha,
        rgb=rgb if keep_rgb else None,
    )


def store_image(images_dir: Path, image: ValidatedImage, *, durable: bool = True) -> Path:
    """Write image.data to images_dir/<sha256[:2]>/<sha256>.<ext> atomically; idempotent.

    The bytes go to a temp file that is renamed into place, so the final name never holds a
    half-written file, even when the process is killed. durable=True also fsyncs the file
    before the rename and the folder after it; durable=False leaves that to the caller, who
    must call flush_to_disk() before recording the file as stored (the downloader does, once
    per batch of files instead of twice per file).
    """
    if not image.ok or image.data is None or image.sha256 is None or image.ext is None:
        raise ValueError("store_image needs a validated image (ok=True with data, sha256, ext)")
    if not _SHA256_RE.fullmatch(image.sha256) or image.ext not in _STORED_EXTS:
        raise ValueError(f"refusing to store under sha256={image.sha256!r} ext={image.ext!r}")
    if hashlib.sha256(image.data).hexdigest() != image.sha256:
        raise ValueError(f"image data does not match its sha256 {image.sha256}")
    folder = Path(images_dir) / image.sha256[:2]
    target = folder / f"{image.sha256}.{image.ext}"
    if _holds(target, image.data, image.sha256):
        return target  # same name and same bytes: nothing to do
    prefix = f".{image.sha256[:16]}."
    try:  # the folder usually exists: no mkdir call per file
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(image.data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the dataset from other users
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(folder)
    return target


def _holds(target: Path, data: bytes, sha256: str) -> bool:
    """Whether target already holds exactly these bytes.

    A file under its final name is normally complete (it got there by rename), but after a
    power cut a renamed file whose data never reached the disk can be empty or short; such a
    file is replaced, not trusted.
    """
    try:
        if target.stat().st_size != len(data):
            return False
        return hashlib.sha256(target.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def flush_to_disk(path: Path) -> None:
    """Make every file written under path durable: syncfs(2) of its filesystem on Linux.

    One call covers a whole batch of stored files for about the cost of a single fsync; where
    syncfs is missing it falls back to sync(2), which flushes every filesystem.
    """
    syncfs = _syncfs()
    if syncfs is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
