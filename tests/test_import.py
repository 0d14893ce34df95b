"""`import_dataset`: folders, label CSVs, archives and URLs, with licence and citation per item."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from imagefactory import make_image, to_bytes

from acnedata.catalog import Catalog
from acnedata.errors import AcnedataError, SourceError
from acnedata.http import HttpConfig, PoliteSession
from acnedata.importer import import_dataset, safe_extract

CITATION = "Doe, Jane (2024). Acne photographs. Zenodo. https://doi.org/10.5281/zenodo.42"
CLASSES = {"comedonal": 3, "pustular": 2}


def png(kind: int, seed: int) -> bytes:
    return to_bytes(make_image(kind, size=(96, 96), seed=seed), "PNG")


def make_folder(root: Path, classes: dict[str, int] = CLASSES) -> Path:
    for k, (klass, n) in enumerate(classes.items()):
        (root / klass).mkdir(parents=True)
        for i in range(n):
            (root / klass / f"{i}.png").write_bytes(png(k, i))
    return root


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def class_members(prefix: str = "") -> dict[str, bytes]:
    return {
        f"{prefix}{klass}/{i}.png": png(k, i)
        for k, (klass, n) in enumerate(CLASSES.items())
        for i in range(n)
    }


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


def test_folder_import_puts_licence_author_and_citation_on_every_item(tmp_path):
    src = make_folder(tmp_path / "photos")
    # A file name naming another class does not move it: the folder is the dataset's label.
    (src / "comedonal" / "pustular-looking.png").write_bytes(png(5, 5))
    out = tmp_path / "out"
    summary = import_dataset(
        src, out, licence="CC BY 4.0", author="Jane Doe", citation=CITATION, title="Acne photos"
    )
    assert summary.requests == 0  # local input: not one HTTP request
    assert summary.per_class == {**CLASSES, "comedonal": 4}
    data = manifest(out)
    assert data["name"] == "acne-photos"
    assert data["licence_policy"]["allow"] == ["CC-BY-4.0"]
    assert len(data["items"]) == 6
    for item in data["items"]:
        assert item["licence"]["spdx"] == "CC-BY-4.0"
        assert item["licence"]["author"] == "Jane Doe"
        assert item["licence"]["attribution"] == CITATION
        assert item["licence"]["no_derivatives"] is False
        assert item["source"]["name"] == "folder"
    credits = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    # one dataset-level credit (issue 13), not six identical ones; the CSV keeps a row per item
    assert credits.count(f"Credit: {CITATION}") == 1
    assert '- 6 images: "Acne photos" by Jane Doe, licensed under CC BY 4.0' in credits
    rows = (out / "attribution.csv").read_text(encoding="utf-8").strip().splitlines()
    assert len(rows) == 7 and all(CITATION in row for row in rows[1:])
    # Rerunning is a no-op that ends with the same items.
    again = import_dataset(
        src, out, licence="CC-BY-4.0", author="Jane Doe", citation=CITATION, title="Acne photos"
    )
    assert again.per_class == {**CLASSES, "comedonal": 4}


def test_no_derivatives_licence_marks_items(tmp_path):
    src = make_folder(tmp_path / "photos", {"papular": 2})
    import_dataset(src, tmp_path / "out", licence="CC-BY-ND-4.0")
    items = manifest(tmp_path / "out")["items"]
    assert len(items) == 2 and all(i["licence"]["no_derivatives"] for i in items)
    assert all(i["licence"]["author"] is None for i in items)


@pytest.mark.parametrize("licence", ["WTFPL-ish", "", "NOASSERTION"])
def test_unknown_licence_is_one_line_error(tmp_path, licence):
    src = make_folder(tmp_path / "photos")
    with pytest.raises(AcnedataError) as exc:
        import_dataset(src, tmp_path / "out", licence=licence)
    text = one_line(exc)
    assert repr(licence) in text and "CC-BY-4.0" in text
    assert not (tmp_path / "out").exists()


def test_retired_licence_is_refused(tmp_path):
    src = make_folder(tmp_path / "photos")
    with pytest.raises(AcnedataError) as exc:
        import_dataset(src, tmp_path / "out", licence="sampling+")
    assert "retired" in one_line(exc)


def test_zip_with_wrapper_folder_and_macos_litter(tmp_path):
    members = {
        **class_members("acne-set/"),
        "__MACOSX/acne-set/._0.png": b"junk",
        "acne-set/README.md": b"# readme",
        "acne-set/.DS_Store": b"x",
    }
    archive = make_zip(tmp_path / "acne-set.zip", members)
    out = tmp_path / "out"
    summary = import_dataset(archive, out, licence="CC0-1.0", citation=CITATION)
    assert summary.per_class == CLASSES
    unpacked = next((out / "_import").iterdir())
    assert unpacked.name.startswith("acne-set-")
    assert not list(unpacked.rglob("__MACOSX")) and not list(unpacked.rglob(".DS_Store"))
    assert {i["licence"]["spdx"] for i in manifest(out)["items"]} == {"CC0-1.0"}


@pytest.mark.parametrize(
    "bad", ["../evil.jpg", "ok/../../evil.jpg", "/abs/evil.jpg", "C:/evil.jpg", "..\\evil.jpg"]
)
def test_zip_path_traversal_is_refused(tmp_path, bad):
    archive = make_zip(tmp_path / "bad.zip", {**class_members(), bad: png(9, 9)})
    out = tmp_path / "out"
    with pytest.raises(SourceError) as exc:
        import_dataset(archive, out, licence="CC-BY-4.0")
    text = one_line(exc)
    assert "evil.jpg" in text and "refusing to extract" in text and "path traversal" in text
    assert not list(tmp_path.rglob("evil.jpg"))
    assert not out.exists()  # nothing left half-extracted, not even the folders made for it


def test_extraction_size_cap_counts_real_bytes(tmp_path):
    archive = make_zip(tmp_path / "big.zip", {"a/0.png": b"\0" * 50_000})
    with pytest.raises(SourceError) as exc:
        safe_extract(archive, tmp_path / "x", max_bytes=10_000)
    assert "refusing to extract" in one_line(exc)
    with pytest.raises(SourceError):
        import_dataset(archive, tmp_path / "out", licence="CC0-1.0", max_extract_bytes=10_000)


def test_tar_with_a_symlink_is_refused(tmp_path):
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("a/link.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(SourceError) as exc:
        import_dataset(path, tmp_path / "out", licence="CC0-1.0")
    assert "is a link" in one_line(exc)


def test_labels_csv(tmp_path):
    root = tmp_path / "flat"
    (root / "img").mkdir(parents=True)
    for i in range(4):
        (root / "img" / f"{i}.png").write_bytes(png(i, 7))
    rows = [
        "file_name,label,author",
        "img/0.png,papular,Ann",
        "img/1.png,papular,",
        "img/2.png,nodulocystic,",
        "img/3.png,,",
    ]
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    summary = import_dataset(
        root / "labels.csv", out, licence="CC-BY-SA-4.0", author="Team", citation=CITATION
    )
    assert summary.per_class == {"nodulocystic": 1, "papular": 2}
    items = {i["id"]: i for i in manifest(out)["items"]}
    assert items["folder:img/0.png"]["licence"]["author"] == "Ann"  # the row's own author
    assert items["folder:img/1.png"]["licence"]["author"] == "Team"
    assert all(i["licence"]["attribution"] == CITATION for i in items.values())

    # --labels with a folder source: paths may be relative to the folder; never outside it.
    (tmp_path / "outside.png").write_bytes(png(1, 1))
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\n../outside.png,papular\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        import_dataset(root, tmp_path / "out2", licence="CC0-1.0", labels_csv=bad)
    assert "points outside" in one_line(exc)
    nocols = tmp_path / "nocols.csv"
    nocols.write_text("image_url,klass\nx,y\n", encoding="utf-8")
    with pytest.raises(SourceError) as exc:
        import_dataset(root, tmp_path / "out3", licence="CC0-1.0", labels_csv=nocols)
    assert "needs a file column" in one_line(exc)


def test_out_folder_of_another_dataset_is_refused(tmp_path):
    out = tmp_path / "out"
    import_dataset(make_folder(tmp_path / "a", {"papular": 1}), out, licence="CC0-1.0")
    with pytest.raises(AcnedataError) as exc:
        import_dataset(make_folder(tmp_path / "b", {"pustular": 1}), out, licence="CC0-1.0")
    assert "already holds another dataset" in one_line(exc)
    with Catalog.open(out) as cat:
        assert cat.count() == 1


# --- URLs (a real local server) ---------------------------------------------------------------


@pytest.fixture
def session():
    with PoliteSession(HttpConfig(allow_private=True, min_interval=0.0, max_retries=0)) as s:
        yield s


def test_zenodo_record_url_downloads_its_archive(httpserver, session, tmp_path):
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for name, data in class_members("images/").items():
            zf.writestr(name, data)
    record = {
        "id": 42,
        "doi": "10.5281/zenodo.42",
        "links": {"self_html": "https://zenodo.org/records/42"},
        "metadata": {
            "title": "Acne photographs",
            "publication_date": "2024-03-01",
            "creators": [{"name": "Doe, Jane"}],
            "license": {"id": "cc-by-4.0"},
        },
        "files": [
            {"key": "README.txt", "links": {"self": httpserver.url("/x")}},
            {
                "key": "images.zip",
                "links": {"self": httpserver.url("/api/records/42/files/images.zip/content")},
            },
        ],
    }
    httpserver.route(
        "/api/records/42", 200, json.dumps(record), {"Content-Type": "application/json"}
    )
    httpserver.route(
        "/api/records/42/files/images.zip/content",
        200,
        zipped.getvalue(),
        {"Content-Type": "application/octet-stream"},
    )
    out = tmp_path / "out"
    summary = import_dataset(
        httpserver.url("/records/42"), out, licence="CC-BY-4.0", session=session
    )
    assert summary.per_class == CLASSES
    assert (out / "_import" / "downloads" / "images.zip").is_file()
    data = manifest(out)
    assert data["name"] == "acne-photographs"
    for item in data["items"]:
        assert item["licence"]["author"] == "Doe, Jane"
        assert item["licence"]["attribution"] == CITATION
        assert item["source"]["page_url"] == "https://zenodo.org/records/42"

    with pytest.raises(AcnedataError) as exc:
        import_dataset(
            httpserver.url("/records/42"), tmp_path / "o2", licence="CC0-1.0", session=session
        )
    assert "record's licence is CC-BY-4.0" in one_line(exc)


def test_archive_url_with_split_folders(httpserver, session, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split, seed in (("train", 0), ("test", 50)):
            for k, klass in enumerate(("papular", "pustular")):
                data = png(k, seed)
                info = tarfile.TarInfo(f"{split}/{klass}/0.png")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    path = "/datasets/org/acne/resolve/main/data.tar.gz"
    httpserver.route(path, 200, buf.getvalue(), {"Content-Type": "application/gzip"})
    out = tmp_path / "out"
    summary = import_dataset(httpserver.url(path), out, licence="CC-BY-4.0", session=session)
    assert summary.per_class == {"papular": 2, "pustular": 2}
    ids = sorted(i["id"] for i in manifest(out)["items"])
    assert ids[0] == "folder:test/papular/0.png" and len(ids) == 4
    assert {i["source"]["page_url"] for i in manifest(out)["items"]} == {httpserver.url(path)}


def test_url_that_is_not_an_archive(httpserver, session, tmp_path):
    httpserver.route("/page", 200, "<html>hello</html>", {"Content-Type": "text/html"})
    with pytest.raises(SourceError) as exc:
        import_dataset(
            httpserver.url("/page"), tmp_path / "out", licence="CC0-1.0", session=session
        )
    assert "not a zip or tar archive (got text/html)" in one_line(exc)
    with pytest.raises(AcnedataError) as exc:  # refused before any request
        import_dataset("https://huggingface.co/datasets/org/acne", tmp_path / "o", licence="CC0")
    assert "huggingface-cli download" in one_line(exc)
