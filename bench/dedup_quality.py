"""Benchmark: pair recall/precision of our near-duplicate search vs imagededup 0.3.3 PHash."""

from __future__ import annotations

import argparse
import dataclasses
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

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

from acnedata.dedup import (
    DEFAULT_CONFIG,
    DedupConfig,
    DedupItem,
    UnionFind,
    candidate_pairs,
    cluster_items,
    content,
    perceptual_hash,
    regions,
    signature_files,
    verification_scores,
    verified,
)
from acnedata.dedup.mosaics import find_mosaic_file

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


def _aspect(aspect: float) -> Callable[[Image.Image], Image.Image]:
    """Resize to width/height = aspect, keeping the longer side of the two at the original's."""

    def stretch(im: Image.Image) -> Image.Image:
        w, h = im.size
        size = (w, round(w / aspect)) if aspect < 1 else (round(h * aspect), h)
        return im.resize(size, Image.Resampling.BICUBIC)

    return stretch


def _squeeze_height(share: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((im.width, round(im.height * share)), Image.Resampling.BICUBIC)


def _banner(im: Image.Image) -> Image.Image:
    """An opaque black banner over a fifth of the height, across the middle, with white text."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = im.size
    bh = round(h * 0.2)
    y0 = (h - bh) // 2
    draw.rectangle((0, y0, w, y0 + bh), fill=(0, 0, 0))
    font = ImageFont.load_default(size=max(8, round(bh * 0.6)))
    draw.text((4, y0 + bh // 5), "SKINCARE SALE", fill=(255, 255, 255), font=font)
    return out


def _logo(im: Image.Image, area: float = 0.10) -> Image.Image:
    """An opaque coloured logo box (~10% of the area) with a ring and two letters, top left."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    w, h = im.size
    side = round(math.sqrt(area * w * h))
    draw.rectangle((3, 3, 3 + side, 3 + side), fill=(20, 90, 200))
    draw.ellipse((6, 6, side, side), outline=(255, 255, 255), width=2)
    font = ImageFont.load_default(size=max(8, side // 3))
    draw.text((side // 3, side // 3), "AD", fill=(255, 255, 0), font=font)
    return out


def _combo(
    angle: float, area: float, corner: bool, tone: Callable[[Image.Image], Image.Image]
) -> Callable[[Image.Image], Image.Image]:
    return lambda im: tone(_crop_area(_rotate(angle)(im), area, corner))


def mosaic(photo: Image.Image, others: list[Image.Image], cell: int, split: float) -> Image.Image:
    """A 2x2 mosaic the size of photo: photo squeezed into `cell` (0..3, row-major), the three
    others in the remaining cells; the seams sit at `split` of the width and the height."""
    w, h = photo.size
    sx, sy = round(w * split), round(h * split)
    boxes = [(0, 0, sx, sy), (sx, 0, w, sy), (0, sy, sx, h), (sx, sy, w, h)]
    tiles = [*others[:cell], photo, *others[cell:]]
    out = Image.new("RGB", (w, h))
    for (x0, y0, x1, y1), tile in zip(boxes, tiles, strict=True):
        out.paste(tile.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR), (x0, y0))
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
    # Issue 11's additions. The shared set's photos are square, so "stretch to square" is
    # measured from the other side: a square photo stretched to 4:3, 0.6 and 1.6 (the pairs are
    # the same as a 4:3 / 0.6 / 1.6 photo and its square stretch) and squeezed to 70% height.
    "aspect 4:3 (stretch)": _aspect(4 / 3),
    "aspect 0.6": _aspect(0.6),
    "aspect 1.6": _aspect(1.6),
    "height x0.7": _squeeze_height(0.7),
    "crop 30% removed": lambda im: _crop_area(im, 0.70),
    "crop 30% removed, corner": lambda im: _crop_area(im, 0.70, corner=True),
    "crop 45% removed": lambda im: _crop_area(im, 0.55),
    "crop 45% removed, corner": lambda im: _crop_area(im, 0.55, corner=True),
    "crop 60% removed": lambda im: _crop_area(im, 0.40),
    "crop 60% removed, corner": lambda im: _crop_area(im, 0.40, corner=True),
    "text banner 20% height": _banner,
    "logo box 10% area": _logo,
    "rot 10° + crop 80% + bright": _combo(10, 0.80, False, _enhance(ImageEnhance.Brightness, 1.25)),
    "rot -15° + corner 70% + contr.": _combo(
        -15, 0.70, True, _enhance(ImageEnhance.Contrast, 0.75)
    ),
    "rot 7° + crop 60% + gamma 1.4": _combo(7, 0.60, False, lambda im: _gamma(im, 1.4)),
}

# name -> seam position of a 2x2 mosaic holding the photo in one cell (see mosaic()).
MOSAICS: dict[str, float] = {"mosaic tile, 2x2 even": 0.5, "mosaic tile, 2x2 seams at 0.4": 0.4}
KINDS = [*TRANSFORMS, *MOSAICS]


# Copies the screen sees each candidate as, besides itself: resampled to another shape, the
# matcher finds other keypoints, and two photos of one scene that it misses as they are show up.
SCREEN_VIEWS = ("height x0.7", "aspect 1.6")


def screen_links(candidates: list[Path], work: Path) -> dict[int, set[int]]:
    """Candidate index -> the candidates the region matcher links it to, any view to any view.

    The set holds a few photos under two uploads (shifted by a few pixels, cropped, or pasted
    into a collage, and overlapping shots of one patch of skin), and a bench whose truth calls
    them strangers counts every right link between them as false. Corroboration is off here:
    it would ask a candidate's views to agree, and one view's link is enough to doubt a pair.
    """
    folder = work / "screen"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    paths, owner = [], []
    for k, path in enumerate(candidates):
        paths.append(str(path))
        owner.append(k)
        rgb = _rgb(path)
        for v, view in enumerate(SCREEN_VIEWS):
            view_path = folder / f"c{k:04d}_v{v}.png"
            TRANSFORMS[view](rgb).save(view_path)  # type: ignore[union-attr]
            paths.append(str(view_path))
            owner.append(k)
    scanned = content.scan_files(paths)
    feats = [result[1] if result else None for result in scanned]
    config = dataclasses.replace(regions.DEFAULT_REGION_CONFIG, corroborate=False)
    linked: dict[int, set[int]] = defaultdict(set)
    for m in regions.match_within(feats, config):
        a, b = owner[m.a], owner[m.b]
        if a != b:
            linked[a].add(b)
            linked[b].add(a)
    return linked


def pick_originals(
    folder: Path, n: int, seed: int, work: Path
) -> tuple[list[Path], int, list[tuple[Path, Path]]]:
    """n distinct source photos: one file per Roboflow '.rf.' prefix (the rest are augmented
    copies of it), never a mosaic (find_mosaic_file), skipping any whose plain pHash is within 10
    bits of one already picked or that screen_links links to one. Returns (picked, skipped, the
    pairs skipped for a shared region: each is shown in WORK/screened.png for a person to check).
    """
    by_stem: dict[str, Path] = {}
    for path in sorted(folder.glob("*.jpg")):
        stem = path.name.split(".rf.")[0]
        if stem not in by_stem and find_mosaic_file(path) is None:
            by_stem[stem] = path
    candidates = sorted(by_stem.values())
    random.Random(seed).shuffle(candidates)
    linked = screen_links(candidates, work)
    picked: list[int] = []
    hashes: list[int] = []
    skipped = 0
    screened: list[tuple[Path, Path]] = []
    for k, path in enumerate(candidates):
        if len(picked) == n:
            break
        h = int(perceptual_hash(path), 16)
        shared = sorted(linked.get(k, set()) & set(picked))
        if any((h ^ other).bit_count() <= 10 for other in hashes) or shared:
            skipped += 1
            screened += [(candidates[j], path) for j in shared]
            continue
        picked.append(k)
        hashes.append(h)
    return [candidates[k] for k in picked], skipped, screened


def contact_sheet(pairs: list[tuple[Path, Path]], out: Path, side: int = 160) -> None:
    """The pairs side by side, a row each, for a person to confirm they share content."""
    sheet = Image.new("RGB", (2 * side + 30, max(1, len(pairs)) * (side + 10)), "white")
    for row, pair in enumerate(pairs):
        for col, path in enumerate(pair):
            im = _rgb(path)
            im.thumbnail((side, side))
            sheet.paste(im, (col * (side + 10), row * (side + 10)))
    sheet.save(out)


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def make_files(originals: list[Path], fillers: list[Path], out: Path) -> dict[str, tuple[int, str]]:
    """Write originals and their transformed copies into out; file name -> (group, transform).
    The mosaic copies of a photo hold three fillers of its own: photos of other uploads, used
    for no other photo (one shared by two groups would rightly link them)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    truth: dict[str, tuple[int, str]] = {}
    for g, path in enumerate(originals):
        name = f"g{g:04d}_original.jpg"
        shutil.copyfile(path, out / name)
        truth[name] = (g, "original")
        rgb = _rgb(path)
        others = [_rgb(f) for f in fillers[g * 3 : g * 3 + 3]]
        for m, (kind, split) in enumerate(MOSAICS.items()):
            name = f"g{g:04d}_m{m}.png"
            mosaic(rgb, others, (g + m) % 4, split).save(out / name)
            truth[name] = (g, kind)
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
    joined = verified(items, pairs, scores, config)
    seconds = time.perf_counter() - t0
    edges = {
        tuple(sorted((names[i], names[j]))) for (i, j), ok in zip(pairs, joined, strict=True) if ok
    }
    return edges, seconds, items, list(zip(pairs, scores, strict=True))  # type: ignore[return-value]


def region_stage(
    folder: Path, names: list[str]
) -> tuple[set[tuple[str, str]], float, dict[str, bool]]:
    """The pipeline's content stage on the files: content.scan_files (a mosaic's features found
    tile by tile), then regions.match_within over every file's features (mosaics included, as
    under the `group` policy). Returns (region edges, seconds, file name -> flagged mosaic)."""
    t0 = time.perf_counter()
    scanned = content.scan_files([str(folder / n) for n in names])
    feats = [result[1] if result else None for result in scanned]
    mosaics = content.mosaic_indices(scanned)
    matches = regions.match_within(feats, mosaics=mosaics)
    seconds = time.perf_counter() - t0
    edges = {tuple(sorted((names[m.a], names[m.b]))) for m in matches}
    marks = [bool(result and result[0] is not None) for result in scanned]
    flagged = dict(zip(names, marks, strict=True))
    return edges, seconds, flagged  # type: ignore[return-value]


def _headline(rows: list[tuple[str, tuple, tuple]], target_row: str) -> None:
    """Issue 11's figure: near-copy recall at precision, each method, same images, same run."""
    print("\nnear-copy recall at precision (all pairs of files, clusters = transitive closure):")
    for method, (p, r, _, _), _ in rows:
        print(f"  {method:<40} recall {r:.3f} at precision {p:.3f}")
    p, r = next(scores[:2] for method, scores, _ in rows if method == target_row)
    met = "met" if r >= 0.95 and p >= 0.99 else "NOT met"
    print(f"  target recall >= 0.95 at precision >= 0.99, {target_row}: {met}")


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
    # at most a quarter of the photos the screen keeps (fillers take the rest): 99 on the set
    parser.add_argument("-n", type=int, default=99, help="distinct source photos to transform")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/acnedata-dedup-quality"))
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    parser.add_argument("--no-peer", action="store_true", help="skip imagededup")
    parser.add_argument("--sweep", action="store_true", help="also sweep our two thresholds")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"no dataset at {args.dir}; pass --dir", file=sys.stderr)
        return 1

    picked, skipped, screened = pick_originals(args.dir, args.n * 4, args.seed, args.work)
    n = min(args.n, len(picked) // 4)  # each original's mosaic tiles need three fillers
    if n < args.n:
        print(f"only {len(picked)} distinct photos: -n {args.n} asked, {n} used")
    if n < 1:
        return 1
    originals, fillers = picked[:n], picked[n:]
    files = args.work / "files"
    truth = make_files(originals, fillers, files)
    names = sorted(truth)
    copies = len(names) - len(originals)
    true_pairs = sum(math.comb(k, 2) for k in Counter(g for g, _ in truth.values()).values())
    print(
        f"{len(originals)} distinct source photos (no mosaics) from {args.dir} ({skipped} skipped "
        f"as near copies of one already picked), {len(KINDS)} transforms each: "
        f"{len(names)} files, {copies} copies, {true_pairs} true pairs; mosaic tiles filled with "
        f"{3 * len(originals)} photos of other uploads"
    )
    if screened:
        contact_sheet(screened, args.work / "screened.png")
        print(
            f"  {len(screened)} candidates skipped for a region shared with one picked "
            f"(pairs shown in {args.work / 'screened.png'}):"
        )
        for a, b in screened:
            print(f"    {a.name} ~ {b.name}")
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

    region_edges, region_seconds, flagged = region_stage(files, names)
    union = our_edges | region_edges
    target_row = "ours, whole-image + region stage"
    rows.append((target_row, pair_scores(components(names, union), truth),
                 edge_scores(union, truth)))  # fmt: skip
    tables["ours + regions"] = per_transform(components(names, union), union, truth)
    print(
        f"  region stage (content.scan_files + regions.match_within) on {len(names)} files: "
        f"{region_seconds:.1f} s, {len(region_edges)} verified links, "
        f"{sum(flagged.values())} files flagged as mosaics"
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

    _headline(rows, target_row)
    _print_table(tables, flagged, truth)
    _print_false(our_edges, truth, originals, "whole-image")
    _print_false(region_edges - our_edges, truth, originals, "region stage (not whole-image)")

    if args.sweep:
        _sweep(names, items, scored, truth, cfg)
    return 0


def _print_table(tables: dict, flagged: dict[str, bool], truth: dict) -> None:
    print("\nper transform: share of copies in their original's cluster (direct pair in brackets);")
    print("last column: share of the copies the region stage's scan flagged as mosaics")
    print(f"  {'transform':<32}" + "".join(f"{m:>22}" for m in tables) + f"{'mosaic':>8}")
    for kind in KINDS:
        cells = "".join(f"{t[kind][0]:>14.3f} ({t[kind][1]:.3f})" for t in tables.values())
        kind_files = [n for n, (_, k) in truth.items() if k == kind]
        share = sum(flagged[n] for n in kind_files) / len(kind_files)
        print(f"  {kind:<32}{cells}{share:>8.3f}")


def _print_false(edges: set, truth: dict, originals: list[Path], label: str) -> None:
    false_edges = sorted((a, b) for a, b in edges if truth[a][0] != truth[b][0])
    print(f"\nour false pairs, {label}: {len(false_edges)}")
    by_groups = Counter(tuple(sorted((truth[a][0], truth[b][0]))) for a, b in false_edges)
    top = ", ".join(f"g{x:04d}~g{y:04d}: {k}" for (x, y), k in by_groups.most_common(8))
    print(f"  between {len(by_groups)} pairs of groups; most: {top}")
    by_kinds = Counter(tuple(sorted((truth[a][1], truth[b][1]))) for a, b in false_edges)
    kinds = ", ".join(f"{x} ~ {y}: {k}" for (x, y), k in by_kinds.most_common(6))
    print(f"  by transforms: {kinds}")
    for a, b in false_edges[:10]:
        print(f"  {a} ({truth[a][1]}, {originals[truth[a][0]].name})")
        print(f"    ~ {b} ({truth[b][1]}, {originals[truth[b][0]].name})")


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
