"""Groups: connected sets over cluster, provenance key and content link, stored and reported."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from pathlib import Path

from imagefactory import make_image
from typer.testing import CliRunner

from acnedata.catalog import Catalog
from acnedata.cli import app
from acnedata.dedup.groups import assign_groups, oversized_groups

runner = CliRunner()


def gid(cluster: str) -> str:
    return "g" + hashlib.sha256(cluster.encode()).hexdigest()[:12]


# (item id, cluster, key): 1-2 share a cluster, 2-3 a key, 4-5 a link, 6 alone, 7-8 a key only
MEMBERS = [
    (1, "c9", None),
    (2, "c9", "upload-a"),
    (3, "c3", "upload-a"),
    (4, "c4", None),
    (5, "c5", None),
    (6, "c6", None),
    (7, "c8", "upload-b"),
    (8, "c7", "upload-b"),
]
LINKS = [(4, 5), (99, 6)]  # item 99 is not a member: its link joins nothing


def test_groups_are_connected_sets_over_cluster_key_and_link():
    groups = assign_groups(MEMBERS, LINKS)
    assert set(groups) == {m[0] for m in MEMBERS}
    assert groups[1] == groups[2] == groups[3]  # cluster c9 joined to c3 by the key
    assert groups[4] == groups[5]  # a content link
    assert groups[7] == groups[8]  # a key alone
    assert len({groups[1], groups[4], groups[6], groups[7]}) == 4
    # the id is the smallest cluster's: "c3" for {c9, c3}, "c4" for {c4, c5}, "c7" for {c8, c7}
    assert groups[1] == gid("c3")
    assert groups[4] == gid("c4")
    assert groups[6] == gid("c6")
    assert groups[7] == gid("c7")


def test_group_ids_do_not_depend_on_row_order():
    expected = assign_groups(MEMBERS, LINKS)
    rng = random.Random(5)
    for _ in range(20):
        members, links = list(MEMBERS), [(b, a) for a, b in LINKS]
        rng.shuffle(members)
        rng.shuffle(links)
        assert assign_groups(members, links) == expected


def test_oversized_groups_name_the_group_and_the_figures():
    # 8 of 10 pustular items in one group (8 of all 12 is under 70%: the label's line applies)
    groups = {i: "gbig" if i < 8 else f"g{i}" for i in range(12)}
    labels = {i: "pustular" if i < 10 else "papular" for i in range(12)}
    assert oversized_groups(groups, labels, 0.3) == [
        "group gbig holds 8 of 10 pustular items (80%): no grouped split can give pustular a "
        "30% test share"
    ]
    # 9 of all 12 items: one line for the whole, not one per label
    groups = {i: "gbig" if i < 9 else f"g{i}" for i in range(12)}
    assert oversized_groups(groups, labels, 0.3) == [
        "group gbig holds 9 of 12 items (75%): no grouped split can give test 30% of the items"
    ]
    # at 70% of its label a group still fits a 30% test share; items without a label are unseen
    groups = {i: "gbig" if i < 7 else f"g{i}" for i in range(12)}
    assert oversized_groups(groups, labels, 0.3) == []
    assert oversized_groups({**groups, 50: "gbig", 51: "gbig"}, labels, 0.3) == []


# The items table as the first catalog schema (e44dfbf) wrote it: no provenance, no groups.
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, source TEXT NOT NULL,
    source_id TEXT NOT NULL, url TEXT NOT NULL, page_url TEXT, title TEXT, description TEXT,
    author TEXT, attribution TEXT, licence_raw TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]', query TEXT, searched_class TEXT, label_hint TEXT,
    found_at TEXT NOT NULL, spdx TEXT, licence_url TEXT, verdict TEXT, verdict_reason TEXT,
    no_derivatives INTEGER, commercial INTEGER, state TEXT NOT NULL DEFAULT 'found',
    reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, retryable INTEGER NOT NULL DEFAULT 0,
    file TEXT, sha256 TEXT, original_sha256 TEXT, pixel_sha256 TEXT, format TEXT,
    width INTEGER, height INTEGER, bytes INTEGER, retrieved_at TEXT, phash TEXT,
    phash_alt TEXT, cluster TEXT, duplicate_of INTEGER, label TEXT, label_reason TEXT,
    review TEXT, decision TEXT
);
CREATE TABLE item_classes (
    item_id INTEGER NOT NULL REFERENCES items(id), class TEXT NOT NULL, query TEXT,
    PRIMARY KEY (item_id, class)
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO items(key, source, source_id, url, found_at, state, cluster)
    VALUES ('folder:a.png', 'folder', 'a.png', 'file:///a.png', '2024-01-01', 'stored', 'c1');
"""


def test_an_old_catalog_gains_the_new_columns_and_table_on_open(tmp_path):
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    with Catalog(path) as cat:
        row = cat.item(1)
        assert row["key"] == "folder:a.png" and row["cluster"] == "c1"  # nothing lost
        assert (row["group_key"], row["split"], row["extra"], row["group_id"]) == (None,) * 4
        cat.set_provenance([(1, "upload-a", "validation", {"site": "cheek"})])
        cat.set_groups({1: "gabc"})
        cat.set_region_links([(1, 2, "crop", 0.4, 1.0, 57)])
    with Catalog(path) as cat:  # and it opens again, with what was written
        row = cat.item(1)
        assert (row["group_key"], row["split"], row["group_id"]) == (
            "upload-a",
            "validation",
            "gabc",
        )
        assert json.loads(row["extra"]) == {"site": "cheek"}
        assert cat.region_links() == [(1, 2, "crop", 0.4, 1.0, 57)]


def test_set_region_links_replaces_every_link(tmp_path):
    with Catalog.open(tmp_path) as cat:
        cat.set_region_links([(3, 4, "overlap", 0.2, 0.3, 20), (1, 2, "same", 1.0, 1.0, 90)])
        assert [r[:3] for r in cat.region_links()] == [(1, 2, "same"), (3, 4, "overlap")]
        cat.set_region_links([(5, 6, "contains", 1.0, 0.25, 40)])
        assert cat.region_links() == [(5, 6, "contains", 1.0, 0.25, 40)]
        cat.set_region_links([])
        assert cat.region_links() == []


# --- the group stage, through the CLI -------------------------------------------------------


def make_dataset(root: Path, n: int = 10) -> Path:
    """n distinct real PNGs, 7 pustular and 3 papular, and a labels CSV for them."""
    (root / "img").mkdir(parents=True)
    rows = ["file,label"]
    for i in range(n):
        make_image(i, size=(64, 64), seed=100 + i).save(root / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{'pustular' if i < 7 else 'papular'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "labels.csv"


def manifest_groups(out: Path) -> dict[str, str]:
    data = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return {Path(i["id"]).name: i["group"] for i in data["items"]}


def test_group_stage_joins_content_links_and_reports_groups(tmp_path):
    csv_path = make_dataset(tmp_path / "data")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["import", str(csv_path), "--out", str(out), "--licence", "CC0-1.0", "-q"]
    )
    assert result.exit_code == 0, result.output
    before = manifest_groups(out)
    assert len(set(before.values())) == 10  # nothing links them yet: one group each

    # what the region matcher will record: 0.png is a crop of 1.png, 1.png overlaps 2.png
    with Catalog.open(out) as cat:
        ids = {Path(r["source_id"]).name: r["id"] for r in cat.items()}
        cat.set_region_links(
            [
                (ids["0.png"], ids["1.png"], "crop", 1.0, 0.4, 50),
                (ids["1.png"], ids["2.png"], "overlap", 0.3, 0.3, 25),
                (ids["3.png"], ids["4.png"], "same", 1.0, 1.0, 80),
                (ids["4.png"], ids["5.png"], "contains", 1.0, 0.5, 40),
            ]
        )
    result = runner.invoke(app, ["dedup", str(out)])  # -q would hide the line read here
    assert result.exit_code == 0, result.output
    assert "6 groups (largest 3 items)" in result.output  # {0,1,2} {3,4,5} 6 7 8 9
    assert "oversized group" not in result.output  # 3 of 7 pustular fits a 30% test share
    result = runner.invoke(app, ["manifest", str(out)])
    assert result.exit_code == 0, result.output
    after = manifest_groups(out)
    assert after["0.png"] == after["1.png"] == after["2.png"] != after["3.png"]
    assert after["3.png"] == after["4.png"] == after["5.png"]
    assert len(set(after.values())) == 6

    # one link more joins 6 pustular items of 7: status says no grouped split fits
    with Catalog.open(out) as cat:
        links = cat.region_links()
        cat.set_region_links([*links, (ids["2.png"], ids["3.png"], "overlap", 0.2, 0.2, 21)])
    assert runner.invoke(app, ["dedup", str(out), "-q"]).exit_code == 0
    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert "oversized group: group g" in status.output
    assert "holds 6 of 7 pustular items (86%)" in status.output


def test_an_oversized_group_names_the_images_that_link_it():
    from acnedata.dedup.groups import linkers, oversized_groups

    # a mosaic (item 9) links four photos; item 5 links two; the rest stand alone
    links = [(9, 1), (9, 2), (9, 3), (9, 4), (5, 6), (5, 7)]
    groups = {i: "gbig" for i in (1, 2, 3, 4, 9)} | {5: "gmid", 6: "gmid", 7: "gmid", 8: "gone"}
    names = {i: f"img{i}.jpg" for i in groups}
    found = linkers(groups, links, names)
    assert found == {"gbig": ["img9.jpg (4 links)"], "gmid": ["img5.jpg (2 links)"]}
    labels = dict.fromkeys(groups, "a")
    lines = oversized_groups(groups, labels, 0.5, linkers=found)
    assert lines == [
        "group gbig holds 5 of 9 items (56%): no grouped split can give test 50% of the items; "
        "linked through img9.jpg (4 links)"
    ]
