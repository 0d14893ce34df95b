"""A small real HTTP server on 127.0.0.1 for tests: register routes, then count what arrived."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Headers = Mapping[str, str] | Iterable[tuple[str, str]]
Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Reply:
    """One canned response; a list of them answers successive requests (the last one repeats)."""

    status: int = 200
    body: bytes | str = b""
    headers: Headers = field(default_factory=dict)


def send(
    req: BaseHTTPRequestHandler,
    status: int = 200,
    body: bytes | str = b"",
    headers: Headers | None = None,
    *,
    content_length: bool = True,
) -> None:
    """Write a complete response from a custom handler (headers may repeat as tuples)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    req.send_response(status)
    names = {k.lower() for k, _ in pairs}
    if content_length and "content-length" not in names:
        req.send_header("Content-Length", str(len(data)))
    for name, value in pairs:
        req.send_header(name, value)
    req.end_headers()
    if req.command != "HEAD":
        req.wfile.write(data)


@dataclass
class _Route:
    replies: list[Reply]
    handler: Handler | None = None
    hits: int = 0


class LocalHTTPServer:
    """ThreadingHTTPServer on 127.0.0.1 with an OS-chosen port, served from a daemon thread.

    Routes match the path without its query string; unknown paths answer 404. ``counts[path]``
    counts requests per path (unknown ones too) and ``requests`` lists (method, path-with-query,
    headers) in arrival order; ``bodies`` holds the request bodies in the same order.
    """

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def route(
        self,
        path: str,
        status: int = 200,
        body: bytes | str = b"",
        headers: Headers | None = None,
        handler: Handler | None = None,
        *,
        replies: list[Reply] | None = None,
    ) -> None:
        """Answer `path` with a fixed reply, a sequence of replies, or a custom handler."""
        canned = replies or [Reply(status, body, headers or {})]
        with self._lock:
            self._routes[path] = _Route(list(canned), handler)

    def start(self) -> LocalHTTPServer:
        server = ThreadingHTTPServer((self.host, 0), self._handler_class())
        server.daemon_threads = True  # a slow handler must not block stop()
        self._server = server
        # A short poll interval keeps stop() (and so every test's teardown) fast.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _dispatch(self, req: BaseHTTPRequestHandler) -> None:
        path = urlsplit(req.path).path
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        with self._lock:
            self.counts[path] += 1
            self.requests.append((req.command, req.path, dict(req.headers.items())))
            self.bodies.append(body)
            route = self._routes.get(path)
            if route is not None:
                reply = route.replies[min(route.hits, len(route.replies) - 1)]
                route.hits += 1
        if route is None:
            send(req, 404, b"not found", {"Content-Type": "text/plain"})
        elif route.handler is not None:
            route.handler(req)
        else:
            send(req, reply.status, reply.body, reply.headers)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                # The client may give up (byte cap, timeout): that is what tests provoke.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output quiet

        return _Handler
