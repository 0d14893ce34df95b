"""requests' connections, pinned to the addresses the private-address guard vetted and watched."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from acnedata.deadline import Watch
from acnedata.fastget import Addresses, connect_to

_aim = threading.local()  # the Target of the request this thread is sending, if any


@dataclass(frozen=True)
class Target:
    """Where this thread's request may connect: `addresses` of host:port (None: DNS decides,
    the guard did not apply), and the Watch that cuts its sockets."""

    host: str
    port: int
    addresses: Addresses | None
    watch: Watch | None = None


@contextlib.contextmanager
def aimed(target: Target) -> Iterator[None]:
    """Connections opened by requests in this thread, inside the block, obey `target`.

    A thread-local because requests gives its connection pools no per-request argument; each
    PoliteSession thread has its own requests.Session, so no other request shares the value.
    """
    previous = getattr(_aim, "target", None)
    _aim.target = target
    try:
        yield
    finally:
        _aim.target = previous


def _norm(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


class _Pinned:
    """Mixed into urllib3's connections: a new socket goes to the vetted addresses (TLS still
    sends SNI for the host name and verifies the certificate against it; the Host header is
    the name too), and every socket, new or kept alive, is handed to the request's Watch."""

    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    sock: Any

    def _new_conn(self) -> socket.socket:
        target: Target | None = getattr(_aim, "target", None)
        proxied = getattr(self, "proxy", None) is not None or getattr(self, "_tunnel_host", None)
        if target is None or proxied:
            # Outside PoliteSession's requests, or to a proxy from the environment (which
            # resolves the target itself): as urllib3 would.
            return super()._new_conn()  # type: ignore[misc]
        if target.addresses is not None and (_norm(self.host), self.port) != (
            _norm(target.host),
            target.port,
        ):
            raise NewConnectionError(self, f"{self.host}:{self.port} is not the vetted host")
        watch = target.watch
        try:
            # addresses None: the guard did not apply (private addresses allowed, or the host
            # let through by name), so DNS decides; connect_to still lets the Watch cut it.
            sock = connect_to(
                target.addresses,
                (self.host, self.port),
                self.timeout,
                self.source_address,
                on_socket=watch.add if watch is not None else None,
            )
        except socket.gaierror as exc:  # worded as urllib3 words it: "DNS lookup failed"
            raise NewConnectionError(self, f"Failed to resolve '{self.host}' ({exc})") from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        for option in self.socket_options or ():
            sock.setsockopt(*option)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        target: Target | None = getattr(_aim, "target", None)
        if self.sock is not None and target is not None and target.watch is not None:
            target.watch.add(self.sock)  # a kept-alive connection: this request's to cut
        return super().request(*args, **kwargs)  # type: ignore[misc]


class PinnedHTTPConnection(_Pinned, HTTPConnection):
    pass


class PinnedHTTPSConnection(_Pinned, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = PinnedHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = PinnedHTTPSConnection


class PinnedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose pools make pinned, watched connections (see `aimed`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
