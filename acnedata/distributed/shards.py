"""Shard records: what each Ray worker stored or failed, under OUT/shards/, merged by the driver."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from acnedata.catalog import QUEUED, Catalog
from acnedata.download import BATCH_ROWS, BATCH_SECONDS, recover
from acnedata.images import flush_to_disk
from acnedata.intake import IMAGES_DIR, Outcome

SHARDS_DIR = "shards"
RECORD = ".jsonl"  # one header line, then one line per finished item
JOURNAL = ".journal"  # the intake journal of the shard's worker (see acnedata.intake.Journal)


def shard_paths(out_dir: Path, name: str) -> tuple[Path, Path]:
    """(record, journal) of shard `name`."""
    folder = Path(out_dir) / SHARDS_DIR
    return folder / f"{name}{RECORD}", folder / f"{name}{JOURNAL}"


class ShardWriter:
    """A worker's sink for download_items: outcomes appended to the shard record in batches.

    A batch is written only after the files it names are flushed to disk, in one O_APPEND
    write followed by an fsync, so a record line always points at a durable file; a file
    stored but not yet recorded is in the journal, written before its rename.
    """

    def __init__(self, out_dir: Path, name: str, item_ids: list[int]):
        self.out_dir = Path(out_dir)
        self.path, self.journal = shard_paths(self.out_dir, name)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        header = {
            "shard": name,
            "pid": os.getpid(),
            "node": socket.gethostname(),
            "items": item_ids,
        }
        self._write([header])
        self._lines: list[dict] = []
        self._stored = False
        self._opened = 0.0
        self.stored_files: list[tuple[str, str]] = []  # (sha256, file) of what it stored

    def add(self, outcome: Outcome) -> None:
        if not self._lines:
            self._opened = time.monotonic()
        self._lines.append(_line(outcome))
        self._stored = self._stored or outcome.ok
        if outcome.ok and outcome.record:
            self.stored_files.append((outcome.record["sha256"], outcome.record["file"]))
        if len(self._lines) >= BATCH_ROWS or time.monotonic() - self._opened >= BATCH_SECONDS:
            self.commit()

    def due(self) -> float | None:
        if not self._lines:
            return None
        return max(0.0, self._opened + BATCH_SECONDS - time.monotonic())

    def commit(self) -> None:
        if not self._lines:
            return
        images = self.out_dir / IMAGES_DIR
        if self._stored and images.exists():
            flush_to_disk(images)
        self._write(self._lines)
        self._lines, self._stored = [], False

    def close(self) -> None:
        self.commit()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, lines: list[dict]) -> None:
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        os.write(self._fd, text.encode("utf-8"))
        os.fsync(self._fd)


def _line(o: Outcome) -> dict:
    line: dict = {"id": o.item_id, "ok": o.ok, "attempts": o.attempts}
    if o.ok:
        line.update(record=o.record, phash=o.phash, signature=o.signature)
    else:
        line.update(reason=o.reason, retryable=o.retryable)
    return line


def _outcome(line: dict) -> Outcome:
    if line["ok"]:
        return Outcome(
            int(line["id"]),
            True,
            record=line["record"],
            attempts=int(line["attempts"]),
            phash=line.get("phash"),
            signature=line.get("signature"),
        )
    return Outcome(
        int(line["id"]),
        False,
        str(line.get("reason") or "failed"),
        bool(line.get("retryable")),
        attempts=int(line["attempts"]),
    )


@dataclass
class ShardReader:
    """Reads the new complete lines of shard records, so the driver merges while workers run."""

    out_dir: Path
    offsets: dict[Path, int] = field(default_factory=dict)

    def headers(self) -> dict[str, dict]:
        """Shard name → its header line (pid, node, item ids), for every record there."""
        found = {}
        for path in sorted((self.out_dir / SHARDS_DIR).glob(f"*{RECORD}")):
            with path.open("rb") as fh:
                first = fh.readline()
            with contextlib.suppress(ValueError):
                if first.endswith(b"\n"):
                    found[path.name[: -len(RECORD)]] = json.loads(first)
        return found

    def new_outcomes(self, path: Path) -> list[Outcome]:
        """The outcomes appended to `path` since the last call (a cut last line waits)."""
        start = self.offsets.get(path, 0)
        try:
            with path.open("rb") as fh:
                fh.seek(start)
                data = fh.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offsets[path] = start + end
        outcomes = []
        for raw in data[:end].splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                line = json.loads(raw)
                if "id" in line:
                    outcomes.append(_outcome(line))
        return outcomes


def merge(catalog: Catalog, out_dir: Path, reader: ShardReader, name: str) -> list[Outcome]:
    """Commit the new outcomes of shard `name` whose items are still queued; returns them.

    Idempotent: an item already stored or failed is left alone, so merging a record twice, or
    after a driver restart, changes nothing.
    """
    record, _ = shard_paths(out_dir, name)
    fresh = []
    for outcome in reader.new_outcomes(record):
        row = catalog.item(outcome.item_id)
        if row is None or row["state"] != QUEUED:
            continue
        if outcome.ok and not (out_dir / outcome.record["file"]).is_file():  # type: ignore[index]
            continue  # not on this node's view of the folder: stays queued, fetched again
        fresh.append(outcome)
    if fresh:
        stored = [
            (o.item_id, o.record, o.attempts, o.phash, o.signature)
            for o in fresh
            if o.ok and o.record
        ]
        failed = [
            (o.item_id, o.reason or "failed", o.retryable, o.attempts) for o in fresh if not o.ok
        ]
        with catalog.transaction():
            catalog.record_downloads(stored, failed)
    return fresh


def finish(catalog: Catalog, out_dir: Path, reader: ShardReader, name: str) -> list[Outcome]:
    """Merge an ended shard (done or its worker dead), adopt the files its journal names that
    reached the store unrecorded, and remove the shard's files."""
    outcomes = merge(catalog, out_dir, reader, name)
    record, journal = shard_paths(out_dir, name)
    recover(catalog, out_dir, journal)  # removes the journal
    record.unlink(missing_ok=True)
    reader.offsets.pop(record, None)
    return outcomes


def leftover_shards(out_dir: Path) -> list[str]:
    """Shards a killed driver left behind: their records and journals are merged on restart."""
    folder = Path(out_dir) / SHARDS_DIR
    names = {p.name[: -len(RECORD)] for p in folder.glob(f"*{RECORD}")}
    names |= {p.name[: -len(JOURNAL)] for p in folder.glob(f"*{JOURNAL}")}
    return sorted(names)
