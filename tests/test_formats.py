"""Exports read back by the libraries their users use: datasets, webdataset/tarfile, mlcroissant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from export_fixture import imported_dataset

# no Hub, no user cache: every load below reads only the folders the tests wrote
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from acnedata.errors import AcnedataError
from acnedata.formats import export_manifest
from acnedata.manifest import load_manifest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return imported_dataset(tmp_path_factory.mktemp("formats"))


def expected(folder: Path) -> dict[str, tuple]:
    """id → (label, split, group, licence, author, source url), as the manifest says."""
    return {
        i["id"]: (
            i["label"],
            i.get("split", "train"),
            i["group"],
            i["licence"]["spdx"],
            i["licence"]["author"],
            i["source"]["url"],
        )
        for i in load_manifest(folder).items
    }


def as_text(value):
    return value.decode() if isinstance(value, bytes) else value


def test_the_fixture_has_what_exports_must_keep(dataset):
    rows = expected(dataset).values()
    assert len(rows) == 12
    assert {r[1] for r in rows} == {"train", "validation", "test"}
    assert {r[3] for r in rows} == {"CC-BY-4.0", "CC0-1.0"}
    assert len({r[2] for r in rows}) == 6  # pairs of items share a patient


def test_imagefolder_read_by_datasets(dataset, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = export_manifest(dataset, "imagefolder", tmp_path / "if")
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "cache")
    )
    got = {}
    for split, ds in loaded.items():
        for row in ds:
            got[row["id"]] = (
                row["label"], split, row["group"], row["licence"], row["author"],
                row["source_url"],
            )  # fmt: skip
            assert row["image"].size == (48, 40)
    assert got == expected(dataset)
    # the class folder agrees with the label
    for path in (out / "test").rglob("*.*"):
        if path.name != "metadata.jsonl":
            assert path.parent.name in {"comedonal", "papular", "pustular"}


def test_hf_parquet_read_by_datasets_with_classlabel_and_card(dataset, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = export_manifest(dataset, "hf", tmp_path / "hf", shard_items=2)
    assert len(list((out / "data").glob("train-*.parquet"))) == 3  # 6 train items, 2 a shard
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    manifest = load_manifest(dataset)
    got = {}
    for split, ds in loaded.items():
        label = ds.features["label"]
        assert isinstance(label, datasets.ClassLabel)
        assert label.names == manifest.class_names
        assert isinstance(ds.features["image"], datasets.Image)
        for row in ds:
            got[row["id"]] = (
                label.int2str(row["label"]), split, row["group"], row["licence"], row["author"],
                row["source_url"],
            )  # fmt: skip
    assert got == expected(dataset)
    card = (out / "README.md").read_text("utf-8")
    header = card.split("---\n")[1]
    import yaml

    meta = yaml.safe_load(header)
    assert meta["license"] == ["cc-by-4.0", "cc0-1.0"]
    assert meta["task_categories"] == ["image-classification"]
    assert meta["size_categories"] == ["n<1K"]
    splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert splits == {"train": 6, "validation": 3, "test": 3}
    assert "| comedonal | 2 | 1 | 1 | 4 |" in card


def test_webdataset_shards_read_by_webdataset_and_tarfile(dataset, tmp_path):
    out = export_manifest(dataset, "webdataset", tmp_path / "wds", shard_items=4)
    index = json.loads((out / "shards.json").read_text())
    assert [s["samples"] for s in index["splits"]["train"]] == [4, 2]
    manifest = load_manifest(dataset)
    got = {}
    for split, shards in index["splits"].items():
        for shard in shards:
            with tarfile.open(out / shard["file"]) as tar:
                members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
            keys = {name.split(".", 1)[0] for name in members}
            assert len(keys) == shard["samples"]
            for key in keys:
                meta = json.loads(members[f"{key}.json"])
                cls = int(members[f"{key}.cls"])
                assert manifest.class_names[cls] == meta["label"]
                image = next(v for k, v in members.items() if k.startswith(key + ".")
                             and k.rsplit(".", 1)[1] in ("jpg", "png"))  # fmt: skip
                import hashlib

                assert hashlib.sha256(image).hexdigest() == meta["sha256"]
                got[meta["id"]] = (
                    meta["label"], split, meta["group"], meta["licence"], meta["author"],
                    meta["source_url"],
                )  # fmt: skip
    assert got == expected(dataset)
    wds = pytest.importorskip("webdataset")
    shards = sorted(str(p) for p in out.glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False).decode("pil"))
    assert len(samples) == 12
    assert {s["json"]["id"] for s in samples} == set(got)
    assert all(manifest.class_names[s["cls"]] == s["json"]["label"] for s in samples)


def test_croissant_loaded_by_mlcroissant_yields_the_manifests_records(dataset, tmp_path):
    mlc = pytest.importorskip("mlcroissant")
    out = export_manifest(dataset, "croissant", tmp_path / "cr")
    meta = json.loads((out / "croissant.json").read_text())
    assert meta["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert sorted(meta["license"]) == sorted(
        ["https://creativecommons.org/licenses/by/4.0/",
         "https://creativecommons.org/publicdomain/zero/1.0/"]
    )  # fmt: skip
    assert meta["citeAs"] == "Clinic A (2024). Acne photos."
    assert all(len(d["sha256"]) == 64 for d in meta["distribution"])
    for key in ("rai:dataCollection", "rai:dataPreprocessingProtocol"):
        assert meta[key]
    assert any("Licence check" in p for p in meta["rai:dataPreprocessingProtocol"])
    assert any("Leak check" in p for p in meta["rai:dataPreprocessingProtocol"])

    ds = mlc.Dataset(str(out / "croissant.json"))
    assert not ds.metadata.issues.errors
    got = {}
    for r in ds.records("items"):
        f = {k.split("/", 1)[1]: as_text(v) for k, v in r.items()}
        got[f["id"]] = (f["label"], f["split"], f["group"], f["licence"], f["author"],
                        f["source_url"])  # fmt: skip
        assert (out / f["file"]).is_file()  # the path leads to the image
    assert got == expected(dataset)


def test_dataset_card_is_written_next_to_the_manifest(dataset):
    card = (dataset / "DATASET_CARD.md").read_text("utf-8")
    for heading in ("## Sources", "## Licences", "## Classes per split", "## Excluded",
                    "## Duplicates and groups", "## Caveats"):  # fmt: skip
        assert heading in card
    assert "| folder | 12 |" in card
    assert "| all | 6 | 3 | 3 | 12 |" in card
    assert "6 groups" in card
    assert "imported from an existing dataset" in card


def test_card_cuts_long_reason_lists_and_says_so():
    from acnedata.formats.card import Exclusions, render_card

    data = json.loads(json.dumps(load_manifest_data_stub()))
    reasons = [(f"reason {k}", 10 - k) for k in range(8)]
    card = render_card(data, Exclusions(rejected=reasons, duplicates=3))
    assert "- 52 rejected by the licence policy:" in card
    assert "  - +3 more" in card
    assert "reason 5" not in card


def load_manifest_data_stub() -> dict:
    """A minimal manifest's data (the card reads only the manifest's fields)."""
    return {
        "name": "x", "created": "2024-01-01T00:00:00+00:00",
        "tool": {"name": "acnedata", "version": "0"}, "classes": [{"name": "a"}],
        "items": [],
    }  # fmt: skip


def test_export_refuses_a_foreign_folder_and_replaces_its_own(dataset, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AcnedataError, match="not empty"):
        export_manifest(dataset, "webdataset", foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = export_manifest(dataset, "webdataset", tmp_path / "w", shard_items=100)
    stale = out / "train-000009.tar"
    stale.write_bytes(b"")
    export_manifest(dataset, "webdataset", out, shard_items=100)  # again: replaced whole
    assert not stale.exists()
    assert sorted(p.name for p in out.glob("*.tar")) == [
        "test-000000.tar",
        "train-000000.tar",
        "validation-000000.tar",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(AcnedataError, match="unknown format"):
        export_manifest(dataset, "tfrecord", tmp_path / "t")


def test_export_command_and_file_modes(dataset, tmp_path):
    old = os.umask(0o022)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "acnedata", "export", str(dataset), "--to", "imagefolder",
             "--out", str(tmp_path / "if")],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert "wrote the imagefolder export" in proc.stdout
    assert (tmp_path / "if").stat().st_mode & 0o777 == 0o755
    for path in (tmp_path / "if").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    proc = subprocess.run(
        [sys.executable, "-m", "acnedata", "export", str(dataset), "--to", "croissant", "--out",
         str(tmp_path / "c"), "--push", "me/x"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --push me/x: only an hf export can be pushed; use --to hf"
