"""Benchmark: region matching's recall on augmented copies, for one RegionConfig against another.

The same set as `leak_content.py --only augmented` (N real photos of the shared export, one per
upload and never a mosaic, each with K Roboflow-style copies; JPEG q92), matched the way the
content stage matches them (content.scan_image, vote_pairs, verify_pairs). For each setting it
prints: same-photo pairs that became candidates and that verified, copies linked to none of
their photo's other images (the ones a grouped split can leak), and links between different
photos (false links). Settings are RegionConfig fields, given as NAME=VALUE:

    python bench/region_recall.py                                # the defaults
    python bench/region_recall.py --against clahe_tiles=0        # ... and without CLAHE
    python bench/region_recall.py --set features=500 candidates=24
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import random
import sys
import time
from collections import Counter
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from augment import roboflow_variant
from leak_content import DEFAULT_CSV, pick_photos, read_rows

from acnedata.dedup import regions
from acnedata.dedup.content import scan_image


def build_set(photos: int, copies: int, seed: int) -> tuple[list[Image.Image], list[int]]:
    picked = pick_photos(read_rows(DEFAULT_CSV), DEFAULT_CSV.parent, photos, seed)
    rng = random.Random(seed)
    images, truth = [], []
    for k, row in enumerate(picked):
        with Image.open(DEFAULT_CSV.parent / row["file"]) as im:
            rgb = im.convert("RGB")
        for image in [rgb] + [roboflow_variant(rgb, rng) for _ in range(copies)]:
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=92)  # as leak_content.py writes them
            images.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
            truth.append(k)
    return images, truth


def config_from(settings: list[str]) -> regions.RegionConfig:
    base = regions.DEFAULT_REGION_CONFIG
    changes = {}
    for item in settings:
        name, _, value = item.partition("=")
        changes[name] = type(getattr(base, name))(value)
    return dataclasses.replace(base, **changes)


def measure(images: list[Image.Image], truth: list[int], config: regions.RegionConfig) -> str:
    started = time.perf_counter()
    feats = [scan_image(im, config)[1] for im in images]
    candidates = regions.vote_pairs(feats, feats, config, self_join=True)
    matches = regions.verify_pairs(feats, feats, candidates, config)
    seconds = time.perf_counter() - started
    n = len(images)
    same = {(i, j) for i in range(n) for j in range(i + 1, n) if truth[i] == truth[j]}
    proposed = {(c[0], c[1]) for c in candidates}
    verified = {(m.a, m.b) for m in matches}
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in verified & same:
        parent[find(a)] = find(b)
    alone = 0
    for photo in set(truth):
        members = [i for i in range(n) if truth[i] == photo]
        alone += len(members) - Counter(find(i) for i in members).most_common(1)[0][1]
    false = sorted(m.inliers for m in matches if truth[m.a] != truth[m.b])
    return (
        f"same-photo pairs {len(same)}: candidates {len(same & proposed)}, verified "
        f"{len(same & verified)}; copies linked to none of their photo's images {alone}; "
        f"false links {len(false)} (inliers {false}); {len(candidates)} candidates, {seconds:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], help="NAME=VALUE changes to measure")
    parser.add_argument("--against", nargs="*", default=None, help="a second setting to compare")
    args = parser.parse_args(argv)
    images, truth = build_set(args.photos, args.copies, args.seed)
    print(f"{len(images)} images: {args.photos} photos + {args.copies} copies each")
    for settings in (args.set, args.against):
        if settings is not None:
            result = measure(images, truth, config_from(settings))
            print(f"{' '.join(settings) or 'defaults'}: {result}")


if __name__ == "__main__":
    main()
