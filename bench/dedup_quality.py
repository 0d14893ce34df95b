"""Benchmark: pair recall/precision of our near-duplicate search vs imagededup 0.3.3 PHash."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from acnedata.dedup import (
    DEFAULT_CONFIG,
    DedupConfig,
    DedupItem,
    UnionFind,
    candidate_pairs,
    cluster_items,
    perceptual_hash,
    signature_files,
    verification_scores,
)

DEFAULT_DIR = Path("/work/shared/datasets/acne-roboflow-cc-by-4.0/images")
PEER_VENV = Path("/tmp/imagededup-venv")
PEER_THRESHOLD = 10  # imagededup's default max_distance_threshold

# --- the peer, imagededup 0.3.3, in its own virtualenv ------------------------------------------

# Run inside the peer's venv. imagededup.methods imports its CNN class, which downloads
# MobileNet weights at import time (no network here) and needs torch; PHash uses neither, so the
# CNN, its model wrapper and the matplotlib plotter are replaced by empty modules. The hashing
# and search code that runs is imagededup's own.
PEER_RUNNER = r"""
import json, sys, time, types
for name, attr in (("imagededup.methods.cnn", "CNN"), ("imagededup.utils.models", "CustomModel"),
                   ("imagededup.utils.plotter", "plot_duplicates")):
    module = types.ModuleType(name)
    setattr(module, attr, None)
    sys.modules[name] = module
from imagededup.methods import PHash
job = json.load(open(sys.argv[1]))
phasher = PHash(verbose=False)
out = {}
if job.get("image_dir"):
    t0 = time.perf_counter()
    out["encodings"] = phasher.encode_images(image_dir=job["image_dir"])
    out["encode_seconds"] = time.perf_counter() - t0
encodings = job.get("encodings") or out.get("encodings")
if job.get("find") and encodings:
    t0 = time.perf_counter()
    out["duplicates"] = phasher.find_duplicates(
        encoding_map=encodings, max_distance_threshold=job["threshold"])
    out["find_seconds"] = time.perf_counter() - t0
json.dump(out, open(sys.argv[2], "w"))
"""


def ensure_peer(venv: Path = PEER_VENV) -> Path:
    """Python of a venv with imagededup==0.3.3, created on first use. Returns its interpreter.

    What worked on Python 3.11: `pip install --no-deps imagededup==0.3.3` (a cp311 manylinux
    wheel with its compiled brute-force search) plus only what PHash imports (numpy, scipy,
    PyWavelets, Pillow, tqdm, scikit-learn). Its declared torch/torchvision/matplotlib are not
    needed once the CNN modules are stubbed (see PEER_RUNNER) and would pull several GB.
    """
    python = venv / "bin" / "python"
    probe = "import imagededup, brute_force_cython_ext; print(imagededup.__file__)"
    if (
        python.exists()
        and subprocess.run([python, "-c", probe], capture_output=True).returncode == 0
    ):
        return python
    print(f"installing imagededup 0.3.3 into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "imagededup==0.3.3"], check=True)
    deps = ["numpy", "scipy", "PyWavelets", "Pillow", "tqdm", "scikit-learn"]
    subprocess.run([*pip, *deps], check=True)
    return python


def run_peer(python: Path, job: dict, work: Path) -> dict:
    """Run PEER_RUNNER on a job in the peer's venv; returns its JSON result."""
    work.mkdir(parents=True, exist_ok=True)
    script, job_file, out_file = work / "peer_runner.py", work / "peer_job.json", work / "peer.json"
    script.write_text(PEER_RUNNER)
    job_file.write_text(json.dumps(job))
    subprocess.run([str(python), str(script), str(job_file), str(out_file)], check=True)
    return json.loads(out_file.read_text())


# --- transforms ---------------------------------------------------------------------------------


def _jpeg_bytes(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _crop_area(im: Image.Image, area: float, corner: bool = False) -> Image.Image:
    side = math.sqrt(area)
    w, h = im.size
    cw, ch = round(w * side), round(h * side)
    left, top = (0, 0) if corner else ((w - cw) // 2, (h - ch) // 2)
    return im.crop((left, top, left + cw, top + ch))


def _gamma(im: Image.Image, gamma: float) -> Image.Image:
    lut = [round(255 * (i / 255) ** gamma) for i in range(256)]
    return im.point(lut * 3)


def _watermark(im: Image.Image, area: float = 0.04) -> Image.Image:
    """A semi-transparent white box with a copyright line, `area` of the picture, bottom right."""
    out = im.copy()
    draw = ImageDraw.Draw(out, "RGBA")
    w, h = im.size
    bw = round(w * 0.4)
    bh = max(4, round(area * w * h / bw))
    x0, y0 = w - bw - 2, h - bh - 2
    draw.rectangle((x0, y0, x0 + bw, y0 + bh), fill=(255, 255, 255, 160))
    draw.text((x0 + 2, y0 + max(0, (bh - 10) // 2)), "© photo.example", fill=(0, 0, 0, 255))
    return out


def _rotate(angle: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.rotate(angle, resample=Image.Resampling.BICUBIC)


def _enhance(kind: type, factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: kind(im).enhance(factor)


# name -> transform; a transform returning bytes is saved as is (JPEG), an image as PNG.
TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image | bytes]] = {
    "rotate 5°": _rotate(5),
    "rotate -10°": _rotate(-10),
    "rotate 15°": _rotate(15),
    "rotate -7° (off-grid)": _rotate(-7),
    "crop 95% area": lambda im: _crop_area(im, 0.95),
    "crop 90% area": lambda im: _crop_area(im, 0.90),
    "crop 80% area": lambda im: _crop_area(im, 0.80),
    "crop 80% corner": lambda im: _crop_area(im, 0.80, corner=True),
    "brightness +20%": _enhance(ImageEnhance.Brightness, 1.2),
    "brightness -20%": _enhance(ImageEnhance.Brightness, 0.8),
    "brightness +40%": _enhance(ImageEnhance.Brightness, 1.4),
    "brightness -40%": _enhance(ImageEnhance.Brightness, 0.6),
    "contrast x0.7": _enhance(ImageEnhance.Contrast, 0.7),
    "contrast x1.4": _enhance(ImageEnhance.Contrast, 1.4),
    "gamma 0.7": lambda im: _gamma(im, 0.7),
    "gamma 1.5": lambda im: _gamma(im, 1.5),
    "grayscale": lambda im: im.convert("L").convert("RGB"),
    "jpeg q90": lambda im: _jpeg_bytes(im, 90),
    "jpeg q60": lambda im: _jpeg_bytes(im, 60),
    "jpeg q30": lambda im: _jpeg_bytes(im, 30),
    "resize 50%": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "resize 200%": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC),
    "hflip": ImageOps.mirror,
    "vflip": ImageOps.flip,
    "rot90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "rot180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "rot270": lambda im: im.transpose(Image.Transpose.ROTATE_270),
    "watermark 4% area": _watermark,
}


def pick_originals(folder: Path, n: int, seed: int) -> tuple[list[Path], int]:
    """n distinct source photos: one file per Roboflow '.rf.' prefix (the rest are augmented
    copies of it), skipping any whose plain pHash is within 4 bits of one already picked (the
    set has a few identical photos under different names). Returns (picked, skipped)."""
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.glob("*.jpg")):
        by_stem.setdefault(path.name.split(".rf.")[0], path)
    candidates = sorted(by_stem.values())
    random.Random(seed).shuffle(candidates)
    picked: list[Path] = []
    hashes: list[int] = []
    skipped = 0
    for path in candidates:
        if len(picked) == n:
            break
        h = int(perceptual_hash(path), 16)
        if any((h ^ other).bit_count() <= 4 for other in hashes):
            skipped += 1
            continue
        picked.append(path)
        hashes.append(h)
    return picked, skipped


def make_files(originals: list[Path], out: Path) -> dict[str, tuple[int, str]]:
    """Write originals and their transformed copies into out; file name -> (group, transform)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    truth: dict[str, tuple[int, str]] = {}
    for g, path in enumerate(originals):
        name = f"g{g:04d}_original.jpg"
        shutil.copyfile(path, out / name)
        truth[name] = (g, "original")
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        for t, (kind, transform) in enumerate(TRANSFORMS.items()):
            result = transform(rgb)
            if isinstance(result, bytes):
                name = f"g{g:04d}_t{t:02d}.jpg"
                (out / name).write_bytes(result)
            else:
                name = f"g{g:04d}_t{t:02d}.png"
                result.save(out / name)
            truth[name] = (g, kind)
    return truth


# --- metrics ------------------------------------------------------------------------------------


def components(names: list[str], edges: set[tuple[str, str]]) -> dict[str, int]:
    uf = UnionFind()
    for name in names:
        uf.add(name)
    for a, b in edges:
        uf.union(a, b)
    roots: dict[object, int] = {}
    return {name: roots.setdefault(uf.find(name), len(roots)) for name in names}


def pair_scores(cluster_of: dict[str, int], truth: dict[str, tuple[int, str]]) -> tuple[float, ...]:
    """(precision, recall, false pairs, predicted pairs) over all pairs of files, by cluster."""
    both = Counter((cluster_of[n], truth[n][0]) for n in truth)
    by_cluster = Counter(cluster_of[n] for n in truth)
    by_group = Counter(truth[n][0] for n in truth)
    tp = sum(math.comb(k, 2) for k in both.values())
    predicted = sum(math.comb(k, 2) for k in by_cluster.values())
    actual = sum(math.comb(k, 2) for k in by_group.values())
    precision = tp / predicted if predicted else 1.0
    return precision, tp / actual, predicted - tp, predicted


def edge_scores(edges: set[tuple[str, str]], truth: dict[str, tuple[int, str]]) -> tuple:
    """(precision, recall of original-copy pairs) of the pairs a method reports directly."""
    good = sum(truth[a][0] == truth[b][0] for a, b in edges)
    originals = {truth[n][0]: n for n in truth if truth[n][1] == "original"}
    direct = sum(
        tuple(sorted((n, originals[g]))) in edges
        for n, (g, kind) in truth.items()
        if kind != "original"
    )
    copies = sum(kind != "original" for _, kind in truth.values())
    return (good / len(edges) if edges else 1.0), direct / copies


def per_transform(
    cluster_of: dict[str, int], edges: set[tuple[str, str]], truth: dict[str, tuple[int, str]]
) -> dict[str, tuple[float, float]]:
    """transform -> (share of copies in their original's cluster, share with a direct pair)."""
    originals = {g: n for n, (g, kind) in truth.items() if kind == "original"}
    found: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for name, (g, kind) in truth.items():
        if kind == "original":
            continue
        orig = originals[g]
        found[kind].append(
            (cluster_of[name] == cluster_of[orig], tuple(sorted((name, orig))) in edges)
        )
    return {
        kind: (sum(c for c, _ in v) / len(v), sum(d for _, d in v) / len(v))
        for kind, v in found.items()
    }


# --- the run ------------------------------------------------------------------------------------


def ours(
    folder: Path, names: list[str], config: DedupConfig
) -> tuple[set[tuple[str, str]], float, list, list]:
    """Verified near-duplicate pairs among the files, seconds taken, items and candidates."""
    t0 = time.perf_counter()
    found = signature_files([str(folder / n) for n in names], config)
    items = [
        DedupItem(key=n, sha256=sha, phash=sig.phash, signature=sig)
        for n, (_, sha, sig) in zip(names, found, strict=True)  # type: ignore[misc]
    ]
    ci, cj = candidate_pairs(items, config.hash_threshold)
    pairs = list(zip(ci.tolist(), cj.tolist(), strict=True))
    scores = verification_scores(items, pairs, config).tolist()
    seconds = time.perf_counter() - t0
    edges = {
        tuple(sorted((names[i], names[j])))
        for (i, j), s in zip(pairs, scores, strict=True)
        if s >= config.verify_threshold
    }
    return edges, seconds, items, list(zip(pairs, scores, strict=True))  # type: ignore[return-value]


def _print_summary(rows: list[tuple[str, tuple, tuple]]) -> None:
    print(
        f"  {'method':<34}{'precision':>10}{'recall':>8}{'false pairs':>13}"
        f"{'edge prec.':>12}{'orig-copy found':>17}"
    )
    for method, (p, r, fp, pred), (ep, er) in rows:
        print(f"  {method:<34}{p:>10.3f}{r:>8.3f}{fp:>6}/{pred:<6}{ep:>12.3f}{er:>17.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("-n", type=int, default=200, help="distinct source photos to transform")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/acnedata-dedup-quality"))
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--no-peer", action="store_true", help="skip imagededup")
    parser.add_argument("--sweep", action="store_true", help="also sweep our two thresholds")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"no dataset at {args.dir}; pass --dir", file=sys.stderr)
        return 1

    originals, skipped = pick_originals(args.dir, args.n, args.seed)
    files = args.work / "files"
    truth = make_files(originals, files)
    names = sorted(truth)
    copies = len(names) - len(originals)
    true_pairs = sum(math.comb(k, 2) for k in Counter(g for g, _ in truth.values()).values())
    print(
        f"{len(originals)} distinct source photos from {args.dir} ({skipped} skipped as "
        f"identical to one already picked), {len(TRANSFORMS)} transforms each: "
        f"{len(names)} files, {copies} copies, {true_pairs} true pairs"
    )
    cfg = DEFAULT_CONFIG
    print(
        f"ours: candidates at <= {cfg.hash_threshold} bits (pHash vs the other's pHash, "
        f"flips/turns, rotations, crops), verified at correlation >= {cfg.verify_threshold}"
    )

    our_edges, our_seconds, items, scored = ours(files, names, cfg)
    rows = [("ours (default config)", pair_scores(components(names, our_edges), truth),
             edge_scores(our_edges, truth))]  # fmt: skip
    tables = {"ours": per_transform(components(names, our_edges), our_edges, truth)}
    t0 = time.perf_counter()
    clustered = cluster_items(items, config=cfg)
    cluster_seconds = time.perf_counter() - t0
    by_id: dict[str, int] = {}
    ours_clusters = {n: by_id.setdefault(clustered[n][0], len(by_id)) for n in names}
    same = pair_scores(ours_clusters, truth) == rows[0][1]
    print(
        f"  ours: signatures + candidates + verifying every candidate of {len(names)} files: "
        f"{our_seconds:.1f} s; cluster_items (verifies only until joined): {cluster_seconds:.1f} s"
        f" ({'same clusters' if same else 'CLUSTERS DIFFER'})"
    )

    if not args.no_peer:
        python = ensure_peer(args.peer_venv)
        peer = run_peer(python, {"image_dir": str(files), "find": True,
                                 "threshold": PEER_THRESHOLD}, args.work)  # fmt: skip
        peer_edges = {tuple(sorted((a, b))) for a, dups in peer["duplicates"].items() for b in dups}
        peer_clusters = components(names, peer_edges)  # type: ignore[arg-type]
        label = f"imagededup 0.3.3 PHash (t={PEER_THRESHOLD})"
        peer_pairs = pair_scores(peer_clusters, truth)
        rows.append((label, peer_pairs, edge_scores(peer_edges, truth)))  # type: ignore[arg-type]
        tables["imagededup"] = per_transform(peer_clusters, peer_edges, truth)  # type: ignore[arg-type]
        print(
            f"  imagededup: encode_images {peer['encode_seconds']:.1f} s, "
            f"find_duplicates {peer['find_seconds']:.1f} s"
        )

    print("\npair precision / recall over all pairs of files (clusters = transitive closure)")
    _print_summary(rows)

    print("\nper transform: share of copies in their original's cluster (direct pair in brackets)")
    header = f"  {'transform':<24}" + "".join(f"{m:>22}" for m in tables)
    print(header)
    for kind in TRANSFORMS:
        cells = "".join(f"{t[kind][0]:>14.3f} ({t[kind][1]:.3f})" for t in tables.values())
        print(f"  {kind:<24}{cells}")

    false_edges = sorted((a, b) for a, b in our_edges if truth[a][0] != truth[b][0])
    print(f"\nour false pairs: {len(false_edges)}")
    for a, b in false_edges[:10]:
        print(f"  {a} ({truth[a][1]}, {originals[truth[a][0]].name})")
        print(f"    ~ {b} ({truth[b][1]}, {originals[truth[b][0]].name})")

    if args.sweep:
        _sweep(names, items, scored, truth, cfg)
    return 0


def _sweep(names, items, scored, truth, cfg) -> None:
    """Our precision/recall for other (hash, verify) thresholds, from one wider candidate set."""
    wide = 14
    ci, cj = candidate_pairs(items, wide)
    pairs = list(zip(ci.tolist(), cj.tolist(), strict=True))
    scores = verification_scores(items, pairs, cfg).tolist()
    # The hash distance that made each pair a candidate: smallest threshold that still finds it.
    level: dict[tuple[int, int], int] = {}
    for t in range(wide, -1, -1):
        ti, tj = candidate_pairs(items, t)
        for p in zip(ti.tolist(), tj.tolist(), strict=True):
            level[p] = t
    print(f"\nsweep: cluster-level precision / recall ({len(pairs)} candidates at <= {wide} bits)")
    taus = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94)
    print(f"  {'hash bits':<10}" + "".join(f"{'r>=' + str(t):>16}" for t in taus))
    for t in (6, 8, 10, 12, 14):
        cells = []
        for tau in taus:
            edges = {
                (names[i], names[j])
                for (i, j), s in zip(pairs, scores, strict=True)
                if s >= tau and level[(i, j)] <= t
            }
            p, r, _, _ = pair_scores(components(names, edges), truth)  # type: ignore[arg-type]
            cells.append(f"{p:.3f}/{r:.3f}")
        print(f"  {t:<10}" + "".join(f"{c:>16}" for c in cells))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
