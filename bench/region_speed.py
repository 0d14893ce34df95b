"""Benchmark: the region stage's time and peak memory on 1k-10k images, vs the whole-image stage."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from augment import roboflow_variant
from dedup_quality import DEFAULT_DIR

# --- the images ---------------------------------------------------------------------------------


def build_images(folder: Path, out: Path, total: int, seed: int) -> list[Path]:
    """The shared set's files, shuffled, then augmented copies of them (bench/augment.py's
    roboflow_variant, JPEG q90) up to `total`. Any prefix of the list is a set of that size."""
    real = sorted(folder.glob("*.jpg"))
    random.Random(seed).shuffle(real)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed + 1)
    paths = list(real[:total])
    for k in range(total - len(paths)):
        src = real[k % len(real)]
        with Image.open(src) as im:
            variant = roboflow_variant(im, rng)
        path = out / f"aug{k:05d}_{src.stem[:40]}.jpg"
        variant.save(path, quality=90)
        paths.append(path)
    return paths


# --- memory: the process tree -------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return kids


def tree_rss_kib(pid: int) -> int:
    """RSS of pid and all its descendants, summed (pages shared after fork count per process)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += _rss_kib(p)
        stack += _children(p)
    return total


class TreeSampler:
    """Samples the process tree's summed RSS every `every` seconds; .peak_kib is the largest."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.peak_kib, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(os.getpid()))
            self._stop.wait(self.every)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def rusage_mib() -> tuple[float, float]:
    """(peak RSS of this process, largest peak RSS of a waited-for child), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# --- the stages, each run in a fresh process ----------------------------------------------------


def run_regions(paths: list[str]) -> dict:
    """The pipeline's content stage on the files: scan_files, then match_within (called as its
    parts, vote_pairs, verify_pairs, verify_loners and corroborated, to count the candidates)."""
    from acnedata.dedup import content, regions

    t0 = time.perf_counter()
    scanned = content.scan_files(paths)
    t1 = time.perf_counter()
    feats = [result[1] if result else None for result in scanned]
    keys = regions.index_keys(feats)
    pairs = regions.vote_pairs(feats, feats, self_join=True, keys=keys)
    t2 = time.perf_counter()
    links = regions.verify_pairs(feats, feats, pairs)
    t3 = time.perf_counter()
    mosaics = content.mosaic_indices(scanned)
    loner_links = regions.verify_loners(feats, pairs, links, mosaics=mosaics, keys=keys)
    t4 = time.perf_counter()
    links = regions.corroborated(feats, links + loner_links)
    t5 = time.perf_counter()
    return {
        "seconds": t5 - t0,
        "scan": t1 - t0,
        "vote": t2 - t1,
        "verify": t3 - t2,
        "loners": t4 - t3,
        "corroborate": t5 - t4,
        "mosaics": sum(bool(r and r[0] is not None) for r in scanned),
        "unreadable": sum(r is None for r in scanned),
        "candidates": len(pairs),
        "links": len(links),
    }


def run_whole(paths: list[str]) -> dict:
    """The whole-image stage: signature_files, then cluster_items on the signatures."""
    from acnedata.dedup import DedupItem, cluster_items, signature_files

    t0 = time.perf_counter()
    found = signature_files(paths)
    items = [
        DedupItem(key=k, sha256=sha, phash=sig.phash, signature=sig)
        for k, (_, sha, sig) in enumerate(r for r in found if r is not None)
    ]
    clusters = cluster_items(items)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "clusters": len({c for c, _ in clusters.values()})}


def child(stage: str, list_file: Path) -> int:
    """Run one stage on the files listed, print its figures as one JSON line."""
    paths = list_file.read_text().split("\n")
    load0 = os.getloadavg()[0]
    with TreeSampler() as sampler:
        out = (run_regions if stage == "regions" else run_whole)(paths)
    own, kid = rusage_mib()
    out.update(
        n=len(paths),
        tree_peak_mib=sampler.peak_kib / 1024,
        self_peak_mib=own,
        child_peak_mib=kid,
        load=(load0, os.getloadavg()[0]),
    )
    print(json.dumps(out))
    return 0


def in_fresh_process(stage: str, paths: list[Path], work: Path) -> dict:
    list_file = work / f"{stage}-{len(paths)}.txt"
    list_file.write_text("\n".join(str(p) for p in paths))
    cmd = [sys.executable, __file__, "--child", stage, str(list_file)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the report ---------------------------------------------------------------------------------


def _exponent(a: dict, b: dict, key: str) -> float:
    return math.log(b[key] / a[key]) / math.log(b["n"] / a["n"]) if a[key] and b[key] else 0.0


def print_size(r: dict, w: dict) -> None:
    n = r["n"]
    print(
        f"  {n:>6,} images: region stage {r['seconds']:7.1f} s ({1000 * r['seconds'] / n:.1f} ms"
        f"/image; scan {r['scan']:.1f} s, vote {r['vote']:.1f} s, verify {r['verify']:.1f} s, "
        f"loners {r.get('loners', 0.0):.1f} s, corroborate {r.get('corroborate', 0.0):.1f} s), "
        f"{r['candidates']:,} candidate pairs, {r['links']:,} verified links, "
        f"{r['mosaics']:,} mosaics"
    )
    print(
        f"                 peak RSS: tree {r['tree_peak_mib']:.0f} MiB (sampled sum), "
        f"main {r['self_peak_mib']:.0f} MiB, largest worker {r['child_peak_mib']:.0f} MiB; "
        f"load {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
    )
    print(
        f"                 whole-image stage {w['seconds']:6.1f} s ({1000 * w['seconds'] / n:.2f} "
        f"ms/image, {w['clusters']:,} clusters, tree peak {w['tree_peak_mib']:.0f} MiB, load "
        f"{w['load'][0]:.1f} -> {w['load'][1]:.1f}); region / whole-image: "
        f"{r['seconds'] / w['seconds']:.1f}x",
        flush=True,
    )


def print_growth(results: list[tuple[dict, dict]]) -> None:
    print("\ngrowth exponent log(t2/t1) / log(n2/n1) between sizes (2 = quadratic)")
    for (r1, w1), (r2, w2) in itertools.pairwise(results):
        print(
            f"  {r1['n']:>6,} -> {r2['n']:>6,}: "
            f"region stage time {_exponent(r1, r2, 'seconds'):.2f}"
            f" (verify {_exponent(r1, r2, 'verify'):.2f}, vote {_exponent(r1, r2, 'vote'):.2f}), "
            f"candidates {_exponent(r1, r2, 'candidates'):.2f}, "
            f"whole-image time {_exponent(w1, w2, 'seconds'):.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/acnedata-region-speed"))
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "LIST"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child[0], Path(args.child[1]))
    if not args.dir.is_dir():
        print(f"no dataset at {args.dir}; pass --dir", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    paths = build_images(args.dir, args.work / "augmented", max(args.sizes), args.seed)
    real = sum(p.parent == args.dir for p in paths)
    print(
        f"{len(paths):,} images: {real:,} of {args.dir} and {len(paths) - real:,} roboflow_variant"
        f" copies of them in {args.work / 'augmented'} ({time.perf_counter() - t0:.0f} s to make);"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print("each size in a fresh process; the whole-image stage in another, right after")
    results = []
    for n in sorted(args.sizes):
        r = in_fresh_process("regions", paths[:n], args.work)
        w = in_fresh_process("whole", paths[:n], args.work)
        print_size(r, w)
        results.append((r, w))
    print_growth(results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
