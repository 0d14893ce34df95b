"""URL-list source: a CSV or JSON Lines file of image URLs with optional licence and label."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from acnedata.errors import SourceError
from acnedata.sources.base import Candidate, SearchContext, label_for, option_path

# Accepted column spellings → our field names.
COLUMN_ALIASES = {
    "url": "url",
    "licence": "licence",
    "license": "licence",
    "licence_url": "licence_url",
    "license_url": "licence_url",
    "author": "author",
    "creator": "author",
    "page": "page_url",
    "page_url": "page_url",
    "title": "title",
    "label": "label",
    "class": "label",
}


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a .csv or .jsonl/.json-lines file with column names normalised; one-line errors."""
    if not path.is_file():
        raise SourceError(f"{path}: URL list not found; give a CSV or JSON Lines file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read URL list ({exc})") from None
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                raise SourceError(
                    f"{path}:{n}: not a JSON object per line; "
                    'write one {"url": ...} object per line'
                ) from None
            if not isinstance(obj, dict):
                raise SourceError(f"{path}:{n}: expected a JSON object with a url")
            rows.append(obj)
    else:
        # a StringIO, not splitlines(): a quoted cell may hold a line break of its own
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    out = []
    for n, row in enumerate(rows, 1):
        norm = {_field_name(k): _str(v) for k, v in row.items() if k is not None}
        if not norm.get("url"):
            raise SourceError(f"{path}: row {n} has no url; every row needs a url column")
        out.append(norm)
    return out


@lru_cache(maxsize=256)  # every row repeats the same few column names
def _field_name(column: Any) -> str:
    """Our field name for a column: its alias, else the name itself, trimmed and lower-cased."""
    name = str(column).strip().lower()
    return COLUMN_ALIASES.get(name, name)


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def rows_to_candidates(
    rows: list[dict[str, str]],
    *,
    label_map: Callable[[str], str | None] | None = None,
    default_label: str | None = None,
    default_licence: str | None = None,
) -> Iterator[Candidate]:
    """Candidates from normalised rows.

    `label_map` maps a row's label onto a class name; a label that names no class is kept as a
    tag so the item goes to review instead of silently joining some class.
    """
    for row in rows:
        raw = {k: row[k] for k in ("licence", "licence_url") if row.get(k)}
        if not raw and default_licence:
            raw = {"licence": default_licence}
        given = row.get("label") or None
        label = given
        if given and label_map is not None:
            label = label_map(given)
        if not given:
            label = default_label
        yield Candidate(
            source="urllist",
            source_id=row["url"],
            url=row["url"],
            page_url=row.get("page_url") or None,
            title=row.get("title") or None,
            author=row.get("author") or None,
            licence_raw=raw,
            label_hint=label,
            searched_class=label,
            tags=[f"label:{given}"] if given and not label else [],
        )


class UrlListSource:
    """Reads `[sources.urllist] path`; the label column (if any) names the class."""

    name = "urllist"

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]:
        opts = ctx.source.options
        yield from rows_to_candidates(
            read_rows(option_path(ctx, "path")),
            label_map=lambda lab: label_for(ctx.spec, lab),
            default_label=label_for(ctx.spec, opts.get("default_label")),
            default_licence=opts.get("licence") or opts.get("license"),
        )
