"""The catalog: every candidate and the state it reached, in SQLite, so any run can resume."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from acnedata import catalogdb
from acnedata.catalog_groups import GroupStore, extra_json, migrate
from acnedata.errors import AcnedataError, CatalogError
from acnedata.sources.base import Candidate

CATALOG_NAME = "catalog.sqlite"
SCHEMA_VERSION = 1

# Item states, in the order an item moves through them. `rejected` and `failed` are final for the
# run; `review` items are stored but wait for a person before they can reach the manifest.
FOUND, REJECTED, QUEUED, STORED, FAILED = "found", "rejected", "queued", "stored", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    url TEXT NOT NULL,
    page_url TEXT,
    title TEXT,
    description TEXT,
    author TEXT,
    attribution TEXT,
    licence_raw TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '[]',
    query TEXT,
    searched_class TEXT,
    label_hint TEXT,
    found_at TEXT NOT NULL,
    -- legal gate
    spdx TEXT,
    licence_url TEXT,
    verdict TEXT,
    verdict_reason TEXT,
    no_derivatives INTEGER,
    commercial INTEGER,
    -- download
    state TEXT NOT NULL DEFAULT 'found',
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    retryable INTEGER NOT NULL DEFAULT 0,
    file TEXT,
    sha256 TEXT,
    original_sha256 TEXT,
    pixel_sha256 TEXT,
    format TEXT,
    width INTEGER,
    height INTEGER,
    bytes INTEGER,
    retrieved_at TEXT,
    -- dedup and sorting
    phash TEXT,
    phash_alt TEXT,
    cluster TEXT,
    duplicate_of INTEGER,
    label TEXT,
    label_reason TEXT,
    review TEXT,
    decision TEXT,
    -- provenance and groups (catalog_groups.py; older catalogs gain them on open)
    group_key TEXT,
    split TEXT,
    extra TEXT,
    group_id TEXT
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE INDEX IF NOT EXISTS items_sha ON items(sha256);
CREATE TABLE IF NOT EXISTS item_classes (
    item_id INTEGER NOT NULL REFERENCES items(id),
    class TEXT NOT NULL,
    query TEXT,
    PRIMARY KEY (item_id, class)
);
"""


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


_KEY_BATCH = 500  # keys per `IN (...)` lookup: below SQLite's lowest parameter limit (999)
# One encoder for every row: json.dumps(..., ensure_ascii=False) builds a new one per call.
_to_json = json.JSONEncoder(ensure_ascii=False).encode


def _item_values(c: Candidate, found_at: str) -> tuple[Any, ...]:
    """A candidate as the values of Catalog._INSERT_ITEM."""
    return (
        c.key,
        c.source,
        c.source_id,
        c.url,
        c.page_url,
        c.title,
        c.description,
        c.author,
        c.attribution,
        _to_json(c.licence_raw),
        "[]" if c.tags == [] else _to_json(c.tags),  # most have none
        c.query,
        c.searched_class,
        c.label_hint,
        found_at,
        c.group_key,
        c.split,
        extra_json(c.extra),
    )


# (item id, spdx, licence_url, verdict, reason, no_derivatives, commercial), see set_verdict
VerdictRow = tuple[int, str, str | None, str, str, bool, bool | None]


def _verdict_params(row: VerdictRow) -> tuple[Any, ...]:
    """One verdict as the values of Catalog._VERDICT_SQL; it never undoes a download."""
    item_id, spdx, licence_url, verdict, reason, no_derivatives, commercial = row
    state = REJECTED if verdict == "reject" else QUEUED
    commercial_int = None if commercial is None else int(commercial)
    return (spdx, licence_url, verdict, reason, int(no_derivatives), commercial_int, state,
            item_id, FOUND, REJECTED, QUEUED)  # fmt: skip


class Catalog(GroupStore):
    """SQLite working store in `<out>/catalog.sqlite` (WAL mode, one writer)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = catalogdb.connect(self.path)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            migrate(self.db)
        except sqlite3.DatabaseError as exc:
            raise CatalogError(
                f"{self.path}: not a usable catalog ({exc}); "
                "use another --out folder or delete the file"
            ) from None
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif int(version) != SCHEMA_VERSION:
            raise CatalogError(
                f"{self.path}: catalog schema {version}, this acnedata reads "
                f"{SCHEMA_VERSION}; use a new --out folder"
            )

    @classmethod
    def open(cls, out_dir: str | Path) -> Catalog:
        return cls(Path(out_dir) / CATALOG_NAME)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk does); the error that got us
            # here is the one to report, not a failed ROLLBACK after it.
            if self.db.in_transaction:
                with suppress(sqlite3.Error, AcnedataError):
                    self.db.execute("ROLLBACK")
            raise

    # --- meta -----------------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, ensure_ascii=False)),
        )

    # --- found ----------------------------------------------------------------------------
    _INSERT_ITEM = (
        "INSERT INTO items(key, source, source_id, url, page_url, title, description, "
        "author, attribution, licence_raw, tags, query, searched_class, label_hint, "
        "found_at, group_key, split, extra) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    _INSERT_CLASS = "INSERT OR IGNORE INTO item_classes(item_id, class, query) VALUES(?,?,?)"

    def add_candidate(self, c: Candidate) -> tuple[int, bool]:
        """Record a candidate; returns (item id, True if new). A known item gains the class."""
        return self.add_candidates([c])[0]

    def add_candidates(self, cands: Sequence[Candidate]) -> list[tuple[int, bool]]:
        """add_candidate for each, in order, with the same results (a key repeated within
        `cands` is new only the first time), in a few statements per _KEY_BATCH candidates:
        one by one, three statements per candidate were most of the search stage."""
        out: list[tuple[int, bool]] = []
        for start in range(0, len(cands), _KEY_BATCH):
            out += self._add_batch(cands[start : start + _KEY_BATCH])
        return out

    def _add_batch(self, cands: Sequence[Candidate]) -> list[tuple[int, bool]]:
        keys = [c.key for c in cands]
        ids = self._ids_of(keys)
        new: dict[str, Candidate] = {}  # first candidate of each unknown key, in order
        for key, c in zip(keys, cands, strict=True):
            if key not in ids:
                new.setdefault(key, c)
        if new:
            stamp = now()
            self.db.executemany(self._INSERT_ITEM, [_item_values(c, stamp) for c in new.values()])
            ids.update(self._ids_of(list(new)))
        self.db.executemany(
            self._INSERT_CLASS,
            [
                (ids[key], c.searched_class or c.label_hint, c.query)
                for key, c in zip(keys, cands, strict=True)
                if c.searched_class or c.label_hint
            ],
        )
        fresh = set(new)
        out = []
        for key in keys:
            out.append((ids[key], key in fresh))
            fresh.discard(key)  # a key repeated within the batch is new only the first time
        return out

    def _ids_of(self, keys: Sequence[str]) -> dict[str, int]:
        """Item id by key, for those of `keys` (at most _KEY_BATCH) already in the catalog."""
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(f"SELECT key, id FROM items WHERE key IN ({marks})", keys)
        return {key: int(item_id) for key, item_id in rows}

    def classes_of(self, item_id: int) -> list[str]:
        rows = self.db.execute(
            "SELECT class FROM item_classes WHERE item_id = ? ORDER BY class", (item_id,)
        )
        return [r["class"] for r in rows]

    def all_classes(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for r in self.db.execute("SELECT item_id, class FROM item_classes ORDER BY class"):
            out.setdefault(r["item_id"], []).append(r["class"])
        return out

    # --- reading --------------------------------------------------------------------------
    def items(
        self, where: str = "1", params: Iterable[Any] = (), columns: str = "*"
    ) -> list[sqlite3.Row]:
        """Rows in id order; `columns` to read fewer (the signature alone is ~1.6 KB a row)."""
        return self.db.execute(
            f"SELECT {columns} FROM items WHERE {where} ORDER BY id", tuple(params)
        ).fetchall()

    def count(self, where: str = "1", params: Iterable[Any] = ()) -> int:
        return int(
            self.db.execute(f"SELECT COUNT(*) FROM items WHERE {where}", tuple(params)).fetchone()[
                0
            ]
        )

    def item(self, item_id: int) -> sqlite3.Row:
        return self.db.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()

    def count_by(self, column: str, where: str = "1") -> dict[str, int]:
        rows = self.db.execute(
            f"SELECT {column} AS k, COUNT(*) AS n FROM items WHERE {where} "
            f"GROUP BY {column} ORDER BY n DESC"
        )
        return {str(r["k"]): int(r["n"]) for r in rows}

    def top_reasons(self, state: str, limit: int = 5) -> list[tuple[str, int]]:
        column = "verdict_reason" if state == REJECTED else "reason"
        rows = self.db.execute(
            f"SELECT {column} AS r, COUNT(*) AS n FROM items WHERE state = ? "
            f"GROUP BY {column} ORDER BY n DESC, r LIMIT ?",
            (state, limit),
        )
        return [(str(r["r"]), int(r["n"])) for r in rows]

    # --- legal gate -----------------------------------------------------------------------
    def set_verdict(
        self,
        item_id: int,
        *,
        spdx: str,
        licence_url: str | None,
        verdict: str,
        reason: str,
        no_derivatives: bool,
        commercial: bool | None,
    ) -> None:
        self.set_verdicts(
            [(item_id, spdx, licence_url, verdict, reason, no_derivatives, commercial)]
        )

    _VERDICT_SQL = (
        "UPDATE items SET spdx=?, licence_url=?, verdict=?, verdict_reason=?, "
        "no_derivatives=?, commercial=?, state=? WHERE id=? AND state IN (?, ?, ?)"
    )

    def set_verdicts(self, verdicts: Iterable[VerdictRow]) -> None:
        """set_verdict for many items in one statement, each as (item id, spdx, licence_url,
        verdict, reason, no_derivatives, commercial)."""
        self.db.executemany(self._VERDICT_SQL, [_verdict_params(v) for v in verdicts])

    # --- download -------------------------------------------------------------------------
    _STORED_SQL = (
        "UPDATE items SET state=?, reason=NULL, retryable=0, attempts=attempts+?, file=?, "
        "sha256=?, original_sha256=?, pixel_sha256=?, format=?, width=?, height=?, bytes=?, "
        "retrieved_at=?, phash=coalesce(?, phash), phash_alt=coalesce(?, phash_alt) WHERE id=?"
    )
    _FAILED_SQL = "UPDATE items SET state=?, reason=?, retryable=?, attempts=attempts+? WHERE id=?"

    def mark_stored(
        self,
        item_id: int,
        *,
        file: str,
        sha256: str,
        original_sha256: str,
        pixel_sha256: str | None,
        fmt: str,
        width: int,
        height: int,
        size: int,
        attempts: int = 1,
        phash: str | None = None,
        signature: str | None = None,
    ) -> None:
        """A stored item's record; phash/signature (see set_phash) when computed on the way in."""
        self.db.execute(
            self._STORED_SQL,
            (
                STORED,
                attempts,
                file,
                sha256,
                original_sha256,
                pixel_sha256,
                fmt,
                width,
                height,
                size,
                now(),
                phash,
                signature,
                item_id,
            ),
        )

    def record_downloads(
        self,
        stored: list[tuple[int, dict, int, str | None, str | None]],
        failed: list[tuple[int, str, bool, int]],
    ) -> None:
        """Many mark_stored/mark_failed at once: (id, record, attempts, phash, signature) and
        (id, reason, retryable, attempts). One executemany each: the downloader's writer thread
        competes for the GIL with the download threads, and every statement is a handover."""
        stamp = now()
        self.db.executemany(
            self._STORED_SQL,
            [
                (
                    STORED,
                    attempts,
                    r["file"],
                    r["sha256"],
                    r["original_sha256"],
                    r["pixel_sha256"],
                    r["fmt"],
                    r["width"],
                    r["height"],
                    r["size"],
                    stamp,
                    phash,
                    signature,
                    item_id,
                )
                for item_id, r, attempts, phash, signature in stored
            ],
        )
        self.db.executemany(
            self._FAILED_SQL,
            [
                (FAILED, reason, int(retryable), attempts, item_id)
                for item_id, reason, retryable, attempts in failed
            ],
        )

    def mark_failed(
        self, item_id: int, reason: str, *, retryable: bool = False, attempts: int = 1
    ) -> None:
        """Final state for this run with the last reason; `attempts` adds the HTTP tries made."""
        self.db.execute(self._FAILED_SQL, (FAILED, reason, int(retryable), attempts, item_id))

    def requeue_failed(self, only_retryable: bool = False, reason: str | None = None) -> int:
        """Failed items (only the retryable ones, or only those failed for `reason`) queued."""
        where, params = "state = ?", [FAILED]
        if only_retryable:
            where += " AND retryable = 1"
        if reason is not None:
            where, params = where + " AND reason = ?", [*params, reason]
        cur = self.db.execute(f"UPDATE items SET state='{QUEUED}' WHERE {where}", params)
        return cur.rowcount

    # --- dedup and sorting ----------------------------------------------------------------
    def set_phash(self, item_id: int, phash: str, alt: str | None = None) -> None:
        """The perceptual hash, and in phash_alt the dedup signature (Signature.to_text(): its
        query hashes and verification thumbnail; older catalogs hold the mirror hash there)."""
        self.db.execute("UPDATE items SET phash=?, phash_alt=? WHERE id=?", (phash, alt, item_id))

    def set_clusters(self, assignments: Iterable[tuple[int, str, int | None]]) -> None:
        """(item id, cluster id, duplicate_of) for many items in one statement."""
        self.db.executemany(
            "UPDATE items SET cluster=?, duplicate_of=? WHERE id=?",
            ((cluster, duplicate_of, item_id) for item_id, cluster, duplicate_of in assignments),
        )

    def set_labels(self, labels: Iterable[tuple[int, str | None, str, str | None]]) -> None:
        """(item id, label, reason, review) for many items in one statement."""
        self.db.executemany(
            "UPDATE items SET label=?, label_reason=?, review=? WHERE id=?",
            ((label, reason, review, item_id) for item_id, label, reason, review in labels),
        )

    def set_decision(self, item_id: int, decision: str | None) -> None:
        """A person's decision: a class name, 'reject', or None to undo."""
        self.db.execute("UPDATE items SET decision=? WHERE id=?", (decision, item_id))
