"""Openverse source: image search with licence filters taken from the spec's policy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from acnedata import licensing
from acnedata.errors import SourceError
from acnedata.htmltext import html_to_text
from acnedata.sources.base import Candidate, SearchContext, first_unique, int_option
from acnedata.spec import ClassSpec, LicencePolicy

MAX_QUERY = 200  # the API refuses a longer `q`
MAX_PAGINATION_DEPTH = 20  # pages beyond the 20th are not served (since 2022)
ANON_PAGE_SIZE = 20  # anonymous callers may ask for at most 20 results a page
TOKEN_PAGE_SIZE = 50  # a modest default for registered clients (the API allows up to 500)
MAX_PAGE_SIZE = 500
CLIENT_ID_ENV = "OPENVERSE_CLIENT_ID"
CLIENT_SECRET_ENV = "OPENVERSE_CLIENT_SECRET"
# Licence fields kept verbatim: the legal gate normalises them, the credits file quotes them.
LICENCE_FIELDS = ("license", "license_version", "license_url", "attribution", "creator",
                  "creator_url", "foreign_landing_url", "provider", "source")  # fmt: skip

# Each Openverse licence code and the SPDX ids it can stand for (one per version it exists in).
_VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
OPENVERSE_CODES: dict[str, tuple[str, ...]] = {
    "cc0": ("CC0-1.0",),
    "pdm": ("CC-PDM-1.0",),
    **{
        code: tuple(f"CC-{code.upper()}-{v}" for v in _VERSIONS)
        for code in ("by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd")
    },
    # The retired Sampling+ licences are never accepted (licensing.RETIRED), so never asked for.
    "sampling+": (licensing.SAMPLING_PLUS,),
    "nc-sampling+": (licensing.SAMPLING_PLUS,),
}


def licence_filter(policy: LicencePolicy) -> list[str]:
    """The Openverse `license` codes of which at least one version the policy would allow."""
    return [
        code
        for code, ids in OPENVERSE_CODES.items()
        if any(licensing.verdict(spdx, policy).decision == "allow" for spdx in ids)
    ]


def token_url(base_url: str) -> str:
    """The token endpoint beside the images endpoint: …/v1/images/ → …/v1/auth_tokens/token/."""
    root = base_url.split("?", 1)[0].rstrip("/")
    if root.endswith("/images"):
        root = root[: -len("/images")]
    return f"{root}/auth_tokens/token/"


class OpenverseSource:
    """Searches Openverse once per search term of each class, page by page up to the limits."""

    name = "openverse"

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        licences = licence_filter(ctx.spec.policy)
        if not licences:
            raise SourceError(
                "the policy accepts none of the licences Openverse offers "
                f"({', '.join(OPENVERSE_CODES)}); widen policy.allow or disable [sources.openverse]"
            )
        headers = self._auth_headers(ctx)
        # Anonymous callers are held to 20 a page; asking for more only earns a 401.
        wanted = int_option(ctx, "page_size", TOKEN_PAGE_SIZE if headers else ANON_PAGE_SIZE)
        cap = MAX_PAGE_SIZE if headers else ANON_PAGE_SIZE
        page_size = max(1, min(wanted, cap))
        for cls in ctx.spec.classes:
            yield from self.search_class(ctx, cls, licences, page_size, headers)

    def search_class(
        self,
        ctx: SearchContext,
        cls: ClassSpec,
        licences: list[str],
        page_size: int,
        headers: dict[str, str],
    ) -> Iterator[Candidate]:
        terms = (
            self._search_term(ctx, cls, term, licences, page_size, headers)
            for term in cls.all_terms()
        )
        return first_unique(terms, ctx.limit)

    def _search_term(
        self,
        ctx: SearchContext,
        cls: ClassSpec,
        term: str,
        licences: list[str],
        page_size: int,
        headers: dict[str, str],
    ) -> Iterator[Candidate]:
        base = ctx.source.base_url
        params: dict[str, Any] = {
            "q": term[:MAX_QUERY],
            "license": ",".join(licences),
            "page_size": page_size,
            "mature": "false",
        }
        for page in range(1, MAX_PAGINATION_DEPTH + 1):
            try:
                data, _ = ctx.session.get_json(
                    base, params={**params, "page": page}, headers=headers
                )
            except SourceError as exc:
                raise _explain(exc, page_size, bool(headers)) from None
            if not isinstance(data, dict) or not isinstance(data.get("results"), list):
                got = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
                raise SourceError(
                    f"{base}: expected the search envelope with a results list, "
                    f"got {got}; is base_url an Openverse /v1/images/ endpoint?"
                )
            for item in data["results"]:
                cand = _candidate(item, cls.name, term)
                if cand is not None:
                    yield cand
            page_count = data.get("page_count")
            if not data["results"] or not isinstance(page_count, int) or page >= page_count:
                return

    def _auth_headers(self, ctx: SearchContext) -> dict[str, str]:
        """A Bearer header from client credentials in the environment, or {} (anonymous)."""
        client_id = os.environ.get(CLIENT_ID_ENV, "").strip()
        secret = os.environ.get(CLIENT_SECRET_ENV, "").strip()
        if not (client_id and secret):
            return {}
        url = str(ctx.source.options.get("token_url") or token_url(ctx.source.base_url))
        # RFC 6749 §2.3.1: client credentials by HTTP Basic, which every OAuth2 server accepts;
        # grant_type goes in the query because the shared session posts JSON, not form bodies.
        try:
            data, _ = ctx.session.get_json(
                url,
                method="POST",
                params={"grant_type": "client_credentials"},
                auth=(client_id, secret),
            )
        except SourceError as exc:
            raise SourceError(
                f"token request failed ({exc}); check {CLIENT_ID_ENV} and "
                f"{CLIENT_SECRET_ENV}, or unset them to search anonymously"
            ) from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(f"{url}: the token response has no access_token")
        return {"Authorization": f"Bearer {token}"}


def _explain(exc: SourceError, page_size: int, authenticated: bool) -> SourceError:
    """Say what to do about Openverse's 401 for a page size too large for anonymous callers."""
    text = str(exc)
    if "HTTP 401" in text and "page_size" in text:
        who = "the token was not accepted" if authenticated else "the request is anonymous"
        return SourceError(
            f"page_size {page_size} is refused because {who}; anonymous requests "
            f"may ask for at most {ANON_PAGE_SIZE} a page: lower [sources.openverse] page_size "
            f"or set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} ({text})"
        )
    return exc


def _candidate(item: Any, klass: str, term: str) -> Candidate | None:
    if not isinstance(item, dict) or not item.get("id") or not item.get("url"):
        return None  # an item we cannot download or name: skip it, keep the rest
    tags = [str(t["name"]) for t in item.get("tags") or () if isinstance(t, dict) and t.get("name")]
    return Candidate(
        source="openverse",
        source_id=str(item["id"]),
        url=str(item["url"]),
        page_url=item.get("foreign_landing_url") or None,
        title=html_to_text(item.get("title")) or None,
        author=html_to_text(item.get("creator")) or None,
        attribution=html_to_text(item.get("attribution")) or None,
        licence_raw={k: item[k] for k in LICENCE_FIELDS if k in item},
        query=term,
        searched_class=klass,
        tags=tags,
        width=item.get("width") if isinstance(item.get("width"), int) else None,
        height=item.get("height") if isinstance(item.get("height"), int) else None,
    )
