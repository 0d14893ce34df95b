"""Scale-out on Ray: workers fetch, store and sign shards; one broker keeps the cluster polite."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from acnedata.errors import AcnedataError

DISTRIBUTORS = ("local", "ray")


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
