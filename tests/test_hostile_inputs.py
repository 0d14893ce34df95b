"""Hostile inputs (issue 14, items 3-9): manifests, archives, folders, specs, catalogs, disks,
review-server requests. Each ends in one line and exit 1, or a clean refusal, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from imagefactory import make_image, to_bytes
from manifest_factory import make_manifest
from PIL import Image
from test_cli import assert_one_line_error, run

from acnedata.catalog import Catalog
from acnedata.errors import ManifestError
from acnedata.importer import import_dataset
from acnedata.manifest import load_manifest
from acnedata.review import ReviewServer


def png(kind: int, seed: int, size: int = 96) -> bytes:
    return to_bytes(make_image(kind, size=(size, size), seed=seed), "PNG")


def make_folder(root: Path, per_class: int = 3) -> Path:
    for k, klass in enumerate(("comedonal", "pustular")):
        (root / klass).mkdir(parents=True)
        for i in range(per_class):
            (root / klass / f"{i}.png").write_bytes(png(k, i))
    return root


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.exists() else []


# --- 3. manifest paths stay inside the manifest's folder -------------------------------------
def tampered_manifest(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A valid manifest whose first item names a file outside its folder; (folder, item id).

    The outside file is the item's own image, so its sha256 matches: the old code's `verify`
    found nothing wrong."""
    folder = tmp_path / "ds"
    path = make_manifest(folder, clusters_per_class=2)
    data = json.loads(path.read_text("utf-8"))
    item = data["items"][0]
    secret = tmp_path / "secret.png"
    shutil.copyfile(folder / item["file"], secret)
    if how == "absolute":
        item["file"] = str(secret)
    elif how == "dotdot":
        item["file"] = "../secret.png"
    elif how == "inner-dotdot":
        item["file"] = "images/../../secret.png"
    elif how == "symlink":
        (folder / "images" / "link.png").symlink_to(secret)
        item["file"] = "images/link.png"
    elif how == "linked-folder":
        (tmp_path / "elsewhere").mkdir()
        shutil.copyfile(secret, tmp_path / "elsewhere" / "x.png")
        (folder / "more").symlink_to(tmp_path / "elsewhere")
        item["file"] = "more/x.png"
    path.write_text(json.dumps(data), "utf-8")
    return folder, item["id"]


ESCAPES = ["absolute", "dotdot", "inner-dotdot", "symlink", "linked-folder"]


@pytest.mark.parametrize("how", ESCAPES)
def test_verify_refuses_a_manifest_naming_files_outside_its_folder(tmp_path, how):
    folder, item_id = tampered_manifest(tmp_path, how)
    proc = run("verify", str(folder))
    assert_one_line_error(proc, item_id, "outside the manifest's folder")
    assert "checked" not in proc.stdout  # nothing was hashed


def test_verify_does_not_tell_whether_an_outside_file_exists(tmp_path):
    folder, _ = tampered_manifest(tmp_path, "dotdot")
    there = run("verify", str(folder))
    (tmp_path / "secret.png").unlink()
    gone = run("verify", str(folder))
    assert (there.returncode, there.stdout, there.stderr) == (
        gone.returncode,
        gone.stdout,
        gone.stderr,
    )
    assert_one_line_error(gone, "outside")


@pytest.mark.parametrize("how", ["absolute", "symlink"])
def test_acnemodel_refuses_a_manifest_naming_files_outside_its_folder(tmp_path, how):
    from acnemodel.data import load_dataset

    folder, item_id = tampered_manifest(tmp_path, how)
    with pytest.raises(ManifestError) as exc:
        load_dataset(folder, (16, 16), augment=None)
    assert item_id in str(exc.value) and "\n" not in str(exc.value)


def test_links_that_stay_inside_the_folder_are_fine(tmp_path):
    folder = tmp_path / "ds"
    path = make_manifest(folder, clusters_per_class=2)
    data = json.loads(path.read_text("utf-8"))
    first = data["items"][0]
    (folder / "images" / "alias.png").symlink_to(folder / first["file"])
    first["file"] = "images/alias.png"
    path.write_text(json.dumps(data), "utf-8")
    proc = run("verify", str(folder))
    assert proc.returncode == 0, proc.stderr
    # ... and one leading out is refused, though it is the only change
    (folder / "images" / "alias.png").unlink()
    (folder / "images" / "alias.png").symlink_to(tmp_path / "nowhere.png")
    assert_one_line_error(run("verify", str(folder)), first["id"], "outside")


def test_expanded_manifest_names_only_files_in_its_own_folder(tmp_path):
    from acnemodel.data import open_manifest
    from acnemodel.expand import expand_manifest

    source = open_manifest(make_manifest(tmp_path / "ds", clusters_per_class=2))
    # no copies to make (and no TensorFlow): the originals alone, in a sibling folder
    result = expand_manifest(source, tmp_path / "ds-expanded", len(source.items))
    expanded = load_manifest(result.manifest)
    assert [i["file"] for i in expanded.items] == [i["file"] for i in source.items]
    for item in expanded.items:
        assert expanded.file_path(item).samefile(source.file_path(item))  # a link, not a copy
    assert run("verify", str(tmp_path / "ds-expanded")).returncode == 0


# --- 4. zip bombs -----------------------------------------------------------------------------
def bomb(path: Path, kind: str) -> Path:
    """Real class folders plus one 'image' of 64 MiB of zeros: ~65 kB packed, ratio ~1,000."""
    zeros = bytes(64 * 1024**2)
    members = {f"set/{c}/{i}.png": png(k, i) for k, c in enumerate(("a", "b")) for i in range(2)}
    members["set/a/huge.png"] = zeros
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    assert path.stat().st_size < 1024**2
    return path


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_zip_bomb_is_refused_and_leaves_nothing_on_disk(tmp_path, kind):
    archive = bomb(tmp_path / f"bomb.{kind}", kind)
    out = tmp_path / "new" / "out"
    proc = run("import", str(archive), "--out", str(out), "--licence", "CC0-1.0", "--quiet")
    assert_one_line_error(proc, str(archive), "refusing to extract", "zip bomb")
    assert not (tmp_path / "new").exists()  # not even the folders made for it


# --- 5. folder import never follows a link out of the folder ---------------------------------
def test_folder_import_refuses_a_link_out_of_the_folder_like_the_csv_route(tmp_path):
    root = make_folder(tmp_path / "data")
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "holiday.png").write_bytes(png(7, 7))
    # a link that stays inside is a file of the dataset like any other
    (root / "comedonal" / "again.png").symlink_to(root / "pustular" / "0.png")
    ok = run("import", str(root), "--out", str(tmp_path / "ok"), "--licence", "CC0-1.0")
    assert ok.returncode == 0, ok.stderr

    (root / "comedonal" / "escape.png").symlink_to(outside / "holiday.png")
    out = tmp_path / "out"
    folder = run("import", str(root), "--out", str(out), "--licence", "CC0-1.0")
    assert_one_line_error(folder, "escape.png", "points outside", "stay inside the dataset folder")
    assert not (out / "manifest.json").exists()
    # the CSV route says the same of the same file
    (root / "labels.csv").write_text("file,label\ncomedonal/escape.png,comedonal\n", "utf-8")
    by_csv = run("import", str(root / "labels.csv"), "--out", str(tmp_path / "csv"), "--licence",
                 "CC0-1.0")  # fmt: skip
    assert_one_line_error(by_csv, "escape.png", "points outside", "stay inside the dataset folder")


@pytest.mark.parametrize("what", ["class-folder", "sidecar"])
def test_folder_import_refuses_linked_class_folders_and_sidecars(tmp_path, what):
    root = make_folder(tmp_path / "data")
    if what == "class-folder":
        elsewhere = make_folder(tmp_path / "elsewhere", per_class=1)
        (root / "nodulocystic").symlink_to(elsewhere / "comedonal")
        name = "nodulocystic"
    else:  # never read: not even to say it is not JSON
        (root / "comedonal" / "0.json").symlink_to("/etc/passwd")
        name = "0.json"
    proc = run("import", str(root), "--out", str(tmp_path / "out"), "--licence", "CC0-1.0")
    assert_one_line_error(proc, name, "points outside")


# --- 6. nan and inf in specs -------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, key",
    [
        ("min_interval = inf", "network.min_interval"),
        ("timeout = nan", "network.timeout"),
        ("rate = nan", "network.rate"),
        ("rate = inf", "network.rate"),
        ("timeout = 1e300", "network.timeout"),  # finite, but past what a timeout can hold
        ("rate = 1e-300", "network.rate"),  # one request per 1e300 s
    ],
)
def test_spec_numbers_must_be_finite_and_usable(tmp_path, line, key):
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "x"\n[network]\n{line}\n[[classes]]\nname = "a"\n', "utf-8")
    proc = run("collect", str(spec), "--out", str(tmp_path / "o"), "--allow-private", "--quiet")
    assert_one_line_error(proc, str(spec), key)


@pytest.mark.parametrize("rate", ["inf", "1e-300"])
def test_rate_option_must_be_finite_and_usable(tmp_path, rate):
    urls = tmp_path / "urls.csv"
    urls.write_text("url\nhttp://127.0.0.1:9/a.png\n", "utf-8")  # never reached
    proc = run(
        "fetch", str(urls), "--out", str(tmp_path / "o"), "--allow-private", "--rate", rate, "-q"
    )
    assert_one_line_error(proc, "--rate")


# --- 7. a damaged catalog ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A small dataset made by `import` (no network): catalog, images, manifest."""
    base = tmp_path_factory.mktemp("imported")
    out = base / "out"
    import_dataset(make_folder(base / "data", per_class=6), out, licence="CC0-1.0")
    assert not (out / "catalog.sqlite-wal").exists()  # checkpointed on close: one file to damage
    return out


def damage(catalog: Path, table: str) -> None:
    """Overwrite the head of the table's root page: what a bad sector or a torn copy leaves."""
    with contextlib.closing(sqlite3.connect(catalog)) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
    with catalog.open("r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * 64)


@pytest.mark.parametrize("table", ["meta", "items"])
@pytest.mark.parametrize("command", ["status", "manifest", "fetch"])
def test_a_damaged_catalog_is_one_line_saying_how_to_rebuild(imported, tmp_path, table, command):
    out = Path(shutil.copytree(imported, tmp_path / "out"))
    damage(out / "catalog.sqlite", table)
    args = [command, str(out)]
    if command == "fetch":
        urls = tmp_path / "urls.csv"
        urls.write_text("url\nhttp://127.0.0.1:9/a.png\n", "utf-8")
        args = ["fetch", str(urls), "--out", str(out), "--allow-private", "--quiet"]
    assert_one_line_error(
        run(*args), str(out / "catalog.sqlite"), "damaged", "rebuild", "move it aside"
    )


def test_the_rebuild_the_message_gives_works(tmp_path):
    data = make_folder(tmp_path / "data")
    out = tmp_path / "out"
    args = ["import", str(data), "--out", str(out), "--licence", "CC0-1.0", "--quiet"]
    assert run(*args).returncode == 0
    damage(out / "catalog.sqlite", "items")
    assert_one_line_error(run("status", str(out)), "damaged")
    (out / "catalog.sqlite").rename(tmp_path / "damaged.sqlite")  # "move it aside"
    assert run(*args).returncode == 0  # "run the command that built it again"
    assert run("verify", str(out)).stdout.startswith("checked 6 files: 0 missing, 0 changed")


# --- 8. a full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, which only root may mount")
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # busy: detach it now


def noise_folder(root: Path, n: int, side: int) -> Path:
    """Incompressible PNGs (~3·side² bytes each) in two classes."""
    rng = np.random.default_rng(0)
    for i in range(n):
        klass = root / ("comedonal" if i % 2 else "pustular")
        klass.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(klass / f"{i}.png")
    return root


def test_disk_full_while_storing_is_one_line_and_the_same_command_resumes(tmp_path, small_disk):
    data = noise_folder(tmp_path / "data", 8, 320)  # ~2.4 MB: more than the disk holds
    out = small_disk / "out"
    args = ["import", str(data), "--out", str(out), "--licence", "CC0-1.0", "--quiet"]
    assert_one_line_error(run(*args), str(out), "no space left", "run the same command again")
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert len(json.loads((out / "manifest.json").read_text("utf-8"))["items"]) == 8
    assert run("verify", str(out)).returncode == 0


@pytest.mark.parametrize("command", ["status", "manifest", "import"])
def test_a_disk_already_full_is_one_line_naming_the_folder(tmp_path, small_disk, command):
    data = make_folder(tmp_path / "data")
    out = small_disk / "out"
    args = ["import", str(data), "--out", str(out), "--licence", "CC0-1.0", "--quiet"]
    assert run(*args).returncode == 0
    with contextlib.suppress(OSError), (small_disk / "filler").open("wb", buffering=0) as fh:
        while True:  # until the disk is full
            fh.write(bytes(4096))
    proc = run(*args) if command == "import" else run(command, str(out))
    assert_one_line_error(proc, str(out), "no space left", "run the same command again")


def test_an_archive_bigger_than_the_free_space_is_refused_before_writing(tmp_path, small_disk):
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for i in range(3):
            zf.writestr(f"a/{i}.png", os.urandom(1024**2))
    out = small_disk / "out"
    proc = run("import", str(archive), "--out", str(out), "--licence", "CC0-1.0")
    assert_one_line_error(proc, str(archive), "free", str(out / "_import"))
    assert not out.exists()


# --- 9. the review server -------------------------------------------------------------------
@pytest.fixture
def review(imported, tmp_path) -> Iterator[ReviewServer]:
    out = Path(shutil.copytree(imported, tmp_path / "out"))
    server = ReviewServer(out)
    server.read_deadline = 1.0  # seconds: a stalled client is cut off this soon
    with server:
        yield server


def raw_request(server: ReviewServer, head: str, body: bytes = b"") -> bytes:
    """Send bytes as they are (no client library fixes them up); the whole reply, or b"" if the
    server dropped the connection without one. 30 s bounds only a server that hangs."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        reply = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                reply += chunk
    return reply


def status_of(reply: bytes) -> int:
    assert reply, "the server dropped the connection without a reply"
    return int(reply.split(b" ", 2)[1])


def first_item(server: ReviewServer) -> int:
    with Catalog.open(server.out) as cat:
        return int(cat.items("state = 'stored'", columns="id")[0]["id"])


def post_head(server: ReviewServer, path: str, length: int, extra: str = "") -> str:
    """A POST's head as the page sends it. (getattr: a server without session tokens, such as
    the base commit's, gets the same request, so these tests fail there for what they test.)"""
    token = getattr(server, "token", "none")
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n"
        f"X-Acnedata-Token: {token}\r\nConnection: close\r\n{extra}\r\n"
    )


def test_review_server_answers_404_for_ids_no_item_can_have(review):
    base = review.url.rstrip("/")
    for ident in ("99999999999999999999", "9" * 5000, str(2**63)):
        r = requests.get(f"{base}/image/{ident}", timeout=30)
        assert r.status_code == 404 and "error" in r.json()
    # "²" is a digit to str.isdigit() but not to int(); sent raw, as a client may
    head = f"GET /image/\xb2 HTTP/1.0\r\nHost: 127.0.0.1:{review.port}\r\n\r\n"
    assert status_of(raw_request(review, head)) == 404
    body = json.dumps({"id": "99999999999999999999", "decision": "x"}).encode()
    reply = raw_request(review, post_head(review, "/api/decide", len(body)), body)
    assert status_of(reply) == 400 and b"no item with id" in reply
    assert requests.get(f"{base}/image/{first_item(review)}", timeout=30).status_code == 200


def test_review_decisions_csv_with_an_overflowing_id_is_one_line(imported, tmp_path):
    out = Path(shutil.copytree(imported, tmp_path / "out"))
    csv = tmp_path / "d.csv"
    csv.write_text("id,decision\n99999999999999999999,reject\n", "utf-8")
    assert_one_line_error(run("review", str(out), "--decisions", str(csv)), "no item with id")


def test_review_server_cuts_off_a_body_shorter_than_announced(review):
    # 100 bytes announced, 10 sent, and the connection left open: the handler must not wait on
    body = b'{"id": 1, '
    reply = raw_request(
        review, post_head(review, "/api/decide", 100).replace("close", "keep-alive"), body
    )
    assert status_of(reply) == 408 and b"of the 100 bytes" in reply
    negative = raw_request(review, post_head(review, "/api/undo", -1), b"{}")
    assert status_of(negative) == 400  # rfile.read(-1) would wait for the client to close
    assert requests.get(review.url + "api/classes", timeout=30).status_code == 200


def test_review_server_takes_decisions_only_from_its_own_page(review):
    item = first_item(review)
    body = json.dumps({"id": item, "decision": "reject"}).encode()
    foreign = post_head(review, "/api/decide", len(body), "Origin: http://evil.example\r\n")
    assert status_of(raw_request(review, foreign, body)) == 403
    opaque = post_head(review, "/api/decide", len(body), "Origin: null\r\n")
    assert status_of(raw_request(review, opaque, body)) == 403
    no_token = post_head(review, "/api/decide", len(body)).replace(review.token, "guess")
    assert status_of(raw_request(review, no_token, body)) == 403
    assert review.decisions_made == 0
    # the page carries the token; with it (and its own Origin) the decision goes through
    page = requests.get(review.url, timeout=30).text
    assert f'content="{review.token}"' in page
    own = post_head(review, "/api/decide", len(body), f"Origin: http://127.0.0.1:{review.port}\r\n")
    assert status_of(raw_request(review, own, body)) == 200
    assert review.decisions_made == 1
