"""Model-assisted review: train → predict --json → review --suggestions in Chromium → manifest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
from typer.testing import CliRunner

from acnedata.catalog import Catalog
from acnedata.cli import app as acnedata_app
from acnedata.demo.mirror import DemoMirror
from acnedata.demo.spec import demo_spec_toml
from acnedata.pipeline import Collector
from acnedata.review import ReviewServer, review_queue
from acnedata.spec import load_spec
from acnedata.suggestions import load_suggestions, match_suggestions

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
runner = CliRunner()

pytestmark = [
    pytest.mark.slow,  # one real 1-epoch training at 32×32
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline demo collection: a catalog, stored images and a manifest."""
    out = tmp_path_factory.mktemp("assisted")
    with DemoMirror(per_class=8) as mirror:
        (out / "spec.toml").write_text(demo_spec_toml(mirror.base_url, per_class=8), "utf-8")
        with Collector(load_spec(out / "spec.toml"), out) as col:
            col.collect()
    return out


@pytest.fixture(scope="module")
def predictions(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Steps 1 and 2 through the real commands: train a tiny model, predict every image."""
    from acnemodel.cli import app as model_app

    run = tmp_path_factory.mktemp("run")
    trained = runner.invoke(
        model_app,
        ["train", str(collection / "manifest.json"), "--model", "paper", "--epochs", "1",
         "--batch-size", "8", "--out", str(run), "--quiet"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output + trained.stderr
    images = sorted(str(p) for p in (collection / "images").rglob("*") if p.is_file())
    got = runner.invoke(model_app, ["predict", str(run), *images, "--json"])
    assert got.exit_code == 0, got.stderr
    path = tmp_path_factory.mktemp("preds") / "preds.json"
    path.write_text(got.stdout, "utf-8")
    return path


def test_suggestions_match_items_and_order_the_queue(collection: Path, predictions: Path) -> None:
    doc = load_suggestions(predictions)
    with Catalog.open(collection) as cat:
        rows = cat.items("state = 'stored' AND duplicate_of IS NULL")
        found = match_suggestions(rows, collection, doc)
        assert len(found) == len(rows)  # every stored image was predicted, found by sha256
        queue = review_queue(cat, suggestions=found)
        plain = review_queue(cat)
    confidences = [i["suggestion"]["confidence"] for i in queue]
    assert confidences == sorted(confidences)  # least confident first
    assert len(queue) == len(rows) > len(plain)  # predicted items join the review items
    by_path = {p["path"]: p for p in doc["predictions"]}
    first = queue[0]
    expected = by_path[str(collection / first["file"])]
    assert first["suggestion"]["label"] == expected["label"]
    assert first["suggestion"]["confidence"] == expected["confidence"]


def test_bad_suggestions_files_are_one_line_errors(collection: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"predictions": []}', "utf-8")
    cases = ((bad, "not an acnemodel predictions file"), (tmp_path / "no.json", "no such file"))
    for path, words in cases:
        result = runner.invoke(
            acnedata_app, ["review", str(collection), "--no-browser", "--suggestions", str(path)]
        )
        assert result.exit_code == 1 and "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0]


def test_acnedata_review_never_imports_tensorflow() -> None:
    code = (
        "import sys, acnedata.cli, acnedata.review, acnedata.suggestions; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
def test_round_trip_in_the_browser(collection: Path, predictions: Path, tmp_path: Path) -> None:
    """Steps 3 and 4: the page shows each suggestion; a key press there reaches the manifest."""
    import shutil

    from playwright.sync_api import expect, sync_playwright

    out = Path(shutil.copytree(collection, tmp_path / "out"))
    doc = load_suggestions(predictions)
    # the copy has the same files under a new folder: sha256 still finds every item
    errors: list[str] = []
    with ReviewServer(out, suggestions=predictions) as srv, sync_playwright() as pw:
        with srv.lock:
            expected = review_queue(srv.catalog, include_decided=True, suggestions=srv.suggestions)
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(srv.url)
            page.wait_for_selector("body[data-ready]")
            first = expected[0]
            item = page.locator("#item")
            expect(item).to_have_attribute("data-item-id", str(first["id"]))  # least confident
            shown = page.locator("#suggestion")
            expect(shown).to_be_visible()
            s = first["suggestion"]
            assert shown.locator(".suggested-class").inner_text() == s["label"]
            assert f"{100 * s['confidence']:.1f}%" in shown.inner_text()
            assert float(shown.get_attribute("data-confidence")) == s["confidence"]
            button = page.locator(f"#class-buttons button[data-decision='{s['label']}']")
            expect(button).to_have_class("suggested")
            # the person overrules the model with a key: class 1 unless that is the suggestion
            classes = [c.name for c in srv.spec.classes]
            choice = 2 if classes[0] == s["label"] else 1
            page.keyboard.press(str(choice))
            expect(item).not_to_have_attribute("data-item-id", str(first["id"]))
            nxt = expected[1]
            expect(item).to_have_attribute("data-item-id", str(nxt["id"]))  # next most doubtful
            expect(shown.locator(".suggested-class")).to_have_text(nxt["suggestion"]["label"])
            page.screenshot(path=str(tmp_path / "suggestions.png"))
        finally:
            browser.close()
    assert not errors, errors
    decided = classes[choice - 1]
    with Catalog.open(out) as cat:
        key = cat.item(first["id"])["key"]
    labels = {i["id"]: i["label"] for i in json.loads((out / "manifest.json").read_text())["items"]}
    assert labels[key] == decided  # the decision made on the page reached the manifest
    assert len(doc["predictions"]) >= len(expected)
