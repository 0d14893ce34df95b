"""What every portal reports: existing datasets with a normalised licence and a policy verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from acnedata.http import PoliteSession
from acnedata.licensing import normalise_fields, verdict
from acnedata.spec import DatasetSpec, SourceSpec


@dataclass
class PortalHit:
    """One existing dataset a portal knows of."""

    portal: str
    name: str
    title: str
    url: str
    licence_raw: dict[str, Any]
    spdx: str = "NOASSERTION"
    size: int | None = None  # bytes, when the portal says
    is_image_data: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)
    decision: str = "reject"
    reason: str = ""
    fits: bool = False

    def judge(self, spec: DatasetSpec) -> PortalHit:
        """Fill in the licence verdict and whether this dataset could be used as it is."""
        self.spdx = normalise_fields(self.licence_raw, source=self.portal)
        v = verdict(self.spdx, spec.policy)
        self.decision, self.reason = v.decision, v.reason
        if v.decision == "allow" and not self.is_image_data:
            self.reason = "licence allowed, but this is not image data"
        self.fits = v.decision == "allow" and self.is_image_data
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PortalContext:
    spec: DatasetSpec
    source: SourceSpec
    session: PoliteSession

    @property
    def queries(self) -> list[str]:
        q = self.source.options.get("query")
        return [q] if isinstance(q, str) else list(q or self.spec.keywords)


class Portal(Protocol):
    name: str

    def search(self, ctx: PortalContext) -> list[PortalHit]: ...
