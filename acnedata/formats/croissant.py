"""`--to croissant`: Croissant 1.0 JSON-LD metadata with the records file it describes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from acnedata.formats.card import caveats
from acnedata.formats.output import staged_folder
from acnedata.formats.records import DESCRIPTIONS, FIELDS, INTEGER_FIELDS, flat_records
from acnedata.licensing import terms
from acnedata.manifest import Manifest

METADATA = "croissant.json"
RECORDS = "records.jsonl"
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The context of the Croissant 1.0 specification's examples (mlcroissant checks it is standard).
CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs",
    "column": "cr:column", "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "sc": "https://schema.org/",
    "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform", "equivalentProperty": "cr:equivalentProperty",
    "samplingRate": "cr:samplingRate",
}  # fmt: skip


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _field(name: str) -> dict[str, Any]:
    return {
        "@type": "cr:Field",
        "@id": f"items/{name}",
        "name": name,
        "description": DESCRIPTIONS[name],
        "dataType": "sc:Integer" if name in INTEGER_FIELDS else "sc:Text",
        "source": {"fileObject": {"@id": RECORDS}, "extract": {"column": name}},
    }


def _licence_urls(records: list[dict[str, Any]]) -> list[str]:
    """One URL per distinct licence (the SPDX id where no URL is known)."""
    urls = {r["licence"]: r["licence_url"] or terms(r["licence"]).url for r in records}
    return sorted(url or spdx for spdx, url in urls.items())


def _rai(manifest: Manifest) -> dict[str, Any]:
    """The Responsible-AI fields acnedata knows from how it built the manifest."""
    data = manifest.data
    policy = data.get("licence_policy") or {}
    sources = sorted({(i.get("source") or {}).get("name") or "unknown" for i in data["items"]})
    return {
        "rai:dataCollection": (
            f"Collected with acnedata {data['tool']['version']} from: {', '.join(sources)}. "
            "Candidates were searched per class and search term (or imported from an existing "
            "dataset with its stated licence), downloaded politely (robots.txt, per-host pacing) "
            "and validated (decodable, minimum size, EXIF stripped)."
        ),
        "rai:dataCollectionType": ["Web Scraping" if "import" not in sources else "Others"],
        "rai:dataPreprocessingProtocol": [
            "Licence check: every licence string normalised to an SPDX id and judged by the "
            f"policy (allowed: {', '.join(policy.get('allow', [])) or 'none listed'}; "
            f"non-commercial {'accepted' if policy.get('noncommercial') else 'refused'}; "
            f"no-derivatives {'accepted' if policy.get('no_derivatives') else 'refused'}); "
            "rejected items were never downloaded; unclear ones went to a person's review.",
            "Dedup: exact (sha256 of bytes and of pixels) and perceptual (pHash) duplicates "
            "clustered, one image kept per cluster.",
            "Leak check: clusters sharing a provenance key or a content link form a group; a "
            "split must keep each group on one side (the `group` field).",
        ],
        "rai:dataAnnotationProtocol": [
            "Provisional class from the class whose search found the image and its text; "
            "conflicts and doubts were decided by a person in review."
        ],
        "rai:dataLimitations": caveats(data),
    }


def export_croissant(manifest: Manifest, out: Path) -> Path:
    """Write croissant.json and records.jsonl (one flat record per item) into `out`.

    The `file` field of a record is the image's path relative to `out`, so the export can sit
    beside the manifest (`--out` its own folder gives paths like images/ab/<sha256>.jpg).
    """
    out = Path(out)
    records = flat_records(manifest)
    base = (out.parent if out.exists() and not out.is_dir() else out).resolve()
    rel = {r["id"]: os.path.relpath(manifest.root.resolve() / r["file"], base) for r in records}
    lines = [json.dumps({**r, "file": rel[r["id"]]}, ensure_ascii=False) for r in records]
    data = manifest.data
    with staged_folder(out, "croissant", manifest.sha256()) as stage:
        (stage / RECORDS).write_text("\n".join(lines) + "\n", "utf-8")
        meta = {
            "@context": CONTEXT,
            "@type": "sc:Dataset",
            "conformsTo": CONFORMS_TO,
            "name": data["name"],
            "description": (
                f"{len(records)} labelled images in {len(manifest.class_names)} classes "
                f"({', '.join(manifest.class_names)}), built by acnedata with a licence check, "
                "deduplication and groups for leak-free splits."
            ),
            "url": next((r["page_url"] for r in records if r["page_url"]), "") or None,
            "license": _licence_urls(records),
            "citeAs": data.get("citation") or f"{data['name']} (acnedata, {data['created'][:10]})",
            "datePublished": data["created"][:10],
            "version": "1.0.0",
            "distribution": [
                {
                    "@type": "cr:FileObject",
                    "@id": RECORDS,
                    "name": RECORDS,
                    "description": "one record per image: the fields below",
                    "contentUrl": RECORDS,
                    "encodingFormat": "application/jsonlines",
                    "sha256": _sha256(stage / RECORDS),
                },
                {
                    "@type": "cr:FileObject",
                    "@id": "manifest.json",
                    "name": "manifest.json",
                    "description": "the acnedata manifest the records were exported from",
                    "contentUrl": os.path.relpath(manifest.path.resolve(), base),
                    "encodingFormat": "application/json",
                    "sha256": manifest.sha256(),
                },
            ],
            "recordSet": [
                {
                    "@type": "cr:RecordSet",
                    "@id": "items",
                    "name": "items",
                    "description": "the manifest's items: image file, class, split, group, "
                    "licence, author and source",
                    "key": {"@id": "items/id"},
                    "field": [_field(name) for name in FIELDS],
                }
            ],
            **_rai(manifest),
        }
        if meta["url"] is None:
            del meta["url"]
        text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
        (stage / METADATA).write_text(text, "utf-8")
    return out
