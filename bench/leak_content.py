"""Benchmark: train/test leaks found by content alone, with every file under a random name.

Two sets, each imported through the real CLI (`acnedata import labels.csv --out DIR
--licence CC-BY-4.0 [--mosaics POLICY]`) and split as acnemodel's honest protocol does
(test fraction 0.3, seed 0). File names are random, so no naming rule can group anything:
only content (whole-image clusters and region links) can.

- augmented: N distinct real photos (non-mosaic, one per upload of the shared Roboflow export),
  each with K Roboflow-style augmented copies (crops, 90° turns, flips, shear, rotation, tone,
  blur, noise; bench/augment.py). Leak = test items whose photo has an item in train.
- shared: the shared export itself, under each mosaic policy (`follow`: the split leaves out
  the mosaics it cannot place with everything they are linked to; counted). Leak = test items
  whose upload (known to this script only) has an item in train. Also: how many same-upload
  pairs in the manifest share a group, and for leaked uploads, why (no region verifiable
  between them).

    python bench/leak_content.py [--only augmented|shared] [--photos 200] [--copies 6]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from augment import roboflow_variant
from leak_split import upload_of

from acnedata.dedup import perceptual_hash, regions
from acnedata.dedup.content import scan_files
from acnedata.dedup.mosaics import find_mosaic_file
from acnedata.manifest import load_manifest
from acnemodel import split

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CSV = REPO / ".." / "shared" / "datasets" / "acne-roboflow-cc-by-4.0" / "labels.csv"


def read_rows(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_set(out: Path, files: list[tuple[Image.Image | Path, str, str]], seed: int) -> dict:
    """Save (image or source file, label, truth key) under random names; name → truth key."""
    images = out / "images"
    images.mkdir(parents=True)
    rng = random.Random(seed)
    truth, rows = {}, []
    for source, label, key in files:
        name = f"{rng.getrandbits(64):016x}.jpg"
        if isinstance(source, Path):
            shutil.copyfile(source, images / name)
        else:
            source.save(images / name, quality=92)
        truth[name] = key
        rows.append((f"images/{name}", label))
    rng.shuffle(rows)
    (out / "truth.json").write_text(json.dumps(truth))  # for looking into a run afterwards
    with (out / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label"])
        w.writerows(rows)
    return truth


def run_import(folder: Path, out: Path, mosaics: str) -> tuple[Path, float]:
    command = [
        sys.executable,
        "-m",
        "acnedata",
        "import",
        str(folder / "labels.csv"),
        "--out",
        str(out),
        "--licence",
        "CC-BY-4.0",
        "--mosaics",
        mosaics,
        "--quiet",
    ]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"acnedata import failed ({done.returncode}): {done.stderr.strip()}")
    return out / "manifest.json", time.perf_counter() - t0


def measure(manifest: Path, truth: dict[str, str], seed: int) -> dict[str, Any]:
    items = load_manifest(manifest).items
    key = {i["id"]: truth[Path(i["id"]).name] for i in items}
    parts = split.split_items(items, 0.3, seed)
    train_keys = {key[i["id"]] for i in parts["train"]}
    leaked = [i for i in parts["test"] if key[i["id"]] in train_keys]
    by_key: dict[str, list[dict]] = defaultdict(list)
    for i in items:
        by_key[key[i["id"]]].append(i)
    pairs = same_group = 0
    for members in by_key.values():
        for a in range(len(members)):
            for b in range(a + 1, len(members)):
                pairs += 1
                same_group += members[a]["group"] == members[b]["group"]
    n = sum(len(p) for p in parts.values())
    return {
        "items": len(items),
        "groups": len({i["group"] for i in items}),
        "largest_group": max(Counter(i["group"] for i in items).values(), default=0),
        "kept": len(by_key),
        "test": len(parts["test"]),
        "test_share": len(parts["test"]) / max(n, 1),
        "leaked": len(leaked),
        "leak": len(leaked) / max(len(parts["test"]), 1),
        "pairs": pairs,
        "pairs_grouped": same_group,
        "left_out": len(split.left_out(items, parts)),
    }


def report(title: str, m: dict[str, Any], total_keys: int, seconds: float) -> None:
    print(
        f"{title}: {m['items']} items in the manifest, {m['groups']} groups (largest "
        f"{m['largest_group']}); kept {m['kept']} of {total_keys} ({m['kept'] / total_keys:.1%}); "
        f"test {m['test']} ({m['test_share']:.1%}); test items sharing content with train: "
        f"{m['leaked']} of {m['test']} ({m['leak']:.1%}); same-source pairs in one group: "
        f"{m['pairs_grouped']} of {m['pairs']}; left out of the split (mosaics showing photos on "
        f"both sides): {m['left_out']}; import took {seconds:.0f} s"
    )


def pick_photos(rows: list[dict[str, str]], root: Path, n: int, seed: int) -> list[dict]:
    """n real photos: one non-mosaic file per upload, no two sharing content.

    The export holds one photo under several uploads (a crop here, a framed copy there), so
    uploads are not enough: a photo is skipped when its pHash is within 10 bits of one already
    picked or when the region matcher links it to one. (This makes the set's truth consistent
    with what we can check; it does not flatter recall, which is what the leak measures.)
    """
    by_upload: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_upload[upload_of(r["file"])].append(r)
    uploads = sorted(by_upload)
    random.Random(seed).shuffle(uploads)
    candidates = []
    for upload in uploads:
        photo = next(
            (r for r in by_upload[upload] if find_mosaic_file(root / r["file"]) is None), None
        )
        if photo is not None:
            candidates.append(photo)
    scanned = scan_files([str(root / r["file"]) for r in candidates])
    linked: dict[int, set[int]] = defaultdict(set)
    for m in regions.match_within([s[1] if s else None for s in scanned]):
        linked[m.a].add(m.b)
        linked[m.b].add(m.a)
    picked: list[int] = []
    hashes: list[int] = []
    for k, r in enumerate(candidates):
        h = int(perceptual_hash(root / r["file"]), 16)
        if all((h ^ o).bit_count() > 10 for o in hashes) and not linked[k] & set(picked):
            picked.append(k)
            hashes.append(h)
        if len(picked) == n:
            break
    return [candidates[k] for k in picked]


def augmented(csv_path: Path, work: Path, photos: int, copies: int, seed: int) -> None:
    root = csv_path.parent
    picked = pick_photos(read_rows(csv_path), root, photos, seed)
    rng = random.Random(seed)
    files: list[tuple[Image.Image | Path, str, str]] = []
    for k, r in enumerate(picked):
        with Image.open(root / r["file"]) as im:
            rgb = im.convert("RGB")
        files.append((root / r["file"], r["label"], f"p{k}"))
        files += [(roboflow_variant(rgb, rng), r["label"], f"p{k}") for _ in range(copies)]
    folder = work / "augmented"
    truth = write_set(folder, files, seed)
    print(
        f"augmented: {len(picked)} photos, {copies} augmented copies each + the photo, "
        f"{len(files)} files under random names"
    )
    manifest, seconds = run_import(folder, work / "augmented-out", "exclude")
    report("augmented", measure(manifest, truth, seed), len(picked), seconds)


def shared(csv_path: Path, work: Path, policies: Sequence[str], seed: int) -> None:
    rows = read_rows(csv_path)
    files = [(csv_path.parent / r["file"], r["label"], upload_of(r["file"])) for r in rows]
    folder = work / "shared"
    truth = write_set(folder, files, seed)
    uploads = len(set(truth.values()))
    print(f"shared: {len(files)} files of {uploads} uploads under random names")
    for policy in policies:
        manifest, seconds = run_import(folder, work / f"shared-{policy}", policy)
        report(f"shared, mosaics = {policy}", measure(manifest, truth, seed), uploads, seconds)


def limits(csv_path: Path) -> None:
    """What bounds the shared set's leak: same-upload pairs the region matcher can verify at
    all, by kind of pair (photo or mosaic on each side), over every pair of every upload."""
    rows = read_rows(csv_path)
    paths = [str(csv_path.parent / r["file"]) for r in rows]
    t0 = time.perf_counter()
    scanned = scan_files(paths)
    feats = [s[1] if s else None for s in scanned]
    is_mosaic = [bool(s and s[0]) for s in scanned]
    by_upload: dict[str, list[int]] = defaultdict(list)
    for k, r in enumerate(rows):
        by_upload[upload_of(r["file"])].append(k)
    pairs = [(a, b) for v in by_upload.values() for i, a in enumerate(v) for b in v[i + 1 :]]
    found = {(m.a, m.b) for m in regions.verify_pairs(feats, feats, pairs)}
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a, b in pairs:
        kind = ("photo", "mosaic")[is_mosaic[a]] + "-" + ("photo", "mosaic")[is_mosaic[b]]
        kind = "photo-mosaic" if kind == "mosaic-photo" else kind
        kinds[kind][0] += 1
        kinds[kind][1] += (a, b) in found
    print(
        f"limits: {len(rows)} files, {sum(is_mosaic)} mosaics; {len(pairs)} same-upload pairs, "
        f"{len(found)} share a verifiable region ({len(found) / len(pairs):.1%}); "
        f"{time.perf_counter() - t0:.0f} s"
    )
    for kind, (n, ok) in sorted(kinds.items()):
        print(
            f"  {kind}: {ok} of {n} pairs verified ({ok / max(n, 1):.1%}); "
            f"{n - ok} share no verifiable region"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--only", choices=("augmented", "shared", "limits"))
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--policies", default="exclude,group,follow")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the sets here (default: temp, deleted)")
    args = parser.parse_args(argv)
    csv_path = args.csv.resolve()
    if not csv_path.is_file():
        sys.exit(f"{csv_path}: no such labels CSV; give --csv the shared export's labels.csv")
    work = args.work or Path(tempfile.mkdtemp(prefix="leak-content-"))
    try:
        if args.only in (None, "augmented"):
            augmented(csv_path, work, args.photos, args.copies, args.seed)
        if args.only in (None, "shared"):
            shared(csv_path, work, args.policies.split(","), args.seed)
        if args.only in (None, "limits"):
            limits(csv_path)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
