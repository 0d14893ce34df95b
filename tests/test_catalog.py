"""The catalog on disk: states, class bookkeeping, reopening, and refusing a foreign file."""

import sqlite3

import pytest

from acnedata.catalog import QUEUED, REJECTED, STORED, Catalog
from acnedata.errors import CatalogError
from acnedata.sources.base import Candidate


def cand(source_id: str, klass: str, query: str = "q") -> Candidate:
    return Candidate(
        source="commons",
        source_id=source_id,
        url=f"http://h/{source_id}.jpg",
        title=f"T {source_id}",
        licence_raw={"LicenseShortName": "CC BY 4.0"},
        query=query,
        searched_class=klass,
    )


def test_candidate_found_twice_keeps_one_row_and_both_classes(tmp_path):
    with Catalog.open(tmp_path) as cat:
        first, new1 = cat.add_candidate(cand("1", "papular", "papular acne"))
        again, new2 = cat.add_candidate(cand("1", "pustular", "pustular acne"))
        assert (new1, new2) == (True, False)
        assert first == again
        assert cat.classes_of(first) == ["papular", "pustular"]
        row = cat.item(first)
        assert row["searched_class"] == "papular"
        assert row["state"] == "found"


def test_states_survive_reopening_and_verdicts_never_undo_a_download(tmp_path):
    with Catalog.open(tmp_path) as cat:
        a, _ = cat.add_candidate(cand("a", "papular"))
        b, _ = cat.add_candidate(cand("b", "papular"))
        cat.set_verdict(
            a,
            spdx="CC-BY-4.0",
            licence_url=None,
            verdict="allow",
            reason="ok",
            no_derivatives=False,
            commercial=True,
        )
        cat.set_verdict(
            b,
            spdx="CC-BY-NC-ND-4.0",
            licence_url=None,
            verdict="reject",
            reason="nd",
            no_derivatives=True,
            commercial=False,
        )
        cat.mark_stored(
            a,
            file="images/ab/x.jpg",
            sha256="ab" * 32,
            original_sha256="ab" * 32,
            pixel_sha256=None,
            fmt="JPEG",
            width=10,
            height=10,
            size=100,
        )
        # A second gate pass must not send a stored item back to the queue.
        cat.set_verdict(
            a,
            spdx="CC-BY-4.0",
            licence_url=None,
            verdict="allow",
            reason="ok",
            no_derivatives=False,
            commercial=True,
        )
        cat.set_meta("k", {"x": [1, 2]})
    with Catalog.open(tmp_path) as cat:
        assert cat.item(a)["state"] == STORED
        assert cat.item(b)["state"] == REJECTED
        assert cat.item(b)["verdict_reason"] == "nd"
        assert cat.get_meta("k") == {"x": [1, 2]}
        assert cat.count_by("state") == {"stored": 1, "rejected": 1}
        assert cat.top_reasons(REJECTED) == [("nd", 1)]


def test_failed_items_can_be_requeued(tmp_path):
    with Catalog.open(tmp_path) as cat:
        a, _ = cat.add_candidate(cand("a", "papular"))
        b, _ = cat.add_candidate(cand("b", "papular"))
        cat.mark_failed(a, "http 503", retryable=True)
        cat.mark_failed(b, "http 404")
        assert cat.requeue_failed(only_retryable=True) == 1
        assert cat.item(a)["state"] == QUEUED
        assert cat.item(a)["attempts"] == 1
        assert cat.requeue_failed() == 1


def test_not_a_catalog_gets_one_line(tmp_path):
    (tmp_path / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="not a usable catalog"):
        Catalog.open(tmp_path)


def test_newer_schema_refused(tmp_path):
    with Catalog.open(tmp_path) as cat:
        cat.set_meta("schema_version", 99)
    with pytest.raises(CatalogError, match="schema 99"):
        Catalog.open(tmp_path)
    assert (
        sqlite3.connect(tmp_path / "catalog.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
        == "wal"
    )


def test_record_downloads_writes_what_one_call_per_item_would(tmp_path):
    record = {
        "file": "images/ab/x.jpg",
        "sha256": "ab" * 32,
        "original_sha256": "cd" * 32,
        "pixel_sha256": "ef" * 32,
        "fmt": "JPEG",
        "width": 64,
        "height": 48,
        "size": 1234,
    }
    columns = ("state", "reason", "retryable", "attempts", "file", "sha256", "width", "phash")
    rows = {}
    for batched in (False, True):
        with Catalog.open(tmp_path / str(batched)) as cat:
            a, _ = cat.add_candidate(cand("a", "papular"))
            b, _ = cat.add_candidate(cand("b", "papular"))
            c, _ = cat.add_candidate(cand("c", "papular"))
            if batched:
                cat.record_downloads(
                    [(a, record, 2, "0123456789abcdef", "d1:sig"), (b, record, 1, None, None)],
                    [(c, "http 404", False, 3)],
                )
            else:
                cat.mark_stored(
                    a, **record, attempts=2, phash="0123456789abcdef", signature="d1:sig"
                )
                cat.mark_stored(b, **record)
                cat.mark_failed(c, "http 404", attempts=3)
            rows[batched] = [tuple(cat.item(i)[k] for k in columns) for i in (a, b, c)]
            assert cat.item(a)["phash_alt"] == "d1:sig"
            assert cat.item(b)["phash"] is None  # no signature given: none invented
    assert rows[True] == rows[False]
    assert rows[True][0][:4] == (STORED, None, 0, 2)
    assert rows[True][2][:4] == ("failed", "http 404", 0, 3)


def _dump(cat: Catalog) -> list[list[tuple]]:
    """Both tables row by row, without the found_at timestamp."""
    cur = cat.db.execute("SELECT * FROM items ORDER BY id")
    names = [d[0] for d in cur.description]
    items = [tuple(v for k, v in zip(names, r, strict=True) if k != "found_at") for r in cur]
    classes = [tuple(r) for r in cat.db.execute("SELECT * FROM item_classes ORDER BY rowid")]
    return [items, classes]


def test_add_candidates_gives_what_add_candidate_one_by_one_gives(tmp_path):
    # Repeats within the list, a key known before, and more candidates than one key lookup takes.
    cands = [cand(str(n % 700), "papular" if n % 3 else "pustular", f"q{n}") for n in range(1300)]
    cands.insert(5, cand("known", "nodular"))
    results, dumps = [], []
    for batched in (False, True):
        with Catalog.open(tmp_path / str(batched)) as cat:
            cat.add_candidate(cand("known", "papular"))
            if batched:
                results.append(cat.add_candidates(cands))
            else:
                results.append([cat.add_candidate(c) for c in cands])
            dumps.append(_dump(cat))
    assert results[0] == results[1]
    assert dumps[0] == dumps[1]
    # What one-by-one recording means: ids in order of first sight, new only the first time,
    # and each (item, class) keeps the query it was first found by.
    ids, expected, first_query = {"commons:known": 1}, [], {(1, "papular"): "q"}
    for c in cands:
        new = c.key not in ids
        item_id = ids.setdefault(c.key, len(ids) + 1)
        expected.append((item_id, new))
        first_query.setdefault((item_id, c.searched_class), c.query)
    assert results[1] == expected
    assert {(i, k): q for i, k, q in dumps[1][1]} == first_query


def test_set_verdicts_sets_each_row_and_never_undoes_a_download(tmp_path):
    with Catalog.open(tmp_path) as cat:
        a, b, c = (cat.add_candidate(cand(x, "papular"))[0] for x in "abc")
        cat.mark_stored(c, file="f", sha256="s", original_sha256="s", pixel_sha256=None,
                        fmt="JPEG", width=1, height=1, size=1)  # fmt: skip
        cat.set_verdicts([
            (a, "CC-BY-4.0", "https://l/", "allow", "ok", False, True),
            (b, "CC-BY-NC-ND-4.0", None, "reject", "nd", True, False),
            (c, "NOASSERTION", None, "review", "none", True, None),
        ])  # fmt: skip
        columns = "state, spdx, licence_url, verdict, verdict_reason, no_derivatives, commercial"
        rows = [tuple(r) for r in cat.items(columns=columns)]
    assert rows == [
        (QUEUED, "CC-BY-4.0", "https://l/", "allow", "ok", 0, 1),
        (REJECTED, "CC-BY-NC-ND-4.0", None, "reject", "nd", 1, 0),
        (STORED, None, None, None, None, None, None),
    ]
