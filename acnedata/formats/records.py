"""One flat record per manifest item: what every export keeps (label, split, group, licence)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from acnedata.manifest import Manifest

# Items without the dataset's own split go to `train`: a one-split dataset, as Hugging Face
# `datasets` and webdataset readers expect. The split order is the conventional one.
DEFAULT_SPLIT = "train"
SPLIT_ORDER = ("train", "validation", "test")

# Every column a flat record has, in order; all strings except the integers noted.
FIELDS = (
    "id", "file", "label", "label_index", "split", "group", "cluster", "sha256", "width",
    "height", "format", "licence", "licence_url", "author", "attribution", "source",
    "source_url", "page_url", "title",
)  # fmt: skip
INTEGER_FIELDS = frozenset({"label_index", "width", "height"})
# What each field means, for dataset cards and Croissant descriptions.
DESCRIPTIONS = {
    "id": "the item's id in the acnedata manifest",
    "file": "the image file, relative to the manifest's folder",
    "label": "the class name",
    "label_index": "the class's position in the manifest's class list",
    "split": "the dataset's own split (train when the manifest gives none)",
    "group": "items sharing content or provenance; a split keeps a group on one side",
    "cluster": "interchangeable copies of one picture (one kept)",
    "sha256": "sha256 of the image file",
    "width": "width in pixels",
    "height": "height in pixels",
    "format": "image format (JPEG, PNG, ...)",
    "licence": "the item's licence as an SPDX id (or LicenseRef-...)",
    "licence_url": "the licence's text",
    "author": "the author or owner to credit",
    "attribution": "the credit the licensor asked for, verbatim",
    "source": "the source the item came from (commons, import, ...)",
    "source_url": "the URL the image was taken from",
    "page_url": "the page that describes the image",
    "title": "the image's title",
}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def flat_record(item: dict[str, Any], class_index: dict[str, int]) -> dict[str, Any]:
    """The item as one flat row; a 1.0 manifest's item (no group) stands for its cluster."""
    source = item.get("source") or {}
    lic = item.get("licence") or {}
    return {
        "id": item["id"],
        "file": item["file"],
        "label": item["label"],
        "label_index": class_index[item["label"]],
        "split": item.get("split") or DEFAULT_SPLIT,
        "group": item.get("group") or item["cluster"],
        "cluster": item["cluster"],
        "sha256": item["sha256"],
        "width": int(item["width"]),
        "height": int(item["height"]),
        "format": _text(item.get("format")),
        "licence": lic.get("spdx") or "NOASSERTION",
        "licence_url": _text(lic.get("url")),
        "author": _text(lic.get("author")),
        "attribution": _text(lic.get("attribution")),
        "source": _text(source.get("name")),
        "source_url": _text(source.get("url")),
        "page_url": _text(source.get("page_url")),
        "title": _text(source.get("title")),
    }


def flat_records(manifest: Manifest) -> list[dict[str, Any]]:
    """Every item of the manifest as a flat record, in the manifest's order."""
    index = {name: k for k, name in enumerate(manifest.class_names)}
    return [flat_record(item, index) for item in manifest.items]


def by_split(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Records per split, splits in the conventional order (train, validation, test)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        out.setdefault(record["split"], []).append(record)
    return {s: out[s] for s in sorted(out, key=SPLIT_ORDER.index)}


def file_suffix(record: dict[str, Any]) -> str:
    """The image's extension, from its stored file name (`.jpg`, `.png`, ...)."""
    name = record["file"].rsplit("/", 1)[-1]
    return "." + name.rsplit(".", 1)[-1].lower() if "." in name else ".img"
