"""ISIC Archive source: per-class query DSL searches followed through their `next` cursors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from acnedata.errors import SourceError
from acnedata.sources.base import Candidate, SearchContext, int_option, label_for

MAX_LIMIT = 100  # the API serves at most 100 results a page
DIAGNOSIS_KEYS = tuple(f"diagnosis_{n}" for n in range(1, 6))


class IsicSource:
    """Searches the ISIC Archive with one query per class, given in the spec.

    ISIC holds dermoscopic and clinical images of skin lesions; acne is essentially absent, so
    there is no default query: only the classes named in ``[sources.isic] queries`` are searched,
    e.g. ``queries = { nevus = 'diagnosis_3:"Nevus"' }``. Keys may be class names or aliases.

    Options: ``queries`` (class → DSL query), ``page_size`` (≤ 100), ``collections`` (comma list
    of collection ids), ``thumbnail`` (true: download ``files.thumbnail_256`` instead of the full
    file). ``page_url`` is the archive's image page on the API host,
    ``{scheme}://{host}/images/{isic_id}/``, the page the ISIC web app serves for each image.
    """

    name = "isic"

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        for klass, query in self._queries(ctx):
            yield from self.search_class(ctx, klass, query)

    def _queries(self, ctx: SearchContext) -> list[tuple[str, str]]:
        raw = ctx.source.options.get("queries") or {}
        if not isinstance(raw, dict):
            raise SourceError(
                f"{ctx.spec.path or ctx.spec.name}: [sources.isic] queries must be a table of "
                "class = 'DSL query', e.g. queries = { nevus = 'diagnosis_3:\"Nevus\"' }"
            )
        out = []
        for key, query in raw.items():
            klass = label_for(ctx.spec, str(key))
            if klass is None:
                raise SourceError(
                    f"[sources.isic] queries names {key!r}, which is no class of the spec; "
                    f"classes are {', '.join(ctx.spec.class_names)}"
                )
            if not isinstance(query, str) or not query.strip():
                raise SourceError(f"[sources.isic] queries.{key} must be a non-empty string")
            out.append((klass, query.strip()))
        return out

    def search_class(self, ctx: SearchContext, klass: str, query: str) -> Iterator[Candidate]:
        opts = ctx.source.options
        params: dict[str, Any] | None = {
            "query": query,
            "limit": max(1, min(int_option(ctx, "page_size", MAX_LIMIT), MAX_LIMIT)),
        }
        if opts.get("collections"):
            params["collections"] = str(opts["collections"])
        thumbnail = bool(opts.get("thumbnail", False))
        url = ctx.source.base_url
        visited: set[str] = set()
        found = 0
        while True:
            try:
                data, _ = ctx.session.get_json(url, params=params)
            except SourceError as exc:
                if "HTTP 400" in str(exc):
                    raise SourceError(
                        f"class {klass!r}: ISIC refused the query {query!r} ({exc}); check the "
                        'DSL, e.g. diagnosis_3:"Nevus" (the old diagnosis:… form is gone)'
                    ) from None
                raise
            if not isinstance(data, dict) or not isinstance(data.get("results"), list):
                got = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
                raise SourceError(
                    f"{url}: expected {{count, next, previous, results}} from the ISIC search, "
                    f"got {got}; is base_url the /api/v2/images/search/ endpoint?"
                )
            for item in data["results"]:
                cand = _candidate(item, klass, query, ctx.source.base_url, thumbnail)
                if cand is None:
                    continue
                yield cand
                found += 1
                if found >= ctx.limit:
                    return
            nxt = data.get("next")
            if not isinstance(nxt, str) or not nxt:
                return
            # `next` carries the cursor and every other parameter; send it unchanged.
            url, params = urljoin(url, nxt), None
            if url in visited:  # a server that hands out the same cursor again would loop forever
                raise SourceError(f"{url}: the ISIC cursor repeats itself; stopping this search")
            visited.add(url)


def _candidate(
    item: Any, klass: str, query: str, base_url: str, thumbnail: bool
) -> Candidate | None:
    if not isinstance(item, dict) or not item.get("isic_id") or item.get("public") is False:
        return None
    files = item.get("files") if isinstance(item.get("files"), dict) else {}
    full = files.get("full") if isinstance(files.get("full"), dict) else {}
    thumb = files.get("thumbnail_256") if isinstance(files.get("thumbnail_256"), dict) else {}
    url = (thumb.get("url") if thumbnail else None) or full.get("url")
    if not url:
        return None  # nothing to download: skip the item, keep the rest
    isic_id = str(item["isic_id"])
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    clinical = meta.get("clinical") if isinstance(meta.get("clinical"), dict) else {}
    acquisition = meta.get("acquisition") if isinstance(meta.get("acquisition"), dict) else {}
    diagnoses = [str(clinical[k]) for k in DIAGNOSIS_KEYS if clinical.get(k)]
    parts = urlsplit(base_url)
    attribution = item.get("attribution") or None
    use_full = url == full.get("url")
    return Candidate(
        source="isic",
        source_id=isic_id,
        url=str(url),
        page_url=f"{parts.scheme}://{parts.netloc}/images/{isic_id}/",
        title=isic_id,
        description=" / ".join(diagnoses) or None,
        author=attribution,
        attribution=attribution,
        licence_raw={k: item[k] for k in ("copyright_license", "attribution") if k in item},
        query=query,
        searched_class=klass,
        tags=diagnoses,
        width=acquisition.get("pixels_x") if use_full else None,
        height=acquisition.get("pixels_y") if use_full else None,
    )
