"""Whether manifest.json still lists what the catalog would write now: a stale one is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acnedata.catalog import Catalog
from acnedata.export import build_manifest
from acnedata.spec import DatasetSpec


def stale_manifest_note(catalog: Catalog, spec: DatasetSpec, out_dir: Path) -> str | None:
    """One line saying manifest.json is older than the catalog (and how to refresh it), or None
    when it lists exactly the items, labels and licences the catalog holds now. Compared item by
    item rather than by file times: opening a catalog touches its files without changing it."""
    path = Path(out_dir) / "manifest.json"
    try:
        written = _by_id(json.loads(path.read_text(encoding="utf-8"))["items"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no manifest yet (or not ours to judge): verify and load say so themselves
    current = _by_id(build_manifest(catalog, spec)["items"])
    if written == current:
        return None
    added = len(current.keys() - written.keys())
    removed = len(written.keys() - current.keys())
    changed = sum(1 for k in current.keys() & written.keys() if current[k] != written[k])
    parts = [f"{n} {what}" for n, what in ((added, "to add"), (removed, "to remove"),
                                           (changed, "changed")) if n]  # fmt: skip
    return (
        f"note: {path} is older than the catalog ({', '.join(parts)}); "
        f"refresh it with: acnedata manifest {out_dir}"
    )


def _by_id(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(i.get("id")): json.dumps(i, sort_keys=True, ensure_ascii=False) for i in items}
