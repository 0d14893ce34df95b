"""The bare-GET path (fastget) of PoliteSession.fetch against a real HTTP/1.1 keep-alive server."""

from __future__ import annotations

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from imagefactory import make_image, to_bytes

from acnedata import fastget
from acnedata.http import HttpConfig, PoliteSession

JPEG = to_bytes(make_image(1, (64, 64)), "JPEG")


class KeepAliveServer:
    """HTTP/1.1 on 127.0.0.1 that keeps connections open unless a path says otherwise.

    Records (client port, path) per request, so a test can tell which requests shared a
    connection.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.drop_next: set[int] = set()  # client ports whose next request gets no answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                port = self.client_address[1]
                with server.lock:
                    server.seen.append((port, self.path))
                    dropped = port in server.drop_next
                    server.drop_next.discard(port)
                if dropped:  # closed without a byte of answer, as an idle timeout would
                    self.close_connection = True
                    return
                if self.path.startswith("/arm"):
                    with server.lock:
                        server.drop_next.add(port)
                server.answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def answer(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path
        body, headers = JPEG, {"Content-Type": "image/jpeg"}
        if path.startswith("/gzip"):
            body, headers["Content-Encoding"] = gzip.compress(JPEG), "gzip"
        elif path.startswith("/bomb"):
            body, headers["Content-Encoding"] = gzip.compress(b"\0" * 3_000_000), "gzip"
        elif path.startswith("/short"):
            req.send_response(200)
            req.send_header("Content-Type", "image/jpeg")
            req.send_header("Content-Length", str(len(JPEG)))
            req.end_headers()
            req.wfile.write(JPEG[:100])
            req.close_connection = True
            return
        req.send_response(200)
        for name, value in headers.items():
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(body)))
        if path.startswith("/close-said"):
            req.send_header("Connection", "close")
        req.end_headers()
        req.wfile.write(body)
        # "/close-silently": the server drops the connection without saying so, as servers
        # do with idle keep-alive connections; the client must notice before reusing it.
        if path.startswith(("/close-silently", "/close-said")):
            req.close_connection = True
            req.wfile.flush()
            req.connection.shutdown(socket.SHUT_RDWR)

    def ports(self, prefix: str = "") -> list[int]:
        return [port for port, path in self.seen if path.startswith(prefix)]


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    srv = KeepAliveServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()


def session(**overrides: object) -> PoliteSession:
    settings = {"allow_private": True, "min_interval": 0.0, "respect_robots": False}
    settings.update(overrides)
    return PoliteSession(HttpConfig(**settings))  # type: ignore[arg-type]


def test_sequential_downloads_share_one_connection(server):
    with session() as s:
        results = [s.fetch(server.url(f"/img/{i}.jpg")) for i in range(5)]
    assert all(r.ok and r.content == JPEG for r in results)
    assert len(set(server.ports("/img/"))) == 1


def test_a_connection_the_server_dropped_is_not_reused(server):
    with session(max_retries=0) as s:
        first = s.fetch(server.url("/close-silently/1.jpg"))
        second = s.fetch(server.url("/img/2.jpg"))
        third = s.fetch(server.url("/close-said/3.jpg"))
        fourth = s.fetch(server.url("/img/4.jpg"))
    assert [r.ok for r in (first, second, third, fourth)] == [True] * 4
    assert second.content == JPEG and fourth.content == JPEG
    # every item was asked for exactly once, each after a drop on a new connection
    assert [path for _, path in server.seen] == [
        "/close-silently/1.jpg",
        "/img/2.jpg",
        "/close-said/3.jpg",
        "/img/4.jpg",
    ]
    ports = [port for port, _ in server.seen]
    assert ports[0] != ports[1] and ports[2] != ports[3]


def test_gzip_bodies_are_decoded_and_a_gzip_bomb_stops_at_the_cap(server):
    with session(max_retries=0) as s:
        plain = s.fetch(server.url("/gzip/1.jpg"))
        bomb = s.fetch(server.url("/bomb/1.jpg"), max_bytes=1_000_000)
    assert plain.ok and plain.content == JPEG
    assert not bomb.ok and bomb.reason == "too large: over 1000000 bytes"


def test_a_body_shorter_than_its_content_length_is_an_incomplete_response(server):
    with session(max_retries=0) as s:
        short = s.fetch(server.url("/short/1.jpg"))
        after = s.fetch(server.url("/img/1.jpg"))
    assert not short.ok and short.reason == "connection error: incomplete response"
    assert short.retryable
    assert after.ok and after.content == JPEG


def test_paths_with_spaces_and_non_ascii_are_percent_encoded(server):
    with session() as s:
        result = s.fetch(server.url("/img/acné vulgaris.jpg"))
    assert result.ok
    assert server.seen[-1][1] == "/img/acn%C3%A9%20vulgaris.jpg"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_an_untrusted_certificate_is_refused(tmp_path: Path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    new_cert = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*new_cert, "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    srv = KeepAliveServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    srv.httpd.socket = context.wrap_socket(srv.httpd.socket, server_side=True)
    srv.thread.start()
    try:
        url = srv.url("/img/1.jpg").replace("http://", "https://")
        with session(max_retries=0) as s:
            result = s.fetch(url)
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
    assert not result.ok and result.reason == "connection error: TLS error"
    assert srv.seen == []  # the handshake failed: no request was sent


def test_a_new_connection_goes_to_the_vetted_addresses_without_asking_dns(server):
    # ".invalid" never resolves (RFC 2606): only the addresses given can reach the server.
    port = server.httpd.server_address[1]
    vetted = ((socket.AF_INET, ("127.0.0.1", 0)),)
    pool = fastget.Connections()
    try:
        resp = fastget.get(
            pool, f"http://images.invalid:{port}/img/1.jpg", {}, 2.0, addresses=vetted
        )
        body = b"".join(resp.iter_content(65536))
        resp.close()
    finally:
        pool.clear()
    assert resp.status_code == 200 and body == JPEG
    assert server.seen[-1][1] == "/img/1.jpg"


def test_dns_answers_are_cached_per_host_for_the_private_address_guard(server, monkeypatch):
    lookups: list[str] = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    url = server.url("/img/1.jpg").replace("127.0.0.1", "localhost")
    with session(allow_private=False) as s:
        results = [s.fetch(url) for _ in range(3)]
    assert all(r.reason and r.reason.startswith("private address refused") for r in results)
    assert lookups == ["localhost"]  # one lookup, then the cached answer
    assert server.seen == []


def test_a_kept_alive_connection_closed_as_it_is_reused_gets_the_request_again(server):
    with session(max_retries=0) as s:
        armed = s.fetch(server.url("/arm/1.jpg"))
        result = s.fetch(server.url("/img/2.jpg"))
    assert armed.ok and result.ok and result.content == JPEG
    (port_a, first), (port_b, second), (port_c, third) = server.seen
    assert (first, second, third) == ("/arm/1.jpg", "/img/2.jpg", "/img/2.jpg")
    assert port_a == port_b != port_c  # unanswered on the old connection, answered on a new one
