"""What every image source yields: candidates with their raw licence fields kept verbatim."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acnedata.errors import SourceError
from acnedata.http import PoliteSession
from acnedata.spec import DatasetSpec, SourceSpec


@dataclass
class Candidate:
    """One image a source found, before any licence check or download."""

    source: str  # source name, e.g. "commons"
    source_id: str  # stable id within the source (page id, URL, relative path)
    url: str  # the file to download (or a file:// URL for local folders)
    page_url: str | None = None  # the human-readable page the image comes from
    title: str | None = None
    description: str | None = None
    author: str | None = None
    attribution: str | None = None
    licence_raw: dict[str, Any] = field(default_factory=dict)  # verbatim, per source
    query: str | None = None
    searched_class: str | None = None  # the class whose search found it
    label_hint: str | None = None  # a label the source states outright (URL list, folders)
    tags: list[str] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    # provenance a dataset import keeps (see importer.py): what a split must keep together,
    # the dataset's own split, and its other metadata columns
    group_key: str | None = None
    split: str | None = None
    extra: dict[str, str] | None = None

    @property
    def key(self) -> str:
        return f"{self.source}:{self.source_id}"


@dataclass
class SearchContext:
    """What a source gets to run a search: the spec, its own settings and the shared session."""

    spec: DatasetSpec
    source: SourceSpec
    session: PoliteSession

    @property
    def limit(self) -> int:
        return int(self.source.options.get("per_class", self.spec.limits.per_class))


class Source(Protocol):
    """An image source: yields candidates for the spec's classes, each tagged with its class."""

    name: str

    def candidates(self, ctx: SearchContext) -> Iterator[Candidate]: ...


def label_for(spec: DatasetSpec, label: str | None) -> str | None:
    """Map a label given by a file or folder name onto a spec class name (aliases allowed)."""
    if not label:
        return None
    wanted = label.strip().lower()
    for cls in spec.classes:
        if wanted == cls.name.lower() or wanted in (a.lower() for a in cls.aliases):
            return cls.name
    return None


def option_path(ctx: SearchContext, key: str) -> Path:
    """A path option of a source, relative to the spec file's folder when not absolute."""
    value = ctx.source.options.get(key)
    if not value:
        raise SourceError(f'{ctx.spec.path}: [sources.{ctx.source.name}] needs {key} = "..."')
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and ctx.spec.path and not ctx.spec.path.startswith("builtin:"):
        path = Path(ctx.spec.path).parent / path
    return path


def int_option(ctx: SearchContext, key: str, default: int) -> int:
    """An integer option of the source, with a one-line error for anything else."""
    value = ctx.source.options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise SourceError(
            f"[sources.{ctx.source.name}] {key} must be a whole number, got {value!r}"
        )
    return int(value)


def first_unique(batches: Iterable[Iterable[Candidate]], limit: int) -> Iterator[Candidate]:
    """Candidates from successive searches (one per term), each once, up to `limit` in all."""
    seen: set[str] = set()
    for batch in batches:
        for cand in batch:
            if cand.source_id in seen:
                continue
            seen.add(cand.source_id)
            yield cand
            if len(seen) >= limit:
                return
