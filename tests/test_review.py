"""The review step: queue, decisions CSV, the JSON API, the CLI, and the page in real Chromium."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import typer
from typer.testing import CliRunner

from acnedata.catalog import Catalog
from acnedata.cli import user_errors
from acnedata.demo.mirror import DemoMirror
from acnedata.demo.spec import demo_spec_toml
from acnedata.errors import AcnedataError
from acnedata.pipeline import Collector
from acnedata.review import (
    TOKEN_HEADER,
    ReviewServer,
    apply_decisions,
    review_command,
    review_queue,
)
from acnedata.spec import load_spec

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The offline demo with NOASSERTION sent to review: conflicts and licence checks in review."""
    out = tmp_path_factory.mktemp("review-demo")
    with DemoMirror(per_class=8) as mirror:
        text = demo_spec_toml(mirror.base_url, per_class=8)
        assert 'noassertion = "reject"' in text  # the edit below must not silently miss
        (out / "spec.toml").write_text(text.replace('"reject"', '"review"'), "utf-8")
        with Collector(load_spec(out / "spec.toml"), out) as col:
            col.collect()
    return out


@pytest.fixture
def out(pristine, tmp_path) -> Path:
    """A private copy per test: tests write decisions."""
    return Path(shutil.copytree(pristine, tmp_path / "out"))


def queue(out: Path) -> list[dict]:
    with Catalog.open(out) as cat:
        return review_queue(cat)


def decision_of(out: Path, item_id: int) -> str | None:
    """Read through a second, independent connection: what a crash right now would leave."""
    db = sqlite3.connect(out / "catalog.sqlite")
    try:
        return db.execute("SELECT decision FROM items WHERE id = ?", (item_id,)).fetchone()[0]
    finally:
        db.close()


def manifest_labels(out: Path) -> dict[str, str]:
    data = json.loads((out / "manifest.json").read_text("utf-8"))
    return {i["id"]: i["label"] for i in data["items"]}


def conflict(items: list[dict]) -> dict:
    return next(i for i in items if i["review"].startswith("cross-class") and i["mates"])


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("id,decision\n" + "".join(f"{a},{b}\n" for a, b in rows), "utf-8")
    return path


# --- the queue -------------------------------------------------------------------------------
def test_queue_holds_conflicts_with_mates_and_unclear_licences(out):
    items = queue(out)
    reasons = [i["review"] for i in items]
    assert any(r.startswith("cross-class conflict") for r in reasons)
    assert any("NOASSERTION" in r for r in reasons)
    item = conflict(items)
    mate = item["mates"][0]
    assert mate["id"] != item["id"] and mate["file"] and mate["title"] and mate["source"]
    # The conflict is visible: the item and its mate were found for different classes.
    assert set(item["found_for"]) | set(mate["found_for"]) >= {"papular", "pustular"}
    assert item["licence"]["spdx"] and item["licence"]["verdict_reason"]
    assert item["author"] and item["page_url"].startswith("http")
    assert item["label_reason"] and item["decision"] is None
    # Only representatives wait: the mate (a duplicate) never appears on its own.
    assert mate["id"] not in {i["id"] for i in items}
    assert item["key"] not in manifest_labels(out)


# --- the decisions file ----------------------------------------------------------------------
def test_decisions_csv_assigns_rejects_and_undoes(out, tmp_path):
    items = queue(out)
    c = conflict(items)
    other = next(i for i in items if i["id"] != c["id"])
    csv_path = write_csv(tmp_path / "d.csv", [(c["key"], "Papular"), (str(other["id"]), "x")])
    assert apply_decisions(out, csv_path) == {"assigned": 1, "rejected": 1, "cleared": 0, "rows": 2}
    labels = manifest_labels(out)
    assert labels[c["key"]] == "papular"
    assert other["key"] not in labels and decision_of(out, other["id"]) == "reject"
    assert {i["id"] for i in queue(out)}.isdisjoint({c["id"], other["id"]})

    # An alias names its class; an empty decision or "undo" clears.
    csv_path = write_csv(tmp_path / "d2.csv", [(c["key"], "cystic"), (other["key"], "undo")])
    assert apply_decisions(out, csv_path)["cleared"] == 1
    assert manifest_labels(out)[c["key"]] == "nodulocystic"
    assert decision_of(out, other["id"]) is None
    assert other["id"] in {i["id"] for i in queue(out)}


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (("commons:does-not-exist", "papular"), "no item with id 'commons:does-not-exist'"),
        (("{key}", "rosacea"), "'rosacea' is not a class of acne-l70"),
        (("{mate}", "papular"), "is a duplicate of"),
    ],
)
def test_decisions_csv_error_names_the_line_and_applies_nothing(out, tmp_path, bad_row, message):
    c = conflict(queue(out))
    manifest_before = (out / "manifest.json").read_bytes()
    ident = bad_row[0].format(key=c["key"], mate=c["mates"][0]["key"])
    csv_path = write_csv(tmp_path / "d.csv", [(c["key"], "papular"), (ident, bad_row[1])])
    with pytest.raises(AcnedataError) as err:
        apply_decisions(out, csv_path)
    text = str(err.value)
    assert "\n" not in text and f"{csv_path} line 3" in text and message in text
    assert decision_of(out, c["id"]) is None  # the good first row was not applied either
    assert (out / "manifest.json").read_bytes() == manifest_before


def test_decisions_csv_needs_its_columns(out, tmp_path):
    bad = tmp_path / "d.csv"
    bad.write_text("key,label\ncommons:1,papular\n", "utf-8")
    with pytest.raises(AcnedataError, match="columns id and decision"):
        apply_decisions(out, bad)


# --- the server ------------------------------------------------------------------------------
def test_api_decides_at_once_undoes_and_serves_only_its_images(out):
    c = conflict(queue(out))
    with ReviewServer(out) as srv:
        base = srv.url.rstrip("/")
        api = requests.Session()  # what the page sends with each POST: this session's token
        api.headers[TOKEN_HEADER] = srv.token
        assert srv.url.startswith("http://127.0.0.1:")
        classes = requests.get(base + "/api/classes", timeout=5).json()["classes"]
        assert [(k["name"], k["key"]) for k in classes] == [
            ("comedonal", "1"),
            ("papular", "2"),
            ("pustular", "3"),
            ("nodulocystic", "4"),
        ]
        assert "cystic" in classes[3]["aliases"]
        q = requests.get(base + "/api/queue", timeout=5).json()
        assert q["decided"] == 0 and q["total"] == len(q["items"]) >= 2

        r = api.post(base + "/api/decide", json={"id": c["id"], "decision": "2"}, timeout=5)
        assert r.status_code == 400 and "not a class" in r.json()["error"]  # keys are the page's
        r = api.post(
            base + "/api/decide", json={"id": c["key"], "decision": "pustulosa"}, timeout=5
        )
        assert r.status_code == 200, r.text
        assert r.json()["item"]["decision"] == "pustular"
        assert decision_of(out, c["id"]) == "pustular"  # committed before the reply
        sheet = requests.get(base + "/api/sheet?class=pustular", timeout=5).json()
        assert c["id"] in {i["id"] for i in sheet["items"]}
        r = api.post(base + "/api/decide", json={"id": c["id"], "decision": "x"}, timeout=5)
        assert decision_of(out, c["id"]) == "reject"
        assert srv.decisions_made == 2

        r = api.post(base + "/api/undo", json={}, timeout=5)
        assert r.json()["item"]["decision"] == "pustular" == decision_of(out, c["id"])
        api.post(base + "/api/undo", json={}, timeout=5)
        assert decision_of(out, c["id"]) is None
        assert api.post(base + "/api/undo", json={}, timeout=5).status_code == 409
        api.post(base + "/api/decide", json={"id": c["id"], "decision": "papular"}, timeout=5)

        # Images: by numeric id, only from out/images, never anything else on disk.
        image = requests.get(f"{base}/image/{c['id']}", timeout=5)
        assert image.content == (out / c["file"]).read_bytes()
        thumb = requests.get(f"{base}/image/{c['id']}?thumb=1", timeout=5)
        assert thumb.headers["Content-Type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
        for path in (
            "/image/../catalog.sqlite",
            "/image/..%2F..%2Fcatalog.sqlite",
            "/image/%2e%2e/%2e%2e/etc/passwd",
            "/static/../review.py",
            "/static/%2e%2e%2freview.py",
        ):
            resp = requests.get(base + path, timeout=5)
            assert resp.status_code == 404 and b"SQLite" not in resp.content, path
        db = sqlite3.connect(out / "catalog.sqlite")
        db.execute("UPDATE items SET file = 'images/../catalog.sqlite' WHERE id = ?", (c["id"],))
        db.commit()
        db.close()
        assert requests.get(f"{base}/image/{c['id']}", timeout=5).status_code == 404

        # A page on another origin cannot post decisions (DNS rebinding, plain forms).
        evil = api.post(
            base + "/api/decide",
            json={"id": c["id"], "decision": "reject"},
            headers={"Host": "evil.example:80"},
            timeout=5,
        )
        form = api.post(base + "/api/decide", data={"id": c["id"], "decision": "reject"}, timeout=5)
        assert (evil.status_code, form.status_code) == (403, 415)
        assert decision_of(out, c["id"]) == "papular"
        page = requests.get(base + "/", timeout=5)
        assert page.status_code == 200 and "review.js" in page.text
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert manifest_labels(out)[c["key"]] == "papular"  # rewritten on stop


def test_server_refuses_other_interfaces(out):
    with pytest.raises(AcnedataError, match=r"127\.0\.0\.1 only"):
        ReviewServer(out, host="0.0.0.0")


# --- the command -----------------------------------------------------------------------------
def cli_app() -> typer.Typer:
    """The command registered as the lead registers it in acnedata.cli."""
    app = typer.Typer()
    app.command("review")(user_errors(review_command))

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_cli_applies_a_decisions_file(out, tmp_path):
    c = conflict(queue(out))
    runner = CliRunner()
    good = write_csv(tmp_path / "d.csv", [(c["key"], "papular")])
    result = runner.invoke(cli_app(), ["review", str(out), "--decisions", str(good)])
    assert result.exit_code == 0, result.output
    assert "applied 1 decision: 1 assigned" in result.output
    bad = write_csv(tmp_path / "bad.csv", [("nope:1", "papular")])
    result = runner.invoke(cli_app(), ["review", str(out), "--decisions", str(bad)])
    assert result.exit_code == 1
    assert "error:" in result.output and "no item with id 'nope:1'" in result.output
    assert "Traceback" not in result.output


def serve_review(out: Path) -> tuple[subprocess.Popen, str]:
    """`acnedata review OUT --no-browser` in a process of its own (faulthandler on, so a hang can
    be dumped with SIGABRT); (the process, the page's URL it printed)."""
    code = "import typer; from acnedata.review import review_command; typer.run(review_command)"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-X", "faulthandler", "-c", code, str(out), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("review page: http://127.0.0.1:"):
        proc.kill()
        pytest.fail(line + proc.stderr.read())
    return proc, line.split()[2]


def test_cli_serves_until_ctrl_c_then_rewrites_the_manifest(out):
    c = conflict(queue(out))
    proc, url = serve_review(out)
    try:
        # the token a browser finds in the page
        page = requests.get(url, timeout=5).text
        token = re.search(r'name="acnedata-token" content="([^"]+)"', page).group(1)
        r = requests.post(
            url + "api/decide",
            json={"id": c["id"], "decision": "x"},
            headers={TOKEN_HEADER: token},
            timeout=5,
        )
        assert r.status_code == 200
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
            stderr = proc.communicate(timeout=10)[1]
            pytest.fail(f"review did not stop within 20 s of SIGINT; stderr: {stderr[-6000:]}")
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "1 decision made; manifest rewritten" in stdout
    assert decision_of(out, c["id"]) == "reject"


def test_ctrl_c_does_not_wait_for_a_connection_that_sends_nothing(out):
    # Browsers open spare connections ahead of need; one that never sends a request must not
    # hold Ctrl-C for the 10 s a request head may take (READ_DEADLINE).
    import socket
    import time
    from urllib.parse import urlsplit

    proc, url = serve_review(out)
    try:
        with socket.create_connection(("127.0.0.1", urlsplit(url).port)):
            requests.get(url, timeout=5)  # served while the idle connection waits
            signalled = time.monotonic()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
            took = time.monotonic() - signalled
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert took < 2.0, f"review took {took:.1f} s to stop after SIGINT"
    assert "manifest rewritten" in stdout


# --- the page in a real browser --------------------------------------------------------------
@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_page_keyboard_decisions_land_in_the_catalog(out, tmp_path):
    # Waits go through expect(), never wait_for_function: the page's CSP forbids string eval.
    from playwright.sync_api import expect, sync_playwright

    errors: list[str] = []
    with ReviewServer(out) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(srv.url)
            page.wait_for_selector("body[data-ready]")
            page.wait_for_load_state("networkidle")  # the large image and mate thumbnails
            page.screenshot(path="/tmp/review.png")
            total = len(queue(out))
            assert page.inner_text("#progress").startswith(f"0 of {total} decided")
            assert page.locator("#class-buttons button").first.inner_text().strip() == "1 comedonal"

            def shown() -> int:
                return int(page.get_attribute("#item", "data-item-id"))

            item = page.locator("#item")

            def moved_from(item_id: int) -> None:
                expect(item).not_to_have_attribute("data-item-id", str(item_id))

            first = shown()
            page.keyboard.press("2")
            moved_from(first)
            assert decision_of(out, first) == "papular"
            second = shown()
            page.keyboard.press("x")
            moved_from(second)
            assert decision_of(out, second) == "reject"
            assert page.inner_text("#progress").startswith(f"2 of {total} decided")
            page.keyboard.press("u")
            expect(item).to_have_attribute("data-item-id", str(second))
            assert decision_of(out, second) is None
            assert decision_of(out, first) == "papular"
            assert page.inner_text("#progress").startswith(f"1 of {total} decided")
            page.keyboard.press("ArrowLeft")
            assert shown() == first
            assert page.get_attribute("[data-decision='papular']", "aria-pressed") == "true"

            # Contact sheet: the decided item is filed under papular; move it with a key.
            page.click("#tab-sheet")
            page.click("#sheet-classes button[data-class='papular']")
            thumb = page.locator(f"#sheet button.thumb[data-item-id='{first}']")
            thumb.click()
            page.keyboard.press("3")
            expect(thumb).to_have_class("thumb moved")
            assert decision_of(out, first) == "pustular"
            assert "→ pustular" in thumb.inner_text()
            page.screenshot(path=str(tmp_path / "sheet.png"))
        finally:
            browser.close()
    assert not errors, errors
    with Catalog.open(out) as cat:
        first_key = cat.item(first)["key"]
    assert manifest_labels(out)[first_key] == "pustular"  # the manifest was rewritten on stop
