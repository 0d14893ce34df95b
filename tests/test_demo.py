"""The offline demo end to end: every planted problem is handled and the manifest holds up."""

import json
import subprocess
import sys

import pytest

from acnedata.demo.mirror import DemoMirror
from acnedata.demo.spec import demo_spec_toml
from acnedata.manifest import load_manifest, validate
from acnedata.pipeline import Collector
from acnedata.spec import load_spec


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "acnedata",
            "demo",
            "--out",
            str(out),
            "--per-class",
            "12",
        ],  # not --quiet: that hides the summary this module reads
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_demo_summary_shows_every_stage_at_work(demo_run):
    out, stdout = demo_run
    for line in (
        "rejected by licence",
        "failed downloads",
        "duplicates",
        "conflicts",
        "in manifest",
        "robots.txt disallows",
        "not an image (HTML)",
        "truncated image",
        "Existing datasets",
    ):
        assert line in stdout
    portals = json.loads((out / "portals.json").read_text(encoding="utf-8"))
    assert portals["hits"] and not any(h["fits"] for h in portals["hits"])


def test_demo_manifest_is_valid_and_every_item_is_attributed(demo_run):
    out, _ = demo_run
    raw = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    validate(raw)
    manifest = load_manifest(out)
    assert manifest.class_names == ["comedonal", "papular", "pustular", "nodulocystic"]
    assert len(manifest.items) >= 30
    for item in manifest.items:
        assert item["licence"]["spdx"] in (
            "CC-BY-SA-4.0",
            "CC-BY-4.0",
            "CC0-1.0",
            "LicenseRef-PublicDomain",
        )
        assert item["licence"]["author"]
        assert item["source"]["page_url"]
        assert (out / item["file"]).is_file()
    # one kept per duplicate cluster: no cluster twice, no sha256 twice
    assert len({i["cluster"] for i in manifest.items}) == len(manifest.items)
    assert len({i["sha256"] for i in manifest.items}) == len(manifest.items)
    credits = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert credits.count("\n- ") >= len(manifest.items)


def test_demo_catalog_records_each_planted_problem(demo_run):
    out, _ = demo_run
    with Collector.reopen(out) as col:
        rows = col.catalog.items("1")
        states = col.catalog.count_by("state")
        by_reason = col.catalog.count_by("reason", "state = 'failed'")
        review = [r for r in rows if r["review"] and r["duplicate_of"] is None]
    assert states["rejected"] >= 4  # two licences the policy refuses, two unknown
    assert by_reason.get("robots.txt disallows") == 1
    assert by_reason.get("not an image (HTML)") == 1
    assert by_reason.get("truncated image") == 2
    assert sum(r["duplicate_of"] is not None for r in rows) >= 5
    assert any("cross-class" in (r["review"] or "") for r in review)


def test_verify_passes_then_catches_a_changed_and_a_missing_file(demo_run, tmp_path):
    import shutil

    out, _ = demo_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ok = subprocess.run(
        [sys.executable, "-m", "acnedata", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    items = load_manifest(copy).items
    changed, missing = copy / items[0]["file"], copy / items[1]["file"]
    changed.write_bytes(changed.read_bytes() + b"x")
    missing.unlink()
    bad = subprocess.run(
        [sys.executable, "-m", "acnedata", "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert f"changed: {items[0]['file']}" in bad.stdout
    assert f"missing: {items[1]['file']}" in bad.stdout


def test_rerun_against_the_mirror_downloads_nothing_again(tmp_path):
    with DemoMirror(per_class=10) as mirror:
        spec_path = tmp_path / "spec.toml"
        spec_path.write_text(demo_spec_toml(mirror.base_url, per_class=10), encoding="utf-8")
        with Collector(load_spec(spec_path), tmp_path / "out") as col:
            first = col.collect()
        media_first = {p: n for p, n in mirror.counts.items() if p.startswith("/media/")}
        with Collector(load_spec(spec_path), tmp_path / "out") as col:
            second = col.collect()
        media_second = {p: n for p, n in mirror.counts.items() if p.startswith("/media/")}
    assert media_first == media_second
    assert first.per_class == second.per_class
    assert sum(first.per_class.values()) > 0
