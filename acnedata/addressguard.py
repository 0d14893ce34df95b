"""The private-address guard: which addresses are off limits, and the DNS answer it vetted."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable

from acnedata.fastget import Addresses

DNS_CACHE_SECONDS = 60.0  # how long the private-address guard trusts a DNS answer


class PrivateAddress(Exception):
    """The host resolves to `address`, which is not a public one."""

    def __init__(self, address: str):
        super().__init__(address)
        self.address = address


def blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # also shared address space (100.64/10) and other special ranges
    )


def is_public_host(host: str) -> bool:
    """False for localhost and IP literals in special ranges; True for other names (no DNS)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if not name or name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        ip = ipaddress.ip_address(name.split("%")[0])
    except ValueError:
        return True
    return not blocked_ip(ip)


class AddressGuard:
    """Resolves a host once per DNS_CACHE_SECONDS and refuses it when any answer is private.

    The answer it vetted is what every connection must use (fastget and pinning take it), so
    a second, different DNS answer (rebinding) never gets a say.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        allowed_private_hosts: frozenset[str],
        clock: Callable[[], float],
    ):
        self.allow_private = allow_private
        self.allowed = allowed_private_hosts
        self._clock = clock
        self._lock = threading.Lock()
        self._resolved: dict[tuple[str, int], tuple[float, Addresses]] = {}

    def vet(self, host: str, port: int) -> Addresses | None:
        """The vetted addresses of host:port, or None when no check applies (private addresses
        allowed, or this host let through by name). Raises PrivateAddress, or OSError /
        UnicodeError when the name does not resolve. Answers are cached: a bulk download from
        one host would otherwise ask DNS once per image."""
        if self.allow_private:
            return None
        allowed = self.allowed
        if host in allowed or f"{host}:{port}" in allowed or f"[{host}]:{port}" in allowed:
            return None
        infos = self._resolve(host, port)
        for _, sockaddr in infos:
            address = str(sockaddr[0])
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                continue
            if blocked_ip(ip):
                raise PrivateAddress(address)
        return infos

    def _resolve(self, host: str, port: int) -> Addresses:
        key = (host, port)
        now = self._clock()
        with self._lock:
            cached = self._resolved.get(key)
        if cached is not None and now < cached[0]:
            return cached[1]
        infos = tuple(
            (family, sockaddr)
            for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        )
        with self._lock:
            self._resolved[key] = (now + DNS_CACHE_SECONDS, infos)
        return infos
