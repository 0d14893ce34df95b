"""AI Hub portal: the plain-text `datasetkey,name` catalogue, filtered by the spec's keywords."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from acnedata.errors import SourceError
from acnedata.portals.base import PortalContext, PortalHit
from acnedata.spec import DatasetSpec

VIEW_URL = "https://www.aihub.or.kr/aihubdata/data/view.do?dataSetSn={key}"
TERMS_NOTE = (
    "AI Hub terms: training only, no redistribution; manual approval (log in and apply "
    "per dataset on aihub.or.kr)"
)
# "영상" is left out on purpose: on AI Hub it mostly means video.
IMAGE_WORDS = re.compile(r"이미지|사진|image|photo|picture", re.IGNORECASE)
_LINE = re.compile(r"^\s*([0-9A-Za-z_-]+)\s*,\s*(.+?)\s*$")
_HEADER_KEYS = {"datasetkey", "dataset_key", "key", "datasetsn", "id"}


class AiHubHit(PortalHit):
    """An AI Hub hit: its reason always carries the terms, whatever the policy decided."""

    def judge(self, spec: DatasetSpec) -> PortalHit:
        super().judge(spec)
        self.reason = f"{self.reason} {TERMS_NOTE}".strip()
        return self


class AiHubPortal:
    """Reads the AI Hub dataset list (no API key needed for the catalogue)."""

    name = "aihub"

    def search(self, ctx: PortalContext) -> list[PortalHit]:
        url = ctx.source.base_url
        _, resp = ctx.session.get_text(url)
        text = decode_catalogue(resp.content or b"", resp.headers.get("Content-Type", ""))
        rows = parse_catalogue(text, url, resp.headers.get("Content-Type", ""))
        wanted = [_fold(q) for q in ctx.queries if q.strip()]
        hits: dict[str, PortalHit] = {}
        for key, name in rows:
            folded = _fold(name)
            if any(q in folded for q in wanted):
                hits.setdefault(key, _hit(key, name))
        return list(hits.values())


def decode_catalogue(data: bytes, content_type: str = "") -> str:
    """UTF-8 (BOM or not) when it decodes cleanly, else CP949 (the Korean Windows code page)."""
    declared = re.search(r"charset=([\w.-]+)", content_type, re.IGNORECASE)
    for encoding in ([declared.group(1)] if declared else []) + ["utf-8-sig", "cp949"]:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("utf-8", errors="replace")


def parse_catalogue(
    text: str, url: str = "<aihub>", content_type: str = ""
) -> list[tuple[str, str]]:
    """(datasetkey, name) pairs; header, notice and blank lines are skipped."""
    head = text.lstrip()[:200].lower()
    if "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<?xml")):
        raise SourceError(
            f"{url}: expected the plain-text AI Hub dataset list, got an HTML page; check base_url"
        )
    rows: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match or match.group(1).lower() in _HEADER_KEYS:
            continue
        rows.append((match.group(1), match.group(2)))
    if not rows and text.strip():
        raise SourceError(
            f"{url}: no `datasetkey,name` lines in the AI Hub dataset list; check base_url"
        )
    return rows


def _fold(text: str) -> str:
    # NFC first: a Korean query typed as decomposed jamo must still match composed syllables.
    return unicodedata.normalize("NFC", text).casefold()


def _hit(key: str, name: str) -> AiHubHit:
    raw: dict[str, Any] = {"terms": "AI Hub"}
    return AiHubHit(
        portal="aihub",
        name=key,
        title=name,
        url=VIEW_URL.format(key=key),
        licence_raw=raw,
        is_image_data=bool(IMAGE_WORDS.search(name)),
    )
