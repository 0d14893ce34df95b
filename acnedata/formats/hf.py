"""`--to hf`: a Hugging Face `datasets` folder of Parquet shards with a dataset card README.md."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import DatasetCard, DatasetCardData

from acnedata.errors import AcnedataError
from acnedata.formats.card import exclusions_beside, render_card
from acnedata.formats.output import staged_folder
from acnedata.formats.records import FIELDS, INTEGER_FIELDS, by_split, flat_records
from acnedata.manifest import Manifest

DEFAULT_SHARD_ITEMS = 1000
# The Hub's own licence ids for the licences it knows (lower-case SPDX); any other is "other".
HUB_LICENCES = frozenset({
    "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0",
    "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0",
    "cc-by-nc-sa-4.0", "gfdl", "mit", "apache-2.0", "odbl", "pddl", "other",
})  # fmt: skip


def features(class_names: list[str]) -> datasets.Features:
    """image (Image), label (ClassLabel in the manifest's class order), then the flat fields."""
    spec: dict[str, Any] = {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=class_names),
    }
    for name in FIELDS:
        if name not in ("label", "label_index"):
            spec[name] = datasets.Value("int64" if name in INTEGER_FIELDS else "string")
    return datasets.Features(spec)


def size_category(n: int) -> str:
    """The Hub's size bucket for n examples."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):  # fmt: skip
        if n < limit:
            return name
    return "1M<n<10M"


def hub_licences(records: list[dict[str, Any]]) -> list[str]:
    return sorted({s if (s := r["licence"].lower()) in HUB_LICENCES else "other" for r in records})


def export_hf(manifest: Manifest, out: Path, *, shard_items: int = DEFAULT_SHARD_ITEMS) -> Path:
    """data/<split>-NNNNN-of-NNNNN.parquet with embedded image bytes, and README.md (the card)."""
    if shard_items < 1:
        raise AcnedataError(f"--shard-size {shard_items}: use a whole number of items, 1 or more")
    bars = not datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # a library writes no progress of its own; the CLI does
    try:
        return _export(manifest, Path(out), shard_items)
    finally:
        if not bars:
            datasets.enable_progress_bars()


def _export(manifest: Manifest, out: Path, shard_items: int) -> Path:
    records = flat_records(manifest)
    feats = features(manifest.class_names)
    splits = by_split(records)
    sizes: dict[str, int] = {}
    with staged_folder(out, "hf", manifest.sha256()) as stage:
        for split, rows in splits.items():
            table = {name: [] for name in feats}
            for row in rows:
                data = (manifest.root / row["file"]).read_bytes()
                table["image"].append({"bytes": data, "path": row["file"].rsplit("/", 1)[-1]})
                table["label"].append(row["label_index"])
                for name in feats:
                    if name not in ("image", "label"):
                        table[name].append(row[name])
            ds = datasets.Dataset.from_dict(table, features=feats)
            sizes[split] = ds.data.nbytes
            n = math.ceil(len(rows) / shard_items)
            for k in range(n):
                shard = ds.shard(num_shards=n, index=k, contiguous=True)
                shard.to_parquet(str(stage / "data" / f"{split}-{k:05d}-of-{n:05d}.parquet"))
        card_data = DatasetCardData(
            license=hub_licences(records),
            task_categories=["image-classification"],
            size_categories=[size_category(len(records))],
            pretty_name=manifest.name,
            tags=["acnedata"],
            configs=[{"config_name": "default", "data_files": [
                {"split": s, "path": f"data/{s}-*"} for s in splits]}],
            dataset_info={
                "features": feats._to_yaml_list(),
                "splits": [{"name": s, "num_bytes": sizes[s], "num_examples": len(r)}
                           for s, r in splits.items()],
            },
        )  # fmt: skip
        body = render_card(manifest.data, exclusions_beside(manifest.root))
        DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}").save(stage / "README.md")
    return out


def push(folder: Path, repo: str, *, private: bool = False) -> str:
    """Upload an hf export to the Hub as dataset `repo` (huggingface_hub's own token lookup)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            repo_type="dataset",
            folder_path=str(folder),
            ignore_patterns=[".acnedata-export.json"],
        )
    except HfHubHTTPError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AcnedataError(
            f"--push {repo}: the Hub refused ({first}); log in with `hf auth login` or set HF_TOKEN"
        ) from None
    return str(getattr(info, "commit_url", repo))
