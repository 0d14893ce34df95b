"""The catalog's SQLite connection: a damaged file or a full disk is a one-line user error."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any, TypeVar

from acnedata.errors import CatalogError, DiskFullError

T = TypeVar("T")

# SQLite's result codes by name (Python 3.11+), and the messages older versions only give.
_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_DAMAGED_TEXT = ("database disk image is malformed", "file is not a database")
_FULL, _FULL_TEXT = "SQLITE_FULL", "database or disk is full"
# WAL mode's shared-memory file cannot grow on a full disk: even reads fail with this.
_SHM_FULL = "SQLITE_IOERR_SHMSIZE"
_NEARLY_FULL = 1 << 20  # free bytes below which any other I/O error is put down to a full disk


def translated(exc: sqlite3.DatabaseError, path: Path) -> Exception:
    """The user error an SQLite error on the catalog at `path` stands for, else exc itself."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    text = str(exc)
    if name.startswith(_DAMAGED) or any(t in text for t in _DAMAGED_TEXT):
        return CatalogError(
            f"{path}: not a usable catalog, the file is damaged ({text}); to rebuild it, move it "
            f"aside and run the command that built {path.parent} again with the same --out"
        )
    if name.startswith((_FULL, _SHM_FULL)) or _FULL_TEXT in text:
        return DiskFullError(path.parent)
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        with suppress(OSError):
            if shutil.disk_usage(path.parent).free < _NEARLY_FULL:
                return DiskFullError(path.parent)
    return exc


def _guard(path: Path, call: Callable[..., T], *args: Any) -> T:
    try:
        return call(*args)
    except sqlite3.DatabaseError as exc:
        error = translated(exc, path)
        if error is exc:
            raise
        raise error from None


class CatalogCursor(sqlite3.Cursor):
    """A cursor whose row fetches translate errors: a damaged page may be met on any row."""

    connection: CatalogConnection

    def __next__(self) -> Any:
        return _guard(self.connection.path, super().__next__)

    def fetchone(self) -> Any:
        return _guard(self.connection.path, super().fetchone)

    def fetchmany(self, size: int = 1) -> list[Any]:
        return _guard(self.connection.path, super().fetchmany, size)

    def fetchall(self) -> list[Any]:
        return _guard(self.connection.path, super().fetchall)


class CatalogConnection(sqlite3.Connection):
    """sqlite3.Connection whose statements raise CatalogError / DiskFullError for a damaged
    file or a full disk (sqlite3's own errors otherwise: those are programming errors)."""

    path: Path

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or CatalogCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return _guard(self.path, lambda: self.cursor().execute(sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        return _guard(self.path, lambda: self.cursor().executemany(sql, parameters))

    def executescript(self, script: str, /) -> Any:
        return _guard(self.path, lambda: self.cursor().executescript(script))


def connect(path: Path) -> CatalogConnection:
    """Open the catalog file (autocommit: transactions are explicit, see Catalog.transaction)."""
    # check_same_thread=False: downloads hand results back to the one writer thread, but the
    # connection may be created on another thread than the one that closes it.
    db = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=CatalogConnection
    )
    db.path = path
    return db
