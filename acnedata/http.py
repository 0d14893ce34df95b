"""One polite HTTP session for everything: the only module in acnedata that touches the network."""

from __future__ import annotations

import contextlib
import http
import ipaddress
import json
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from protego import Protego

from acnedata import __version__, fastget, pinning
from acnedata.deadline import CANCELLED, DEADLINE, Watch, Watchdog
from acnedata.errors import NetworkError, SourceError
from acnedata.fastget import Addresses

if TYPE_CHECKING:
    from acnedata.spec import DatasetSpec

PROJECT_URL = "https://github.com/acnedata/acnedata"
ROBOTS_TOKEN = "acnedata"  # the product token robots.txt groups and X-Robots-Tag prefixes match
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MEDIAWIKI_RETRY_CODES = frozenset({"maxlag", "ratelimited"})
X_ROBOTS_BLOCKING = frozenset({"noai", "noimageai", "noindex", "none"})
# X-Robots-Tag directives that carry a "name: value" of their own and are not user-agent prefixes.
X_ROBOTS_VALUED = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_RETRY_TTL = 120.0  # seconds a transient robots.txt failure is remembered before asking again
ERROR_BODY_BYTES = 8192  # enough of an error body to quote the API's own message
DNS_CACHE_SECONDS = 60.0  # how long the private-address guard trusts a DNS answer
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


class _Host:
    """Per-host pacing: min interval, token bucket, a pause after 429/503, an in-flight limit."""

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


@dataclass
class _Robots:
    parser: Protego | None = None  # None: allow or deny everything per `allow_all`
    allow_all: bool = True
    reason: str = "robots.txt disallows"
    retryable: bool = False
    expires: float | None = None  # clock time after which to ask again (transient outcomes)

    def allows(self, url: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, ROBOTS_TOKEN)


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


def _blocked_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
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
    return not _blocked_ip(ip)


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


def x_robots_block(values: Iterable[str]) -> str | None:
    """The first X-Robots-Tag directive that forbids us using the item, or None."""
    for value in values:
        agent: str | None = None  # a "name:" prefix scopes the rest of that header value
        for part in value.split(","):
            token = part.strip()
            m = re.match(r"^([A-Za-z0-9_.*-]+)\s*:\s*(.*)$", token)
            if m and m[1].lower() not in X_ROBOTS_VALUED:
                agent, token = m[1].lower(), m[2].strip()
            directive = token.lower()
            if directive in X_ROBOTS_BLOCKING and agent in (None, "*", ROBOTS_TOKEN):
                return directive
    return None


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
    ):
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
        self._hosts: dict[str, _Host] = {}
        # The global in-flight limit, taken after the host slot and the pacing wait, so a worker
        # waiting for a slow host never holds a global slot that another host could use.
        self._global: threading.BoundedSemaphore | contextlib.nullcontext[None] = (
            threading.BoundedSemaphore(config.concurrency)
            if config.concurrency > 0
            else contextlib.nullcontext()
        )
        self._robots: dict[tuple[str, str, int], _Robots] = {}
        self._resolved: dict[tuple[str, int], tuple[float, Addresses]] = {}  # see _resolve
        self._robots_locks: dict[tuple[str, str, int], threading.Lock] = {}
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

    def cancel(self) -> None:
        """Stop: requests in flight end now, and every later one at once, with the reason
        CANCELLED (for Ctrl-C; a cancelled session stays cancelled)."""
        self._cancelled.set()
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
                        self._pause_host(parts.hostname or "", delay)
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
        with self._paced(parts.hostname or ""):
            watch = self._watchdog.watch(self.config.deadline)
            try:
                if watch.why is None:  # else cancelled while waiting for a slot
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
            raise self._cut_failure(watch, url)

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
        if watch.why == DEADLINE:
            reason = f"too slow: deadline {self.config.deadline:g} s"
            return _Failure("deadline", reason, url, detail=reason)
        return _Failure("cancelled", CANCELLED, url)

    @contextlib.contextmanager
    def _paced(self, hostname: str) -> Iterator[None]:
        """Hold a host slot, wait for the host's turn, then hold a global slot."""
        host = self._host(hostname)
        with host.slots:
            self._wait_turn(host)
            with self._global:
                yield

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
        """Refuse, before connecting, a host that resolves to a non-public address.

        Returns the vetted addresses for the connection to use, or None when no check applies
        (private addresses allowed, or this host let through by name). Answers are cached per
        host for DNS_CACHE_SECONDS: a bulk download from one host would otherwise ask DNS
        once per image.
        """
        if self.config.allow_private:
            return None
        _, host, port = _origin(parts)
        allowed = self.config.allowed_private_hosts
        if host in allowed or f"{host}:{port}" in allowed or f"[{host}]:{port}" in allowed:
            return None
        try:
            infos = self._resolve(host, port)
        except (OSError, UnicodeError):
            short = "DNS lookup failed"
            raise _Failure(
                "connect", f"connection error: {short}", url, retryable=True, detail=short
            ) from None
        for _, sockaddr in infos:
            address = str(sockaddr[0])
            try:
                ip = ipaddress.ip_address(address.split("%")[0])
            except ValueError:
                continue
            if _blocked_ip(ip):
                raise _Failure(
                    "private", f"private address refused: {address}", url, detail=address
                )
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

    def _robots_for(self, parts: SplitResult) -> _Robots:
        key = _origin(parts)
        with self._lock:
            key_lock = self._robots_locks.setdefault(key, threading.Lock())
        with key_lock:  # one fetch per origin even when many workers ask at once
            cached = self._robots.get(key)
            if cached and (cached.expires is None or self._clock() < cached.expires):
                return cached
            rules = self._load_robots(key)
            self._robots[key] = rules
        return rules

    def _load_robots(self, key: tuple[str, str, int]) -> _Robots:
        scheme, host, port = key
        netloc = f"[{host}]" if ":" in host else host
        default = 443 if scheme == "https" else 80
        robots_url = f"{scheme}://{netloc}{'' if port == default else f':{port}'}/robots.txt"
        later = self._clock() + ROBOTS_RETRY_TTL
        try:
            done = self._perform("GET", robots_url, cap=ROBOTS_MAX_BYTES, truncate=True)
        except _Failure as f:
            if f.kind == "cancelled":
                raise  # nothing learnt: nothing to remember
            if f.kind == "http" and f.status in (401, 403):
                return _Robots(allow_all=False)  # as Google: an access-controlled robots.txt
            if f.kind == "http" and (f.status == 429 or (f.status or 0) >= 500):
                # RFC 9309: an unreachable robots.txt means full disallow, for now.
                return _Robots(
                    allow_all=False,
                    reason=f"robots.txt unavailable: http {f.status}",
                    retryable=True,
                    expires=later,
                )
            if f.kind == "deadline":
                # A robots.txt that trickles: unreachable in RFC 9309's sense (full disallow),
                # for now. The per-origin lock is held only this long, by this host's workers.
                return _Robots(
                    allow_all=False,
                    reason="robots.txt unavailable: too slow",
                    retryable=True,
                    expires=later,
                )
            if f.kind in ("connect", "timeout"):
                return _Robots(allow_all=True, expires=later)
            return _Robots(allow_all=True)  # 404 and friends, or a robots redirect we refuse
        try:
            parser = Protego.parse(done.content.decode("utf-8", errors="replace"))
        except Exception:  # a robots.txt we cannot parse restricts nothing
            return _Robots(allow_all=True)
        delay = parser.crawl_delay(ROBOTS_TOKEN)
        if delay:
            # Honour Crawl-delay, but cap it so one odd robots.txt cannot stall a run for days.
            host_state = self._host(host)
            with host_state.lock:
                wanted = min(float(delay), self.config.retry_after_cap)
                host_state.interval = max(host_state.interval, wanted)
        return _Robots(parser=parser)

    # -- pacing and sessions ---------------------------------------------------------------------

    def _host(self, hostname: str) -> _Host:
        key = hostname.lower()
        with self._lock:
            state = self._hosts.get(key)
            if state is None:
                cfg = self.config
                state = self._hosts[key] = _Host(
                    cfg.min_interval, cfg.per_host_concurrency, cfg.rate
                )
            return state

    def _wait_turn(self, host: _Host) -> None:
        """Reserve the next start slot for this host, then sleep until it (outside the lock)."""
        with host.lock:
            now = self._clock()
            start = max(now, host.not_before)
            if host.last_start is not None:
                start = max(start, host.last_start + host.interval)
            if host.rate > 0:
                step = 1.0 / host.rate
                if host.tat is not None:
                    start = max(start, host.tat - (host.burst - 1) * step)
                host.tat = max(host.tat if host.tat is not None else start, start) + step
            host.last_start = start
        if start > now:
            self._pause(start - now)

    def _pause(self, seconds: float) -> None:
        """Sleep; a cancel() ends the sleep at once (the caller then finds it cancelled)."""
        if self._sleep is None:
            self._cancelled.wait(seconds)
        else:
            self._sleep(seconds)

    def _pause_host(self, hostname: str, seconds: float) -> None:
        """A 429/503 speaks for the whole host: no worker starts a request there before then."""
        host = self._host(hostname)
        with host.lock:
            host.not_before = max(host.not_before, self._clock() + seconds)

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
