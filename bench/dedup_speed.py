"""Benchmark: hashing throughput and near-pair search speed, ours vs imagededup 0.3.3."""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import shutil
import sys
import time
from pathlib import Path

from PIL import Image

from acnedata.dedup import DedupItem, cluster_items, near_pairs, signature_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup_quality import DEFAULT_DIR, PEER_VENV, ensure_peer, run_peer

THRESHOLD = 10  # the scale target, and imagededup's default max_distance_threshold


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_hashes(n: int, seed: int, planted: int) -> list[str]:
    """n uniform random 64-bit hashes, `planted` of them copies of others with 1..10 bits
    flipped, so the search has real pairs to find."""
    rng = random.Random(seed)
    values = [rng.getrandbits(64) for _ in range(n)]
    for k in range(planted):
        src = rng.randrange(n)
        v = values[src]
        for bit in rng.sample(range(64), rng.randint(1, THRESHOLD)):
            v ^= 1 << bit
        values[(src + 1 + k) % n] = v
    return [f"{v:016x}" for v in values]


def make_large(folder: Path, out: Path, count: int) -> Path:
    """count of the dataset's photos upscaled to 1600x1200 JPEG (web-photo sized)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for k, path in enumerate(sorted(folder.glob("*.jpg"))[:count]):
        with Image.open(path) as im:
            im.convert("RGB").resize((1600, 1200), Image.Resampling.BICUBIC).save(
                out / f"large{k:04d}.jpg", quality=90
            )
    return out


def same_footing(paths: list[str]) -> None:
    """Leave disk reads and module imports off both clocks, as imagededup's runner does for its
    own imports (scipy among them) before it starts timing.

    The files are read once, so that neither tool pays for a cold page cache (this shared
    machine's often is after a pause, and ours runs first); scipy.sparse is imported, which
    acnedata.dedup otherwise imports lazily on its first signature (~0.1 s, more from disk).
    """
    for path in paths:
        Path(path).read_bytes()
    import scipy.sparse  # noqa: F401


def bench_hashing(
    python: Path | None, folder: Path, work: Path, label: str, repeat: int = 2
) -> None:
    """Each tool `repeat` times, alternating; the best run of each is the figure (on a shared
    machine other work slows some runs, the best is the least disturbed), every run printed."""
    paths = sorted(str(p) for p in folder.iterdir() if p.is_file())
    workers = os.cpu_count() or 1
    same_footing(paths)
    ours_runs: list[float] = []
    theirs_runs: list[float] = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        found = signature_files(paths, workers=workers)
        ours_runs.append(time.perf_counter() - t0)
        if python is not None:
            peer = run_peer(python, {"image_dir": str(folder)}, work)
            theirs_runs.append(peer["encode_seconds"])
    ok = sum(f is not None for f in found)
    ours = min(ours_runs)
    line = f"  {label}: {len(paths)} files; ours {ok / ours:,.0f} images/s ({ours:.2f} s, "
    line += f"{workers} processes, full signature: 19 pHashes + thumbnail)"
    print(line)
    if python is None:
        return
    theirs = min(theirs_runs)
    pad = " " * len(label)
    print(
        f"  {pad}  imagededup encode_images {len(peer['encodings']) / theirs:,.0f} "
        f"images/s ({theirs:.2f} s, its default {workers} processes, one pHash)"
    )
    runs = " | ".join(f"{a:.2f} vs {b:.2f} s" for a, b in zip(ours_runs, theirs_runs, strict=True))
    print(f"  {pad}  ratio ours/imagededup: {theirs / ours:.2f}x (best of each; runs: {runs})")


def bench_search(python: Path | None, n: int, work: Path) -> None:
    hashes = random_hashes(n, seed=n, planted=n // 100)
    gc.collect()
    t0 = time.perf_counter()
    pairs = near_pairs(hashes, THRESHOLD)
    ours = time.perf_counter() - t0
    print(f"  {n:>9,} hashes: ours near_pairs {ours:8.2f} s, {len(pairs)} pairs")
    if python is None:
        return
    encodings = {f"h{i:07d}": h for i, h in enumerate(hashes)}
    peer = run_peer(python, {"encodings": encodings, "find": True, "threshold": THRESHOLD}, work)
    theirs = peer["find_seconds"]
    index = {f"h{i:07d}": i for i in range(n)}
    their_pairs = {
        tuple(sorted((index[a], index[b]))) for a, dups in peer["duplicates"].items() for b in dups
    }
    same = "same pairs" if their_pairs == set(pairs) else "PAIRS DIFFER"
    print(
        f"  {'':>9}         imagededup find_duplicates {theirs:8.2f} s ({same}); "
        f"ratio {theirs / ours:,.0f}x"
    )


def bench_million(n: int) -> None:
    hashes = random_hashes(n, seed=7, planted=n // 100)
    gc.collect()
    before = peak_rss_mib()
    t0 = time.perf_counter()
    pairs = near_pairs(hashes, THRESHOLD)
    took = time.perf_counter() - t0
    print(
        f"  near_pairs: {n:,} hashes at <= {THRESHOLD} bits: {took:.1f} s, {len(pairs):,} pairs; "
        f"peak RSS {peak_rss_mib():,.0f} MiB (was {before:,.0f} MiB before the search)"
    )
    items = [DedupItem(i, f"{i:064x}", h) for i, h in enumerate(hashes)]
    del hashes
    gc.collect()
    t0 = time.perf_counter()
    clusters = cluster_items(items, THRESHOLD)
    took = time.perf_counter() - t0
    multi = len(items) - len({c for c, _ in clusters.values()})
    print(
        f"  cluster_items: {n:,} items at <= {THRESHOLD} bits: {took:.1f} s "
        f"({multi:,} items joined another); peak RSS {peak_rss_mib():,.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--work", type=Path, default=Path("/tmp/acnedata-dedup-speed"))
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--no-peer", action="store_true", help="skip imagededup")
    parser.add_argument("--large", type=int, default=300, help="large JPEGs to hash (0: none)")
    parser.add_argument("--sizes", default="20000,50000", help="search sizes vs imagededup")
    parser.add_argument("--million", type=int, default=1_000_000, help="ours alone (0: skip)")
    parser.add_argument("--repeat", type=int, default=2, help="hashing runs per tool (best)")
    args = parser.parse_args(argv)
    python = None if args.no_peer else ensure_peer(args.peer_venv)
    print(f"{os.cpu_count()} CPUs; imagededup: {'skipped' if python is None else python}")
    # Other work on the machine skews absolute times (ratios are measured side by side).
    print("load average at start: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))

    print("\nhashing throughput (same files, same run)")
    if args.dir.is_dir():
        bench_hashing(python, args.dir, args.work, "dataset (128 px JPEGs)", args.repeat)
    if args.large:
        large = make_large(args.dir, args.work / "large", args.large)
        bench_hashing(python, large, args.work, "1600x1200 JPEGs", args.repeat)

    print(
        f"\nnear-duplicate search, random 64-bit hashes (1% planted near pairs), "
        f"<= {THRESHOLD} bits"
    )
    for n in (int(s) for s in args.sizes.split(",") if s):
        bench_search(python, n, args.work)

    if args.million:
        print("\nscale, ours alone; load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
        bench_million(args.million)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
