"""Expansion: augmented copies of items up to a target count, each naming its parent."""

from __future__ import annotations

import copy
import hashlib
import io
import os
import random
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from acnedata.manifest import MANIFEST_NAME, Manifest, write_manifest
from acnemodel.augment import AugmentConfig, build_augmenter
from acnemodel.errors import ModelError
from acnemodel.images import read_rgb

Item = dict[str, Any]
BATCH = 64  # copies augmented per call; bigger batches amortise Keras's per-call overhead


def may_derive(item: Item) -> bool:
    """False when the item's licence forbids derivatives (the manifest says so per item)."""
    return not item["licence"].get("no_derivatives", False)


@dataclass
class CopyPlan:
    """Which copies to make: new items (no file yet), plus classes that could not reach N."""

    copies: list[Item] = field(default_factory=list)
    short: dict[str, int] = field(default_factory=dict)  # label → copies it still lacks


def plan_copies(
    items: Sequence[Item], to: int, *, per_class: bool = False, seed: int = 0
) -> CopyPlan:
    """Plan copies so the pool reaches `to` items (in total, or per class).

    Parents are originals whose licence allows derivatives — never ND items, never copies — taken
    round-robin in a seeded order, so every parent gets about the same number of copies, as when
    ImageDataGenerator runs over a folder a fixed number of times.
    """
    if to < 1:
        raise ModelError(f"--to must be a positive count, not {to}")
    parents = [i for i in items if may_derive(i) and "parent" not in i]
    random.Random(seed).shuffle(parents)
    plan = CopyPlan()
    if per_class:
        counts = Counter(i["label"] for i in items)
        for label in sorted(counts):
            own = [p for p in parents if p["label"] == label]
            need = to - counts[label]
            if need > 0 and not own:
                plan.short[label] = need
            elif need > 0:
                plan.copies += _round_robin(own, need)
    else:
        need = to - len(items)
        if need > 0 and not parents:
            raise ModelError(
                "no item may be augmented: every item is a copy or its licence forbids derivatives"
            )
        if need > 0:
            plan.copies = _round_robin(parents, need)
    _name_copies(plan.copies, {i["id"] for i in items})
    return plan


def _round_robin(parents: list[Item], need: int) -> list[Item]:
    out = []
    for n in range(need):
        parent = parents[n % len(parents)]
        child = copy.deepcopy(parent)
        for key in ("sha256", "original_sha256", "phash", "width", "height", "format"):
            child.pop(key, None)
        child["parent"] = parent["id"]
        # same cluster as the parent: the honest split keeps a photo and its copies together
        child["cluster"] = parent["cluster"]
        child["label_reason"] = f"augmented copy of {parent['id']}"
        out.append(child)
    return out


def _name_copies(copies: list[Item], taken: set[str]) -> None:
    counter: Counter[str] = Counter()
    for child in copies:
        while True:
            counter[child["parent"]] += 1
            new_id = f"{child['parent']}~aug{counter[child['parent']]}"
            if new_id not in taken:
                break
        child["id"] = new_id
        taken.add(new_id)


def render_copies(
    manifest: Manifest, copies: Sequence[Item], config: AugmentConfig, seed: int
) -> Iterator[tuple[Item, np.ndarray]]:
    """Yield (copy, uint8 RGB pixels) for every planned copy, augmented at the parent's own size.

    Copies of one size are augmented in batches; the order is fixed, so the pixels are too.
    """
    if not copies:
        return
    import tensorflow as tf

    augmenter = None
    if not config.is_identity():
        stack = build_augmenter(config, seed)
        # one traced graph per image shape: eager Keras layers cost ~6 ms per image here
        augmenter = tf.function(lambda x: stack(x, training=True), reduce_retracing=True)
    by_id = {i["id"]: i for i in manifest.items}
    pixels_of: dict[str, np.ndarray] = {}
    pending: dict[tuple[int, ...], list[tuple[Item, np.ndarray]]] = defaultdict(list)

    def flush(shape: tuple[int, ...]) -> Iterator[tuple[Item, np.ndarray]]:
        batch = pending.pop(shape)
        images = np.stack([p for _, p in batch]).astype(np.float32) / 255.0
        if augmenter is not None:
            images = augmenter(tf.constant(images)).numpy()
        out = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
        for (child, _), pixels in zip(batch, out, strict=True):
            yield child, pixels

    for child in copies:
        parent_id = child["parent"]
        if parent_id not in pixels_of:
            pixels_of[parent_id] = read_rgb(manifest.file_path(by_id[parent_id]))
        pixels = pixels_of[parent_id]
        pending[pixels.shape].append((child, pixels))
        if len(pending[pixels.shape]) == BATCH:
            yield from flush(pixels.shape)
    for shape in list(pending):
        yield from flush(shape)


@dataclass
class ExpandResult:
    manifest: Path
    written: int
    total: int
    short: dict[str, int]


def expand_manifest(
    manifest: Manifest,
    out_dir: str | Path,
    to: int,
    *,
    per_class: bool = False,
    config: AugmentConfig | None = None,
    seed: int = 0,
) -> ExpandResult:
    """Write augmented copies (PNG) and a new manifest in `out_dir` naming each copy's parent.

    The new manifest lists the original items too, their files hard-linked into `out_dir` under
    the same names (copied where links cannot be made): a manifest names only files inside its
    own folder, so the expanded dataset stands on its own.
    """
    from acnemodel import __version__

    config = config or AugmentConfig()
    out = Path(out_dir)
    target = out if out.suffix == ".json" else out / MANIFEST_NAME
    if target.resolve() == manifest.path.resolve():
        raise ModelError(f"{target}: would overwrite the input manifest; choose another --out")
    folder = target.parent
    (folder / "augmented").mkdir(parents=True, exist_ok=True)

    plan = plan_copies(manifest.items, to, per_class=per_class, seed=seed)
    items = []
    for item in manifest.items:
        _link(manifest.file_path(item), folder / item["file"])
        items.append(dict(item))
    # an expanded manifest expanded again: its copies' names stay taken
    used_names = {
        PurePosixPath(i["file"]).name for i in manifest.items if i["file"].startswith("augmented/")
    }
    written = []
    for child, pixels in render_copies(manifest, plan.copies, config, seed):
        name = _file_name(child["id"], used_names)
        data = _png_bytes(pixels)
        _atomic_write_bytes(folder / "augmented" / name, data)
        child.update(
            file=f"augmented/{name}",
            sha256=hashlib.sha256(data).hexdigest(),
            width=int(pixels.shape[1]),
            height=int(pixels.shape[0]),
            format="PNG",
        )
        written.append(child)
    # keep the plan's order in the manifest, whatever order the batches finished in
    order = {c["id"]: n for n, c in enumerate(plan.copies)}
    items += sorted(written, key=lambda c: order[c["id"]])

    data = copy.deepcopy(manifest.data)
    data["name"] = f"{manifest.name}-expanded-{to}{'-per-class' if per_class else ''}"
    data["created"] = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    data["tool"] = {"name": "acnemodel", "version": __version__}
    data["items"] = items
    counts = dict(data.get("counts", {}))
    counts.update(
        items=len(items),
        augmented_copies=len(written),
        classes=dict(sorted(Counter(i["label"] for i in items).items())),
    )
    data["counts"] = counts
    path = write_manifest(target, data)
    return ExpandResult(manifest=path, written=len(written), total=len(items), short=plan.short)


def _link(src: Path, dst: Path) -> None:
    """Make dst the file src is: a hard link (no space used), or a copy across file systems."""
    if not src.is_file():
        raise ModelError(f"{src}: file missing; run `acnedata verify` on the input manifest")
    if dst.is_file() and os.path.samefile(src, dst):
        return  # linked by an earlier run, or the input's own folder
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        os.unlink(tmp)  # only the unique name was wanted
        try:
            os.link(src, tmp)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_name(item_id: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9._~-]+", "_", item_id)[:120]
    name = f"{stem}.png"
    if name in used:  # two ids that sanitise alike: disambiguate with a hash of the real id
        name = f"{stem}-{hashlib.sha256(item_id.encode()).hexdigest()[:8]}.png"
    used.add(name)
    return name


def _png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # PNG: lossless, so the sha256 in the manifest is of exactly the pixels we made
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
