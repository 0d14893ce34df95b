"""Image sources: each finds candidates and keeps their licence fields verbatim."""

from acnedata.sources.base import Candidate, SearchContext, Source
from acnedata.sources.commons import CommonsSource
from acnedata.sources.folder import FolderSource
from acnedata.sources.isic import IsicSource
from acnedata.sources.openverse import OpenverseSource
from acnedata.sources.urllist import UrlListSource
from acnedata.sources.webpage import WebPageSource

SOURCES: dict[str, type] = {
    "commons": CommonsSource,
    "openverse": OpenverseSource,
    "isic": IsicSource,
    "webpage": WebPageSource,
    "urllist": UrlListSource,
    "folder": FolderSource,
}

__all__ = ["SOURCES", "Candidate", "SearchContext", "Source"]
