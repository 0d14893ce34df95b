"""One polite HTTP session for everything: the only module in acnedata that touches the network."""

from __future__ import annotations

import http
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import requests
import urllib3

from acnedata import __version__, fastget, pinning, robots
from acnedata.addressguard import AddressGuard, PrivateAddress, is_public_host
from acnedata.deadline import CANCELLED, DEADLINE, Watch, Watchdog
from acnedata.errors import NetworkError, SourceError
from acnedata.fastget import Addresses
from acnedata.pacing import Host, HostPacing, Pacer
from acnedata.robots import (
    ROBOTS_MAX_BYTES,
    ROBOTS_RETRY_TTL,
    ROBOTS_TOKEN,
    robots_url,
    x_robots_block,
)

if TYPE_CHECKING:
    from acnedata.spec import DatasetSpec

PROJECT_URL = "https://github.com/acnedata/acnedata"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MEDIAWIKI_RETRY_CODES = frozenset({"maxlag", "ratelimited"})
ERROR_BODY_BYTES = 8192  # enough of an error body to quote the API's own message
SECRET_PARAMS = frozenset(
    {
        "key",
        "apikey",
        "api_key",
        "token",
        "access_token",
        "auth",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "signature",
        "sig",
        "servicekey",
    }
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpConfig:
    """How politely and how defensively PoliteSession talks to the network."""

    contact: str = ""  # email or URL; goes into the User-Agent
    allow_private: bool = False  # allow loopback/private/link-local/... addresses
    timeout: float = 30.0  # connect and read timeout per request
    # Total seconds one request may take, from connecting to the last byte of its body: a
    # server that trickles a byte now and then never trips `timeout`, which is per read.
    deadline: float = 120.0
    max_retries: int = 4  # retries after the first attempt
    backoff_base: float = 0.5  # full jitter: uniform(0, min(cap, base * 2**n))
    backoff_cap: float = 30.0
    retry_after_cap: float = 120.0  # never sleep longer than this on a Retry-After or Crawl-delay
    min_interval: float = 1.0  # minimum seconds between request starts to the same host
    max_bytes: int = 25_000_000  # streamed byte cap for fetch() and API bodies
    max_redirects: int = 5
    respect_robots: bool = True  # fetch() consults robots.txt (API calls do not)
    per_host_concurrency: int = 2  # requests in flight to one host at once (Wikimedia: 2)
    # Per-host token bucket on top of min_interval: `rate` requests/s on average, with bursts of
    # up to one second's worth (at least 1). 0 turns it off and leaves min_interval alone.
    rate: float = 0.0
    concurrency: int = 0  # requests in flight across all hosts at once; 0 = no global limit
    # "host:port" or "host" entries allowed even when private and allow_private is False; lets a
    # test or a local mirror be reached while the guard still refuses every other private target.
    allowed_private_hosts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        hosts = self.allowed_private_hosts
        if isinstance(hosts, str):
            hosts = (hosts,)
        object.__setattr__(self, "allowed_private_hosts", frozenset(h.lower() for h in hosts))

    @classmethod
    def from_spec(cls, spec: DatasetSpec) -> HttpConfig:
        """The config a spec asks for: its contact, [network] settings and limits.max_bytes."""
        net = spec.network
        return cls(
            contact=spec.contact,
            allow_private=net.allow_private,
            timeout=net.timeout,
            deadline=net.deadline,
            max_retries=net.max_retries,
            min_interval=net.min_interval,
            max_bytes=spec.limits.max_bytes,
            per_host_concurrency=net.per_host_concurrency,
            rate=net.rate,
            concurrency=net.concurrency,
        )


@dataclass
class FetchResult:
    """The outcome of one download: content when ok, otherwise a short stable reason."""

    url: str
    ok: bool
    status: int | None = None
    content: bytes | None = None
    content_type: str | None = None  # media type only, lower case (e.g. "image/jpeg")
    final_url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # response headers, lower-case names
    reason: str | None = None
    attempts: int = 0  # tries for the item: 1 + retries (redirect hops do not count)
    retryable: bool = False  # the last failure was transient (worth a later --retry-failed)


class _Failure(Exception):
    """A failed request, described once and turned into a reason (fetch) or an error (API)."""

    def __init__(
        self,
        kind: str,
        reason: str,
        url: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
        detail: str = "",
    ):
        super().__init__(reason)
        self.kind, self.reason, self.url = kind, reason, url
        self.retryable, self.retry_after, self.status, self.detail = (
            retryable,
            retry_after,
            status,
            detail,
        )
        self.attempts = 0


@dataclass
class _Done:
    response: requests.Response
    content: bytes
    final_url: str
    attempts: int
    value: Any = None


def redact(url: str) -> str:
    """The URL without user:password@ and with secret-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"//[^/@\s]*@", "//", url)
    netloc = parts.netloc.rpartition("@")[2]
    query = re.sub(
        r"(^|[&;])([^=&;]+)=([^&;]*)",
        lambda m: f"{m[1]}{m[2]}=***" if m[2].lower() in SECRET_PARAMS else m[0],
        parts.query,
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _media_type(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _origin(parts: SplitResult) -> tuple[str, str, int]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _short_connection_error(exc: BaseException) -> str:
    text = f"{exc!r} {exc}".lower()
    if "refused" in text:
        return "connection refused"
    if any(
        s in text
        for s in (
            "name or service not known",
            "nodename nor servname",
            "temporary failure in name resolution",
            "getaddrinfo failed",
            "failed to resolve",
            "no address associated",
            "nameresolutionerror",
        )
    ):
        return "DNS lookup failed"
    if "reset" in text:
        return "connection reset"
    if "unreachable" in text:
        return "network unreachable"
    if "no route to host" in text:
        return "no route to host"
    if "remote end closed" in text or "remotedisconnected" in text or "aborted" in text:
        return "connection closed by server"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "incomplete response"
    return type(exc).__name__


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    # iter_content wraps a read timeout while streaming the body in a plain ConnectionError.
    args = getattr(exc, "args", ())
    return bool(args) and isinstance(args[0], (urllib3.exceptions.ReadTimeoutError, TimeoutError))


def _api_detail(body: bytes) -> str:
    """The service's own error text from a JSON error body, if it has one."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    err = data.get("error")
    if isinstance(err, dict):
        text = err.get("info") or err.get("message") or err.get("code") or ""
    else:
        # odcloud (data.go.kr) answers {"code": -4, "msg": "..."}: its code tells a wrong key
        # from one not yet approved for the service, so keep both
        msg = data.get("msg")
        odcloud = f"{data.get('code')} {msg}" if msg and "code" in data else msg
        text = err or data.get("detail") or data.get("message") or odcloud or ""
    return _one_line(str(text), 120) if isinstance(text, (str, int)) else ""


class PoliteSession:
    """A thread-safe HTTP client with contact, guards, pacing, retries and robots.txt."""

    def __init__(
        self,
        config: HttpConfig,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        make_pacer: Callable[[Callable[[float], None], Callable[[], float]], HostPacing]
        | None = None,
        robots_cache: robots.RobotsCache | None = None,
    ):
        """`make_pacer(sleep, clock)` and `robots_cache` replace the session's own per-host
        pacing and robots.txt cache: a Ray worker shares the cluster's (acnedata.distributed)."""
        self.config = config
        # None: real sleeps that cancel() cuts short (a Retry-After can ask for minutes)
        self._sleep = sleep
        self._clock = clock
        self._cancelled = threading.Event()
        self._watchdog = Watchdog()  # cuts requests at config.deadline, or all on cancel()
        contact = re.sub(r"[\x00-\x1f\x7f]", "", config.contact).strip()
        inner = f"+{PROJECT_URL}; {contact}" if contact else f"+{PROJECT_URL}"
        self.user_agent = f"acnedata/{__version__} ({inner}) python-requests/{requests.__version__}"
        self._rng = random.Random()
        self._lock = threading.Lock()  # guards the dicts and counters below
        self._count = 0
        self._pacer: HostPacing = (
            make_pacer(self._pause, clock)
            if make_pacer
            else Pacer(
                interval=config.min_interval,
                per_host=config.per_host_concurrency,
                rate=config.rate,
                concurrency=config.concurrency,
                sleep=self._pause,
                clock=clock,
            )
        )
        self._robots = robots_cache or robots.RobotsCache(clock)
        self._guard = AddressGuard(
            allow_private=config.allow_private,
            allowed_private_hosts=config.allowed_private_hosts,
            clock=clock,
        )
        # requests.Session is not documented as thread-safe, so each worker thread gets its own.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._env_proxies = bool(requests.utils.getproxies())
        self._pool = fastget.Connections()  # bare GETs (see _send_plain)
        self._plain_headers = {
            **requests.utils.default_headers(),
            "User-Agent": self.user_agent,
            "Accept-Encoding": fastget.ACCEPT_ENCODING,
        }

    # -- public API ------------------------------------------------------------------------------

    def get_json(
        self,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        method: str = "GET",
        json_body: Any = None,
        auth: Any = None,
    ) -> tuple[Any, requests.Response]:
        """Call a JSON API; retries transient failures; raises NetworkError or SourceError."""
        merged = {"Accept": "application/json", **(headers or {})}
        try:
            done = self._perform(
                method.upper(),
                url,
                params=params,
                headers=merged,
                json_body=json_body,
                auth=auth,
                cap=self.config.max_bytes,
                check=self._check_json,
            )
        except _Failure as failure:
            raise self._as_error(failure, url) from None
        return done.value, done.response

    def get_text(
        self,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
    ) -> tuple[str, requests.Response]:
        """Fetch a text resource (HTML page, URL list); raises NetworkError or SourceError."""
        try:
            done = self._perform(
                "GET", url, params=params, headers=headers, auth=auth, cap=self.config.max_bytes
            )
        except _Failure as failure:
            raise self._as_error(failure, url) from None
        charset = requests.utils.get_encoding_from_headers(done.response.headers)
        explicit = charset if "charset" in done.response.headers.get("Content-Type", "") else None
        try:
            text = done.content.decode(explicit or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            text = done.content.decode("utf-8", errors="replace")
        return text, done.response

    def fetch(self, url: str, *, max_bytes: int | None = None) -> FetchResult:
        """Download one item; never raises for per-item failures (only for a missing contact)."""
        cap = self.config.max_bytes if max_bytes is None else max_bytes
        try:
            done = self._perform(
                "GET",
                url,
                cap=cap,
                robots=self.config.respect_robots,
                before_body=self._check_x_robots,
            )
        except _Failure as f:
            return FetchResult(
                url=url,
                ok=False,
                status=f.status,
                reason=f.reason,
                attempts=f.attempts,
                retryable=f.retryable,
            )
        resp = done.response
        return FetchResult(
            url=url,
            ok=True,
            status=resp.status_code,
            content=done.content,
            content_type=_media_type(resp.headers.get("Content-Type")),
            final_url=done.final_url,
            headers={k.lower(): v for k, v in resp.headers.items()},
            attempts=done.attempts,
        )

    def robots_allowed(self, url: str) -> bool:
        """Whether robots.txt of the URL's host lets the "acnedata" agent fetch it (cached)."""
        try:
            return self._robots_for(self._check_url(url)).allows(url)
        except _Failure:  # a bad URL, or the session was cancelled
            return False

    def cancel(self, *, in_flight: bool = True) -> None:
        """Stop (for Ctrl-C): no request starts from now on, and with `in_flight` the ones
        under way end now too; each ends with the reason CANCELLED. Pacing and Retry-After
        sleeps wake at once. A cancelled session stays cancelled."""
        self._cancelled.set()
        if in_flight:
            self._watchdog.cancel_all()

    def request_count(self) -> int:
        """Requests actually sent so far (retries, redirects and robots.txt included)."""
        with self._lock:
            return self._count

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for s in sessions:
            s.close()
        self._pool.clear()
        self._watchdog.close()

    def __enter__(self) -> PoliteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the request loop ------------------------------------------------------------------------

    def _perform(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        auth: Any = None,
        cap: int,
        truncate: bool = False,
        robots: bool = False,
        check: Callable[[requests.Response, bytes, str], Any] | None = None,
        before_body: Callable[[requests.Response, str], None] | None = None,
    ) -> _Done:
        """Send with guards, pacing, manual redirects and retries; raise _Failure when done."""
        cfg = self.config
        attempts = retries = hops = 0
        current = url
        origin: tuple[str, str, int] | None = None
        try:
            while True:
                if self._cancelled.is_set():
                    raise _Failure("cancelled", CANCELLED, current)
                parts = self._check_url(current)
                origin = origin or _origin(parts)
                if robots:
                    rules = self._robots_for(parts)
                    if not rules.allows(current):
                        log.info("%s refused: %s", redact(current), rules.reason)
                        raise _Failure("robots", rules.reason, current, retryable=rules.retryable)
                try:
                    attempts = retries + 1  # tries of this item; redirect hops are not retries
                    vetted = self._guard_address(parts, current)
                    resp, content = self._send_once(
                        method,
                        current,
                        parts,
                        vetted,
                        params=params,
                        headers=headers,
                        json_body=json_body,
                        auth=auth,
                        cap=cap,
                        truncate=truncate,
                        before_body=before_body,
                    )
                    value = check(resp, content, current) if check and content is not None else None
                except _Failure as f:
                    if not f.retryable or retries >= cfg.max_retries:
                        raise
                    delay = f.retry_after
                    if delay is None:
                        delay = self._rng.uniform(
                            0, min(cfg.backoff_cap, cfg.backoff_base * 2**retries)
                        )
                    retries += 1
                    delay = min(delay, cfg.retry_after_cap)
                    if f.status in (429, 503) and delay > 0:
                        # Other workers would hit the same wall; hold them back as well.
                        self._pacer.pause_host(parts.hostname or "", delay)
                    log.info(
                        "retry %d of %d for %s in %.1f s: %s",
                        retries,
                        cfg.max_retries,
                        redact(current),
                        delay,
                        f.reason,
                    )
                    if delay > 0:
                        self._pause(delay)
                    continue
                if content is not None:
                    return _Done(resp, content, current, attempts, value)
                # A redirect: follow it by hand so every hop passes the same checks.
                hops += 1
                if hops > cfg.max_redirects:
                    raise _Failure("redirects", "too many redirects", url)
                status = resp.status_code
                current = urljoin(current, resp.headers["Location"])
                params = None  # the Location carries its own query
                if (status == 303 and method != "HEAD") or (
                    status in (301, 302) and method == "POST"
                ):
                    method, json_body = "GET", None
                try:
                    same_origin = _origin(urlsplit(current)) == origin
                except ValueError:
                    same_origin = False
                if not same_origin:  # never hand credentials to another host
                    auth = None
                    if headers:
                        drop = ("authorization", "proxy-authorization", "cookie")
                        headers = {k: v for k, v in headers.items() if k.lower() not in drop}
        except _Failure as f:
            f.attempts = attempts
            raise

    def _send_once(
        self,
        method: str,
        url: str,
        parts: SplitResult,
        vetted: Addresses | None,
        *,
        params: Any,
        headers: dict[str, str] | None,
        json_body: Any,
        auth: Any,
        cap: int,
        truncate: bool,
        before_body: Callable[[requests.Response, str], None] | None,
    ) -> tuple[requests.Response, bytes | None]:
        """One request, once the host and global limits have let it through; (response, body)
        on 2xx, (response, None) on a redirect. It must be over within config.deadline: the
        watchdog cuts its sockets then (or at cancel()), and the cut is the reason given."""
        with self._pacer.paced(parts.hostname or ""):
            watch = self._watchdog.watch(self.config.deadline)
            try:
                if watch.why is None and not self._cancelled.is_set():
                    with self._lock:
                        self._count += 1
                    return self._exchange(
                        method,
                        url,
                        parts,
                        vetted,
                        watch,
                        params=params,
                        headers=headers,
                        json_body=json_body,
                        auth=auth,
                        cap=cap,
                        truncate=truncate,
                        before_body=before_body,
                    )
            except (requests.RequestException, _Failure) as exc:
                if watch.why is None:  # a failure of its own, not the cut's doing
                    if isinstance(exc, _Failure):
                        raise
                    raise self._exception_failure(exc, url) from None
            finally:
                self._watchdog.done(watch)
            raise self._cut_failure(watch, url)  # cut, or cancelled while waiting for a slot

    def _exchange(
        self,
        method: str,
        url: str,
        parts: SplitResult,
        vetted: Addresses | None,
        watch: Watch,
        *,
        params: Any,
        headers: dict[str, str] | None,
        json_body: Any,
        auth: Any,
        cap: int,
        truncate: bool,
        before_body: Callable[[requests.Response, str], None] | None,
    ) -> tuple[requests.Response, bytes | None]:
        """The request on the wire, on either path; every socket it uses is `watch`'s, and a
        new connection goes to the `vetted` addresses on both paths (DNS rebinding)."""
        bare = params is None and headers is None and json_body is None and auth is None
        if bare and self._plain_get_allowed(method, parts):
            resp = self._send_plain(url, vetted, watch)
            return self._answer(resp, url, watch, cap, truncate, before_body)
        _, host, port = _origin(parts)
        with pinning.aimed(pinning.Target(host, port, vetted, watch)):
            resp = self._session().request(
                method,
                url,
                params=params,
                headers=headers,
                json=json_body,
                auth=auth,
                timeout=self.config.timeout,
                allow_redirects=False,
                stream=True,
            )
            return self._answer(resp, url, watch, cap, truncate, before_body)

    def _answer(
        self,
        resp: requests.Response,
        url: str,
        watch: Watch,
        cap: int,
        truncate: bool,
        before_body: Callable[[requests.Response, str], None] | None,
    ) -> tuple[requests.Response, bytes | None]:
        try:
            status = resp.status_code
            if status in REDIRECT_STATUSES and resp.headers.get("Location"):
                return resp, None
            if not 200 <= status < 300:
                raise self._status_failure(resp, url)
            if before_body:
                before_body(resp, url)
            content = self._read_body(resp, url, cap, truncate)
        finally:
            resp.close()
        if watch.why is not None:  # a body without a length ends early, and looks whole
            raise self._cut_failure(watch, url)
        # Let callers use resp.content / resp.text although the body was streamed.
        resp._content = content
        resp._content_consumed = True
        return resp, content

    def _cut_failure(self, watch: Watch, url: str) -> _Failure:
        if watch.why == DEADLINE and not self._cancelled.is_set():
            reason = f"too slow: deadline {self.config.deadline:g} s"
            return _Failure("deadline", reason, url, detail=reason)
        return _Failure("cancelled", CANCELLED, url)

    def _plain_get_allowed(self, method: str, parts: SplitResult) -> bool:
        """Whether _send_plain may serve this request: a GET, no proxy named by the environment
        (so proxies keep working through requests) and no credentials in the URL."""
        return method == "GET" and not self._env_proxies and "@" not in parts.netloc

    def _send_plain(self, url: str, vetted: Addresses | None, watch: Watch) -> requests.Response:
        """A bare GET (bulk image downloads) on fastget's kept-alive http.client connections.

        requests' Session.request re-reads proxy and netrc settings from the environment, merges
        cookies and runs hooks on every call, and its adapter builds a Response and a cookie jar
        per call; urllib3's pool underneath still costs several times what http.client does.
        Measured against nginx on 127.0.0.1 with 8 threads, fetch() cost 0.88 ms of CPU per
        image on urllib3's pool and 0.55 ms here (see _plain_get_allowed for when the full
        requests path runs instead). Cookies are neither sent nor kept here, which image
        downloads never need. A new connection goes to the addresses the private-address guard
        vetted, not to a second DNS answer that could differ (DNS rebinding).
        """
        return fastget.get(  # type: ignore[return-value]
            self._pool,
            url,
            self._plain_headers,
            self.config.timeout,
            addresses=vetted,
            on_socket=watch.add,
        )

    def _read_body(self, resp: requests.Response, url: str, cap: int, truncate: bool) -> bytes:
        too_large = _Failure("too_large", f"too large: over {cap} bytes", url, status=200)
        length = resp.headers.get("Content-Length", "")
        if not truncate and length.isdigit() and int(length) > cap:
            raise too_large  # refuse before reading a byte
        buf = bytearray()
        for chunk in resp.iter_content(64 * 1024):
            buf += chunk
            if len(buf) > cap:  # counts decoded bytes, so a gzip bomb stops here too
                if truncate:
                    return bytes(buf[:cap])
                raise too_large
        return bytes(buf)

    def _status_failure(self, resp: requests.Response, url: str) -> _Failure:
        status = resp.status_code
        body = b""
        try:  # a little of the body, for the service's own explanation
            for chunk in resp.iter_content(ERROR_BODY_BYTES):
                body += chunk
                if len(body) >= ERROR_BODY_BYTES:
                    break
        except requests.RequestException:
            pass
        retryable = status in RETRY_STATUSES
        return _Failure(
            "http",
            f"http {status}",
            url,
            retryable=retryable,
            retry_after=parse_retry_after(resp.headers.get("Retry-After")) if retryable else None,
            status=status,
            detail=_api_detail(body),
        )

    def _exception_failure(self, exc: requests.RequestException, url: str) -> _Failure:
        if _is_timeout(exc):
            return _Failure("timeout", "timeout", url, retryable=True)
        if isinstance(exc, requests.exceptions.SSLError):
            return _Failure("connect", "connection error: TLS error", url, detail="TLS error")
        if isinstance(exc, requests.exceptions.ContentDecodingError):
            short = "bad content encoding"
            return _Failure("connect", f"connection error: {short}", url, detail=short)
        if isinstance(
            exc, (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
        ):
            short = _short_connection_error(exc)
            return _Failure(
                "connect", f"connection error: {short}", url, retryable=True, detail=short
            )
        short = _one_line(str(exc), 80) or type(exc).__name__
        return _Failure("invalid", f"invalid request: {type(exc).__name__}", url, detail=short)

    # -- guards ----------------------------------------------------------------------------------

    def _check_url(self, url: str) -> SplitResult:
        """Scheme and host checks, and the contact rule; no network access."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise _Failure("invalid", "invalid url", url, detail="malformed URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise _Failure("scheme", f"scheme not allowed: {scheme or 'none'}", url)
        if not parts.hostname:
            raise _Failure("invalid", "invalid url: no host", url, detail="no host")
        if not self.config.contact.strip() and is_public_host(parts.hostname):
            raise NetworkError(
                f"{redact(url)}: no contact given; public APIs are not called without one — "
                "pass --contact you@example.org or set contact = ... in the spec"
            )
        return parts

    def _guard_address(self, parts: SplitResult, url: str) -> Addresses | None:
        """Refuse, before connecting, a host that resolves to a non-public address; the vetted
        addresses for the connection to use, or None when no check applies (see AddressGuard)."""
        _, host, port = _origin(parts)
        try:
            return self._guard.vet(host, port)
        except PrivateAddress as refused:
            address = refused.address
            raise _Failure(
                "private", f"private address refused: {address}", url, detail=address
            ) from None
        except (OSError, UnicodeError):
            short = "DNS lookup failed"
            raise _Failure(
                "connect", f"connection error: {short}", url, retryable=True, detail=short
            ) from None

    def _check_json(self, resp: requests.Response, content: bytes, url: str) -> Any:
        try:
            data = json.loads(content)
        except ValueError:
            got = _media_type(resp.headers.get("Content-Type")) or "a body without a type"
            if got.endswith("json"):
                got = f"malformed {got}"
            raise _Failure("notjson", "not json", url, detail=got) from None
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("code") in MEDIAWIKI_RETRY_CODES:
            # MediaWiki says "busy" with HTTP 200, an error body and usually a Retry-After.
            raise _Failure(
                "api",
                f"api {err['code']}",
                url,
                retryable=True,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
                detail=f"{err['code']} ({_one_line(str(err.get('info', '')), 100)})",
            )
        return data

    def _check_x_robots(self, resp: requests.Response, url: str) -> None:
        getlist = getattr(resp.raw.headers, "getlist", None)
        values = getlist("X-Robots-Tag") if getlist else [resp.headers.get("X-Robots-Tag", "")]
        directive = x_robots_block(v for v in values if v)
        if directive:
            raise _Failure("xrobots", f"X-Robots-Tag: {directive}", url, status=resp.status_code)

    # -- robots.txt ------------------------------------------------------------------------------

    def _robots_for(self, parts: SplitResult) -> robots.Rules:
        return self._robots.get(_origin(parts), self._load_robots)

    def _load_robots(self, origin: robots.Origin) -> robots.Rules:
        later = self._clock() + ROBOTS_RETRY_TTL
        try:
            done = self._perform("GET", robots_url(origin), cap=ROBOTS_MAX_BYTES, truncate=True)
        except _Failure as f:
            if f.kind == "cancelled":
                raise  # nothing learnt: nothing to remember
            return robots.rules_after_failure(f.kind, f.status, later)
        rules = robots.parse(done.content.decode("utf-8", errors="replace"))
        delay = rules.parser.crawl_delay(ROBOTS_TOKEN) if rules.parser else None
        if delay:
            # Honour Crawl-delay, but cap it so one odd robots.txt cannot stall a run for days.
            self._pacer.slow_down(origin[1], min(float(delay), self.config.retry_after_cap))
        return rules

    # -- pacing and sessions ---------------------------------------------------------------------

    def _host(self, hostname: str) -> Host:
        """The pacing state of a host (for tests that wait for a pause to be set)."""
        return self._pacer.host(hostname)  # type: ignore[attr-defined]

    def _pause(self, seconds: float) -> None:
        """Sleep; a cancel() ends the sleep at once (the caller then finds it cancelled)."""
        if self._sleep is None:
            self._cancelled.wait(seconds)
        else:
            self._sleep(seconds)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = self.user_agent
            # Pinned: a connection goes to the addresses the guard vetted (see pinning).
            adapter = pinning.PinnedAdapter(max_retries=0, pool_maxsize=8)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    # -- errors ----------------------------------------------------------------------------------

    def _as_error(self, f: _Failure, url: str) -> NetworkError | SourceError:
        """A one-line NetworkError or SourceError that names the URL (redacted) and the fix."""
        where = redact(f.url if f.kind in ("private", "scheme") else url)
        # host[:port] as written in the URL, without any user:password@
        host = urlsplit(f.url).netloc.rpartition("@")[2] or where
        tries = f" after {f.attempts} attempts" if f.attempts > 1 else ""
        if f.kind == "private":
            return NetworkError(
                f"{where}: refuses private address {f.detail}; set [network] allow_private = true "
                "(or --allow-private) to allow it"
            )
        if f.kind == "scheme":
            return NetworkError(f"{where}: {f.reason}; only http and https URLs are used")
        if f.kind == "connect":
            return NetworkError(
                f"{host}: cannot connect ({f.detail}){tries}; check the URL or your network"
            )
        if f.kind == "deadline":
            return NetworkError(
                f"{host}: {f.reason}{tries} (the answer came too slowly); raise [network] "
                "deadline if the service is just slow"
            )
        if f.kind == "cancelled":
            return NetworkError(f"{host}: cancelled")
        if f.kind == "timeout":
            return NetworkError(
                f"{host}: no answer within {self.config.timeout:g} s{tries}; check the URL or your "
                "network, or raise [network] timeout"
            )
        if f.kind == "invalid":
            return NetworkError(f"{where}: invalid URL ({f.detail}); check the URL")
        if f.kind == "redirects":
            return SourceError(
                f"{where}: too many redirects (more than {self.config.max_redirects})"
            )
        if f.kind == "too_large":
            return SourceError(f"{where}: response {f.reason}; raise limits.max_bytes if expected")
        if f.kind == "notjson":
            return SourceError(f"{where}: expected JSON, got {f.detail}")
        if f.kind == "api":
            return SourceError(
                f"{where}: API error {f.detail}{tries}; the service is busy, try again later"
            )
        status = f.status or 0
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "error"
        message = f"{where}: HTTP {status} {phrase}"
        if f.detail:
            message += f" ({f.detail})"
        message += tries
        if status in (401, 403):
            message += "; check the credentials (API key or token) for this source"
        elif f.retryable:
            message += "; the service is busy or failing, try again later"
        return SourceError(message)
