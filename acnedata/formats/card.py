"""DATASET_CARD.md: sources, licences, classes per split, exclusions, groups and caveats."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acnedata.formats.records import DEFAULT_SPLIT, SPLIT_ORDER
from acnedata.manifest import atomic_write_text

CARD_NAME = "DATASET_CARD.md"
SHOWN = 5  # reasons listed per exclusion kind; the rest are counted ("+N more")
_ROBOFLOW = re.compile(r"_(?:jpg|jpeg|png)\.rf\.[0-9a-f]{32}\.", re.IGNORECASE)


@dataclass
class Exclusions:
    """What the catalog left out of the manifest and why (reasons with counts, most first)."""

    rejected: list[tuple[str, int]] = field(default_factory=list)
    failed: list[tuple[str, int]] = field(default_factory=list)
    duplicates: int = 0
    in_review: int = 0


def catalog_exclusions(catalog: Any) -> Exclusions:
    """The exclusions recorded in a Catalog (every reason, so the card can count the rest)."""
    return Exclusions(
        rejected=catalog.top_reasons("rejected", limit=-1),
        failed=catalog.top_reasons("failed", limit=-1),
        duplicates=catalog.count("state = 'stored' AND duplicate_of IS NOT NULL"),
        in_review=catalog.count(
            "state = 'stored' AND duplicate_of IS NULL AND review IS NOT NULL AND decision IS NULL"
        ),
    )


def exclusions_beside(folder: Path) -> Exclusions | None:
    """The exclusions of the catalog in `folder` (a manifest's own), or None when it has none."""
    from acnedata.catalog import CATALOG_NAME, Catalog

    if not (Path(folder) / CATALOG_NAME).is_file():
        return None
    with Catalog.open(folder) as catalog:
        return catalog_exclusions(catalog)


def cut(lines: list[str], shown: int = SHOWN) -> list[str]:
    """The first `shown` lines, and a last one saying how many were left out."""
    if len(lines) <= shown:
        return lines
    return [*lines[:shown], f"+{len(lines) - shown} more"]


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def caveats(data: dict[str, Any]) -> list[str]:
    """What a user should know before training: derived data, augmented copies, weak licences."""
    items = data["items"]
    out = []
    roboflow = sum(1 for i in items if _ROBOFLOW.search(i["id"]) or _ROBOFLOW.search(
        str((i.get("source") or {}).get("url") or "")))  # fmt: skip
    if roboflow:
        out.append(
            f"{roboflow} items are named as Roboflow exports: the data is probably derived from "
            "another dataset (Roboflow's own source), and may hold its augmented variants; "
            "they are grouped by upload"
        )
    derived = sum(1 for i in items if i.get("parent"))
    if derived:
        out.append(f"{derived} items are augmented copies of other items (`parent`)")
    imported = data.get("citation") or (data.get("spec") or {}).get("path", "").startswith(
        "import:"
    )
    if imported:
        out.append(
            "the items were imported from an existing dataset: its licence and labels are as "
            "its publisher stated them" + (f" ({data['citation']})" if data.get("citation") else "")
        )
    noassert = sum(1 for i in items if i["licence"]["spdx"] == "NOASSERTION")
    if noassert:
        out.append(f"{noassert} items have no recorded licence (kept after review)")
    nd = sum(1 for i in items if i["licence"].get("no_derivatives"))
    if nd:
        out.append(f"{nd} items are no-derivatives: never augment them")
    nc = sum(1 for i in items if i["licence"].get("commercial") is False)
    if nc:
        out.append(f"{nc} items are non-commercial: no commercial use")
    unsplit = sum(1 for i in items if not i.get("split"))
    if unsplit and unsplit < len(items):
        out.append(
            f"{unsplit} items have no split of their own; exports put them in `{DEFAULT_SPLIT}`"
        )
    out.append("labels are provisional classes from search terms and text unless reviewed")
    return out


def render_card(data: dict[str, Any], exclusions: Exclusions | None = None) -> str:
    """The dataset card for manifest `data`, as Markdown."""
    items = data["items"]
    classes = [c["name"] for c in data["classes"]]
    lines = [
        f"# Dataset card: {_cell(data['name'])}",
        "",
        f"{len(items)} images in {len(classes)} classes, written {data['created']} by "
        f"{data['tool']['name']} {data['tool']['version']}. Every figure below is counted from "
        "`manifest.json`.",
        "",
        "## Sources",
        "",
    ]
    sources = Counter((i.get("source") or {}).get("name") or "unknown" for i in items)
    lines += _table(["source", "items"], [[s, n] for s, n in sources.most_common()])
    if data.get("citation"):
        lines += ["", f"Cite as: {_cell(data['citation'])}"]
    portals = data.get("portals") or []
    if portals:
        lines += ["", f"Portal check: {len(portals)} existing datasets looked at."]

    lines += ["", "## Licences", ""]
    licences = Counter(i["licence"]["spdx"] for i in items)
    lines += _table(["licence", "items"], [[s, n] for s, n in licences.most_common()])
    policy = data.get("licence_policy") or {}
    if policy:
        allow = ", ".join(policy.get("allow", [])) or "none"
        lines += ["", f"Policy: allowed {allow}; non-commercial "
                  f"{'accepted' if policy.get('noncommercial') else 'refused'}; no-derivatives "
                  f"{'accepted' if policy.get('no_derivatives') else 'refused'}; no licence: "
                  f"{policy.get('noassertion', 'reject')}. Per-item credits: ATTRIBUTION.md and "
                  "attribution.csv."]  # fmt: skip

    lines += ["", "## Classes per split", ""]
    per = Counter((i["label"], i.get("split") or DEFAULT_SPLIT) for i in items)
    splits = [s for s in SPLIT_ORDER if any(k[1] == s for k in per)]
    rows = [[c, *(per[(c, s)] for s in splits), sum(per[(c, s)] for s in splits)] for c in classes]
    rows.append(["all", *(sum(per[(c, s)] for c in classes) for s in splits), len(items)])
    lines += _table(["class", *splits, "all"], rows)

    lines += ["", "## Excluded", ""]
    if exclusions is None:
        lines.append("Not recorded (the manifest was not written from a catalog).")
    else:
        lines += _excluded(exclusions)

    lines += ["", "## Duplicates and groups", ""]
    clusters = {i["cluster"] for i in items}
    groups = Counter(i.get("group") or i["cluster"] for i in items)
    largest = max(groups.values(), default=0)
    lines.append(
        f"{len(clusters)} clusters (one image kept per cluster of interchangeable copies); "
        f"{len(groups)} groups (items that share content or provenance), the largest holding "
        f"{largest} items, {sum(1 for n in groups.values() if n > 1)} holding more than one. "
        "A split must keep each group on one side; every export keeps the `group` of each item."
    )
    lines += ["", "## Caveats", ""]
    lines += [f"- {_cell(c)}" for c in caveats(data)]
    return "\n".join(lines) + "\n"


def _excluded(ex: Exclusions) -> list[str]:
    lines = []
    for title, reasons in (("rejected by the licence policy", ex.rejected),
                           ("failed to download or validate", ex.failed)):  # fmt: skip
        total = sum(n for _, n in reasons)
        lines.append(f"- {total} {title}" + (":" if reasons else ""))
        lines += [f"  - {line}" for line in cut([f"{n}× {_cell(r)}" for r, n in reasons])]
    lines.append(f"- {ex.duplicates} duplicates (copies of a kept image)")
    lines.append(f"- {ex.in_review} waiting for review (left out until decided)")
    return lines


def write_card(folder: Path, data: dict[str, Any], exclusions: Exclusions | None = None) -> Path:
    """Write DATASET_CARD.md into `folder` (atomically) and return its path."""
    path = Path(folder) / CARD_NAME
    atomic_write_text(path, render_card(data, exclusions))
    return path
