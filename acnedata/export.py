"""Catalog → manifest.json and attribution files; `verify` re-hashes a written manifest."""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acnedata import __version__
from acnedata.catalog import STORED, Catalog
from acnedata.catalog_groups import parse_extra
from acnedata.dedup.groups import group_id_of
from acnedata.licensing import terms, write_attribution
from acnedata.manifest import SCHEMA_VERSION, load_manifest, resolve_path, write_manifest
from acnedata.spec import DatasetSpec


def final_label(row: sqlite3.Row) -> str | None:
    """The class an item ends with: a person's decision wins; review items have none until then."""
    decision = row["decision"]
    if decision == "reject":
        return None
    if decision:
        return decision
    return None if row["review"] else row["label"]


# What item_record and manifest_rows read: every column but the bulky signature (phash_alt).
RECORD_COLUMNS = (
    "key, file, sha256, original_sha256, width, height, format, label, label_reason, review, "
    "decision, cluster, phash, source, url, page_url, title, query, retrieved_at, spdx, "
    "licence_url, author, attribution, no_derivatives, verdict, group_id, split, extra, id, mosaic"
)


def manifest_rows(catalog: Catalog, columns: str = "*") -> list[sqlite3.Row]:
    """Stored representatives (one per duplicate cluster) with a final class, not excluded
    by a policy (a mosaic, under [dedup] mosaics = "exclude")."""
    rows = catalog.items(
        "state = ? AND duplicate_of IS NULL AND cluster IS NOT NULL AND excluded IS NULL",
        (STORED,),
        columns=columns,
    )
    return [
        r
        for r in rows
        if final_label(r)
        and r["verdict"] in ("allow", "review")
        and (r["verdict"] == "allow" or r["decision"])
    ]


def item_record(row: sqlite3.Row) -> dict[str, Any]:
    spdx = row["spdx"] or "NOASSERTION"
    t = terms(spdx)
    record: dict[str, Any] = {
        "id": row["key"],
        "file": row["file"],
        "sha256": row["sha256"],
        "original_sha256": row["original_sha256"],
        "width": row["width"],
        "height": row["height"],
        "format": row["format"],
        "label": final_label(row),
        "label_reason": (
            f"reviewed: {row['decision']}" if row["decision"] else row["label_reason"] or ""
        ),
        "cluster": row["cluster"],
        # a catalog grouped before groups existed: a lone cluster is its own group
        "group": row["group_id"] or group_id_of(row["cluster"]),
        "phash": row["phash"] or "",
        "source": {
            "name": row["source"],
            "url": row["url"],
            "page_url": row["page_url"],
            "title": row["title"],
            "query": row["query"],
            "retrieved_at": row["retrieved_at"],
        },
        "licence": {
            "spdx": spdx,
            "url": row["licence_url"] or t.url,
            "author": row["author"],
            "attribution": row["attribution"],
            "no_derivatives": bool(row["no_derivatives"]),
            "commercial": t.commercial,
        },
    }
    if row["mosaic"]:
        record["mosaic"] = row["mosaic"]
    if row["split"]:
        record["split"] = row["split"]
    extra = parse_extra(row["extra"])
    if extra is not None:
        record["extra"] = extra
    return record


def cross_group_links(catalog: Catalog, records: dict[int, dict[str, Any]]) -> None:
    """Give each record the ids of the items in other groups it shares a region with.

    Only [dedup] mosaics = "follow" leaves such links (a mosaic and the photos it shows); a
    split must keep both ends on one side or leave the mosaic out (acnemodel.straddle)."""
    for a, b, *_ in catalog.region_links():
        if a in records and b in records and records[a]["group"] != records[b]["group"]:
            records[a].setdefault("links", []).append(records[b]["id"])
            records[b].setdefault("links", []).append(records[a]["id"])
    for record in records.values():
        if "links" in record:
            record["links"] = sorted(set(record["links"]))


def build_manifest(catalog: Catalog, spec: DatasetSpec) -> dict[str, Any]:
    rows = manifest_rows(catalog, RECORD_COLUMNS)
    items = [item_record(r) for r in rows]
    cross_group_links(catalog, {r["id"]: item for r, item in zip(rows, items, strict=True)})
    per_class = {c: 0 for c in spec.class_names}
    for item in items:
        per_class[item["label"]] = per_class.get(item["label"], 0) + 1
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": spec.name,
        "created": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "tool": {"name": "acnedata", "version": __version__},
        "spec": {"name": spec.name, "path": spec.path, "sha256": spec.sha256},
        "classes": [
            {"name": c.name, "aliases": list(c.aliases), "icd10": c.icd10} for c in spec.classes
        ],
        "licence_policy": spec.policy.as_dict(),
        "portals": catalog.get_meta("portals", {}).get("hits", []),
        "counts": {"items": len(items), "per_class": per_class, **catalog.count_by("state")},
        "items": items,
    }
    citation = spec.sources.get("folder") or spec.sources.get("urllist")
    if citation is not None and citation.options.get("citation"):
        data["citation"] = str(citation.options["citation"])
    return data


def export(catalog: Catalog, spec: DatasetSpec, out_dir: Path) -> Path:
    """Write manifest.json (validated, atomic), the attribution files and DATASET_CARD.md."""
    from acnedata.formats.card import catalog_exclusions, write_card

    data = build_manifest(catalog, spec)
    path = write_manifest(out_dir / "manifest.json", data)
    write_attribution(
        out_dir, data["items"], dataset_name=spec.name, dataset_title=spec.title or None
    )
    write_card(out_dir, data, catalog_exclusions(catalog))
    return path


@dataclass
class VerifyReport:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.changed


def verify(path: str | Path) -> VerifyReport:
    """Re-hash every file the manifest names; list what is missing or changed."""
    manifest = load_manifest(resolve_path(path))
    report = VerifyReport()
    for item in manifest.items:
        file = manifest.file_path(item)
        report.checked += 1
        try:
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            report.missing.append(item["file"])
            continue
        if digest != item["sha256"]:
            report.changed.append(item["file"])
    return report
