"""acnemodel data: manifest checks, cluster-grouped splits, protocols, augmentation, expansion."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from manifest_factory import edit_manifest, make_manifest
from typer.testing import CliRunner

from acnedata.manifest import load_manifest
from acnemodel import split
from acnemodel.augment import AugmentConfig, build_augmenter
from acnemodel.cli import app
from acnemodel.data import Part, load_dataset, make_dataset, open_manifest
from acnemodel.errors import LeakError, ModelError
from acnemodel.expand import expand_manifest, plan_copies

runner = CliRunner()
N_PLAIN = 3 * sum(1 + k % 3 for k in range(8))  # items in the `manifest` fixture: 45
STRONG = AugmentConfig(
    rotation_range=40,
    width_shift_range=0.2,
    height_shift_range=0.2,
    shear_range=20,
    zoom_range=0.2,
    horizontal_flip=True,
    vertical_flip=True,
    brightness_range=(0.7, 1.3),
)

# Keras 3.15 itself trips NumPy 2's copy-keyword deprecation on every fit; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def one_line_error(result) -> str:
    """Assert a CLI failure is exit 1 with exactly one stderr line and no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("plain"), clusters_per_class=8)


@pytest.fixture(scope="module")
def nd_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("nd"), nd_clusters=3)


def test_factory_writes_valid_manifests(manifest: Path, nd_manifest: Path) -> None:
    loaded = load_manifest(manifest)
    assert len(loaded.items) == N_PLAIN
    assert all(loaded.file_path(i).is_file() for i in loaded.items)
    sizes = {
        c: sum(i["cluster"] == c for i in loaded.items)
        for c in {i["cluster"] for i in loaded.items}
    }
    assert set(sizes.values()) == {1, 2, 3}  # singletons and clusters of 2–3 near-copies
    nd = [i for i in load_manifest(nd_manifest).items if i["licence"]["no_derivatives"]]
    assert nd and all(i["licence"]["spdx"] == "CC-BY-ND-4.0" for i in nd)


@pytest.mark.parametrize("seed", range(8))
def test_split_never_crosses_clusters_and_is_stratified(manifest: Path, seed: int) -> None:
    items = load_manifest(manifest).items
    parts = split.split_items(items, 0.3, seed)
    assert split.spanning_groups(parts) == {}
    assert sum(len(p) for p in parts.values()) == len(items)
    for label in ("comedonal", "papular", "pustular"):
        assert any(i["label"] == label for i in parts["train"])
        assert any(i["label"] == label for i in parts["test"])
    assert 0.2 <= len(parts["test"]) / len(items) <= 0.4


def test_split_is_seeded(manifest: Path) -> None:
    items = load_manifest(manifest).items
    ids = [[i["id"] for i in split.split_items(items, 0.3, s)["test"]] for s in (1, 1, 2)]
    assert ids[0] == ids[1] != ids[2]


def test_split_groups_copies_with_their_parent() -> None:
    base = {"label": "a", "licence": {"spdx": "CC0-1.0"}}
    items = [{"id": f"p{k}", "cluster": f"c{k}", **base} for k in range(10)]
    # copies written by another tool with clusters of their own: the parent link still binds
    items += [
        {"id": f"p{k}~x", "cluster": f"other{k}", "parent": f"p{k}", **base} for k in range(10)
    ]
    keys = split.group_keys(items)
    assert all(keys[f"p{k}"] == keys[f"p{k}~x"] for k in range(10))
    for seed in range(5):
        parts = split.split_items(items, 0.3, seed)
        test_ids = {i["id"] for i in parts["test"]}
        assert all((f"p{k}" in test_ids) == (f"p{k}~x" in test_ids) for k in range(10))


def test_fixed_split_fields_are_kept(tmp_path: Path) -> None:
    fixed = {
        "comedonal-c0-0": "test",
        "papular-c1-0": "test",
        "papular-c1-1": "test",
        "pustular-c2-0": "validation",
    }
    path = make_manifest(tmp_path, splits=fixed)
    parts = split.split_items(load_manifest(path).items, 0.3, 0)
    where = {i["id"]: name for name, items in parts.items() for i in items}
    assert all(where[k] == v for k, v in fixed.items())
    # unfixed members of a cluster follow their fixed sibling
    assert where["pustular-c2-1"] == where["pustular-c2-2"] == "validation"
    data = load_dataset(path, (16, 16), augment=None)
    assert data.info["counts"]["validation"] == 3


def test_refuses_a_cluster_on_both_sides(tmp_path: Path) -> None:
    path = make_manifest(tmp_path, splits={"papular-c2-0": "train", "papular-c2-1": "test"})
    with pytest.raises(LeakError, match="'papular-c2'"):
        load_dataset(path, (16, 16))
    line = one_line_error(
        runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "r"), "--epochs", "1"])
    )
    assert "papular-c2" in line and "train" in line and "test" in line
    assert not (tmp_path / "r" / "model.keras").exists()


def test_load_dataset_shapes_range_and_cache(manifest: Path) -> None:
    data = load_dataset(manifest, (24, 20), batch_size=8, seed=3)
    assert data.class_names == ["comedonal", "papular", "pustular"]
    x, y = next(iter(data.train))
    assert tuple(x.shape) == (8, 24, 20, 3) and tuple(y.shape) == (8, 3)
    assert float(np.min(x)) >= 0.0 and float(np.max(x)) <= 1.0
    assert np.allclose(np.sum(y, axis=1), 1.0)
    counts = data.info["counts"]
    assert counts["train"] + counts["validation"] + counts["test"] == N_PLAIN
    # no validation items in the manifest: a part of train is carved out, never the test set
    assert counts["validation"] > 0 and data.validation is not data.test
    assert data.info["validation_source"].startswith("a grouped, stratified 0.15 of train")
    again = load_dataset(manifest, (24, 20), batch_size=8, seed=3)
    assert again.prepared is data.prepared  # decoded once, served from the cache


def test_interpolation_choice(manifest: Path) -> None:
    kw = {"augment": None, "seed": 1}
    bilinear = load_dataset(manifest, (13, 13), interpolation="bilinear", **kw)
    nearest = load_dataset(manifest, (13, 13), interpolation="nearest", **kw)
    a, b = bilinear.prepared.parts["train"].x, nearest.prepared.parts["train"].x
    assert a.shape == b.shape and not np.allclose(a, b)
    # nearest only picks existing pixels: every value is a multiple of 1/255
    assert np.allclose(np.round(b * 255), b * 255, atol=1e-4)
    with pytest.raises(ModelError, match="interpolation"):
        load_dataset(manifest, (13, 13), interpolation="bicubic")


def test_augmenter_maps_the_knobs() -> None:
    import math

    stack = build_augmenter(replace(STRONG, engine="layers"), seed=1)
    names = [type(layer).__name__ for layer in stack.layers]
    assert names == [
        "RandomRotation",
        "RandomTranslation",
        "RandomShear",
        "RandomZoom",
        "RandomFlip",
        "RandomBrightness",
    ]
    shear = stack.layers[2]
    assert shear.x_factor[1] == pytest.approx(math.tan(math.radians(20)))
    assert all(getattr(layer, "fill_mode", "nearest") == "nearest" for layer in stack.layers)
    assert AugmentConfig(
        rotation_range=0,
        width_shift_range=0,
        height_shift_range=0,
        shear_range=0,
        zoom_range=0,
        horizontal_flip=False,
    ).is_identity()
    with pytest.raises(ModelError):
        AugmentConfig(fill_mode="mirror")


def test_affine_engine_is_one_seeded_layer_with_imagedatagenerator_semantics() -> None:
    import tensorflow as tf

    stack = build_augmenter(STRONG, seed=1)
    assert [type(layer).__name__ for layer in stack.layers] == ["RandomAffine"]
    rng = np.random.default_rng(0)
    images = tf.constant(rng.random((16, 20, 20, 3), dtype=np.float32))
    a = build_augmenter(STRONG, seed=9)(images).numpy()
    b = build_augmenter(STRONG, seed=9)(images).numpy()
    c = build_augmenter(STRONG, seed=10)(images).numpy()
    assert np.array_equal(a, b) and not np.allclose(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0
    # flips alone: every output is exactly the image or its mirror (one exact resampling)
    flips = AugmentConfig(
        rotation_range=0,
        width_shift_range=0,
        height_shift_range=0,
        shear_range=0,
        zoom_range=0,
        horizontal_flip=True,
    )
    out = build_augmenter(flips, seed=2)(images).numpy()
    mirrored = [
        np.allclose(o, i[:, ::-1], atol=1e-5) for o, i in zip(out, images.numpy(), strict=True)
    ]
    same = [np.allclose(o, i, atol=1e-5) for o, i in zip(out, images.numpy(), strict=True)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True)) and any(mirrored)
    # brightness multiplies, as ImageDataGenerator's PIL enhancer does
    grey = tf.fill((8, 4, 4, 3), 0.5)
    bright = AugmentConfig(
        rotation_range=0,
        width_shift_range=0,
        height_shift_range=0,
        shear_range=0,
        zoom_range=0,
        horizontal_flip=False,
        brightness_range=(0.5, 1.5),
    )
    factors = build_augmenter(bright, seed=3)(grey).numpy()[:, 0, 0, 0] / 0.5
    assert np.all((factors >= 0.5) & (factors <= 1.5)) and factors.std() > 0.05


@pytest.mark.parametrize("engine", ["affine", "layers"])
def test_no_derivative_items_are_never_augmented(nd_manifest: Path, engine: str) -> None:
    manifest = open_manifest(nd_manifest)
    data = load_dataset(nd_manifest, (32, 32), augment=None)
    train = data.prepared.parts["train"]
    assert 0 < int((~train.allowed).sum()) < len(train)
    augmenter = build_augmenter(replace(STRONG, engine=engine), 5)
    ds = make_dataset(train, 3, batch_size=16, augmenter=augmenter)
    out = np.concatenate([x.numpy() for x, _ in ds])  # unshuffled: same order as train.items
    changed = np.abs(out - train.x).reshape(len(train), -1).max(axis=1) > 1e-6
    for item, did_change in zip(train.items, changed, strict=True):
        nd = item["licence"]["no_derivatives"]
        assert not (nd and did_change), f"{item['id']} is ND but was augmented"
    assert changed[train.allowed].mean() > 0.8
    assert manifest.items  # the manifest itself is untouched
    assert all(
        i["licence"]["no_derivatives"] == (int(i["cluster"].rsplit("c", 1)[1]) < 3)
        for i in manifest.items
    )


def test_no_derivative_items_are_never_expanded(nd_manifest: Path, tmp_path: Path) -> None:
    items = load_manifest(nd_manifest).items
    nd_ids = {i["id"] for i in items if i["licence"]["no_derivatives"]}
    plan = plan_copies(items, 200, seed=0)
    assert len(plan.copies) == 200 - len(items)
    assert not {c["parent"] for c in plan.copies} & nd_ids
    result = expand_manifest(open_manifest(nd_manifest), tmp_path / "x", 60, seed=0)
    written = [i for i in load_manifest(result.manifest).items if "parent" in i]
    assert written and not {i["parent"] for i in written} & nd_ids
    paper = load_dataset(nd_manifest, (16, 16), protocol="paper", expand_to=100)
    copies = [i for p in paper.prepared.parts.values() for i in p.items if "parent" in i]
    assert len(copies) == 100 - len(items) and not {i["parent"] for i in copies} & nd_ids


def test_expand_writes_parents(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "expanded"
    result = runner.invoke(app, ["expand", str(manifest), "--to", "80", "--out", str(out)])
    assert result.exit_code == 0, result.output
    new = load_manifest(out)  # schema-valid
    original = {i["id"]: i for i in load_manifest(manifest).items}
    copies = [i for i in new.items if "parent" in i]
    assert len(new.items) == 80 and len(copies) == 80 - len(original)
    assert len({i["id"] for i in new.items}) == 80
    for c in copies:
        parent = original[c["parent"]]
        assert c["cluster"] == parent["cluster"] and c["label"] == parent["label"]
        assert c["id"] not in original
        data = new.file_path(c).read_bytes()
        assert hashlib.sha256(data).hexdigest() == c["sha256"]
    # originals are hard-linked into the new manifest's folder, under the same names
    assert all(new.file_path(i).is_file() for i in new.items)
    for item_id, item in original.items():
        linked = out / item["file"]
        assert linked.stat().st_ino == (manifest.parent / item["file"]).stat().st_ino, item_id
    assert new.data["counts"]["augmented_copies"] == len(copies)
    # honest training on the expanded manifest keeps each copy with its parent
    parts = split.split_items(new.items, 0.3, 0)
    assert split.spanning_groups(parts) == {}


def test_expand_per_class(manifest: Path, tmp_path: Path) -> None:
    result = expand_manifest(open_manifest(manifest), tmp_path / "pc", 30, per_class=True)
    labels = [i["label"] for i in load_manifest(result.manifest).items]
    assert {labels.count(c) for c in set(labels)} == {30}


def test_protocols_differ(manifest: Path) -> None:
    honest = load_dataset(manifest, (16, 16), seed=0)
    paper = load_dataset(manifest, (16, 16), protocol="paper", expand_to=240, seed=0)
    h, p = honest.info, paper.info
    assert h["protocol"] == "honest" and h["expanded_copies"] == 0
    assert h["leaked_test_items"] == 0
    assert p["expanded_copies"] == 240 - N_PLAIN
    assert p["counts"]["train"] + p["counts"]["test"] == 240
    assert p["counts"]["test"] == round(0.3 * 240)
    # the paper's order: expand, then a random split — so copies sit on both sides
    assert p["leaked_test_items"] > 0.5 * p["counts"]["test"]
    assert split.spanning_groups({k: v.items for k, v in paper.prepared.parts.items()})
    # honest augments training batches on the fly; paper trains on its fixed copies
    x1 = np.concatenate([x.numpy() for x, _ in honest.train])
    x2 = np.concatenate([x.numpy() for x, _ in honest.train])
    assert not np.allclose(np.sort(x1.ravel()), np.sort(x2.ravel()))
    q1 = np.concatenate([x.numpy() for x, _ in paper.train])
    q2 = np.concatenate([x.numpy() for x, _ in paper.train])
    assert np.allclose(np.sort(q1.ravel()), np.sort(q2.ravel()))


def test_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = make_manifest(tmp_path)
    (tmp_path / "images" / "papular-c3-0.png").unlink()
    line = one_line_error(
        runner.invoke(app, ["train", str(path), "--epochs", "1", "--out", str(tmp_path / "r")])
    )
    assert "papular-c3-0" in line and "missing" in line


def test_empty_class_is_one_line_naming_it(tmp_path: Path) -> None:
    path = make_manifest(tmp_path)
    edit_manifest(path, lambda d: d["classes"].append({"name": "nodulocystic"}))
    line = one_line_error(
        runner.invoke(app, ["compare", str(path), "--epochs", "1", "--out", str(tmp_path / "r")])
    )
    assert "'nodulocystic'" in line and "no items" in line


def test_unreadable_manifest_and_unknown_model_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.json"
    bad.write_text("{not json", encoding="utf-8")
    assert "manifest" in one_line_error(runner.invoke(app, ["train", str(bad)]))
    good = make_manifest(tmp_path / "ok")
    line = one_line_error(runner.invoke(app, ["train", str(good), "--model", "alexnet"]))
    assert "alexnet" in line and "kecnn" in line
    line = one_line_error(runner.invoke(app, ["compare", str(good), "--models", "paper,nope"]))
    assert "nope" in line
    line = one_line_error(runner.invoke(app, ["train", str(good), "--protocol", "sloppy"]))
    assert "sloppy" in line


def test_help_lists_commands_without_loading_tensorflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from acnemodel.cli import app; import acnemodel; "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    result = runner.invoke(app, ["--help"])
    for command in ("train", "compare", "predict", "expand", "models"):
        assert command in result.output
    listing = runner.invoke(app, ["models"])
    assert all(name in listing.output for name in ("paper", "kecnn", "kevgg", "resnet"))
    json.dumps(AugmentConfig().to_dict())  # the config goes into metrics.json as is
    import acnemodel
    import acnemodel.data

    assert acnemodel.load_dataset is acnemodel.data.load_dataset  # the documented Python API


def test_part_helper_types() -> None:
    part = Part(
        items=[],
        x=np.zeros((0, 4, 4, 3), np.float32),
        y=np.zeros(0, np.int64),
        allowed=np.zeros(0, bool),
    )
    assert len(part) == 0
