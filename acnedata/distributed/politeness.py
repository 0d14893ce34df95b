"""The cluster's one politeness broker: per-host slots leased to workers, starts, pauses, robots."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from acnedata import robots
from acnedata.http import HttpConfig, PoliteSession
from acnedata.pacing import Pacer

STARTS_HORIZON = 1.0  # seconds ahead a batch of reserved request starts may reach
LEASE_TTL = 30.0  # seconds a worker's slots outlive its last call (a worker that died unseen)
ROBOTS_WORKER = "robots.txt"  # the broker's own lease holder, for the robots.txt it fetches
SLOT_POLL = 0.02  # seconds between the broker's own tries for a slot (robots.txt only)


@dataclass
class Grant:
    """The broker's answer to a worker, for one host; times are seconds from the answer."""

    slots: int  # slots this worker now holds for the host
    starts: list[float] = field(default_factory=list)  # reserved request starts, in order
    paced: bool = True  # False: no interval, bucket or pause applies, starts need no ticket
    pause: float = 0.0  # the host asked everyone to wait this long (429/503)


class Broker:
    """Every host's politeness for a whole Ray cluster; run as one threaded Ray actor.

    Slots: a host's `per_host_concurrency` is shared by all workers. A worker leases slots and
    keeps using them for request after request (one call per lease, not per image); it gives
    back the ones it no longer needs on its next call, and a worker not heard from for
    LEASE_TTL loses them (the driver also frees a dead worker's slots at once).
    Starts: the interval, token bucket and 429/503 pauses are acnedata.pacing.Pacer's rules,
    applied here to the cluster's requests; a worker reserves a batch of start times at once.
    robots.txt: loaded once per origin by the broker itself, and handed to every worker.
    """

    def __init__(self, config: HttpConfig, clock=time.monotonic):
        self.config = config
        self.limit = max(1, config.per_host_concurrency)
        self._clock = clock
        self.pacer = Pacer(
            interval=config.min_interval,
            per_host=self.limit,
            rate=config.rate,
            concurrency=0,
            sleep=time.sleep,
            clock=clock,
        )
        self._cond = threading.Condition()
        self._held: dict[str, Counter[str]] = {}  # host → worker → slots held
        self._seen: dict[str, float] = {}  # worker → clock time of its last call
        self.peak: Counter[str] = Counter()  # host → most slots ever held at once (for tests)
        self._robots = robots.RobotsCache(clock)
        self._session: PoliteSession | None = None
        self._session_lock = threading.Lock()

    # -- slots and starts ------------------------------------------------------------------------

    def lease(
        self, worker: str, host: str, want: int, starts: int, give_back: dict[str, int]
    ) -> Grant:
        """Up to `want` more slots for `host` (fewer or none when others hold them), then up to
        `starts` reserved start times; `give_back` returns slots of other hosts first."""
        host = host.lower()
        with self._cond:
            self._touch(worker)
            self._give_back(worker, give_back)
            held = self._held.setdefault(host, Counter())
            got = max(0, min(want, self.limit - sum(held.values())))
            if got:
                held[worker] += got
                self.peak[host] = max(self.peak[host], sum(held.values()))
            mine = held[worker]
        return self._grant(host, mine, starts if mine else 0)

    def renew(self, worker: str, hosts: list[str], give_back: dict[str, int]) -> dict[str, Grant]:
        """The worker's heartbeat: it is alive, gives back idle slots, and learns each host's
        pause (no new slots, no starts)."""
        with self._cond:
            self._touch(worker)
            self._give_back(worker, give_back)
            mine = {h: self._held.get(h.lower(), Counter())[worker] for h in hosts}
        return {h: self._grant(h.lower(), n, 0) for h, n in mine.items()}

    def release_all(self, worker: str) -> None:
        """Free every slot of a worker (it finished, or died)."""
        with self._cond:
            for held in self._held.values():
                held.pop(worker, None)
            self._seen.pop(worker, None)
            self._cond.notify_all()

    def pause(self, host: str, seconds: float) -> None:
        """A 429/503 speaks for the whole host: no worker starts a request there before then."""
        self.pacer.pause_host(host, seconds)

    def peaks(self) -> dict[str, int]:
        return dict(self.peak)

    def _grant(self, host: str, slots: int, starts: int) -> Grant:
        state = self.pacer.host(host)
        now = self._clock()
        with state.lock:
            pause = max(0.0, state.not_before - now)
            paced = state.interval > 0 or state.rate > 0 or pause > 0
        grant = Grant(slots, paced=paced, pause=pause)
        for _ in range(starts if paced else 0):
            now, start = self.pacer.reserve(host)
            grant.starts.append(max(0.0, start - now))
            if start - now > STARTS_HORIZON:
                break
        return grant

    def _touch(self, worker: str) -> None:
        """Note the worker's call (under the condition's lock)."""
        self._seen[worker] = self._clock()
        self._expire()

    def _expire(self) -> None:
        """Free the slots of workers silent for LEASE_TTL (under the condition's lock)."""
        now = self._clock()
        for other, seen in list(self._seen.items()):
            if now - seen > LEASE_TTL:
                for held in self._held.values():
                    held.pop(other, None)
                del self._seen[other]

    def _give_back(self, worker: str, give_back: dict[str, int]) -> None:
        for host, n in give_back.items():
            held = self._held.get(host.lower())
            if held is not None and n > 0:
                held[worker] = max(0, held[worker] - n)
                if not held[worker]:
                    del held[worker]
        if give_back:
            self._cond.notify_all()

    # -- robots.txt ------------------------------------------------------------------------------

    def robots(self, origin: robots.Origin) -> tuple[robots.Rules, float | None]:
        """The origin's rules, loaded once for the cluster; (rules, seconds they stay valid)."""
        rules = self._robots.get(tuple(origin), self._load_robots)  # type: ignore[arg-type]
        ttl = None if rules.expires is None else max(0.0, rules.expires - self._clock())
        return rules, ttl

    def _load_robots(self, origin: robots.Origin) -> robots.Rules:
        with self._session_lock:
            if self._session is None:
                self._session = PoliteSession(
                    self.config, make_pacer=lambda sleep, clock: _BrokerPacing(self)
                )
        # The session's own cache is empty for this origin: it loads, with the broker's pacing.
        return self._session._load_robots(origin)

    @contextlib.contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        """A slot for the broker's own robots.txt request, counted with the workers' leases."""
        host = host.lower()
        with self._cond:
            held = self._held.setdefault(host, Counter())
            while sum(held.values()) >= self.limit:
                self._cond.wait(SLOT_POLL)
                self._expire()
            held[ROBOTS_WORKER] += 1
            self.peak[host] = max(self.peak[host], sum(held.values()))
        try:
            yield
        finally:
            with self._cond:
                held[ROBOTS_WORKER] -= 1
                if not held[ROBOTS_WORKER]:
                    del held[ROBOTS_WORKER]
                self._cond.notify_all()


class _BrokerPacing:
    """The pacing of the broker's own session (robots.txt): a counted slot and a reserved start."""

    def __init__(self, broker: Broker):
        self.broker = broker

    @contextlib.contextmanager
    def paced(self, hostname: str) -> Iterator[None]:
        with self.broker._slot(hostname):
            now, start = self.broker.pacer.reserve(hostname)
            if start > now:
                time.sleep(start - now)
            yield

    def pause_host(self, hostname: str, seconds: float) -> None:
        self.broker.pause(hostname, seconds)

    def slow_down(self, hostname: str, interval: float) -> None:
        self.broker.pacer.slow_down(hostname, interval)
