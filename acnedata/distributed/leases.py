"""A worker's side of the broker: PoliteSession pacing and robots.txt that obey the cluster's."""

from __future__ import annotations

import contextlib
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from acnedata import robots
from acnedata.distributed.politeness import Grant

# call(method, *args): a broker method's result (ray.get of the actor call, or a direct call)
Call = Callable[..., Any]

STARTS_BATCH = 8  # request starts reserved per call to the broker, for a paced host
HEARTBEAT = 0.2  # seconds between a worker's renewals (idle slots back, pauses learnt)
SLOT_POLL = 0.02  # first wait when the broker had no slot free; doubles up to SLOT_POLL_MAX
SLOT_POLL_MAX = 0.2


@dataclass
class _HostLease:
    slots: int = 0  # leased from the broker
    in_use: int = 0
    waiting: int = 0  # threads of this worker waiting for one of this host's slots
    asking: bool = False  # one thread at a time asks the broker for more
    paced: bool = True
    not_before: float = -math.inf
    starts: deque[float] = field(default_factory=deque)  # reserved starts, local clock


class LeasedPacer:
    """acnedata.pacing.Pacer's interface, with each host's slots and starts from the broker.

    The in-flight limit across hosts (`concurrency`) stays this worker's own.
    """

    def __init__(
        self,
        call: Call,
        worker: str,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        concurrency: int = 0,
    ):
        self._call, self._worker = call, worker
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Condition()
        self._hosts: dict[str, _HostLease] = {}
        self._global: threading.BoundedSemaphore | contextlib.nullcontext[None] = (
            threading.BoundedSemaphore(concurrency) if concurrency > 0 else contextlib.nullcontext()
        )
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name="lease-keeper", daemon=True)
        self._keeper.start()

    @contextlib.contextmanager
    def paced(self, hostname: str) -> Iterator[None]:
        """Hold one of the host's leased slots, wait for a reserved start, then a global slot."""
        key = hostname.lower()
        lease = self._take_slot(key)
        try:
            start = self._take_start(key, lease)
            wait = start - self._clock()
            if wait > 0:
                self._sleep(wait)
            with self._global:
                yield
        finally:
            with self._lock:
                lease.in_use -= 1
                self._lock.notify_all()

    def pause_host(self, hostname: str, seconds: float) -> None:
        """Pause the host here at once, and for every worker through the broker."""
        key = hostname.lower()
        with self._lock:
            lease = self._hosts.setdefault(key, _HostLease())
            lease.not_before = max(lease.not_before, self._clock() + seconds)
            lease.paced = True
        self._call("pause", key, seconds)

    def slow_down(self, hostname: str, interval: float) -> None:  # pragma: no cover
        """Crawl-delay: the broker applies it when it loads robots.txt, never a worker."""

    def close(self) -> None:
        """Stop the heartbeat and give every slot back."""
        self._stop.set()
        self._keeper.join(timeout=5)
        self._call("release_all", self._worker)

    # -- slots and starts ------------------------------------------------------------------------

    def _take_slot(self, key: str) -> _HostLease:
        delay = SLOT_POLL
        with self._lock:
            lease = self._hosts.setdefault(key, _HostLease())
            lease.waiting += 1
            try:
                while lease.in_use >= lease.slots:
                    if lease.asking:
                        self._lock.wait(SLOT_POLL)
                        continue
                    lease.asking = True
                    give_back = self._idle(but=key)
                    self._lock.release()
                    try:
                        grant = self._call(
                            "lease", self._worker, key, lease.waiting, STARTS_BATCH, give_back
                        )
                    finally:
                        self._lock.acquire()
                        lease.asking = False
                    self._apply(lease, grant, slots=True)
                    self._lock.notify_all()
                    if lease.in_use >= lease.slots:  # other workers hold them all
                        self._lock.wait(delay)
                        delay = min(2 * delay, SLOT_POLL_MAX)
                lease.in_use += 1
            finally:
                lease.waiting -= 1
        return lease

    def _take_start(self, key: str, lease: _HostLease) -> float:
        while True:
            with self._lock:
                now = self._clock()
                if not lease.paced:
                    return max(now, lease.not_before)
                if lease.starts:
                    return max(lease.starts.popleft(), lease.not_before)
            grant = self._call("lease", self._worker, key, 0, STARTS_BATCH, {})
            with self._lock:
                self._apply(lease, grant, slots=False)

    def _apply(self, lease: _HostLease, grant: Grant, *, slots: bool) -> None:
        now = self._clock()
        if slots:
            lease.slots = grant.slots
        lease.paced = grant.paced
        lease.not_before = max(lease.not_before, now + grant.pause)
        lease.starts.extend(now + offset for offset in grant.starts)

    def _idle(self, but: str = "") -> dict[str, int]:
        """Take back from the books, to return them, slots no thread here uses or waits for.

        Spare slots go back even while others of the host are in use: one slow request must
        not keep the rest of the host's slots from the other workers (it did, for as long as
        the request took, up to the HTTP timeout).
        """
        back = {}
        for host, lease in self._hosts.items():
            spare = lease.slots - lease.in_use - lease.waiting
            if host != but and spare > 0:
                back[host] = spare
                lease.slots -= spare
                if not lease.slots:
                    lease.starts.clear()  # reserved for a slot given back
        return back

    def _keep(self) -> None:
        """Every HEARTBEAT: idle slots go back, the broker hears this worker lives, pauses come."""
        while not self._stop.wait(HEARTBEAT):
            with self._lock:
                give_back = self._idle()
                hosts = [h for h, lease in self._hosts.items() if lease.slots]
            if not (give_back or hosts):
                continue
            try:
                grants = self._call("renew", self._worker, hosts, give_back)
            except Exception:  # the broker is gone: the driver ends this run anyway
                continue
            with self._lock:
                for host, grant in grants.items():
                    lease = self._hosts[host]
                    lease.slots = min(lease.slots, grant.slots)  # the broker may have expired some
                    self._apply(
                        lease, Grant(lease.slots, paced=grant.paced, pause=grant.pause), slots=False
                    )


class SharedRobots(robots.RobotsCache):
    """robots.txt rules from the broker, which loads each origin once for the whole cluster."""

    def __init__(self, call: Call, clock: Callable[[], float]):
        super().__init__(clock)
        self._call = call

    def get(self, origin: robots.Origin, load: Callable[[robots.Origin], robots.Rules]) -> Any:
        """The origin's rules; `load` (the session's own loader) is never used here."""
        return super().get(origin, self._from_broker)

    def _from_broker(self, origin: robots.Origin) -> robots.Rules:
        rules, ttl = self._call("robots", origin)
        rules.expires = None if ttl is None else self._clock() + ttl
        return rules
