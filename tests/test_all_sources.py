"""Issue 4's "done when": collect from mirrors of every source and portal, then check the result."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from acnedata.demo.mirror import (
    DEMO_KAGGLE_TOKEN,
    DEMO_SERVICE_KEY,
    GALLERY_PRIVATE,
    KAGGLE_LEGACY_PATH,
    DemoMirror,
)
from acnedata.demo.spec import demo_spec_toml
from acnedata.http import HttpConfig, PoliteSession
from acnedata.licensing import NOASSERTION, PUBLIC_DOMAIN, attribution_line, normalise
from acnedata.manifest import load_manifest, validate
from acnedata.pipeline import Collector, Summary
from acnedata.portals.base import PortalContext
from acnedata.portals.kaggle import KagglePortal
from acnedata.spec import load_spec, spec_from_dict

PER_CLASS = 8  # the mirror's minimum: every source still shows each of its traps
IMAGE_SOURCES = {"commons", "openverse", "isic", "webpage"}
PORTALS = {"zenodo", "huggingface", "datagokr", "kaggle", "aihub"}


@dataclass
class Run:
    out: Path
    mirror: DemoMirror
    summary: Summary
    spec_path: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    out = tmp_path_factory.mktemp("all-sources")
    with pytest.MonkeyPatch.context() as mp, DemoMirror(per_class=PER_CLASS, seed=5) as mirror:
        # Credentials come from the environment in real use; here only for this module's run.
        mp.setenv("KAGGLE_API_TOKEN", DEMO_KAGGLE_TOKEN)
        mp.setenv("DATA_GO_KR_SERVICE_KEY", DEMO_SERVICE_KEY)
        for name in ("OPENVERSE_CLIENT_ID", "OPENVERSE_CLIENT_SECRET"):
            mp.delenv(name, raising=False)  # Openverse stays anonymous: page_size ≤ 20
        spec_path = out / "demo-spec.toml"
        text = demo_spec_toml(mirror.base_url, per_class=PER_CLASS, all_sources=True)
        spec_path.write_text(text, encoding="utf-8")
        with Collector(load_spec(spec_path), out) as col:
            summary = col.collect()
        yield Run(out, mirror, summary, spec_path)


@pytest.fixture(scope="module")
def status_rejected(run: Run) -> dict[str, str]:
    """`acnedata status OUT --show rejected`, run as a user would: key → reason."""
    proc = subprocess.run(
        [sys.executable, "-m", "acnedata", "status", str(run.out), "--show", "rejected"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},  # wide enough that no table cell wraps
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line]
    rejected = {key: reason for key, reason in lines}
    rejected["__stdout__"] = proc.stdout
    return rejected


def test_every_manifest_item_has_a_normalised_licence_author_and_source_page(run: Run) -> None:
    validate(json.loads((run.out / "manifest.json").read_text(encoding="utf-8")))
    items = load_manifest(run.out).items
    assert len(items) >= 40
    for item in items:
        spdx = item["licence"]["spdx"]
        assert spdx != NOASSERTION and normalise(spdx) == spdx, item["id"]
        assert not spdx.startswith("LicenseRef-CC-"), item["id"]  # no version-less CC id here
        assert item["licence"]["author"], item["id"]
        assert item["source"]["page_url"], item["id"]
        # Every licence links its terms, except plain public domain, which has no deed to link.
        assert item["licence"]["url"] or spdx == PUBLIC_DOMAIN, item["id"]
        assert (run.out / item["file"]).is_file()


def test_items_from_every_image_source_reach_the_manifest(run: Run) -> None:
    items = load_manifest(run.out).items
    by_source: dict[str, list[dict]] = {}
    for item in items:
        by_source.setdefault(item["source"]["name"], []).append(item)
    assert set(by_source) == IMAGE_SOURCES
    # ISIC: the nodulocystic query's clinical cysts, minus the CC-BY-NC one.
    assert {i["label"] for i in by_source["isic"]} == {"nodulocystic"}
    assert len(by_source["isic"]) == 4
    # The gallery: every class, pages 1 and 2, each item labelled as the page it came from.
    pages = {urlsplit(i["source"]["page_url"]).query for i in by_source["webpage"]}
    assert pages == {"", "page=2"}
    for item in by_source["webpage"]:
        assert f"/gallery/{item['label']}.html" in item["source"]["page_url"]
        assert item["licence"]["spdx"] == "CC-BY-4.0"
        assert item["licence"]["author"] == "Demo Dermatology Clinic"
    assert {i["label"] for i in by_source["webpage"]} == set(run.summary.per_class)
    assert {i["licence"]["spdx"] for i in by_source["openverse"]} >= {"CC0-1.0", "CC-PDM-1.0"}


def test_attribution_files_list_every_item(run: Run) -> None:
    items = load_manifest(run.out).items
    md = (run.out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert md.count("\n- ") == len(items)
    for item in items:
        assert attribution_line(item, markdown=True) in md, item["id"]
    with (run.out / "attribution.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["id"] for r in rows) == sorted(i["id"] for i in items)
    assert all(r["author"] and r["source_page"] and r["licence"] != NOASSERTION for r in rows)


def test_rejected_items_appear_in_status_with_their_reasons(
    run: Run, status_rejected: dict[str, str]
) -> None:
    mirror, base = run.mirror, run.mirror.base_url
    (nc_path,) = mirror.planted_more["gallery_noncommercial"]
    assert "CC-BY-NC-4.0 forbids commercial use" in status_rejected[f"webpage:{base}{nc_path}"]
    (isic_nc,) = mirror.planted_more["isic_noncommercial"]
    assert "CC-BY-NC-4.0 forbids commercial use" in status_rejected[f"isic:{isic_nc}"]
    for title in mirror.planted["licence_rejected"]:  # CC BY-NC-ND 4.0 and CC BY-NC 4.0
        reason = status_rejected[f"commons:{mirror.pageid(title)}"]
        assert "forbids commercial use" in reason and "policy.noncommercial = false" in reason
    assert any(
        "CC-BY-NC-ND-4.0" in status_rejected[f"commons:{mirror.pageid(t)}"]
        for t in mirror.planted["licence_rejected"]
    )
    for title in mirror.planted["licence_unknown"]:  # "Unknown" and no licence at all
        reason = status_rejected[f"commons:{mirror.pageid(title)}"]
        assert "NOASSERTION" in reason and 'policy.noassertion = "reject"' in reason
    # Openverse's by-nc and by-nd images are outside the licence filter: never even found.
    with Collector.reopen(run.out) as col:
        keys = {r["key"] for r in col.catalog.items("source = 'openverse'")}
    assert keys  # the filter let the other Openverse images through
    for kind in ("openverse_noncommercial", "openverse_no_derivatives"):
        assert not {f"openverse:{i}" for i in mirror.planted_more[kind]} & keys


def test_the_noimageindex_page_is_reported_skipped(
    run: Run, status_rejected: dict[str, str]
) -> None:
    line = f"{run.mirror.base_url}{GALLERY_PRIVATE}: meta robots: noimageindex"
    assert line in run.summary.skipped_pages
    assert line in status_rejected["__stdout__"]
    for path in run.mirror.planted_more["gallery_private_files"]:
        assert path not in run.mirror.counts  # its images were never requested
    assert run.summary.source_errors == []


def test_portals_json_holds_hits_from_every_portal_none_fitting(run: Run) -> None:
    record = json.loads((run.out / "portals.json").read_text(encoding="utf-8"))
    assert record["skipped"] == []  # both keyed portals got their keys from the environment
    hits = record["hits"]
    assert {h["portal"] for h in hits} == PORTALS
    assert not any(h["fits"] for h in hits)
    assert all(h["reason"] and h["url"] and h["spdx"] for h in hits)
    by_name = {h["name"]: h for h in hits}
    dermnet = by_name["demo-uploader/dermnet-acne-images"]
    assert (dermnet["spdx"], dermnet["decision"]) == ("CC0-1.0", "review")
    assert "DermNet" in dermnet["reason"]
    kogl = by_name["15099001"]
    assert kogl["spdx"] == "LicenseRef-KOGL-Type-4" and "non-commercial" in kogl["reason"]
    assert by_name["15099002"]["reason"] == "licence allowed, but this is not image data"
    (aihub,) = [h for h in hits if h["portal"] == "aihub"]
    assert aihub["spdx"] == "LicenseRef-AIHub-Terms" and "no redistribution" in aihub["reason"]
    assert run.summary.portals is not None and not run.summary.stopped_for_portal


def test_kaggle_legacy_format_and_missing_keys_against_the_mirror(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = run.mirror.base_url
    legacy_root = base + KAGGLE_LEGACY_PATH.removesuffix("/datasets/list")  # …/api/v1
    raw = {
        "name": "t",
        "keywords": ["acne"],
        "network": {"allow_private": True, "min_interval": 0.0, "max_retries": 0},
        "sources": {"kaggle": {"base_url": legacy_root, "api": "legacy"}},
        "classes": [{"name": "papular"}],
    }
    spec = spec_from_dict(raw, where="legacy.toml")
    monkeypatch.setenv("KAGGLE_API_TOKEN", DEMO_KAGGLE_TOKEN)
    with PoliteSession(HttpConfig.from_spec(spec)) as session:
        ctx = PortalContext(spec, spec.sources["kaggle"], session)
        hits = {h.name: h.judge(spec) for h in KagglePortal().search(ctx)}
    assert len(hits) == 3 and not any(h.fits for h in hits.values())
    assert hits["demo-stats/acne-diet-survey"].size == 204_800
    # Without keys both keyed portals are skipped with a one-line note, and collection goes on.
    monkeypatch.delenv("KAGGLE_API_TOKEN")
    monkeypatch.delenv("DATA_GO_KR_SERVICE_KEY", raising=False)
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(run.out / "no-kaggle-config"))
    with Collector(load_spec(run.spec_path), run.out / "no-keys") as col:
        report = col.check_portals()
    assert sorted(line.split(":")[0] for line in report.skipped) == ["datagokr", "kaggle"]
    assert {h.portal for h in report.hits} == {"zenodo", "huggingface", "aihub"}
