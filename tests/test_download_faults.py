"""Every fault path through the real pipeline: final state and reason, nothing valid lost."""

from __future__ import annotations

import csv
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from faultserver import MAX_BYTES, MIN_SIDE, FaultServer
from httpserver import LocalHTTPServer, send
from imagefactory import make_image, to_bytes

from acnedata.fetch import url_list_spec
from acnedata.http import HttpConfig, PoliteSession
from acnedata.manifest import load_manifest
from acnedata.pipeline import Collector

MAX_RETRIES = 2
HOLD = 10.0  # seconds a pacing test holds a request at most, waiting for others to arrive


def write_urls(folder: Path, urls: list[str]) -> Path:
    path = folder / "urls.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "licence", "label"])
        writer.writerows([u, "CC0-1.0", "case"] for u in urls)
    return path


def peak_in_flight(starts: list[float], seconds: float) -> int:
    """Most requests open at once, for requests that each took `seconds` from their start."""
    events = sorted([(t, 1) for t in starts] + [(t + seconds, -1) for t in starts])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def matrix_spec(urls: Path, **network):
    """The spec `acnedata fetch` builds, with short timeouts and few retries for the test."""
    spec = url_list_spec(urls, workers=4)
    settings = {
        "allow_private": False,  # the guard is on; only this server's host:port is let through
        "timeout": 1.5,
        "max_retries": MAX_RETRIES,
        "per_host_concurrency": 4,
        **network,
    }
    net = replace(spec.network, **settings)
    limits = replace(spec.limits, max_bytes=MAX_BYTES, min_width=MIN_SIDE, min_height=MIN_SIDE)
    return replace(spec, network=net, limits=limits)


def collector(spec, out: Path, server: LocalHTTPServer) -> Collector:
    config = replace(
        HttpConfig.from_spec(spec), allowed_private_hosts=frozenset({f"127.0.0.1:{server.port}"})
    )
    return Collector(spec, out, session=PoliteSession(config))


def run_fetch(col: Collector, *, retry_failed: bool = False) -> None:
    """The stages `acnedata fetch` runs, in its order."""
    col.search()
    col.gate()
    col.download(retry_failed=retry_failed)
    col.dedup()
    col.sort()
    col.write_manifest()


@pytest.fixture(scope="module", params=[0, 2], ids=["in-thread", "store-processes"])
def matrix(tmp_path_factory, request):
    """One run over every fault path (shared: retries make it the slow part of this file),
    validating in the download threads and, again, in two store processes."""
    folder = tmp_path_factory.mktemp("matrix")
    with FaultServer(retry_after=1) as server:
        cases = server.cases(MAX_RETRIES)
        urls = write_urls(folder, [server.url(c.path) for c in cases])
        spec = matrix_spec(urls, processes=request.param)
        started = time.monotonic()
        with collector(spec, folder / "out", server) as col:
            run_fetch(col)
            rows = {r["url"].split(str(server.port), 1)[1]: dict(r) for r in col.catalog.items()}
        elapsed = time.monotonic() - started
        yield server, cases, rows, folder, spec, elapsed


def test_every_path_ends_in_its_state_with_its_reason(matrix):
    _, cases, rows, *_ = matrix
    got = {c.path: (rows[c.path]["state"], rows[c.path]["reason"]) for c in cases}
    want = {c.path: (c.state, c.reason) for c in cases}
    assert got == want


def test_retries_stop_at_the_cap_and_nothing_is_asked_twice_needlessly(matrix):
    server, cases, rows, *_ = matrix
    counted = {c.path: server.counts[c.path] for c in cases if c.requests is not None}
    assert counted == {c.path: c.requests for c in cases if c.requests is not None}
    # The loop is cut after max_redirects hops: 6 requests, then never again.
    assert server.counts["/loop"] + server.counts["/loop2"] == 6
    assert server.counts["/robots.txt"] == 1  # once per host for the run
    for c in cases:
        row = rows[c.path]
        if c.requests and c.state == "failed":
            assert row["attempts"] == c.requests, c.path  # the catalog counts the HTTP tries
        transient = c.reason in ("http 429", "http 503", "timeout") or "connection" in (
            c.reason or ""
        )
        assert bool(row["retryable"]) == (c.state == "failed" and transient), c.path


def test_nothing_valid_is_lost_and_nothing_invalid_is_kept(matrix):
    server, cases, rows, folder, *_ = matrix
    out = folder / "out"
    stored = {c.path for c in cases if c.state == "stored"}
    items = load_manifest(out / "manifest.json").items
    assert {i["source"]["url"].split(str(server.port), 1)[1] for i in items} == stored
    for path in stored:
        assert (out / rows[path]["file"]).is_file()
    assert (rows["/ok/rotated.jpg"]["width"], rows["/ok/rotated.jpg"]["height"]) == (80, 96)
    kept = sorted(p.name for p in (out / "images").rglob("*") if p.is_file())
    assert len(kept) == len(stored)  # no temp files, no file for a rejected body
    formats = {rows[p]["format"] for p in stored}
    assert formats == {"JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"}


def test_retry_after_is_waited_for(matrix):
    *_, elapsed = matrix
    # /429-always waits Retry-After (1 s) twice before giving up; the dated 503s wait longer.
    assert elapsed >= 2 * 1


def test_retry_failed_asks_only_for_the_failed_items(matrix, tmp_path):
    server, cases, _, folder, spec, _ = matrix
    out = tmp_path / "out"
    # A fresh copy of the run's folder, so the module's matrix stays as it was.
    import shutil

    shutil.copytree(folder / "out", out)
    before = server.counts.copy()
    fixed = to_bytes(make_image(40, (96, 80)), "JPEG")
    server.route("/429-always", body=fixed, headers={"Content-Type": "image/jpeg"})
    with collector(spec, out, server) as col:
        col.download(retry_failed=True)
        after = {r["url"].split(str(server.port), 1)[1]: dict(r) for r in col.catalog.items()}
    assert after["/429-always"]["state"] == "stored"
    for c in cases:
        asked = server.counts[c.path] - before[c.path]
        if c.state == "stored":
            assert asked == 0, c.path  # stored items are never fetched again
        elif c.path == "/429-always":
            assert asked == 1
            assert after[c.path]["attempts"] == c.requests + 1
        else:
            assert after[c.path]["state"] == "failed", c.path


# -- pacing: per-host rate and concurrency, global concurrency -----------------------------------


class Inflight:
    """A handler that serves one image slowly and records the most requests open at once.

    `also` is another Inflight that counts the same requests (one watching several servers).
    The count is exact from the client's side: a request counts from its arrival until just
    before the last byte of its body is sent. The client cannot finish reading the body, and so
    cannot release its slot and start another request, before that byte; counting until after
    the whole response was sent raced the client (the handler thread could still be about to
    decrement when the next request arrived, which read as a third request in flight).
    """

    def __init__(self, body: bytes, delay: float = 0.15, also: Inflight | None = None):
        self.body, self.delay, self.also = body, delay, also
        self.hold: Callable[[], None] | None = None  # called once the request is counted
        self.now = self.peak = 0
        self.starts: list[float] = []
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.starts.append(time.monotonic())
        if self.also is not None:
            self.also.enter()

    def leave(self) -> None:
        with self.lock:
            self.now -= 1
        if self.also is not None:
            self.also.leave()

    def __call__(self, req, body: bytes | None = None) -> None:
        data = self.body if body is None else body
        self.enter()
        try:
            if self.hold is not None:
                self.hold()
            time.sleep(self.delay)
            req.send_response(200)
            req.send_header("Content-Type", "image/jpeg")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data[:-1])
        finally:
            self.leave()
        req.wfile.write(data[-1:])  # only now can the client finish and start the next request


def serve_many(
    server: LocalHTTPServer,
    n: int,
    delay: float,
    host: str = "127.0.0.1",
    also: Inflight | None = None,
) -> tuple[list[str], Inflight]:
    watch = Inflight(b"", delay, also)
    bodies = {f"/img/{i}.jpg": to_bytes(make_image(i, (64, 64)), "JPEG") for i in range(n)}

    def handler(req) -> None:
        watch(req, bodies[req.path])

    for path in bodies:
        server.route(path, handler=handler)
    return [f"http://{host}:{server.port}{p}" for p in bodies], watch


def fetch_all(spec, out: Path) -> dict[str, int]:
    with Collector(spec, out) as col:
        col.search()
        col.gate()
        return col.download()


def test_per_host_concurrency_and_global_limit(tmp_path):
    # Two servers on 127.0.0.1, one reached by the name "localhost": two hosts to the limiter.
    both = Inflight(b"")
    with LocalHTTPServer() as a, LocalHTTPServer() as b:
        urls_a, watch_a = serve_many(a, 12, 0.02, also=both)
        urls_b, watch_b = serve_many(b, 12, 0.02, host="localhost", also=both)
        # The limits are reached by holding requests, not by timing: the URLs alternate between
        # the hosts, so the first three (a, b, a) fit both limits and are held until all three
        # are in (3 in all, 2 on a), the next three (b, a, b) until both b's are in (2 on b).
        # Each hold waits at most HOLD seconds ("does not hang"); later requests are not held.
        cond = threading.Condition()
        targets = [lambda: both.peak >= 3, lambda: watch_b.peak >= 2]

        def hold() -> None:
            with cond:
                cond.notify_all()
                while targets and targets[0]():
                    targets.pop(0)
                if targets:
                    target = targets[0]
                    cond.wait_for(lambda: target() or not targets or targets[0] is not target, HOLD)

        watch_a.hold = watch_b.hold = hold
        urls = [u for pair in zip(urls_a, urls_b, strict=True) for u in pair]
        # A timeout far above a hold: a read timeout would retry while the server still serves
        # the abandoned request, a real extra request.
        spec = matrix_spec(write_urls(tmp_path, urls), allow_private=True, timeout=30.0)
        net = replace(spec.network, concurrency=3, per_host_concurrency=2)
        assert fetch_all(replace(spec, network=net), tmp_path / "out") == {
            "stored": 24,
            "failed": 0,
        }
    # Exact counts (see Inflight): the per-host limit, reached on each host, and the global
    # limit over both hosts together, reached.
    assert watch_a.peak == 2 and watch_b.peak == 2
    assert both.peak == 3


def test_token_bucket_rate_per_host(tmp_path):
    with LocalHTTPServer() as server:
        urls, watch = serve_many(server, 30, 0.0)
        spec = matrix_spec(write_urls(tmp_path, urls), allow_private=True, rate=20.0)
        net = replace(spec.network, concurrency=8, per_host_concurrency=8)
        assert fetch_all(replace(spec, network=net), tmp_path / "out") == {
            "stored": 30,
            "failed": 0,
        }
    starts = sorted(watch.starts)
    # A bucket of 20 tokens refilled at 20/s: robots.txt and 19 images at once, then one image
    # every 50 ms; the 30th image cannot start before 0.5 s after the first.
    for i, t in enumerate(starts):
        assert t - starts[0] >= (i - 19) / 20 - 0.03, i
    assert starts[-1] - starts[0] <= 4.0  # not throttled beyond the bucket (ideal: 0.55 s)


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_token_bucket_is_exact_with_min_interval_and_a_429_pause():
    with LocalHTTPServer() as server:
        server.route("/img", body=b"x")
        server.route("/busy", 429, headers={"Retry-After": "3"})
        clock = FakeClock()
        config = HttpConfig(allow_private=True, min_interval=0.0, rate=2.0, max_retries=1)
        with PoliteSession(config, sleep=clock.sleep, clock=clock) as s:
            for _ in range(4):
                assert s.fetch(server.url("/img")).ok
            # robots.txt + /img use the bucket's 2 tokens; then one every 0.5 s.
            assert clock.sleeps == [0.5, 0.5, 0.5]
            assert not s.fetch(server.url("/busy")).ok
            # /busy: 0.5 s for a token, Retry-After 3 s (which pauses the whole host), 0 more.
            assert clock.sleeps[3:] == [0.5, 3.0]
            assert s.fetch(server.url("/img")).ok
            assert clock.sleeps[5:] == []  # the retry's wait also refilled the bucket
        with PoliteSession(replace(config, min_interval=1.0), sleep=clock.sleep, clock=clock) as s:
            for _ in range(3):
                s.fetch(server.url("/img"))
            # min_interval is the stricter limit here: every start 1 s after the previous one.
            assert clock.sleeps[5:] == [1.0, 1.0, 1.0]


def test_global_limit_holds_across_hosts_for_any_number_of_threads():
    with LocalHTTPServer() as a, LocalHTTPServer() as b:
        urls_a, watch_a = serve_many(a, 8, 0.1)
        urls_b, watch_b = serve_many(b, 8, 0.1, host="localhost")
        config = HttpConfig(allow_private=True, min_interval=0.0, per_host_concurrency=4)
        with (
            PoliteSession(replace(config, concurrency=2)) as s,
            ThreadPoolExecutor(max_workers=8) as pool,
        ):
            assert all(r.ok for r in pool.map(s.fetch, urls_a + urls_b))
    assert peak_in_flight(watch_a.starts + watch_b.starts, 0.1) <= 2


def test_a_429_pauses_the_whole_host_for_every_worker():
    arrivals: dict[str, float] = {}

    def busy(req) -> None:
        arrivals.setdefault("429", time.monotonic())
        send(req, 429, b"", {"Retry-After": "1"})

    def image(req) -> None:
        arrivals.setdefault("img", time.monotonic())
        send(req, 200, b"x")

    with LocalHTTPServer() as server:
        server.route("/busy", handler=busy)
        server.route("/img", handler=image)
        config = HttpConfig(allow_private=True, min_interval=0.0, max_retries=1)
        with PoliteSession(config) as s, ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(s.fetch, server.url("/busy"))
            # Wait until that worker has read the 429 (the host's pause is then set).
            deadline = time.monotonic() + 0.5
            while not math.isfinite(s._host("127.0.0.1").not_before) and (
                time.monotonic() < deadline or "429" not in arrivals
            ):
                time.sleep(0.005)
            assert s.fetch(server.url("/img")).ok  # another worker, another path, same host
            assert first.result().reason == "http 429"
    assert arrivals["img"] - arrivals["429"] >= 0.9
