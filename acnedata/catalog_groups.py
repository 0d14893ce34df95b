"""Catalog columns and tables for provenance, content links and groups, with their migration."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

# Item columns added after the first catalog schema: (name, SQL type). A catalog written before
# them gains them on open (ALTER TABLE ... ADD COLUMN), so an old catalog.sqlite still opens.
ITEM_COLUMNS = (
    ("group_key", "TEXT"),  # provenance key from import: group column, regex, Roboflow upload
    ("split", "TEXT"),  # train / validation / test, from the dataset's own split
    ("extra", "TEXT"),  # JSON object of the CSV's other columns, as strings
    ("group_id", "TEXT"),  # the computed group: what a split keeps together
    ("mosaic", "TEXT"),  # why the image is a mosaic (tiled from several photos), else NULL
    ("excluded", "TEXT"),  # why a policy keeps the item out of the manifest, else NULL
)

REGION_LINKS_SQL = """
CREATE TABLE IF NOT EXISTS region_links (
    a INTEGER NOT NULL,
    b INTEGER NOT NULL,
    relation TEXT NOT NULL,
    area_a REAL,
    area_b REAL,
    inliers INTEGER,
    PRIMARY KEY (a, b)
);
"""

# (item id a, item id b, relation, matched area fraction of a, of b, inlier count)
RegionLink = tuple[int, int, str, float | None, float | None, int | None]
# (item id, group_key, split, extra as a dict of strings or None)
Provenance = tuple[int, str | None, str | None, dict[str, str] | None]


def migrate(db: sqlite3.Connection) -> None:
    """Add the columns and tables of this module to a catalog that lacks them."""
    have = {row[1] for row in db.execute("PRAGMA table_info(items)")}
    for name, kind in ITEM_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE items ADD COLUMN {name} {kind}")
    db.executescript(REGION_LINKS_SQL)


def extra_json(extra: dict[str, str] | None) -> str | None:
    """The `extra` column's text: a JSON object, or NULL for none."""
    return None if extra is None else json.dumps(extra, ensure_ascii=False)


def parse_extra(text: str | None) -> dict[str, str] | None:
    return None if not text else json.loads(text)


class GroupStore:
    """Catalog methods for provenance, content links and groups (mixed into Catalog)."""

    db: sqlite3.Connection

    def set_provenance(self, rows: Iterable[Provenance]) -> None:
        """(item id, group_key, split, extra) for many items: an import run again with other
        options replaces what the first run recorded."""
        self.db.executemany(
            "UPDATE items SET group_key=?, split=?, extra=? WHERE id=?",
            ((key, split, extra_json(extra), item_id) for item_id, key, split, extra in rows),
        )

    def set_region_links(self, rows: Iterable[RegionLink]) -> None:
        """Replace every content link with `rows` (a < b or not: stored as given), atomically."""
        rows = list(rows)
        with self._atomic():
            self.db.execute("DELETE FROM region_links")
            self.db.executemany(
                "INSERT OR REPLACE INTO region_links(a, b, relation, area_a, area_b, inliers) "
                "VALUES(?,?,?,?,?,?)",
                rows,
            )

    def region_links(self) -> list[RegionLink]:
        """Every content link, ordered by (a, b)."""
        rows = self.db.execute(
            "SELECT a, b, relation, area_a, area_b, inliers FROM region_links ORDER BY a, b"
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def set_mosaics(self, rows: Iterable[tuple[int, str | None, str | None]]) -> None:
        """(item id, mosaic reason or None, exclusion reason or None) for many items."""
        self.db.executemany(
            "UPDATE items SET mosaic=?, excluded=? WHERE id=?",
            ((mosaic, excluded, item_id) for item_id, mosaic, excluded in rows),
        )

    def set_groups(self, groups: dict[int, str]) -> None:
        """group_id per item id; items not named keep theirs."""
        self.db.executemany(
            "UPDATE items SET group_id=? WHERE id=?",
            ((group, item_id) for item_id, group in groups.items()),
        )

    def transaction(self) -> AbstractContextManager[None]:  # Catalog's own
        raise NotImplementedError

    def _atomic(self) -> AbstractContextManager[None]:
        """A transaction of its own, or none when the caller already holds one."""
        return nullcontext() if self.db.in_transaction else self.transaction()
