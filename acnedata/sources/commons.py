"""Wikimedia Commons source: File-namespace search with imageinfo and licence extmetadata."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from acnedata.errors import SourceError
from acnedata.htmltext import html_to_text
from acnedata.sources.base import Candidate, SearchContext, first_unique
from acnedata.spec import ClassSpec

EXTMETADATA_FIELDS = (
    "ObjectName|ImageDescription|Artist|Credit|Attribution|LicenseShortName|LicenseUrl|License|"
    "UsageTerms|AttributionRequired|Copyrighted|Restrictions|Categories"
)
# Licence-bearing extmetadata kept verbatim for the legal gate and the attribution file.
LICENCE_FIELDS = (
    "LicenseShortName",
    "License",
    "LicenseUrl",
    "UsageTerms",
    "AttributionRequired",
    "Copyrighted",
    "Restrictions",
    "Credit",
    "Attribution",
)
BATCH = 20  # gsrlimit: Commons asks for at most 50 when extmetadata is requested


class CommonsSource:
    """Searches Commons once per search term of each class, following `continue` to the end."""

    name = "commons"

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        for cls in ctx.spec.classes:
            yield from self.search_class(ctx, cls)

    def search_class(self, ctx: SearchContext, cls: ClassSpec) -> Iterator[Candidate]:
        terms = (self._search_term(ctx, cls, term) for term in cls.all_terms())
        return first_unique(terms, ctx.limit)

    def _search_term(self, ctx: SearchContext, cls: ClassSpec, term: str) -> Iterator[Candidate]:
        params: dict[str, Any] = {
            "action": "query",
            "format": "json",
            "formatversion": str(ctx.source.options.get("formatversion", 2)),
            "generator": "search",
            "gsrnamespace": 6,
            "gsrsearch": f"{term} filetype:bitmap",
            "gsrlimit": BATCH,
            "prop": "imageinfo",
            "iiprop": "url|size|mime|extmetadata",
            "iiextmetadatafilter": EXTMETADATA_FIELDS,
            "maxlag": 5,
        }
        thumb_width = ctx.source.options.get("thumb_width")
        if thumb_width:
            params["iiurlwidth"] = int(thumb_width)
        cont: dict[str, Any] = {}
        while True:
            data, _ = ctx.session.get_json(ctx.source.base_url, params={**params, **cont})
            if not isinstance(data, dict):
                raise SourceError(
                    f"{ctx.source.base_url}: expected a JSON object from the "
                    "MediaWiki API, got " + type(data).__name__
                )
            if "error" in data:
                err = data["error"]
                raise SourceError(
                    f"{ctx.source.base_url}: API error "
                    f"{err.get('code', '?')}: {err.get('info', '')}"[:300]
                )
            for page in _pages(data):
                cand = _candidate(page, cls.name, term, bool(thumb_width))
                if cand is not None:
                    yield cand
            nxt = data.get("continue")
            if not isinstance(nxt, dict) or not nxt:
                return
            cont = dict(nxt)  # copy every key unchanged, as the API asks


def _pages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Pages in search-rank order, for formatversion 2 (array) and 1 (object keyed by id)."""
    pages = (data.get("query") or {}).get("pages") or []
    if isinstance(pages, dict):
        pages = list(pages.values())
    if not isinstance(pages, list):
        return []
    pages = [p for p in pages if isinstance(p, dict)]
    return sorted(pages, key=lambda p: (p.get("index", 0), p.get("pageid", 0)))


def _meta(ext: dict[str, Any], key: str) -> str | None:
    entry = ext.get(key)
    if isinstance(entry, dict):
        value = entry.get("value")
        return None if value is None else str(value)
    return None


def _candidate(page: dict[str, Any], klass: str, term: str, prefer_thumb: bool) -> Candidate | None:
    infos = page.get("imageinfo") or []
    if not infos or not isinstance(infos[0], dict) or "pageid" not in page:
        return None  # missing imageinfo: the batch was cut short, the next one repeats it
    info = infos[0]
    ext = info.get("extmetadata") or {}
    url = (info.get("thumburl") if prefer_thumb else None) or info.get("url")
    if not url:
        return None
    raw = {k: _meta(ext, k) for k in LICENCE_FIELDS if _meta(ext, k) is not None}
    title = html_to_text(_meta(ext, "ObjectName")) or str(page.get("title", "")).removeprefix(
        "File:"
    )
    categories = [c for c in (_meta(ext, "Categories") or "").split("|") if c]
    author = html_to_text(_meta(ext, "Artist")) or html_to_text(_meta(ext, "Credit")) or None
    return Candidate(
        source="commons",
        source_id=str(page["pageid"]),
        url=url,
        page_url=info.get("descriptionurl"),
        title=title,
        description=html_to_text(_meta(ext, "ImageDescription")) or None,
        author=author,
        attribution=html_to_text(_meta(ext, "Attribution")) or None,
        licence_raw=raw,
        query=term,
        searched_class=klass,
        tags=categories,
        width=info.get("thumbwidth" if prefer_thumb else "width"),
        height=info.get("thumbheight" if prefer_thumb else "height"),
    )
