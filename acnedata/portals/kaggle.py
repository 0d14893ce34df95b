"""Kaggle portal: dataset list in the current (kagglesdk POST) or legacy (GET array) wire format."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acnedata.errors import SourceError
from acnedata.portals.base import PortalContext, PortalHit
from acnedata.portals.skip import PortalSkipped
from acnedata.spec import DEFAULT_ENDPOINTS, DatasetSpec

LEGACY_ENDPOINT = "https://www.kaggle.com/api/v1"
MAX_PAGES = 3  # Kaggle publishes no rate limit; 3 pages of 20 answer "does a dataset exist?"
IMAGE_TAGS = frozenset({"image", "images", "computer vision", "image classification"})
IMAGE_WORDS = re.compile(r"\b(images?|photos?|photographs?|pictures?)\b", re.IGNORECASE)
# Atlases whose Kaggle copies are usually re-uploads of copyrighted images (sources.md §7, §8).
ATLASES = (
    (re.compile(r"dermnet", re.IGNORECASE), "DermNet"),
    (re.compile(r"\bdermis\b", re.IGNORECASE), "DermIS"),
)


@dataclass
class Credentials:
    """How to authenticate: a Bearer header or HTTP Basic (username, key)."""

    headers: dict[str, str]
    auth: tuple[str, str] | None
    origin: str  # where they came from, for messages


def find_credentials() -> Credentials | None:
    """KAGGLE_API_TOKEN, then KAGGLE_USERNAME + KAGGLE_KEY, then kaggle.json; None when absent.

    kaggle.json is looked for in $KAGGLE_CONFIG_DIR, else ~/.kaggle, as the kaggle CLI does.
    """
    token = os.environ.get("KAGGLE_API_TOKEN", "").strip()
    if token:
        return Credentials({"Authorization": f"Bearer {token}"}, None, "KAGGLE_API_TOKEN")
    user, key = os.environ.get("KAGGLE_USERNAME", ""), os.environ.get("KAGGLE_KEY", "")
    if user.strip() and key.strip():
        return Credentials({}, (user.strip(), key.strip()), "KAGGLE_USERNAME/KAGGLE_KEY")
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()
    path = folder / "kaggle.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PortalSkipped(f"{path} is not readable JSON ({exc}); skipped") from None
    if not isinstance(data, dict) or not data.get("username") or not data.get("key"):
        raise PortalSkipped(f"{path} has no username and key; skipped")
    return Credentials({}, (str(data["username"]), str(data["key"])), str(path))


class KaggleHit(PortalHit):
    """A Kaggle hit: the licence verdict, then a provenance check Kaggle listings need."""

    def judge(self, spec: DatasetSpec) -> PortalHit:
        super().judge(spec)
        return provenance_check(self)


def provenance_check(hit: PortalHit) -> PortalHit:
    """A listing naming a copyrighted atlas never fits: its licenceName is the uploader's claim."""
    text = " ".join([hit.name, hit.title, str(hit.licence_raw.get("subtitle") or "")])
    for pattern, atlas in ATLASES:
        if pattern.search(text):
            hit.fits = False
            if hit.decision == "allow":
                hit.decision = "review"  # the licence alone would pass; a person must check
            hit.reason = (
                f"likely a re-upload of a copyrighted atlas ({atlas}); check provenance"
                f" — licence verdict: {hit.reason}"
            )
            break
    return hit


class KagglePortal:
    """Kaggle dataset search; option api = "current" (default) or "legacy", max_pages (3)."""

    name = "kaggle"

    def search(self, ctx: PortalContext) -> list[PortalHit]:
        creds = find_credentials()
        if creds is None:
            raise PortalSkipped(
                "no KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json; skipped"
            )
        opts = ctx.source.options
        api = str(opts.get("api") or "current").lower()
        if api not in ("current", "legacy"):
            raise SourceError(f'[sources.kaggle] api = "{api}": use "current" or "legacy"')
        base = ctx.source.base_url.rstrip("/")
        if api == "legacy" and base == DEFAULT_ENDPOINTS["kaggle"].rstrip("/"):
            base = LEGACY_ENDPOINT  # the legacy API lives on www.kaggle.com, not api.kaggle.com
        max_pages = int(opts.get("max_pages") or MAX_PAGES)
        hits: dict[str, PortalHit] = {}
        for query in ctx.queries:
            for page in range(1, max_pages + 1):
                if api == "current":
                    url = f"{base}/datasets.DatasetApiService/ListDatasets"
                    data, _ = ctx.session.get_json(
                        url,
                        method="POST",
                        json_body={"search": query, "page": page},
                        headers=creds.headers,
                        auth=creds.auth,
                    )
                    items = _current_items(data, url)
                else:
                    url = f"{base}/datasets/list"
                    data, _ = ctx.session.get_json(
                        url,
                        params={"search": query, "page": page},
                        headers=creds.headers,
                        auth=creds.auth,
                    )
                    items = _legacy_items(data, url)
                if not items:
                    break
                for item in items:
                    hit = _hit(item)
                    if hit is not None:
                        hits.setdefault(hit.name, hit)
        return list(hits.values())


def _current_items(data: Any, url: str) -> list[dict[str, Any]]:
    if isinstance(data, dict) and "datasets" in data and isinstance(data["datasets"], list):
        return [d for d in data["datasets"] if isinstance(d, dict)]
    if data == {}:
        return []  # protobuf JSON leaves out an empty repeated field: no more results
    raise SourceError(
        f'{url}: not a Kaggle ListDatasets response (expected {{"datasets": '
        '[...]}}); for an older server set api = "legacy"'
    )


def _legacy_items(data: Any, url: str) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return [d for d in data if isinstance(d, dict)]
    raise SourceError(
        f"{url}: not a Kaggle datasets/list response (expected a JSON array); "
        'for the current API set api = "current"'
    )


def _tag_names(tags: Any) -> list[str]:
    names = []
    for tag in tags or []:
        if isinstance(tag, dict):
            names.append(str(tag.get("name") or tag.get("ref") or ""))
        else:
            names.append(str(tag))
    return [n.strip().lower() for n in names if n.strip()]


def _hit(item: dict[str, Any]) -> KaggleHit | None:
    ref = str(item.get("ref") or "").strip()
    if not ref:
        return None
    title = str(item.get("title") or ref)
    subtitle = str(item.get("subtitle") or "")
    tags = _tag_names(item.get("tags"))
    raw: dict[str, Any] = {}
    if item.get("licenseName"):
        raw["licenseName"] = item["licenseName"]
    if subtitle:
        raw["subtitle"] = subtitle  # read by the provenance check; ignored by normalise_fields
    size = item.get("totalBytes")
    if isinstance(size, str) and size.strip().isdigit():
        size = int(size)  # protobuf JSON writes int64 fields as strings
    is_images = bool(IMAGE_TAGS.intersection(tags)) or bool(IMAGE_WORDS.search(title))
    return KaggleHit(
        portal="kaggle",
        name=ref,
        title=title,
        url=str(item.get("url") or f"https://www.kaggle.com/datasets/{ref}"),
        licence_raw=raw,
        size=int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None,
        is_image_data=is_images,
    )
