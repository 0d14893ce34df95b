"""Per-host pacing: minimum interval, token bucket, pauses after 429/503, in-flight limits."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from typing import Protocol


class HostPacing(Protocol):
    """What PoliteSession needs of a pacer: Pacer here, LeasedPacer across a Ray cluster."""

    def paced(self, hostname: str) -> contextlib.AbstractContextManager[None]: ...
    def pause_host(self, hostname: str, seconds: float) -> None: ...
    def slow_down(self, hostname: str, interval: float) -> None: ...


class Host:
    """One host's pacing state: min interval, token bucket, a 429/503 pause, an in-flight limit."""

    def __init__(self, interval: float, concurrency: int, rate: float = 0.0):
        self.lock = threading.Lock()
        self.interval = interval
        self.last_start: float | None = None
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.rate = rate
        self.burst = max(1.0, math.floor(rate))  # one second's worth of tokens, at least one
        # The bucket as GCRA ("virtual scheduling"): the theoretical arrival time of the next
        # request; a request may start once the clock is within the burst tolerance of it. One
        # number instead of a token count refilled by a timer, and it reserves slots under the
        # lock so concurrent workers never overshoot the rate.
        self.tat: float | None = None
        self.not_before = -math.inf  # the host asked us to wait (Retry-After on 429/503)


class Pacer:
    """Every host's pacing, and the global in-flight limit across hosts.

    `sleep` waits out a host's turn (PoliteSession passes one that cancel() cuts short);
    `clock` is the time it is measured in.
    """

    def __init__(
        self,
        *,
        interval: float,
        per_host: int,
        rate: float,
        concurrency: int,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ):
        self._interval, self._per_host, self._rate = interval, per_host, rate
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self._hosts: dict[str, Host] = {}
        # The global in-flight limit, taken after the host slot and the pacing wait, so a worker
        # waiting for a slow host never holds a global slot that another host could use.
        self._global: threading.BoundedSemaphore | contextlib.nullcontext[None] = (
            threading.BoundedSemaphore(concurrency) if concurrency > 0 else contextlib.nullcontext()
        )

    def host(self, hostname: str) -> Host:
        key = hostname.lower()
        with self._lock:
            state = self._hosts.get(key)
            if state is None:
                state = self._hosts[key] = Host(self._interval, self._per_host, self._rate)
            return state

    @contextlib.contextmanager
    def paced(self, hostname: str) -> Iterator[None]:
        """Hold a host slot, wait for the host's turn, then hold a global slot."""
        host = self.host(hostname)
        with host.slots:
            self._wait_turn(host)
            with self._global:
                yield

    def pause_host(self, hostname: str, seconds: float) -> None:
        """A 429/503 speaks for the whole host: no worker starts a request there before then."""
        host = self.host(hostname)
        with host.lock:
            host.not_before = max(host.not_before, self._clock() + seconds)

    def slow_down(self, hostname: str, interval: float) -> None:
        """At least `interval` seconds between request starts to this host (Crawl-delay)."""
        host = self.host(hostname)
        with host.lock:
            host.interval = max(host.interval, interval)

    def reserve(self, hostname: str) -> tuple[float, float]:
        """Reserve the host's next request start without waiting for it: (now, start), both in
        `clock` time. The distributed broker hands such starts to workers in batches."""
        host = self.host(hostname)
        with host.lock:
            now = self._clock()
            return now, self._next_start(host, now)

    def _wait_turn(self, host: Host) -> None:
        """Reserve the next start slot for this host, then sleep until it (outside the lock)."""
        with host.lock:
            now = self._clock()
            start = self._next_start(host, now)
        if start > now:
            self._sleep(start - now)

    @staticmethod
    def _next_start(host: Host, now: float) -> float:
        """The earliest start the host's interval, bucket and pause allow; reserves it (the
        caller holds host.lock)."""
        start = max(now, host.not_before)
        if host.last_start is not None:
            start = max(start, host.last_start + host.interval)
        if host.rate > 0:
            step = 1.0 / host.rate
            if host.tat is not None:
                start = max(start, host.tat - (host.burst - 1) * step)
            host.tat = max(host.tat if host.tat is not None else start, start) + step
        host.last_start = start
        return start
