"""Portals answer "does a suitable public dataset already exist?"."""

from acnedata.portals.base import Portal, PortalContext, PortalHit
from acnedata.portals.huggingface import HuggingFacePortal
from acnedata.portals.zenodo import ZenodoPortal

PORTALS: dict[str, type] = {"zenodo": ZenodoPortal, "huggingface": HuggingFacePortal}

__all__ = ["PORTALS", "Portal", "PortalContext", "PortalHit"]
