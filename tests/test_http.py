"""PoliteSession against a real local HTTP server: guards, retries, pacing, robots, caps."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest
from httpserver import LocalHTTPServer, Reply, send

from acnedata.errors import NetworkError, SourceError
from acnedata.http import FetchResult, HttpConfig, PoliteSession, is_public_host, redact
from acnedata.spec import load_spec

JSON = {"Content-Type": "application/json"}


class FakeClock:
    """A clock that only moves when the session sleeps, so pacing is exact and instant."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def __call__(self) -> float:
        return self.now


def session(clock: FakeClock, **overrides) -> PoliteSession:
    """A session reaching the local server, with no pacing unless a test asks for it."""
    settings = {"allow_private": True, "min_interval": 0.0, "contact": "tests@example.org"}
    settings.update(overrides)
    return PoliteSession(HttpConfig(**settings), sleep=clock.sleep, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- identity and contact --------------------------------------------------------------------------


def test_user_agent_names_the_tool_and_the_contact(httpserver, clock):
    httpserver.route("/api", body=b'{"ok": true}', headers=JSON)
    with session(clock, contact="curator@example.org") as s:
        data, resp = s.get_json(httpserver.url("/api"))
    assert data == {"ok": True} and resp.status_code == 200
    ua = httpserver.requests[0][2]["User-Agent"]
    assert ua == s.user_agent
    assert ua.startswith("acnedata/") and "curator@example.org" in ua and "python-requests/" in ua


def test_missing_contact_for_a_public_host_raises_before_any_network(clock, monkeypatch):
    def no_dns(*args, **kwargs):
        raise AssertionError("resolved a host although the contact is missing")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    s = PoliteSession(HttpConfig(contact=""), sleep=clock.sleep, clock=clock)
    url = "https://bot:hunter2@commons.wikimedia.org/w/api.php"
    with pytest.raises(NetworkError) as err:
        s.get_json(url, params={"action": "query"})
    message = str(err.value)
    assert message.startswith("https://commons.wikimedia.org/w/api.php: no contact given")
    assert "--contact" in message and "\n" not in message and "hunter2" not in message
    with pytest.raises(NetworkError, match="no contact given"):
        s.fetch("https://upload.wikimedia.org/x.jpg")
    assert s.request_count() == 0 and clock.sleeps == []


def test_loopback_needs_no_contact(httpserver, clock):
    httpserver.route("/t", body="hello")
    with session(clock, contact="") as s:
        text, _ = s.get_text(httpserver.url("/t"))
    assert text == "hello"


# -- address and scheme guards ---------------------------------------------------------------------


def test_private_address_refused_unless_allowed(httpserver, clock):
    httpserver.route("/x", body=b"[]", headers=JSON)
    s = session(clock, allow_private=False)
    with pytest.raises(NetworkError) as err:
        s.get_json(httpserver.url("/x"))
    assert "refuses private address 127.0.0.1" in str(err.value)
    assert "allow_private = true" in str(err.value)
    result = s.fetch(httpserver.url("/x"))
    assert not result.ok and result.reason == "private address refused: 127.0.0.1"
    assert httpserver.counts["/x"] == 0 and s.request_count() == 0

    data, _ = session(clock, allow_private=True).get_json(httpserver.url("/x"))
    assert data == [] and httpserver.counts["/x"] == 1


def test_allowed_private_host_is_exact_and_redirects_are_rechecked(httpserver, clock):
    httpserver.route("/ok", body=b"fine")
    httpserver.route("/to-ten", 302, headers={"Location": "http://10.255.255.1/x"})
    with LocalHTTPServer() as other:
        other.route("/x", body=b"secret")
        httpserver.route("/to-other", 302, headers={"Location": other.url("/x")})
        s = session(
            clock, allow_private=False, allowed_private_hosts={f"127.0.0.1:{httpserver.port}"}
        )
        assert s.fetch(httpserver.url("/ok")).ok
        result = s.fetch(httpserver.url("/to-ten"))
        assert result.reason == "private address refused: 10.255.255.1"
        assert not result.retryable
        with pytest.raises(NetworkError, match=r"^http://10\.255\.255\.1/x: refuses private"):
            s.get_text(httpserver.url("/to-ten"))
        assert s.fetch(httpserver.url("/to-other")).reason == "private address refused: 127.0.0.1"
        assert s.fetch(other.url("/x")).reason == "private address refused: 127.0.0.1"
        assert other.counts == {}
    # Every request the session sent reached the allowed server: nothing went to 10.x.
    assert s.request_count() == len(httpserver.requests)


def test_schemes_other_than_http_are_refused(httpserver, clock):
    s = session(clock)
    assert s.fetch("file:///etc/passwd").reason == "scheme not allowed: file"
    with pytest.raises(NetworkError, match="scheme not allowed: ftp"):
        s.get_json("ftp://example.org/data.json")
    httpserver.route("/to-file", 302, headers={"Location": "file:///etc/passwd"})
    result = s.fetch(httpserver.url("/to-file"))
    assert not result.ok and result.reason == "scheme not allowed: file"


def test_redirects_are_followed_up_to_the_limit(httpserver, clock):
    for i in range(4):
        httpserver.route(f"/r{i}", 302, headers={"Location": f"/r{i + 1}"})
    httpserver.route("/r4", body=b"end", headers={"Content-Type": "image/png"})
    s = session(clock, max_redirects=4)
    result = s.fetch(httpserver.url("/r0"))
    assert result.ok and result.content == b"end" and result.content_type == "image/png"
    assert result.final_url == httpserver.url("/r4") and result.attempts == 1

    short = session(clock, max_redirects=3)
    result = short.fetch(httpserver.url("/r0"))
    assert not result.ok and result.reason == "too many redirects"
    with pytest.raises(SourceError, match="too many redirects"):
        short.get_text(httpserver.url("/r0"))


def test_credentials_do_not_follow_a_redirect_to_another_host(httpserver, clock):
    with LocalHTTPServer("127.0.0.2") as other:
        other.route("/landing", body="ok")
        httpserver.route("/go", 302, headers={"Location": other.url("/landing")})
        s = session(clock)
        text, _ = s.get_text(
            httpserver.url("/go"), auth=("user", "pw"), headers={"Authorization": "Bearer t"}
        )
    assert text == "ok"
    assert "Authorization" in httpserver.requests[0][2]
    assert "Authorization" not in other.requests[0][2]


# -- retries ---------------------------------------------------------------------------------------


def test_503_with_retry_after_seconds_is_retried(httpserver, clock):
    busy = Reply(503, "busy", {"Retry-After": "2"})
    httpserver.route("/api", replies=[busy, busy, Reply(200, '{"n": 1}', JSON)])
    data, _ = session(clock).get_json(httpserver.url("/api"))
    assert data == {"n": 1}
    assert clock.sleeps == [2.0, 2.0]
    assert httpserver.counts["/api"] == 3


def test_429_with_http_date_retry_after_is_retried(httpserver, clock):
    when = formatdate(time.time() + 30, usegmt=True)
    httpserver.route(
        "/api", replies=[Reply(429, "slow down", {"Retry-After": when}), Reply(200, "[1]", JSON)]
    )
    data, _ = session(clock).get_json(httpserver.url("/api"))
    assert data == [1] and httpserver.counts["/api"] == 2
    assert len(clock.sleeps) == 1 and 28.0 <= clock.sleeps[0] <= 30.0


def test_retry_after_is_capped(httpserver, clock):
    httpserver.route(
        "/api", replies=[Reply(503, "", {"Retry-After": "86400"}), Reply(200, "{}", JSON)]
    )
    session(clock, retry_after_cap=7.5).get_json(httpserver.url("/api"))
    assert clock.sleeps == [7.5]


def test_gives_up_after_max_retries_with_backoff(httpserver, clock):
    httpserver.route("/api", 502, "bad gateway")
    s = session(clock, max_retries=3, backoff_base=0.5, backoff_cap=1.5)
    with pytest.raises(SourceError) as err:
        s.get_json(httpserver.url("/api"))
    assert str(err.value).startswith(f"{httpserver.url('/api')}: HTTP 502 Bad Gateway after 4")
    assert httpserver.counts["/api"] == 4
    # Full jitter: each wait lies in [0, min(cap, base * 2**n)].
    assert len(clock.sleeps) <= 3
    for n, waited in enumerate(clock.sleeps):
        assert 0 <= waited <= min(1.5, 0.5 * 2**n)

    result = s.fetch(httpserver.url("/api"))
    assert (result.ok, result.reason, result.status) == (False, "http 502", 502)
    assert result.retryable and result.attempts == 4


def test_mediawiki_maxlag_body_is_retried(httpserver, clock):
    lagged = json.dumps({"error": {"code": "maxlag", "info": "Waiting for db: 6 seconds lagged"}})
    good = json.dumps({"batchcomplete": True, "query": {"pages": []}})
    headers = {**JSON, "Retry-After": "5", "MediaWiki-API-Error": "maxlag"}
    httpserver.route("/w/api.php", replies=[Reply(200, lagged, headers), Reply(200, good, JSON)])
    data, _ = session(clock).get_json(httpserver.url("/w/api.php"), params={"maxlag": 5})
    assert data["batchcomplete"] is True
    assert clock.sleeps == [5.0] and httpserver.counts["/w/api.php"] == 2
    assert httpserver.requests[0][1] == "/w/api.php?maxlag=5"

    httpserver.route("/w/api.php", 200, lagged, headers)
    with pytest.raises(SourceError, match=r"API error maxlag \(Waiting for db.*after 2 attempts"):
        session(clock, max_retries=1).get_json(httpserver.url("/w/api.php"))


def test_forbidden_is_not_retried_and_hints_at_credentials(httpserver, clock):
    httpserver.route("/api", 403, '{"detail": "bad token"}', JSON)
    with pytest.raises(SourceError) as err:
        session(clock).get_json(httpserver.url("/api"))
    message = str(err.value)
    assert message.startswith(f"{httpserver.url('/api')}: HTTP 403 Forbidden (bad token)")
    assert "credentials" in message and "\n" not in message
    assert httpserver.counts["/api"] == 1 and clock.sleeps == []


def test_html_instead_of_json_is_a_source_error(httpserver, clock):
    httpserver.route("/api", body="<html>maintenance</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(SourceError, match=r": expected JSON, got text/html$"):
        session(clock).get_json(httpserver.url("/api"))


def test_connection_refused_is_one_line_network_error(clock):
    port = closed_port()
    url = f"http://127.0.0.1:{port}/api"
    s = session(clock, max_retries=1)
    with pytest.raises(NetworkError) as err:
        s.get_json(url)
    message = str(err.value)
    assert message.startswith(f"127.0.0.1:{port}: cannot connect (connection refused)")
    assert message.endswith("check the URL or your network") and "\n" not in message
    assert len(clock.sleeps) == 1
    result = s.fetch(url)
    assert result.reason == "connection error: connection refused" and result.retryable


def test_slow_server_times_out(httpserver, clock):
    def slow(req):
        time.sleep(1.0)
        send(req, 200, b"late")

    httpserver.route("/slow", handler=slow)
    result = session(clock, timeout=0.2, max_retries=0).fetch(httpserver.url("/slow"))
    assert (result.ok, result.reason, result.retryable) == (False, "timeout", True)


# -- fetch: caps, robots, X-Robots-Tag -------------------------------------------------------------


def test_byte_cap_by_header_and_while_streaming(httpserver, clock):
    big = b"x" * 10_000

    def no_length(req):
        send(req, 200, big, {"Content-Type": "image/jpeg"}, content_length=False)

    httpserver.route("/big", body=big)
    httpserver.route("/stream", handler=no_length)
    s = session(clock)
    for path in ("/big", "/stream"):
        result = s.fetch(httpserver.url(path), max_bytes=1000)
        assert not result.ok and result.content is None
        assert result.reason == "too large: over 1000 bytes"
    assert s.fetch(httpserver.url("/stream"), max_bytes=10_000).content == big


def test_declared_length_over_the_cap_is_refused_before_reading(httpserver, clock):
    def huge(req):
        send(req, 200, b"", {"Content-Length": "50000000"}, content_length=False)
        req.wfile.flush()
        time.sleep(1.0)  # never sends the body: reading it would end in a timeout

    httpserver.route("/huge", handler=huge)
    result = session(clock, timeout=0.5, max_retries=0).fetch(httpserver.url("/huge"))
    assert result.reason == "too large: over 25000000 bytes"


def test_robots_unavailable_is_a_transient_refusal(httpserver, clock):
    httpserver.route("/robots.txt", 503, "down")
    httpserver.route("/a", body=b"a")
    result = session(clock, max_retries=1).fetch(httpserver.url("/a"))
    assert (result.ok, result.reason, result.retryable) == (
        False,
        "robots.txt unavailable: http 503",
        True,
    )
    assert httpserver.counts["/a"] == 0 and httpserver.counts["/robots.txt"] == 2


def test_get_text_decodes_the_declared_charset(httpserver, clock):
    httpserver.route(
        "/p",
        body="café".encode("latin-1"),
        headers={"Content-Type": "text/html; charset=ISO-8859-1"},
    )
    httpserver.route("/u", body="café", headers={"Content-Type": "text/plain"})
    s = session(clock)
    assert s.get_text(httpserver.url("/p"))[0] == "café"
    text, resp = s.get_text(httpserver.url("/u"))
    assert text == "café" and resp.content == "café".encode()


def test_fetch_reports_http_errors_without_raising(httpserver, clock):
    result = session(clock).fetch(httpserver.url("/missing"))
    assert isinstance(result, FetchResult)
    assert (result.ok, result.status, result.reason, result.retryable) == (
        False,
        404,
        "http 404",
        False,
    )


def test_robots_disallow_is_honoured_and_fetched_once(httpserver, clock):
    httpserver.route("/robots.txt", body="User-agent: *\nDisallow: /private/\n")
    httpserver.route("/img.jpg", body=b"jpeg", headers={"Content-Type": "image/jpeg"})
    httpserver.route("/private/a.jpg", body=b"no")
    s = session(clock)
    blocked = s.fetch(httpserver.url("/private/a.jpg"))
    assert (blocked.ok, blocked.reason, blocked.attempts) == (False, "robots.txt disallows", 0)
    for _ in range(3):
        result = s.fetch(httpserver.url("/img.jpg"))
        assert result.ok and result.content == b"jpeg" and result.headers["content-type"]
    assert s.robots_allowed(httpserver.url("/img.jpg"))
    assert not s.robots_allowed(httpserver.url("/private/b.jpg"))
    assert httpserver.counts["/robots.txt"] == 1 and httpserver.counts["/private/a.jpg"] == 0

    # API calls do not consult robots.txt; respect_robots=False skips it for fetch too.
    httpserver.counts.clear()
    assert session(clock, respect_robots=False).fetch(httpserver.url("/private/a.jpg")).ok
    assert httpserver.counts["/robots.txt"] == 0


def test_robots_group_for_our_agent_and_403_robots(httpserver, clock):
    httpserver.route("/robots.txt", body="User-agent: acnedata\nDisallow: /\n\nUser-agent: *\n")
    httpserver.route("/a", body=b"a")
    assert session(clock).fetch(httpserver.url("/a")).reason == "robots.txt disallows"
    httpserver.route("/robots.txt", 403, "forbidden")
    assert session(clock).fetch(httpserver.url("/a")).reason == "robots.txt disallows"
    httpserver.route("/robots.txt", 404, "none")
    assert session(clock).fetch(httpserver.url("/a")).ok


def test_crawl_delay_raises_the_host_interval(httpserver, clock):
    httpserver.route("/robots.txt", body="User-agent: *\nCrawl-delay: 5\n")
    httpserver.route("/a", body=b"a")
    s = session(clock, min_interval=0.5)
    assert s.fetch(httpserver.url("/a")).ok and s.fetch(httpserver.url("/a")).ok
    # robots.txt, then /a five seconds later, then /a five seconds after that.
    assert clock.sleeps == [5.0, 5.0]


def test_x_robots_tag_blocks_ai_use(httpserver, clock):
    httpserver.route("/noai", body=b"i", headers={"X-Robots-Tag": "noindex_not, noai"})
    httpserver.route("/ours", body=b"i", headers=[("X-Robots-Tag", "acnedata: noimageai")])
    httpserver.route(
        "/others",
        body=b"i",
        headers=[("X-Robots-Tag", "otherbot: noindex, noai"), ("X-Robots-Tag", "nofollow")],
    )
    s = session(clock)
    result = s.fetch(httpserver.url("/noai"))
    assert (result.ok, result.reason, result.content) == (False, "X-Robots-Tag: noai", None)
    assert s.fetch(httpserver.url("/ours")).reason == "X-Robots-Tag: noimageai"
    assert s.fetch(httpserver.url("/others")).ok


# -- pacing and threads ----------------------------------------------------------------------------


def test_min_interval_spaces_requests_to_one_host(httpserver, clock):
    httpserver.route("/api", body="{}", headers=JSON)
    s = session(clock, min_interval=1.5)
    for _ in range(3):
        s.get_json(httpserver.url("/api"))
    assert clock.sleeps == [1.5, 1.5]
    assert s.request_count() == 3


def test_concurrent_fetches_share_one_robots_lookup(httpserver, clock):
    def slowish(req):
        time.sleep(0.05)  # let the workers overlap
        send(req, 200, b"User-agent: *\nDisallow: /nope\n")

    httpserver.route("/robots.txt", handler=slowish)
    httpserver.route("/img", body=b"img")
    s = session(clock, per_host_concurrency=4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: s.fetch(httpserver.url(f"/img?i={i}")), range(20)))
    assert all(r.ok and r.content == b"img" for r in results)
    assert httpserver.counts["/robots.txt"] == 1 and httpserver.counts["/img"] == 20
    assert s.request_count() == 21
    s.close()


# -- helpers ---------------------------------------------------------------------------------------


def test_redact_strips_credentials_and_secret_params():
    assert redact("https://user:pw@host.org:8080/p?q=1") == "https://host.org:8080/p?q=1"
    assert redact("https://h.org/a?serviceKey=abc&page=2&api_key=z") == (
        "https://h.org/a?serviceKey=***&page=2&api_key=***"
    )
    assert redact("https://h.org/plain") == "https://h.org/plain"


def test_credentials_never_appear_in_reasons_or_messages(clock):
    url = f"http://user:s3cret@127.0.0.1:{closed_port()}/x"
    s = session(clock, max_retries=0)
    assert "s3cret" not in (s.fetch(url).reason or "")
    with pytest.raises(NetworkError) as err:
        session(clock, allow_private=False).get_json(url)
    assert "s3cret" not in str(err.value) and "user" not in str(err.value)


@pytest.mark.parametrize(
    ("host", "public"),
    [
        ("commons.wikimedia.org", True),
        ("8.8.8.8", True),
        ("localhost", False),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("[::1]", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("100.64.0.1", False),
    ],
)
def test_is_public_host(host, public):
    assert is_public_host(host) is public


def test_config_from_spec():
    spec = load_spec("acne-l70", contact="me@example.org")
    cfg = HttpConfig.from_spec(spec)
    assert cfg.contact == "me@example.org"
    assert cfg.timeout == spec.network.timeout and cfg.max_retries == spec.network.max_retries
    assert cfg.min_interval == spec.network.min_interval
    assert cfg.allow_private == spec.network.allow_private
    assert cfg.max_bytes == spec.limits.max_bytes
    assert cfg.per_host_concurrency == spec.network.concurrency


def test_odcloud_error_code_and_message_reach_the_error(httpserver):
    body = json.dumps({"code": -4, "msg": "등록되지 않은 인증키 입니다."})
    httpserver.route(
        "/api/15077093/v1/dataset",
        status=401,
        body=body,
        headers={"Content-Type": "application/json"},
    )
    config = HttpConfig(allow_private=True, min_interval=0.0, max_retries=0)
    with PoliteSession(config) as session, pytest.raises(SourceError) as err:
        session.get_json(httpserver.url("/api/15077093/v1/dataset"))
    assert "-4 등록되지 않은 인증키 입니다." in str(err.value)
