"""Portals answer "does a suitable public dataset already exist?"."""

from acnedata.portals.aihub import AiHubPortal
from acnedata.portals.base import Portal, PortalContext, PortalHit
from acnedata.portals.datagokr import DataGoKrPortal
from acnedata.portals.huggingface import HuggingFacePortal
from acnedata.portals.kaggle import KagglePortal
from acnedata.portals.skip import PortalSkipped
from acnedata.portals.zenodo import ZenodoPortal

PORTALS: dict[str, type] = {
    "zenodo": ZenodoPortal,
    "huggingface": HuggingFacePortal,
    "datagokr": DataGoKrPortal,
    "kaggle": KagglePortal,
    "aihub": AiHubPortal,
}

__all__ = ["PORTALS", "Portal", "PortalContext", "PortalHit", "PortalSkipped"]
