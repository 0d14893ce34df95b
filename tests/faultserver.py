"""A local server whose paths choose a fault: resets, 429/503, slow or cut bodies, bombs, loops."""

from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler

from httpserver import LocalHTTPServer, Reply, send
from imagefactory import make_image, to_bytes
from PIL import Image

PRIVATE_TARGET = "http://10.255.255.1/x.jpg"  # never connected to: the guard refuses it first
MAX_BYTES = 200_000  # the byte cap the matrix runs with; OVERSIZED is well above it
OVERSIZED = 400_000
MIN_SIDE = 16  # the minimum width and height the matrix runs with; valid images are 96x80
SLOW_STALL = 3.0  # seconds the stalling body waits; a matrix timeout must be well below it


@dataclass(frozen=True)
class Case:
    """One path: what the pipeline must end with (state and reason) and how often it is asked."""

    path: str
    state: str  # "stored", "failed", or "rejected"
    reason: str | None = None  # exact reason (failed items), None for stored ones
    requests: int | None = None  # exact request count expected at the path (None: not checked)


def _png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def valid_images() -> dict[str, tuple[bytes, str]]:
    """path → (body, content type) for one valid image per allowed format, all distinct."""
    out = {}
    for n, (fmt, ext, mime, kw) in enumerate(
        [
            ("JPEG", "jpg", "image/jpeg", {"quality": 90}),
            ("PNG", "png", "image/png", {}),
            ("WEBP", "webp", "image/webp", {"quality": 90}),
            ("GIF", "gif", "image/gif", {}),
            ("TIFF", "tif", "image/tiff", {}),
            ("BMP", "bmp", "image/bmp", {}),
        ]
    ):
        img = make_image(n, size=(96, 80))
        out[f"/ok/{ext}"] = (to_bytes(img, fmt, **kw), mime)
    # A phone photo: EXIF says "rotate 90°", so the stored copy is re-encoded upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = to_bytes(make_image(9, size=(96, 80)), "JPEG", quality=90, exif=exif.tobytes())
    out["/ok/rotated.jpg"] = (rotated, "image/jpeg")
    return out


class FaultServer(LocalHTTPServer):
    """LocalHTTPServer with one route per fault (see `cases()` for what each must produce).

    `retry_after` is the Retry-After the 429/503 paths send, in seconds (also as an HTTP date).
    """

    def __init__(self, retry_after: int = 1):
        super().__init__()
        self.retry_after = retry_after
        self.images = valid_images()
        self._seen: dict[str, int] = {}
        self._seen_lock = threading.Lock()

    def start(self) -> FaultServer:
        super().start()
        self._install()
        return self

    def __enter__(self) -> FaultServer:
        return self.start()

    # -- what each path must end with ----------------------------------------------------------

    def cases(self, max_retries: int) -> list[Case]:
        tries = 1 + max_retries
        return [
            *(Case(p, "stored", requests=1) for p in self.images),
            Case("/reset", "failed", "connection error: connection reset", tries),
            Case("/429-seconds-then-ok", "stored", requests=2),
            Case("/503-date-then-ok", "stored", requests=2),
            Case("/429-always", "failed", "http 429", tries),
            Case("/503-date-always", "failed", "http 503", tries),
            Case("/slow-ok", "stored", requests=1),
            Case("/slow-stall", "failed", "timeout", tries),
            Case("/truncated-body", "failed", "connection error: incomplete response", tries),
            Case("/truncated-jpeg", "failed", "truncated image", 1),
            Case("/png-as-jpeg", "failed", "content-type image/jpeg does not match PNG data", 1),
            Case("/jpeg-as-text", "failed", "content-type text/plain does not match JPEG data", 1),
            Case("/html-as-jpeg", "failed", "not an image (HTML)", 1),
            Case("/oversized-declared", "failed", f"too large: over {MAX_BYTES} bytes", 1),
            Case("/oversized-streamed", "failed", f"too large: over {MAX_BYTES} bytes", 1),
            Case("/bomb.png", "failed", "decompression bomb: 100000x100000 pixels", 1),
            Case("/loop", "failed", "too many redirects", None),
            Case("/to-file", "failed", "scheme not allowed: file", 1),
            Case("/to-private", "failed", "private address refused: 10.255.255.1", 1),
            Case("/private/disallowed.jpg", "failed", "robots.txt disallows", 0),
            Case("/noai.jpg", "failed", "X-Robots-Tag: noai", 1),
            Case("/gone.jpg", "failed", "http 404", 1),
            Case("/tiny.png", "failed", f"too small: 8x8 < {MIN_SIDE}x{MIN_SIDE}", 1),
        ]

    # -- routes --------------------------------------------------------------------------------

    def _install(self) -> None:
        jpeg, _ = self.images["/ok/jpg"]
        png, _ = self.images["/ok/png"]
        for path, (body, mime) in self.images.items():
            self.route(path, body=body, headers={"Content-Type": mime})
        self.route(
            "/robots.txt",
            body="User-agent: *\nDisallow: /private/\n",
            headers={"Content-Type": "text/plain"},
        )
        self.route("/reset", handler=_reset)
        fresh = {"Content-Type": "image/jpeg"}
        second = to_bytes(make_image(20, size=(96, 80)), "JPEG", quality=90)
        third = to_bytes(make_image(21, size=(96, 80)), "PNG")
        ra = str(self.retry_after)
        self.route(
            "/429-seconds-then-ok",
            replies=[Reply(429, "slow down", {"Retry-After": ra}), Reply(200, second, fresh)],
        )
        self.route("/503-date-then-ok", handler=self._date_then(third, "image/png"))
        self.route("/429-always", 429, "slow down", {"Retry-After": ra})
        self.route("/503-date-always", handler=self._date_always)
        self.route("/slow-ok", handler=_slow(to_bytes(make_image(22, (96, 80)), "JPEG")))
        self.route("/slow-stall", handler=_stall(jpeg))
        self.route("/truncated-body", handler=_cut(jpeg))
        self.route("/truncated-jpeg", body=jpeg[: len(jpeg) // 2], headers=fresh)
        self.route("/png-as-jpeg", body=png, headers=fresh)
        self.route("/jpeg-as-text", body=jpeg, headers={"Content-Type": "text/plain"})
        self.route(
            "/html-as-jpeg", body=b"<!DOCTYPE html><html><body>hi</body></html>", headers=fresh
        )
        self.route("/oversized-declared", body=b"\xff" * OVERSIZED, headers=fresh)
        self.route("/oversized-streamed", handler=_unsized(b"\xff\xd8\xff" + b"\0" * OVERSIZED))
        self.route("/bomb.png", body=_png_bomb(), headers={"Content-Type": "image/png"})
        self.route("/loop", 302, headers={"Location": "/loop2"})
        self.route("/loop2", 302, headers={"Location": "/loop"})
        self.route("/to-file", 302, headers={"Location": "file:///etc/passwd"})
        self.route("/to-private", 302, headers={"Location": PRIVATE_TARGET})
        self.route("/private/disallowed.jpg", body=jpeg, headers=fresh)
        noai = to_bytes(make_image(23, (96, 80)), "JPEG")
        self.route("/noai.jpg", body=noai, headers={**fresh, "X-Robots-Tag": "noai"})
        tiny = to_bytes(make_image(24, (8, 8)), "PNG")
        self.route("/tiny.png", body=tiny, headers={"Content-Type": "image/png"})
        # /gone.jpg has no route: the base server answers 404.

    def _date_then(self, body: bytes, mime: str):
        def handler(req: BaseHTTPRequestHandler) -> None:
            if self._first(req.path):
                send(req, 503, b"busy", {"Retry-After": self._retry_date()})
            else:
                send(req, 200, body, {"Content-Type": mime})

        return handler

    def _date_always(self, req: BaseHTTPRequestHandler) -> None:
        send(req, 503, b"busy", {"Retry-After": self._retry_date()})

    def _retry_date(self) -> str:
        # An HTTP date has whole seconds: one more second keeps the wait from rounding to 0.
        return formatdate(time.time() + self.retry_after + 1, usegmt=True)

    def _first(self, path: str) -> bool:
        with self._seen_lock:
            self._seen[path] = self._seen.get(path, 0) + 1
            return self._seen[path] == 1


def _reset(req: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP RST instead of an answer."""
    req.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    req.connection.close()
    req.close_connection = True


def _slow(body: bytes):
    """A complete body in 4 pieces, 0.1 s apart: slow, but never silent for a whole timeout."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        step = len(body) // 4 + 1
        for i in range(0, len(body), step):
            req.wfile.write(body[i : i + step])
            req.wfile.flush()
            time.sleep(0.1)

    return handler


def _stall(body: bytes):
    """Headers and a first piece, then silence for SLOW_STALL seconds."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body[:100])
        req.wfile.flush()
        time.sleep(SLOW_STALL)
        req.wfile.write(body[100:])

    return handler


def _cut(body: bytes):
    """Content-Length says the whole body, half of it is sent, then the connection closes."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body[: len(body) // 2])
        req.wfile.flush()
        req.close_connection = True

    return handler


def _unsized(body: bytes):
    """A body with no Content-Length, ended by closing the connection (HTTP/1.0 style)."""

    def handler(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        req.send_header("Connection", "close")
        req.end_headers()
        for i in range(0, len(body), 16384):
            req.wfile.write(body[i : i + 16384])
        req.close_connection = True

    return handler
