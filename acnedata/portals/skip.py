"""PortalSkipped: a portal without credentials is skipped with a one-line note, not failed."""

from __future__ import annotations

from acnedata.errors import AcnedataError


class PortalSkipped(AcnedataError):
    """A portal was not asked, e.g. no API key in the environment; the message is the one-line note.

    It is an AcnedataError so the Collector's existing `except AcnedataError` records it in
    `report.skipped` as "<portal>: <note>" and the run goes on with the other portals.
    """
