"""Manifest → checked items → split by protocol → decoded [0, 1] arrays → tf.data datasets."""

from __future__ import annotations

import functools
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acnedata.audit import Leak
from acnedata.manifest import Manifest, load_manifest
from acnemodel import leaks as leak_audit
from acnemodel import split
from acnemodel.augment import AugmentConfig, augment_where, build_augmenter
from acnemodel.errors import ModelError
from acnemodel.expand import CopyPlan, may_derive, plan_copies, render_copies
from acnemodel.images import check_interpolation, load_input, to_input
from acnemodel.leak_repair import repair_split
from acnemodel.seeding import seed_everything

if TYPE_CHECKING:
    import tensorflow as tf

Item = dict[str, Any]
PROTOCOLS = ("honest", "paper")
PAPER_TOTAL = 20_793  # the paper's pool after augmentation: 15,594 train + 5,199 test
DEFAULT_AUGMENT = AugmentConfig()


def open_manifest(path: str | Path) -> Manifest:
    """load_manifest plus what training needs: every file present, every class non-empty."""
    manifest = load_manifest(path)
    where = manifest.path
    if not manifest.items:
        raise ModelError(f"{where}: the manifest has no items")
    for item in manifest.items:
        if not manifest.file_path(item).is_file():
            raise ModelError(f"{where}: item {item['id']!r}: file {item['file']} is missing")
    counts = Counter(i["label"] for i in manifest.items)
    for name in manifest.class_names:
        if counts[name] == 0:
            raise ModelError(
                f"{where}: class {name!r} has no items; add images or drop the "
                "class from the manifest"
            )
    if len(manifest.class_names) < 2:
        raise ModelError(f"{where}: a classifier needs at least two classes")
    return manifest


@dataclass
class Part:
    """One side of the split: items, their pixels, integer labels, and may-augment flags."""

    items: list[Item]
    x: np.ndarray  # float32 (n, height, width, 3) in [0, 1]
    y: np.ndarray  # int64 (n,) indices into class_names
    allowed: np.ndarray  # bool (n,): False for items whose licence forbids derivatives

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Prepared:
    """A split with its pixels: what one (manifest, size, protocol, seed) decodes to."""

    class_names: list[str]
    parts: dict[str, Part]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataSplits:
    """What load_dataset returns: batched tf.data datasets, class names, and the split behind them.

    `validation` (honest protocol) is the manifest's validation items if it has any, else a grouped,
    stratified part carved out of train; early stopping and checkpoint selection use it, and the
    test set is evaluated once, at the end. Under the paper protocol, which had no validation set,
    it is the test set, watched as the paper plotted it and never used to choose anything.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset
    class_names: list[str]
    prepared: Prepared
    image_size: tuple[int, int]
    batch_size: int

    @property
    def info(self) -> dict[str, Any]:
        return self.prepared.info


def load_dataset(
    manifest: str | Path,
    image_size: tuple[int, int] = (32, 32),
    *,
    interpolation: str = "bilinear",
    protocol: str = "honest",
    test_fraction: float = 0.3,
    seed: int = 0,
    batch_size: int = 32,
    augment: AugmentConfig | None = DEFAULT_AUGMENT,
    expand_to: int | None = None,
    per_class: bool = False,
    validation_fraction: float = 0.15,
    class_weights: np.ndarray | None = None,
    mix: Any = None,
    allow_leaks: bool = False,
) -> DataSplits:
    """Read a manifest into train / validation / test tf.data datasets of (image, one-hot label).

    honest (default): split first — fixed `split` fields kept, the rest stratified by label and
    grouped by `group` (else cluster) and parent — refuse if a group spans train and test, carve
    a grouped `validation_fraction` of train as validation (unless the manifest has validation
    items), then augment the training batches on the fly (never the items whose licence forbids
    derivatives). `class_weights` (one per class) weight the training examples; `mix` (a MixUp /
    CutMix layer) mixes the training batches after augmentation.
    paper: expand the pool to `expand_to` items (default 20,793) first, then a random split, no
    further augmentation — copies of one photo land on both sides, as in the paper.
    Decoded pixels are cached in memory per arguments, so repeated calls decode once.
    Before that, every test item is checked against train by content (acnedata's region
    matcher): the honest protocol refuses a split where one shares a region with a train item,
    unless allow_leaks; `info["leaked_test_items"]` counts group and content leaks alike.
    """
    path = Path(manifest).resolve()
    stamp = _stamp(path)
    prepared = prepare(
        path,
        stamp,
        tuple(image_size),
        interpolation,
        protocol,
        test_fraction,
        seed,
        expand_to,
        per_class,
        augment if protocol == "paper" else None,  # only the paper's expansion uses it here
        validation_fraction,
    )
    if protocol == "honest" and not allow_leaks:
        leaks = [Leak(**d) for d in prepared.info["content_leaks"]]
        leak_audit.refuse_content_leaks(leaks, str(path))
    return to_datasets(
        prepared,
        tuple(image_size),
        batch_size=batch_size,
        seed=seed,
        augment=augment if protocol == "honest" else None,
        class_weights=class_weights,
        mix=mix,
    )


def to_datasets(
    prepared: Prepared,
    image_size: tuple[int, int],
    *,
    batch_size: int,
    seed: int,
    augment: AugmentConfig | None,
    class_weights: np.ndarray | None = None,
    mix: Any = None,
    targets: np.ndarray | None = None,
) -> DataSplits:
    """Wrap prepared parts as batched tf.data datasets; augmentation for training only.
    targets: the training items' own target rows (presences) instead of one-hot labels."""
    n = len(prepared.class_names)
    # tf.data's shuffle mixes TF's global seed into its own: fix both, so the order of the
    # training batches depends on `seed` alone, not on what ran earlier in the process
    seed_everything(seed)
    augmenter = None
    if augment is not None and not augment.is_identity():
        augmenter = build_augmenter(augment, seed)
    parts = prepared.parts
    train = make_dataset(
        parts["train"],
        n,
        batch_size,
        shuffle_seed=seed,
        augmenter=augmenter,
        class_weights=class_weights,
        mix=mix,
        targets=targets,
    )
    test = make_dataset(parts["test"], n, batch_size)
    validation = make_dataset(parts["validation"], n, batch_size) if parts["validation"] else test
    return DataSplits(
        train=train,
        validation=validation,
        test=test,
        class_names=prepared.class_names,
        prepared=prepared,
        image_size=image_size,
        batch_size=batch_size,
    )


def make_dataset(
    part: Part,
    num_classes: int,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    augmenter: Any = None,
    class_weights: np.ndarray | None = None,
    mix: Any = None,
    targets: np.ndarray | None = None,
) -> tf.data.Dataset:
    """(image, one-hot[, weight]) batches of in-memory pixels, augmented by batch if given a stack.

    Augmenting whole batches inside tf.data keeps the Random* layers' per-call overhead off the
    per-image path; prefetch lets the next batch be prepared while the model trains.
    """
    import tensorflow as tf

    onehot = (
        np.asarray(targets, np.float32)
        if targets is not None
        else np.eye(num_classes, dtype=np.float32)[part.y]
        if len(part)
        else np.zeros((0, num_classes), np.float32)
    )
    weights = (
        np.asarray(class_weights, np.float32)[part.y]
        if class_weights is not None
        else np.ones(len(part), np.float32)
    )
    ds = tf.data.Dataset.from_tensor_slices((part.x, onehot, part.allowed, weights))
    if shuffle_seed is not None:
        ds = ds.shuffle(max(len(part), 1), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmenter is not None:
        # One map call at a time: the Random* layers keep their seed state in a variable, and
        # parallel calls would race for it, so a rerun would not give the same numbers.
        # prefetch below still overlaps augmentation with training.
        ds = ds.map(lambda x, y, a, w: (augment_where(augmenter, x, a), y, w))
    else:
        ds = ds.map(lambda x, y, a, w: (x, y, w))
    if mix is not None:
        ds = ds.map(mix.mix_batch)  # sequential too: the mix layer is seeded the same way
    if class_weights is None and mix is None:
        ds = ds.map(lambda x, y, w: (x, y))
    return ds.prefetch(tf.data.AUTOTUNE)


def _stamp(path: Path) -> tuple[int, int]:
    """(mtime, size) of the manifest file, so an edited manifest is not served from the cache."""
    try:
        st = (path / "manifest.json" if path.is_dir() else path).stat()
    except OSError:
        return (0, 0)  # open_manifest will report the missing file in its own words
    return (st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def prepare(
    path: Path,
    stamp: tuple[int, int],
    image_size: tuple[int, int],
    interpolation: str,
    protocol: str,
    test_fraction: float,
    seed: int,
    expand_to: int | None,
    per_class: bool,
    augment: AugmentConfig | None,
    validation_fraction: float = 0.15,
) -> Prepared:
    """Split (and for `paper`, expand) a manifest and decode every item; cached per arguments."""
    check_interpolation(interpolation)
    if protocol not in PROTOCOLS:
        raise ModelError(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    manifest = open_manifest(path)
    info: dict[str, Any] = {
        "protocol": protocol,
        "manifest": str(manifest.path),
        "manifest_sha256": manifest.sha256(),
        "test_fraction": test_fraction,
    }
    pixels: dict[str, np.ndarray] = {}
    if protocol == "honest":
        parts_items = split.split_items(manifest.items, test_fraction, seed)
        split.refuse_leaks(parts_items, str(manifest.path))
        fixed_validation = bool(parts_items["validation"])
        parts_items = split.carve_validation(parts_items, validation_fraction, seed)
        info["expanded_copies"] = 0
        info["validation_source"] = (
            "the manifest's validation items"
            if fixed_validation
            else f"a grouped, stratified {validation_fraction:g} of train"
            if parts_items["validation"]
            else "none"
        )
    else:
        total = expand_to if expand_to is not None else PAPER_TOTAL
        config = augment if augment is not None else DEFAULT_AUGMENT
        plan, rendered = expanded_pool(path, stamp, total, per_class, seed, config)
        for child_id, raw in rendered.items():
            pixels[child_id] = to_input(raw, image_size, interpolation)
        # the paper shuffled the expanded pool and cut it: fixed split fields are not kept
        parts_items = split.random_split(manifest.items + plan.copies, test_fraction, seed)
        info.update(
            expanded_copies=len(plan.copies),
            expand_to=total,
            per_class=per_class,
            short_of_target=plan.short,
            fixed_split_fields_ignored=any("split" in i for i in manifest.items),
            validation_source="none: the paper's protocol watches the test set, selects nothing",
        )
    # Leaks by content too: a crop or mosaic tile of a train image that no group joined.
    leaks = leak_audit.content_leaks(manifest, parts_items)
    if protocol == "honest":
        repair = repair_split(manifest, parts_items, leaks)
        parts_items, leaks = repair.parts, repair.leaks
        info["left_out"] = [i["id"] for i in split.left_out(manifest.items, parts_items)]
        info["moved_to_train"] = repair.moved_to_train
    info["content_leaks"] = [leak.as_dict() for leak in leaks]
    info["leaked_test_items"] = leak_audit.leaked_ids(
        parts_items, split.group_leaked_ids(parts_items), leaks
    )
    return decode_parts(manifest, parts_items, pixels, image_size, interpolation, info)


def decode_parts(
    manifest: Manifest,
    parts_items: dict[str, list[Item]],
    pixels: dict[str, np.ndarray],
    image_size: tuple[int, int],
    interpolation: str,
    info: dict[str, Any],
) -> Prepared:
    """Decode the items not already in `pixels` and stack each part into a Part."""
    class_names = manifest.class_names
    originals = [i for items in parts_items.values() for i in items if i["id"] not in pixels]
    pixels.update(decode_items(manifest, originals, image_size, interpolation))
    index = {name: n for n, name in enumerate(class_names)}
    parts = {}
    for name, items in parts_items.items():
        x = (
            np.stack([pixels[i["id"]] for i in items])
            if items
            else np.zeros((0, *image_size, 3), np.float32)
        )
        parts[name] = Part(
            items=items,
            x=x,
            y=np.array([index[i["label"]] for i in items], dtype=np.int64),
            allowed=np.array([may_derive(i) for i in items], dtype=bool),
        )
    info["counts"] = split_counts(parts_items, class_names)
    return Prepared(class_names=class_names, parts=parts, info=info)


@functools.lru_cache(maxsize=1)
def expanded_pool(
    path: Path,
    stamp: tuple[int, int],
    total: int,
    per_class: bool,
    seed: int,
    config: AugmentConfig,
) -> tuple[CopyPlan, dict[str, np.ndarray]]:
    """The paper protocol's copies at the parents' own size (uint8), made once per process.

    Kept apart from `prepare` so that models at 32×32 and at 64×64 share one expansion, as the
    paper's models shared one augmented folder; augmenting is the slow part (~3 ms a copy).
    """
    del stamp  # part of the cache key only
    manifest = open_manifest(path)
    plan = plan_copies(manifest.items, total, per_class=per_class, seed=seed)
    rendered = {
        child["id"]: raw for child, raw in render_copies(manifest, plan.copies, config, seed)
    }
    return plan, rendered


def decode_items(
    manifest: Manifest, items: list[Item], image_size: tuple[int, int], interpolation: str
) -> dict[str, np.ndarray]:
    """Decode and resize items' files in parallel (Pillow releases the GIL while decoding)."""

    def one(item: Item) -> np.ndarray:
        return load_input(manifest.file_path(item), image_size, interpolation)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        arrays = list(pool.map(one, items))
    return {item["id"]: a for item, a in zip(items, arrays, strict=True)}


def split_counts(parts: dict[str, list[Item]], class_names: list[str]) -> dict[str, Any]:
    """{train: n, validation: n, test: n, per_class: {class: {part: n}}} for metrics.json."""
    out: dict[str, Any] = {name: len(items) for name, items in parts.items()}
    out["per_class"] = {
        c: {name: sum(i["label"] == c for i in items) for name, items in parts.items()}
        for c in class_names
    }
    return out
