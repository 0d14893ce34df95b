"""Benchmark: test items that share a Roboflow upload with train, after a default CLI import.

Imports a Roboflow-style labels CSV with `acnedata import CSV --out OUT --licence CC-BY-4.0`
(default settings, through the real CLI in a subprocess), then splits the manifest as
acnemodel's honest protocol does (acnemodel.split.split_items, test fraction 0.3, seed 0) and
prints, for the split by `group` and for the same split by `cluster` alone (what acnemodel did
before groups), how many test items share an upload with train, the uploads kept in the
manifest and in the split, and the test share. Under `--mosaics follow` the split leaves
out the mosaics whose photos it put on two sides (acnemodel.straddle); they are counted.
An item's upload is its file name up to `.rf.`, worked out here
independently of the importer's own naming rule.

    python bench/leak_split.py [CSV] [--out DIR] [--test-fraction 0.3] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from acnedata.manifest import load_manifest
from acnemodel import split

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO / ".." / "shared" / "datasets" / "acne-roboflow-cc-by-4.0" / "labels.csv"


def upload_of(name: str) -> str:
    """A Roboflow export name's upload: everything before `.rf.` (`x_jpg.rf.<hash>.jpg` → x_jpg)."""
    base = Path(name).name
    return base.split(".rf.")[0] if ".rf." in base else base


def uploads_in_csv(csv_path: Path) -> set[str]:
    import csv

    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    column = next(c for c in ("file", "file_name", "filename", "path", "image") if c in rows[0])
    return {upload_of(r[column]) for r in rows}


def measure(items: Sequence[dict[str, Any]], test_fraction: float, seed: int) -> dict[str, Any]:
    """The honest split of `items`, and its leak counted by upload."""
    parts = split.split_items(items, test_fraction, seed)
    # the id keeps the file's name (folder:images/<name>); `file` is content-addressed
    upload = {i["id"]: upload_of(i["id"]) for i in items}
    train_uploads = {upload[i["id"]] for i in parts["train"]}
    leaked = sum(upload[i["id"]] in train_uploads for i in parts["test"])
    return {
        "train": len(parts["train"]),
        "validation": len(parts["validation"]),
        "test": len(parts["test"]),
        "leaked": leaked,
        "group_leaks": split.leaked_test_items(parts),
        "left_out": len(split.left_out(items, parts)),
        "uploads": len({upload[i["id"]] for part in parts.values() for i in part}),
    }


def run_import(csv_path: Path, out: Path, mosaics: str) -> Path:
    command = [
        sys.executable, "-m", "acnedata", "import", str(csv_path),
        "--out", str(out), "--licence", "CC-BY-4.0", "--mosaics", mosaics,
    ]  # fmt: skip
    print("$ acnedata " + " ".join(command[3:]))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if "Roboflow" in line or line.startswith("oversized group"):
            print("  " + line)
    if done.returncode != 0:
        sys.exit(f"acnedata import failed ({done.returncode}): {done.stderr.strip()}")
    return out / "manifest.json"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--out", type=Path, help="import here (default: a temp folder, deleted)")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mosaics", default="exclude", choices=("exclude", "group", "follow"))
    args = parser.parse_args(argv)
    csv_path = args.csv.resolve()
    if not csv_path.is_file():
        sys.exit(f"{csv_path}: no such labels CSV; give the path of a Roboflow export's CSV")
    work = args.out or Path(tempfile.mkdtemp(prefix="leak-split-"))
    try:
        manifest = load_manifest(run_import(csv_path, work, args.mosaics))
        items = manifest.items
        total_uploads = uploads_in_csv(csv_path)
        kept = {upload_of(i["id"]) for i in items}
        groups = {i.get("group", i["cluster"]) for i in items}
        print(
            f"manifest: {len(items)} items in {len({i['cluster'] for i in items})} clusters and "
            f"{len(groups)} groups; uploads kept {len(kept)} of {len(total_uploads)} "
            f"({len(kept) / len(total_uploads):.1%})"
        )
        by_cluster = [{k: v for k, v in i.items() if k not in ("group", "links")} for i in items]
        for name, rows in (("group (this branch)", items), ("cluster only (before)", by_cluster)):
            m = measure(rows, args.test_fraction, args.seed)
            n = m["train"] + m["validation"] + m["test"]
            print(
                f"split by {name}: train {m['train']}, validation {m['validation']}, "
                f"test {m['test']} ({m['test'] / n:.1%} of {n}); test items sharing an upload "
                f"with train: {m['leaked']} of {m['test']} ({m['leaked'] / max(m['test'], 1):.1%})"
                f"; sharing a group: {m['group_leaks']}; left out of the split (mosaics showing "
                f"photos on both sides): {m['left_out']}; uploads in the split {m['uploads']} of "
                f"{len(total_uploads)} ({m['uploads'] / len(total_uploads):.1%})"
            )
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
