"""data.go.kr portal: the odcloud catalogue service 15077093, title filter, paged by matchCount."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote

from acnedata.errors import SourceError

# The keys normalise_fields(source="datagokr") reads; copying exactly these keeps the two in step.
from acnedata.licensing import _DATAGOKR_KEYS
from acnedata.portals.base import PortalContext, PortalHit
from acnedata.portals.skip import PortalSkipped

KEY_ENV = "DATA_GO_KR_SERVICE_KEY"
SERVICE_ID = "15077093"
PER_PAGE = 100
MAX_PAGES = 20  # 20 × 100 rows per query: far more than a title filter matches, well under quota
# Rights fields of a row: no licence by themselves, but kept verbatim for the person who decides.
RIGHTS_FIELDS = (
    "is_copyrighted",
    "is_third_party_copyrighted",
    "use_prmisn_ennc",
    "share_scope_nm",
    "is_charged",
)
IMAGE_WORDS = re.compile(r"이미지|사진|image|jpe?g|png", re.IGNORECASE)
_HINT = (
    f"apply for 공공데이터포털 목록조회서비스 (service {SERVICE_ID}) on data.go.kr with this "
    "serviceKey, then retry"
)


class DataGoKrPortal:
    """Searches data.go.kr dataset titles through odcloud; needs a serviceKey in the environment."""

    name = "datagokr"

    def search(self, ctx: PortalContext) -> list[PortalHit]:
        opts = ctx.source.options
        env = str(opts.get("service_key_env") or KEY_ENV)
        key = os.environ.get(env, "").strip()
        if not key:
            raise PortalSkipped(f"no {env} in the environment; skipped")
        if "%" in key:
            # data.go.kr shows an "Encoding" and a "Decoding" key; requests encodes again, so the
            # encoded one would arrive double-encoded and be refused as unregistered.
            key = unquote(key)
        per_page = int(opts.get("perPage") or opts.get("per_page") or PER_PAGE)
        max_pages = int(opts.get("max_pages") or MAX_PAGES)
        url = ctx.source.base_url
        hits: dict[str, PortalHit] = {}
        for query in ctx.queries:
            collected = 0
            for page in range(1, max_pages + 1):
                params = {
                    "serviceKey": key,
                    "page": page,
                    "perPage": per_page,
                    "returnType": "JSON",
                    "cond[title::LIKE]": query,
                }
                try:
                    data, _ = ctx.session.get_json(url, params=params)
                except SourceError as exc:
                    if re.search(r"HTTP 40[13]\b", str(exc)):
                        raise SourceError(f"{exc}; data.go.kr: check {env} and {_HINT}") from None
                    raise
                rows = _rows(data, url)
                for row in rows:
                    hit = _hit(row)
                    if hit is not None:
                        # open-data-list has one row per API operation: keep the first per dataset
                        hits.setdefault(hit.name, hit)
                collected += len(rows)
                match = data.get("matchCount")
                if not rows:
                    break
                if isinstance(match, int) and not isinstance(match, bool):
                    if collected >= match:
                        break
                elif len(rows) < per_page:  # no matchCount: a short page is the last one
                    break
        return list(hits.values())


def _rows(data: Any, url: str) -> list[dict[str, Any]]:
    """The data rows of an odcloud envelope; its error envelope becomes a one-line SourceError."""
    if isinstance(data, dict) and "code" in data and "data" not in data:
        code = data.get("code")
        msg = " ".join(str(data.get("msg") or data.get("message") or "").split())[:120]
        if str(code) == "-3" or "등록되지 않은 서비스" in msg:
            raise SourceError(f"{url}: data.go.kr error {code} ({msg}); {_HINT}")
        raise SourceError(f"{url}: data.go.kr error {code} ({msg or 'no message'})")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise SourceError(
            f"{url}: not an odcloud catalogue response (expected an object with a "
            "data list); check base_url"
        )
    return [r for r in data["data"] if isinstance(r, dict)]


def _keywords(value: Any) -> list[str]:
    """Keywords arrive as a list or as one comma-joined string, depending on the endpoint."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(",") if k.strip()]
    if isinstance(value, list):
        return [str(k).strip() for k in value if str(k).strip()]
    return []


def _hit(row: dict[str, Any]) -> PortalHit | None:
    ident = row.get("list_id") or row.get("id")
    if ident in (None, ""):
        return None
    title = str(row.get("title") or row.get("list_title") or ident)
    keywords = _keywords(row.get("keywords"))
    raw: dict[str, Any] = {k: row[k] for k in _DATAGOKR_KEYS if row.get(k) not in (None, "")}
    raw.update({k: row[k] for k in RIGHTS_FIELDS if row.get(k) not in (None, "")})
    text = " ".join(
        [
            str(row.get("data_format") or ""),
            str(row.get("ext") or ""),
            *keywords,
            title,
            str(row.get("list_title") or ""),
        ]
    )
    url = (
        row.get("page_url")
        or row.get("meta_url")
        or f"https://www.data.go.kr/data/{ident}/openapi.do"
    )
    return PortalHit(
        portal="datagokr",
        name=str(ident),
        title=title,
        url=str(url),
        licence_raw=raw,
        is_image_data=bool(IMAGE_WORDS.search(text)),
    )
