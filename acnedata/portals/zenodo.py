"""Zenodo portal: records search for datasets, following links.next."""

from __future__ import annotations

from typing import Any

from acnedata.errors import SourceError
from acnedata.portals.base import PortalContext, PortalHit

MAX_PAGES = 4  # 4 × 25 hits: enough to know whether a dataset exists, polite to a 30/min limit


class ZenodoPortal:
    name = "zenodo"

    def search(self, ctx: PortalContext) -> list[PortalHit]:
        hits: dict[str, PortalHit] = {}
        for query in ctx.queries:
            url: str | None = ctx.source.base_url
            params: dict[str, Any] | None = {
                "q": query,
                "type": "dataset",
                "sort": "bestmatch",
                "page": 1,
                "size": 25,
            }
            for _ in range(MAX_PAGES):
                if not url:
                    break
                data, _ = ctx.session.get_json(url, params=params)
                records = _records(data, url)
                for rec in records:
                    hit = _hit(rec)
                    if hit is not None:
                        hits.setdefault(hit.name, hit)
                url = (data.get("links") or {}).get("next")
                params = None  # links.next carries every parameter
                if not records:
                    break
        return list(hits.values())


def _records(data: Any, url: str) -> list[dict[str, Any]]:
    if not isinstance(data, dict) or not isinstance(data.get("hits"), dict):
        raise SourceError(f"{url}: not a Zenodo records response (no hits object)")
    records = data["hits"].get("hits") or []
    return [r for r in records if isinstance(r, dict)]


def _hit(rec: dict[str, Any]) -> PortalHit | None:
    meta = rec.get("metadata") or {}
    if not isinstance(meta, dict):
        return None
    licence = meta.get("license") or {}
    licence_id = licence.get("id") if isinstance(licence, dict) else licence
    files = [f for f in rec.get("files") or [] if isinstance(f, dict)]
    rtype = (meta.get("resource_type") or {}).get("type", "")
    names = " ".join(str(f.get("key", "")) for f in files).lower()
    is_images = rtype == "image" or any(x in names for x in (".zip", ".jpg", ".png", ".tar"))
    return PortalHit(
        portal="zenodo",
        name=str(rec.get("doi") or rec.get("id")),
        title=str(meta.get("title", "")),
        url=str((rec.get("links") or {}).get("self_html") or ""),
        licence_raw={"license": licence_id} if licence_id else {},
        size=sum(int(f.get("size") or 0) for f in files) or None,
        is_image_data=is_images,
        files=[
            {
                "key": f.get("key"),
                "size": f.get("size"),
                "url": (f.get("links") or {}).get("self"),
                "checksum": f.get("checksum"),
            }
            for f in files
        ],
    )
