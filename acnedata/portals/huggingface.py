"""Hugging Face Hub portal: dataset search, paging through the Link header."""

from __future__ import annotations

from typing import Any

from acnedata.errors import SourceError
from acnedata.portals.base import PortalContext, PortalHit

MAX_PAGES = 3


class HuggingFacePortal:
    name = "huggingface"

    def search(self, ctx: PortalContext) -> list[PortalHit]:
        hits: dict[str, PortalHit] = {}
        for query in ctx.queries:
            url: str | None = ctx.source.base_url
            params: dict[str, Any] | None = {"search": query, "limit": 50, "full": "true"}
            for _ in range(MAX_PAGES):
                if not url:
                    break
                data, resp = ctx.session.get_json(url, params=params)
                if not isinstance(data, list):
                    raise SourceError(
                        f"{url}: not a Hugging Face datasets response (expected a JSON array)"
                    )
                for repo in data:
                    if isinstance(repo, dict) and repo.get("id"):
                        hit = _hit(repo, ctx.source.base_url)
                        hits.setdefault(hit.name, hit)
                url = resp.links.get("next", {}).get("url")
                params = None
                if not data:
                    break
        return list(hits.values())


def _hit(repo: dict[str, Any], base_url: str) -> PortalHit:
    tags = [str(t) for t in repo.get("tags") or []]
    card = repo.get("cardData") or {}
    raw: dict[str, Any] = {}
    licence_tags = [t for t in tags if t.startswith("license:")]
    if licence_tags:
        raw["tags"] = licence_tags
    if isinstance(card, dict) and card.get("license"):
        raw["cardData"] = {"license": card["license"]}
    is_images = any(
        t in tags
        for t in ("modality:image", "task_categories:image-classification", "format:imagefolder")
    )
    site = base_url.split("/api/")[0] if "/api/" in base_url else "https://huggingface.co"
    return PortalHit(
        portal="huggingface",
        name=str(repo["id"]),
        title=str((card or {}).get("pretty_name") or repo["id"])
        if isinstance(card, dict)
        else str(repo["id"]),
        url=f"{site}/datasets/{repo['id']}",
        licence_raw=raw,
        is_image_data=is_images,
    )
