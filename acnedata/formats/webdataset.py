"""`--to webdataset`: tar shards of <key>.<image ext> + <key>.json + <key>.cls per sample."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

from acnedata.errors import AcnedataError
from acnedata.formats.output import staged_folder
from acnedata.formats.records import by_split, file_suffix, flat_records
from acnedata.manifest import Manifest

DEFAULT_SHARD_ITEMS = 1000
INDEX = "shards.json"


def _member(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def export_webdataset(
    manifest: Manifest, out: Path, *, shard_items: int = DEFAULT_SHARD_ITEMS
) -> Path:
    """<split>-NNNNNN.tar shards of at most `shard_items` samples each, and shards.json.

    A sample's key is its position in its split (keys may not hold dots, and ids may). The image
    keeps its own bytes and extension (`.jpg` for JPEG, `.png` for PNG: re-encoding would change
    its sha256), `.cls` holds the class index and `.json` the flat record (id, label, split,
    group, cluster, licence, author, source, ...) with the item's `extra`.
    """
    if shard_items < 1:
        raise AcnedataError(f"--shard-size {shard_items}: use a whole number of items, 1 or more")
    # the manifest's time on every member: the same manifest gives the same bytes
    mtime = datetime.fromisoformat(manifest.data["created"]).timestamp()
    extras = {item["id"]: item.get("extra") for item in manifest.items}
    index: dict[str, Any] = {"classes": manifest.class_names, "splits": {}}
    with staged_folder(out, "webdataset", manifest.sha256()) as stage:
        for split, rows in by_split(flat_records(manifest)).items():
            shards = []
            for start in range(0, len(rows), shard_items):
                name = f"{split}-{start // shard_items:06d}.tar"
                with tarfile.open(stage / name, "w", format=tarfile.PAX_FORMAT) as tar:
                    for n, row in enumerate(rows[start : start + shard_items], start=start):
                        key = f"{n:08d}"
                        image = (manifest.root / row["file"]).read_bytes()
                        meta = {**row, "extra": extras[row["id"]] or {}}
                        _member(tar, key + file_suffix(row), image, mtime)
                        _member(tar, f"{key}.cls", str(row["label_index"]).encode(), mtime)
                        _member(tar, f"{key}.json", json.dumps(meta).encode(), mtime)
                shards.append({"file": name, "samples": len(rows[start : start + shard_items])})
            index["splits"][split] = shards
        (stage / INDEX).write_text(json.dumps(index, indent=2) + "\n", "utf-8")
    return Path(out)
