"""robots.txt and X-Robots-Tag: what a host allows us, fetched once per origin and remembered."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protego import Protego

log = logging.getLogger(__name__)

ROBOTS_TOKEN = "acnedata"  # the product token robots.txt groups and X-Robots-Tag prefixes match
X_ROBOTS_BLOCKING = frozenset({"noai", "noimageai", "noindex", "none"})
# X-Robots-Tag directives that carry a "name: value" of their own and are not user-agent prefixes.
X_ROBOTS_VALUED = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)
ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: parse at least the first 500 KiB
ROBOTS_RETRY_TTL = 120.0  # seconds a transient robots.txt failure is remembered before asking again

Origin = tuple[str, str, int]  # scheme, host, port


@dataclass
class Rules:
    """One origin's robots.txt as far as we know it."""

    parser: Protego | None = None  # None: allow or deny everything per `allow_all`
    allow_all: bool = True
    reason: str = "robots.txt disallows"
    retryable: bool = False
    expires: float | None = None  # clock time after which to ask again (transient outcomes)

    def allows(self, url: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, ROBOTS_TOKEN)


def robots_url(origin: Origin) -> str:
    scheme, host, port = origin
    netloc = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{netloc}{'' if port == default else f':{port}'}/robots.txt"


def rules_after_failure(kind: str, status: int | None, expires: float) -> Rules:
    """What a failed robots.txt request means (kind as PoliteSession names failures)."""
    if kind == "http" and status in (401, 403):
        return Rules(allow_all=False)  # as Google: an access-controlled robots.txt
    if kind == "http" and (status == 429 or (status or 0) >= 500):
        # RFC 9309: an unreachable robots.txt means full disallow, for now.
        return Rules(
            allow_all=False,
            reason=f"robots.txt unavailable: http {status}",
            retryable=True,
            expires=expires,
        )
    if kind == "deadline":
        # A robots.txt that trickles: unreachable in RFC 9309's sense (full disallow), for
        # now. The per-origin lock is held only this long, and only by this host's workers.
        return Rules(
            allow_all=False,
            reason="robots.txt unavailable: too slow",
            retryable=True,
            expires=expires,
        )
    if kind in ("connect", "timeout"):
        return Rules(allow_all=True, expires=expires)
    return Rules(allow_all=True)  # 404 and friends, or a robots redirect we refuse


def parse(text: str) -> Rules:
    try:
        return Rules(parser=Protego.parse(text))
    except Exception:  # a robots.txt we cannot parse restricts nothing
        return Rules(allow_all=True)


class RobotsCache:
    """Rules per origin, loaded by one worker while the others of that origin wait for it."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: dict[Origin, Rules] = {}
        self._locks: dict[Origin, threading.Lock] = {}

    def get(self, origin: Origin, load: Callable[[Origin], Rules]) -> Rules:
        """The origin's rules, calling `load` when none are known or they expired; an
        exception from `load` is passed on and nothing is remembered."""
        with self._lock:
            key_lock = self._locks.setdefault(origin, threading.Lock())
        with key_lock:  # one fetch per origin even when many workers ask at once
            cached = self._rules.get(origin)
            if cached and (cached.expires is None or self._clock() < cached.expires):
                return cached
            rules = load(origin)
            self._rules[origin] = rules
            if not rules.allow_all and rules.parser is None:
                log.info("%s: every path refused (%s)", robots_url(origin), rules.reason)
            else:
                log.debug("%s: rules loaded", robots_url(origin))
        return rules


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
