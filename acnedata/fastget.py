"""Bare GETs on http.client keep-alive connections, shaped like requests' responses and errors."""

from __future__ import annotations

import functools
import http.client
import select
import socket
import ssl
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests import exceptions as rex
from requests.utils import requote_uri

# Kept-alive connections per thread; a download thread mostly talks to one host at a time.
CONNECTIONS_PER_THREAD = 8
ACCEPT_ENCODING = "gzip, deflate"  # what LeanResponse can decode
_PLAIN_TARGET = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:@/?"
)

_Key = tuple[str, str, int]
# (address family, socket address) pairs from getaddrinfo, vetted by the caller
Addresses = tuple[tuple[int, tuple[Any, ...]], ...]


def as_requests_error(exc: BaseException, *, connecting: bool = False) -> rex.RequestException:
    """The requests exception that requests would raise for this http.client or socket error.

    PoliteSession turns requests exceptions into per-item reasons; mapping here keeps one
    vocabulary of failures whichever path a request took.
    """
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
        return rex.ConnectTimeout(exc) if connecting else rex.ReadTimeout(exc)
    if isinstance(exc, ssl.SSLError):  # certificate failures included
        return rex.SSLError(exc)
    if isinstance(exc, http.client.IncompleteRead):
        return rex.ChunkedEncodingError(exc)
    if isinstance(exc, http.client.InvalidURL | UnicodeError):
        return rex.InvalidURL(exc)
    if isinstance(exc, OSError | http.client.HTTPException):
        return rex.ConnectionError(exc)
    return rex.RequestException(exc)


class Connections:
    """Keep-alive http.client connections for get(), one set per thread; TLS verified against
    the CA bundle requests uses.

    http.client connections are not thread-safe; giving each download thread its own keeps
    them lock-free, and one connection per thread and origin matches the per-host concurrency
    limit that PoliteSession enforces. Measured against nginx on 127.0.0.1 with 8 threads, a
    GET here costs about a third of the CPU of the same GET through urllib3's pool.
    """

    def __init__(self, per_thread: int = CONNECTIONS_PER_THREAD):
        self.per_thread = max(1, per_thread)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._caches: list[OrderedDict[_Key, http.client.HTTPConnection]] = []
        self._tls: ssl.SSLContext | None = None

    def take(
        self,
        key: _Key,
        timeout: float,
        addresses: Addresses | None = None,
        *,
        fresh: bool = False,
        on_socket: Callable[[socket.socket], None] | None = None,
    ) -> tuple[http.client.HTTPConnection, bool]:
        """(a connected connection to the origin, whether it is a kept-alive one).

        A kept-alive one is reused while it is still open, unless `fresh`. A new connection
        goes to `addresses` when given (no second DNS lookup), else to whatever the host name
        resolves to. `on_socket` gets the socket, a new one before it connects (see
        connect_to); an OSError it raises fails the take.
        """
        cache = self._cache()
        conn = cache.pop(key, None)
        if conn is not None and not fresh and conn.sock is not None and not _dropped(conn.sock):
            if conn.sock.gettimeout() != timeout:
                conn.sock.settimeout(timeout)
            if on_socket is not None:
                try:
                    on_socket(conn.sock)
                except OSError as exc:
                    conn.close()
                    raise as_requests_error(exc, connecting=True) from None
            return conn, True
        if conn is not None:
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        # http.client opens its socket through this attribute; TLS still checks the name
        conn._create_connection = functools.partial(  # type: ignore[attr-defined]
            connect_to, addresses or None, on_socket=on_socket
        )
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise as_requests_error(exc, connecting=True) from None
        return conn, False

    def give_back(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        cache = self._cache()
        old = cache.pop(key, None)
        if old is not None:
            old.close()
        cache[key] = conn
        while len(cache) > self.per_thread:
            cache.popitem(last=False)[1].close()

    def clear(self) -> None:
        """Close every kept-alive connection of every thread."""
        with self._lock:
            caches = list(self._caches)
        for cache in caches:
            while cache:
                cache.popitem()[1].close()

    def _cache(self) -> OrderedDict[_Key, http.client.HTTPConnection]:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = OrderedDict()
            with self._lock:
                self._caches.append(cache)
        return cache

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            # The CA bundle requests verifies against, so both paths trust the same roots.
            self._tls = ssl.create_default_context(cafile=requests.certs.where())
        return self._tls


def connect_to(
    addresses: Addresses | None,
    address: tuple[str, int],
    timeout: float | None = None,
    source_address: tuple[str, int] | None = None,
    *,
    on_socket: Callable[[socket.socket], None] | None = None,
) -> socket.socket:
    """socket.create_connection to the first of `addresses` that answers, on address's port.

    `addresses` None: what the host name of `address` resolves to now. `on_socket` gets each
    socket before it connects, so another thread can abort a connect that hangs (on Linux a
    shutdown() ends a connect in progress); an OSError it raises skips that address.
    """
    if addresses is None:
        addresses = tuple(
            (family, sockaddr)
            for family, _, _, _, sockaddr in socket.getaddrinfo(*address, type=socket.SOCK_STREAM)
        )
    error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            if on_socket is not None:
                on_socket(sock)
            sock.connect((sockaddr[0], address[1], *sockaddr[2:]))
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError("no address to connect to")


def _dropped(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket was closed by the server (readable means EOF)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class _Headers:
    """Response headers: case-insensitive get, items, and getlist for repeated ones."""

    def __init__(self, message: http.client.HTTPMessage):
        self._message = message

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._message.get(name, default)

    def __getitem__(self, name: str) -> str:
        value = self._message.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._message

    def items(self) -> list[tuple[str, str]]:
        return self._message.items()

    def getlist(self, name: str) -> list[str]:
        return self._message.get_all(name) or []


class _Raw:
    """What PoliteSession reads of requests' resp.raw: the headers with getlist."""

    def __init__(self, headers: _Headers):
        self.headers = headers


class LeanResponse:
    """What PoliteSession reads of a requests.Response, over an http.client response."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        url: str,
        conn: http.client.HTTPConnection,
        key: _Key,
        connections: Connections,
    ):
        self.url = url
        self.status_code = response.status
        self.headers = _Headers(response.msg)
        self.raw = _Raw(self.headers)
        self._response = response
        self._conn = conn
        self._key = key
        self._connections = connections
        self._content: bytes | None = None
        self._content_consumed = False

    def iter_content(self, chunk_size: int) -> Iterator[bytes]:
        """The decoded body in chunks; errors raised as requests' iter_content would."""
        encoding = (self.headers.get("Content-Encoding") or "").strip().lower()
        inflate = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            # wbits 32+15 reads gzip and zlib-wrapped deflate alike
            inflate = zlib.decompressobj(32 + zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise rex.ContentDecodingError(f"unsupported content encoding {encoding!r}")
        response = self._response
        try:
            while True:
                chunk = response.read(chunk_size)
                if not chunk:
                    break
                if inflate is not None:
                    # max_length keeps a gzip bomb from inflating past what the caller reads
                    chunk = inflate.decompress(chunk, chunk_size)
                    while inflate.unconsumed_tail and chunk:
                        yield chunk
                        chunk = inflate.decompress(inflate.unconsumed_tail, chunk_size)
                if chunk:
                    yield chunk
            if response.length:  # Content-Length promised more than arrived
                raise http.client.IncompleteRead(b"", response.length)
            if inflate is not None:
                tail = inflate.flush()
                if tail:
                    yield tail
        except zlib.error as exc:
            raise rex.ContentDecodingError(exc) from None
        except (OSError, http.client.HTTPException) as exc:
            raise as_requests_error(exc) from None
        self._content_consumed = True

    @property
    def content(self) -> bytes | None:
        return self._content

    def close(self) -> None:
        """Back to the thread's cache when the body was read to the end; otherwise drop it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._content_consumed and self._response.isclosed() and conn.sock is not None:
            self._connections.give_back(self._key, conn)
        else:
            self._response.close()
            conn.close()


def get(
    pool: Connections,
    url: str,
    headers: Mapping[str, str],
    timeout: float,
    *,
    addresses: Addresses | None = None,
    on_socket: Callable[[socket.socket], None] | None = None,
) -> LeanResponse:
    """One GET, body not read yet, no redirect followed; raises requests exceptions.

    The caller has checked the URL (http or https, with a host, no user:password@) and, when
    it gives `addresses`, resolved and vetted the host: a new connection goes there.
    `on_socket` gets the socket the GET goes out on, before a byte is sent (so a deadline
    can cut a server that trickles its headers as well as one that trickles its body).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    key = (scheme, host, parts.port or (443 if scheme == "https" else 80))
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not _PLAIN_TARGET.issuperset(target):
        target = requote_uri(target)  # spaces and non-ASCII, percent-encoded as requests does
    conn, reused = pool.take(key, timeout, addresses, on_socket=on_socket)
    while True:
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            return LeanResponse(response, url, conn, key, pool)
        except (ConnectionResetError, BrokenPipeError) as exc:
            # A kept-alive connection the server closed just as we reused it: not one byte
            # of an answer came, so the GET goes once more on a new connection (RFC 9110
            # 9.2.2 allows it for idempotent requests; browsers do the same).
            conn.close()
            if not reused:
                raise as_requests_error(exc) from None
            conn, reused = pool.take(key, timeout, addresses, fresh=True, on_socket=on_socket)
        except (OSError, http.client.HTTPException, UnicodeError, ValueError) as exc:
            conn.close()
            raise as_requests_error(exc) from None
