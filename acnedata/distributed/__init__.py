"""Scale-out on Ray: workers fetch, store and sign shards; one broker keeps the cluster polite."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from types import ModuleType

from acnedata.errors import AcnedataError

DISTRIBUTORS = ("local", "ray")
PROBE_SECONDS = 5.0  # how long --ray-address may take to accept a connection


def require_ray() -> ModuleType:
    """The ray module, or a one-line error that names the fix."""
    try:
        import ray
    except ImportError:
        raise AcnedataError(
            "--distributor ray needs Ray, which is not installed: pip install 'acnedata[ray]'"
        ) from None
    return ray


def check_distributor(name: str) -> str:
    """The distributor's name, or a one-line error naming the choices."""
    if name not in DISTRIBUTORS:
        raise AcnedataError(f"--distributor {name}: use local or ray")
    return name


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and how to cut the queue."""

    address: str | None = None  # None: start a Ray instance on this machine
    num_cpus: int | None = None  # that instance's CPUs (None: Ray's default, all of them)
    shard_size: int | None = None  # None: from the queue and the cluster's CPUs


def probe_address(address: str) -> None:
    """A HOST:PORT nobody answers on is a one-line error now; ray.init would wait forever."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in host or not host:
        return  # "auto", ray://…: Ray's own forms, left to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise AcnedataError(
            f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one with `ray start --head` and pass the address it prints"
        ) from None
