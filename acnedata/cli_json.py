"""The JSON shapes of `--json`: plain dicts of a run's Summary, stable keys (README: Scripting)."""

from __future__ import annotations

from typing import Any


def _reasons(pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"reason": r, "items": n} for r, n in pairs]


def summary_dict(s: Any) -> dict[str, Any]:
    """A Summary (pipeline.Summary) as JSON-ready data; every count read from the catalog."""
    data: dict[str, Any] = {
        "found": s.found,
        "states": dict(s.states),
        "rejected_reasons": _reasons(s.rejected_reasons),
        "failed_reasons": _reasons(s.failed_reasons),
        "duplicates": s.duplicates,
        "clusters_with_duplicates": s.clusters_with_duplicates,
        "groups": s.groups,
        "largest_group": s.largest_group,
        "oversized_groups": list(s.oversized_groups),
        "split_conflict": s.split_conflict,
        "mosaics": {
            "policy": s.mosaic_policy,
            "found": s.mosaics,
            "excluded": s.excluded,
            "group_keys": s.provenance_keys,
            "group_keys_only_in_mosaics": s.keys_only_in_mosaics,
        },
        "conflicts": s.conflicts,
        "review": s.review,
        "per_class": dict(s.per_class),
        "in_manifest": sum(s.per_class.values()),
        "manifest": str(s.manifest) if s.manifest else None,
        "download": None,
        "source_errors": list(s.source_errors),
        "notes": list(s.notes),
        "stopped_for_portal": bool(s.stopped_for_portal),
    }
    if s.download:
        d = s.download
        data["download"] = {"stored": int(d.get("stored", 0)), "failed": int(d.get("failed", 0)),
                            "seconds": round(float(d.get("seconds", 0.0)), 3)}  # fmt: skip
    return data
