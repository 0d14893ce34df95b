"""Standalone download of a URL list without a spec (like img2dataset), via the same pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acnedata.sources.urllist import read_rows
from acnedata.spec import DatasetSpec, spec_from_dict

UNLABELLED = "unlabelled"


def url_list_spec(
    urls: str | Path,
    *,
    allow_private: bool = False,
    contact: str = "",
    allow: list[str] | None = None,
    noncommercial: bool = False,
    no_derivatives: bool = False,
    noassertion: str = "review",
    licence: str | None = None,
    workers: int = 8,
    min_interval: float = 0.0,
    min_size: int = 1,
) -> DatasetSpec:
    """A spec whose only source is the URL list; its classes are the labels the list uses.

    `licence` is the user's own statement for rows that name none (their own images, say);
    rows that do name one keep it.
    """
    path = Path(urls).resolve()
    rows = read_rows(path)
    labels = sorted({r["label"] for r in rows if r.get("label")})
    if any(not r.get("label") for r in rows) or not labels:
        labels.append(UNLABELLED)
    source: dict[str, Any] = {"path": str(path), "default_label": UNLABELLED}
    if licence:
        source["licence"] = licence
    policy: dict[str, Any] = {
        "noncommercial": noncommercial,
        "no_derivatives": no_derivatives,
        "noassertion": noassertion,
    }
    if allow:
        policy["allow"] = allow
    raw = {
        "name": path.stem,
        "contact": contact,
        "policy": policy,
        "limits": {"per_class": max(1, len(rows)), "min_width": min_size, "min_height": min_size},
        "network": {
            "allow_private": allow_private,
            "min_interval": min_interval,
            "concurrency": workers,
        },
        "sources": {"urllist": source},
        "classes": [{"name": label} for label in labels],
    }
    return spec_from_dict(raw, where=str(path))
