"""Image sources: each finds candidates and keeps their licence fields verbatim."""

from acnedata.sources.base import Candidate, SearchContext, Source
from acnedata.sources.commons import CommonsSource
from acnedata.sources.folder import FolderSource
from acnedata.sources.urllist import UrlListSource

SOURCES: dict[str, type] = {
    "commons": CommonsSource,
    "urllist": UrlListSource,
    "folder": FolderSource,
}

__all__ = ["SOURCES", "Candidate", "SearchContext", "Source"]
