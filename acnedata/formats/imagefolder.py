"""`--to imagefolder`: <split>/<class>/<file> plus the metadata.jsonl that `datasets` reads."""

from __future__ import annotations

import json
from pathlib import Path

from acnedata.formats.output import copy_file, staged_folder
from acnedata.formats.records import by_split, file_suffix, flat_records
from acnedata.manifest import Manifest

METADATA = "metadata.jsonl"


def export_imagefolder(manifest: Manifest, out: Path) -> Path:
    """Copy every image to <out>/<split>/<class>/<id-based name> with one metadata.jsonl per split.

    The metadata rows carry the item's id, label, group, cluster, licence, author and source.
    `datasets` reads the folder with `load_dataset("imagefolder", data_dir=out)`; with metadata
    present it takes `label` from the rows (a string; `label_index` is its class position).
    """
    records = flat_records(manifest)
    with staged_folder(out, "imagefolder", manifest.sha256()) as stage:
        for split, rows in by_split(records).items():
            lines, used = [], set()
            for row in rows:
                # the sha256 names the file: free of the characters ids may hold
                rel = f"{row['label']}/{row['sha256'][:20]}{file_suffix(row)}"
                if rel in used:  # the same bytes twice (an expanded manifest's copies)
                    rel = f"{row['label']}/{row['sha256'][:20]}-{len(used)}{file_suffix(row)}"
                used.add(rel)
                copy_file(manifest.root / row["file"], stage / split / rel)
                meta = {"file_name": rel, **{k: v for k, v in row.items() if k != "file"}}
                lines.append(json.dumps(meta, ensure_ascii=False))
            (stage / split / METADATA).write_text("\n".join(lines) + "\n", "utf-8")
    return Path(out)
