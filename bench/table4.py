"""Benchmark: the paper's Table 4 on the Roboflow acne images, honest and paper protocols."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from acnedata.manifest import write_manifest

DEFAULT_DATASET = Path("/work/shared/datasets/acne-roboflow-cc-by-4.0")
CLASSES = ("comedonal", "papular", "pustular", "nodulocystic")  # mildest to most severe
SOURCE_URL = (
    "https://universe.roboflow.com/university-of-sri-jayewardenepura-srk7m/acne-dataset-w9m3b"
)
ATTRIBUTION = (
    '"Acne Dataset" by a Roboflow Universe user (University of Sri Jayewardenepura '
    "workspace), CC BY 4.0, resized"
)


def build_manifest(dataset: Path, work: Path) -> Path:
    """A manifest in WORK whose items are hard links in WORK/images to the dataset's images.

    WORK is outside the repository (the images must not enter it). A manifest names only files
    inside its own folder, so a symlink to the dataset's folder would be refused: each image is
    hard-linked instead (copied where WORK is on another file system; ~13 MB).
    Roboflow exports hold augmented copies of one upload named `<upload>.rf.<hash>.jpg`; the
    upload name is the cluster, so the honest split keeps all copies of one photo together.
    The export's own train/valid/test column is ignored: 407 of its 642 uploads span it.
    """
    images = work / "images"
    if images.is_symlink():  # the layout of earlier versions
        images.unlink()
    images.mkdir(parents=True, exist_ok=True)
    items = []
    with open(dataset / "labels.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = Path(row["file"]).name
            path = dataset / row["file"]
            if not (images / name).exists():
                try:
                    os.link(path, images / name)
                except OSError:  # another file system
                    shutil.copyfile(path, images / name)
            with Image.open(path) as img:
                width, height = img.size
            items.append(
                {
                    "id": Path(name).stem,
                    "file": f"images/{name}",
                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "width": width,
                    "height": height,
                    "format": "JPEG",
                    "label": row["label"],
                    "label_reason": f"most severe of: {row['types']}",
                    "cluster": name.split(".rf.")[0],
                    "source": {
                        "name": "roboflow-universe",
                        "url": SOURCE_URL,
                        "title": "Acne Dataset v3 (128×128 subset)",
                    },
                    "licence": {
                        "spdx": "CC-BY-4.0",
                        "author": "Roboflow Universe user (University "
                        "of Sri Jayewardenepura workspace)",
                        "attribution": ATTRIBUTION,
                        "url": "https://creativecommons.org/licenses/by/4.0/",
                        "no_derivatives": False,
                    },
                }
            )
    data = {
        "schema_version": "1.0",
        "name": "acne-roboflow-cc-by-4.0",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tool": {"name": "bench/table4.py", "version": "1"},
        "classes": [{"name": c} for c in CLASSES],
        "licence_policy": {"allow": ["CC-BY-4.0"]},
        "counts": {"items": len(items), "clusters": len({i["cluster"] for i in items})},
        "items": items,
    }
    return write_manifest(work / "manifest.json", data)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from acnemodel.compare import compare
    from acnemodel.train import TrainConfig

    manifest = build_manifest(args.dataset, args.work)
    print(f"manifest: {manifest}")
    tables = []
    for protocol in args.protocols.split(","):
        config = TrainConfig(
            epochs=args.epochs,
            seed=args.seed,
            protocol=protocol,
            test_fraction=args.test_fraction,
            expand_to=args.expand_to,
            verbose=0 if args.quiet else 2,
        )
        started = time.perf_counter()
        table = compare(manifest, args.models.split(","), args.work / protocol, config, echo=print)
        table["wall_seconds"] = round(time.perf_counter() - started, 1)
        tables.append(table)
        print((args.work / protocol / "table.md").read_text(encoding="utf-8"))
    return tables


def print_summary(tables: list[dict[str, Any]]) -> None:
    """One Table-4 style table over protocols and models, with the majority-class baseline."""
    print(
        "| protocol | train / test | test items with a copy in train | model | input | "
        "test loss | test accuracy | macro F1 | train s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for t in tables:
        counts = t["split_counts"]
        for m in t["models"]:
            size = "×".join(str(v) for v in m["image_size"])
            print(
                f"| {t['protocol']} | {counts['train']} / {counts['test']} | "
                f"{t['leaked_test_items']} | {m['model']} | {size} | {m['test_loss']:.4f} | "
                f"{100 * m['test_accuracy']:.2f}% | {m['macro_f1']:.3f} | "
                f"{m['train_seconds']:.0f} |"
            )
    for t in tables:
        per_class = t["split_counts"]["per_class"]
        top = max(per_class, key=lambda c: per_class[c]["test"])
        share = per_class[top]["test"] / t["split_counts"]["test"]
        print(
            f"{t['protocol']}: always answering {top!r} scores {100 * share:.2f}% on its test "
            "set (majority-class baseline)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/acnemodel-table4"),
        help="folder for the manifest and runs (outside the repository)",
    )
    parser.add_argument("--models", default="paper,kecnn,kevgg,resnet")
    parser.add_argument("--protocols", default="honest,paper")
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--expand-to", type=int, default=20_793)
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch Keras progress")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the table from WORK/<protocol>/table.json",
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.report_only:
        tables = [
            json.loads((args.work / p / "table.json").read_text(encoding="utf-8"))
            for p in args.protocols.split(",")
        ]
        print_summary(tables)
        return 0
    tables = run(args)
    print_summary(tables)
    (args.work / "summary.json").write_text(json.dumps(tables, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
