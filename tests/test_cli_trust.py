"""A CLI scripts can trust (issue 13, part 3): portals' exit status, -q, TensorFlow's log lines,
stale manifests, counts that agree, and cut lists that say so."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from httpserver import send
from imagefactory import make_image
from test_cli_scripting import class_folders

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acnedata", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )  # fmt: skip


def _portal_spec(tmp_path: Path, zenodo_url: str) -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "p"\ncontact = "t@example.org"\nkeywords = ["acne"]\n'
        "[network]\nallow_private = true\nmin_interval = 0.0\nmax_retries = 0\n"
        f'[sources.zenodo]\nbase_url = "{zenodo_url}"\n'
        "[sources.kaggle]\n"  # no credentials in the tests: skipped with a note
        '[[classes]]\nname = "papular"\n',
        encoding="utf-8",
    )
    return spec


def test_portals_exits_3_when_no_portal_could_be_reached(httpserver, tmp_path):
    httpserver.route("/api/records", status=503, body="down")
    spec = _portal_spec(tmp_path, httpserver.url("/api/records"))
    proc = run("portals", str(spec), "--out", str(tmp_path), env={"KAGGLE_API_TOKEN": ""})
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1].startswith("error: none of the 2 portals")


def test_portals_exits_0_when_one_portal_answered(httpserver, tmp_path):
    def zenodo(req):
        body = {"hits": {"total": 0, "hits": []}, "links": {}}
        send(req, 200, json.dumps(body), {"Content-Type": "application/json"})

    httpserver.route("/api/records", handler=zenodo)
    spec = _portal_spec(tmp_path, httpserver.url("/api/records"))
    proc = run("portals", str(spec), "--out", str(tmp_path), env={"KAGGLE_API_TOKEN": ""})
    assert proc.returncode == 0, proc.stderr
    assert "0 of 0 datasets fit" in proc.stdout


def _jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    make_image(seed, size=(48, 48), seed=seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_quiet_prints_nothing_not_even_the_summary(httpserver, tmp_path):
    urls = tmp_path / "urls.csv"
    rows = ["url,licence,label"]
    for k in range(3):
        httpserver.route(f"/q/{k}.jpg", body=_jpeg(950 + k), headers={"Content-Type": "image/jpeg"})
        rows.append(f"{httpserver.url(f'/q/{k}.jpg')},CC-BY-4.0,papular")
    urls.write_text("\n".join(rows) + "\n", encoding="utf-8")
    loud = run("fetch", str(urls), "--out", str(tmp_path / "loud"), "--allow-private")
    assert loud.returncode == 0 and "download: stored 3" in loud.stdout  # the tables are there
    for args in (
        ["fetch", str(urls), "--out", str(tmp_path / "f"), "--allow-private", "-q"],
        ["import", str(class_folders(tmp_path / "src", seed=900)), "--out", str(tmp_path / "i"),
         "--licence", "CC-BY-4.0", "-q"],
        ["dedup", str(tmp_path / "i"), "-q"],
        ["download", str(tmp_path / "f"), "-q"],
    ):  # fmt: skip
        proc = run(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert (proc.stdout, proc.stderr) == ("", ""), args
    assert json.loads((tmp_path / "f" / "manifest.json").read_text())["counts"]


def test_an_imported_dataset_has_one_credit_line(tmp_path):
    out = tmp_path / "i"
    src = class_folders(tmp_path / "src", seed=900)
    proc = run("import", str(src), "--out", str(out), "--licence",
               "CC-BY-SA-4.0", "--author", "Clinic A", "--title", "Clinic photos",
               "-q")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    credits = [
        line for line in (out / "ATTRIBUTION.md").read_text().splitlines() if line[:2] == "- "
    ]
    assert credits == [
        '- 6 images: "Clinic photos" by Clinic A, licensed under CC BY-SA 4.0 '
        "(https://creativecommons.org/licenses/by-sa/4.0/)."
    ]
    rows = (out / "attribution.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6


NATIVE_LOG_MARKS = ("absl::InitializeLog", "cudart_stub.cc", "port.cc:", "cpu_feature_guard")


def test_tensorflow_start_up_lines_show_only_with_verbose(tmp_path):
    pytest.importorskip("tensorflow")
    from manifest_factory import make_manifest

    manifest = make_manifest(tmp_path / "m", classes=("a", "b"), clusters_per_class=2, size=16)

    def acnemodel(*args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
        return subprocess.run(
            [sys.executable, "-c", "from acnemodel.cli import main; main()", *args],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip

    quiet = acnemodel("expand", str(manifest), "--to", "8", "--out", str(tmp_path / "q"))
    assert quiet.returncode == 0, quiet.stderr
    assert "augmented copies written" in quiet.stdout
    assert not [m for m in NATIVE_LOG_MARKS if m in quiet.stderr], quiet.stderr
    # the same command with --verbose shows them: the check above looks where they would be
    loud = acnemodel(
        "--verbose", "expand", str(manifest), "--to", "8", "--out", str(tmp_path / "v")
    )
    assert loud.returncode == 0, loud.stderr
    assert "absl::InitializeLog" in loud.stderr


def test_a_stale_manifest_is_named_and_dedup_rewrites_it(tmp_path):
    out = tmp_path / "out"
    src = class_folders(tmp_path / "src", seed=900)
    assert run("import", str(src), "--out", str(out), "--licence",
               "CC-BY-4.0", "-q").returncode == 0  # fmt: skip
    assert run("status", str(out)).stderr == ""  # current: nothing to say
    # The catalog changes behind the manifest's back (as a dedup run of an older acnedata, or
    # one stopped before its manifest, leaves it): one item excluded, one relabelled.
    with sqlite3.connect(out / "catalog.sqlite") as db:
        db.execute("UPDATE items SET excluded = 'by hand' WHERE key = 'folder:papular/2.png'")
        db.execute("UPDATE items SET decision = 'papular' WHERE key = 'folder:comedonal/0.png'")
    note = (
        f"note: {out / 'manifest.json'} is older than the catalog (1 to remove, 1 changed); "
        f"refresh it with: acnedata manifest {out}"
    )
    for args in (["status", str(out)], ["status", str(out), "--json"], ["verify", str(out)]):
        proc = run(*args)
        assert proc.returncode == 0 and proc.stderr.strip() == note, (args, proc.stderr)
    # dedup, which changes the catalog, rewrites a manifest that no longer matches it
    proc = run("dedup", str(out))
    assert f"manifest rewritten: {out / 'manifest.json'}" in proc.stdout.replace("\n", "")
    items = json.loads((out / "manifest.json").read_text())["items"]
    assert len(items) == 5 and {
        i["label"] for i in items if i["id"] == "folder:comedonal/0.png"
    } == {"papular"}
    assert run("status", str(out)).stderr == "" and run("verify", str(out)).stderr == ""


def test_a_cut_list_of_reasons_says_how_many_more(tmp_path):
    licences = ["CC-BY-NC-4.0", "CC-BY-ND-4.0", "GFDL-1.2", "MIT", "sampling+", "CC-BY-4.0"]
    (tmp_path / "urls.jsonl").write_text(
        "".join(json.dumps({"url": f"http://127.0.0.1:9/{k}.jpg", "licence": lic,
                            "label": "papular"}) + "\n" for k, lic in enumerate(licences)),
        encoding="utf-8",
    )  # fmt: skip
    (tmp_path / "spec.toml").write_text(
        'name = "cut"\n[network]\nallow_private = true\n'
        '[sources.urllist]\npath = "urls.jsonl"\n[[classes]]\nname = "papular"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert run("search", str(tmp_path / "spec.toml"), "--out", str(out), "-q").returncode == 0
    status = run("status", str(out))
    data = json.loads(run("status", str(out), "--json").stdout)
    assert data["states"]["rejected"] == 5  # the figure the table and the JSON agree on
    assert "rejected by licence │      5" in status.stdout
    assert "+2 more (acnedata status DIR --show STATE lists them)" in status.stdout


def test_dedup_and_status_print_the_same_figures(tmp_path):
    # Two photos with a resized copy each: groups hold 2 stored images but 1 kept item.
    source = tmp_path / "source" / "papular"
    source.mkdir(parents=True)
    for k in range(4):
        im = make_image(k, size=(160, 160), seed=k)
        im.save(source / f"{k}.jpg")
        if k < 2:
            im.resize((150, 150)).save(source / f"{k}b.jpg")
    out = tmp_path / "out"
    done = run("import", str(source.parent), "--out", str(out), "--licence", "CC0-1.0", "-q")
    assert done.returncode == 0, done.stderr
    dedup = json.loads(run("dedup", str(out), "--json").stdout)
    status = json.loads(run("status", str(out), "--json").stdout)
    keys = ("duplicates", "groups", "largest_group", "review")
    assert {k: dedup[k] for k in keys} == {k: status[k] for k in keys}
    assert (dedup["duplicates"], dedup["groups"], dedup["largest_group"]) == (2, 4, 1)
    line = run("dedup", str(out)).stdout
    assert "2 duplicates in 6 stored images" in line and "4 groups (largest 1 items)" in line
