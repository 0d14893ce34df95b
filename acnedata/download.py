"""Bulk download of queued catalog items into the content-addressed store, validated first."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, SimpleQueue
from urllib.parse import unquote, urlparse

from acnedata.catalog import QUEUED, Catalog
from acnedata.errors import AcnedataError
from acnedata.http import PoliteSession
from acnedata.images import ValidatedImage, store_image, validate_image
from acnedata.licensing import refused_host
from acnedata.spec import Limits

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock, one run at a time by hand
    fcntl = None  # type: ignore[assignment]

IMAGES_DIR = "images"
JOURNAL = "download.journal"  # "this item's file is now in place", written before the rename
LOCK = ".download.lock"
BATCH_ROWS = 256
# What a stored item's row holds (Catalog.mark_stored's keywords), as the journal records it.
RECORD_KEYS = (
    "file",
    "sha256",
    "original_sha256",
    "pixel_sha256",
    "fmt",
    "width",
    "height",
    "size",
)
BATCH_SECONDS = 0.5

# CPU work (sha256, Pillow decode and validation) runs in the download threads themselves, not in
# a process pool. Measured on the project's 2-core machine: validate_image alone on 2,000
# photo-like 256x256 JPEGs (26 kB) did 777/s in one thread, 1,051/s in 2 threads, 1,299/s in 8,
# but 850-858/s in a 2-process pool (chunksize 1 or 16); the whole download stage on 5,000 images
# from nginx did 169-201/s all in 8 threads against 129-150/s with validate+store sent to a 2- or
# 3-process pool (forkserver), under the same background load. Pillow's decoder and hashlib
# release the GIL for the heavy part; a pool pays for pickling every body and every result.


@dataclass
class Outcome:
    """What happened to one item: stored (with its record) or failed (with a reason)."""

    item_id: int
    ok: bool
    reason: str | None = None
    retryable: bool = False
    record: dict | None = None
    attempts: int = 1  # HTTP tries made for the item (1 + retries)


class Journal:
    """Append-only log of stored files, so a kill between rename and commit loses no download.

    The catalog row is committed after the file's rename; a kill in between would leave a file
    nobody points to, and the rerun would fetch the item again. Each worker appends the item's
    record here before the rename (one O_APPEND write, atomic between threads and durable once
    the call returns, as far as a killed process goes); the next run adopts every record whose
    item is still queued and whose file is there with its sha256, without any request.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def add(self, item_id: int, url: str, record: dict) -> None:
        line = json.dumps({"id": item_id, "url": url, "record": record}, ensure_ascii=False)
        with self._lock:
            os.write(self._fd, (line + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def recover(catalog: Catalog, out_dir: Path) -> int:
    """Adopt files a killed run stored but did not commit; returns how many items were adopted."""
    path = out_dir / JOURNAL
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return 0
    adopted = 0
    with catalog.transaction():
        for line in text.splitlines():
            try:  # the last line of a killed run may be cut short
                entry = json.loads(line)
                item_id, url = int(entry["id"]), entry["url"]
                record = {k: entry["record"][k] for k in RECORD_KEYS}
                file = out_dir / record["file"]
            except (ValueError, KeyError, TypeError):
                continue
            if not file.resolve().is_relative_to((out_dir / IMAGES_DIR).resolve()):
                continue  # only ever our own store
            row = catalog.item(item_id)
            if row is None or row["state"] != QUEUED or row["url"] != url:
                continue
            if _sha256_of(file) == record["sha256"]:
                catalog.mark_stored(item_id, **record)
                adopted += 1
    path.unlink()
    return adopted


def _sha256_of(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def remove_temp_files(images_dir: Path) -> int:
    """Delete temp files a killed run left in the store (store_image names them .*.tmp)."""
    removed = 0
    for tmp in images_dir.glob("*/.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """One download run per output folder: another run's temp files must not be swept away."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(out_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AcnedataError(
                f"{out_dir}: another acnedata run is downloading into this folder; "
                "wait for it to finish or use another --out"
            ) from None
        yield  # the kernel drops the lock when the process dies, even by SIGKILL
    finally:
        os.close(fd)


@dataclass
class _Ready:
    """A downloaded and validated item, waiting for its file to be written."""

    item_id: int
    url: str
    image: ValidatedImage
    record: dict
    attempts: int


def fetch_one(
    session: PoliteSession,
    item_id: int,
    url: str,
    source: str,
    out_dir: Path,
    limits: Limits,
    *,
    journal: Journal | None = None,
) -> Outcome:
    """Download (or read, for local folders), validate and store one item. Never raises."""
    ready = _prepare(session, item_id, url, source, limits)
    return ready if isinstance(ready, Outcome) else _store(ready, out_dir, journal)


def _prepare(
    session: PoliteSession, item_id: int, url: str, source: str, limits: Limits
) -> Outcome | _Ready:
    """Download (or read) and validate one item: the network and CPU part."""
    refusal = refused_host(url)
    if refusal:
        return Outcome(item_id, False, refusal)
    content_type = None
    attempts = 1
    if source == "folder" and url.startswith("file:"):
        # Local files come from the user's own folder: no network, no robots, same validation.
        try:
            data = Path(unquote(urlparse(url).path)).read_bytes()
        except OSError as exc:
            return Outcome(item_id, False, f"cannot read file: {exc.strerror or exc}")
    else:
        result = session.fetch(url, max_bytes=limits.max_bytes)
        attempts = max(1, result.attempts)
        if not result.ok or result.content is None:
            reason = result.reason or "download failed"
            return Outcome(item_id, False, reason, result.retryable, attempts=attempts)
        data, content_type = result.content, result.content_type
    image = validate_image(
        data,
        content_type=content_type,
        min_width=limits.min_width,
        min_height=limits.min_height,
    )
    if not image.ok or image.sha256 is None:
        return Outcome(item_id, False, image.reason, attempts=attempts)
    record = {
        # store_image's naming rule, for the journal; were it ever to differ, recovery would
        # find no file there and the item would simply be downloaded again
        "file": f"{IMAGES_DIR}/{image.sha256[:2]}/{image.sha256}.{image.ext}",
        "sha256": image.sha256,
        "original_sha256": image.original_sha256,
        "pixel_sha256": image.pixel_sha256,
        "fmt": image.format,
        "width": image.width,
        "height": image.height,
        "size": len(image.data or b""),
    }
    return _Ready(item_id, url, image, record, attempts)


def _store(ready: _Ready, out_dir: Path, journal: Journal | None) -> Outcome:
    """Journal the item, then write its file (temp, fsync, rename): the disk part. Never raises."""
    record = ready.record
    try:
        if journal is not None:
            journal.add(ready.item_id, ready.url, record)
        path = store_image(out_dir / IMAGES_DIR, ready.image)
    except OSError as exc:  # disk full, permissions: worth another try once fixed
        reason = f"cannot store: {exc.strerror or exc}"
        return Outcome(ready.item_id, False, reason, retryable=True, attempts=ready.attempts)
    finally:
        ready.image.data = None  # the bytes are on disk (or lost): let them go
    record["file"] = path.relative_to(out_dir).as_posix()
    return Outcome(ready.item_id, True, record=record, attempts=ready.attempts)


def download_queued(
    catalog: Catalog,
    session: PoliteSession,
    out_dir: Path,
    limits: Limits,
    *,
    workers: int = 2,
    on_done: Callable[[Outcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Download every queued item; results are committed in batches, at most BATCH_SECONDS late.

    Only this thread writes to the catalog, and a row is committed only after its file's rename,
    so a kill at any moment leaves rows that match the files on disk: a stored row always has its
    file, and a file whose row was not committed yet is adopted from the journal by the next run
    instead of being downloaded again. Leftover temp files of a killed run are removed first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        remove_temp_files(out_dir / IMAGES_DIR)
        recover(catalog, out_dir)
        journal = Journal(out_dir / JOURNAL)
        try:
            counts = _download(
                catalog, session, out_dir, limits, journal, workers, on_done, should_stop
            )
        finally:
            journal.close()
        # Every record in the journal is committed now: start the next run with an empty one.
        (out_dir / JOURNAL).unlink(missing_ok=True)
    return counts


def _download(
    catalog: Catalog,
    session: PoliteSession,
    out_dir: Path,
    limits: Limits,
    journal: Journal,
    workers: int,
    on_done: Callable[[Outcome], None] | None,
    should_stop: Callable[[], bool],
) -> dict[str, int]:
    queue = [
        (int(r[0]), str(r[1]), str(r[2]))
        for r in catalog.db.execute(
            "SELECT id, url, source FROM items WHERE state = ? ORDER BY id", (QUEUED,)
        )
    ]
    counts = {"stored": 0, "failed": 0}
    todo = iter(queue)
    workers = max(1, workers)
    # Finished futures come back on a queue, so only this thread touches the catalog; a queue
    # is also cheaper than wait(FIRST_COMPLETED), which hooks a waiter onto every pending future
    # on every call. Each worker writes its own file: a kill finds at most `workers` items
    # downloaded but not stored (measured: separate disk threads gained ~15% at best, within
    # the noise of a shared machine, and let 3x as many items be lost in flight).
    finished: SimpleQueue[Future[Outcome]] = SimpleQueue()
    batch = _Batch(catalog)
    pending: set[Future[Outcome]] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dl") as pool:

        def top_up() -> None:
            # Two items per worker in the queue: a worker never waits for this thread.
            while len(pending) < 2 * workers and not should_stop():
                nxt = next(todo, None)
                if nxt is None:
                    return
                fut = pool.submit(fetch_one, session, *nxt, out_dir, limits, journal=journal)
                pending.add(fut)
                fut.add_done_callback(finished.put)

        def record(fut: Future[Outcome]) -> Outcome:
            pending.discard(fut)
            outcome = fut.result()
            batch.add(outcome)
            counts["stored" if outcome.ok else "failed"] += 1
            return outcome

        top_up()
        try:
            while pending:
                try:
                    fut = finished.get(timeout=batch.due())
                except Empty:
                    batch.commit()
                    continue
                outcome = record(fut)
                if on_done:
                    on_done(outcome)
                top_up()
        except KeyboardInterrupt:
            # Ctrl-C: start nothing new (items still waiting for a worker are cancelled), but
            # keep what is in flight: those bodies are downloaded, and dropping them would mean
            # downloading them again.
            for fut in list(pending):
                fut.cancel()
            while pending:
                fut = finished.get()
                if fut.cancelled():
                    pending.discard(fut)
                else:
                    record(fut)
            raise
        finally:
            batch.commit()
    return counts


class _Batch:
    """Catalog writes grouped into one transaction per BATCH_ROWS results or BATCH_SECONDS.

    One commit per item cost ~14 WAL writes each; grouping them is safe because a stored file
    whose row is still in an uncommitted batch is in the journal, and the next run adopts it.
    """

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.rows = 0
        self.opened = 0.0

    def add(self, outcome: Outcome) -> None:
        db = self.catalog.db
        if not self.rows:
            db.execute("BEGIN")
            self.opened = time.monotonic()
        if outcome.ok and outcome.record:
            self.catalog.mark_stored(outcome.item_id, **outcome.record, attempts=outcome.attempts)
        else:
            self.catalog.mark_failed(
                outcome.item_id,
                outcome.reason or "failed",
                retryable=outcome.retryable,
                attempts=outcome.attempts,
            )
        self.rows += 1
        if self.rows >= BATCH_ROWS or time.monotonic() - self.opened >= BATCH_SECONDS:
            self.commit()

    def due(self) -> float | None:
        """Seconds until the open batch must be committed (None: no batch open)."""
        if not self.rows:
            return None
        return max(0.0, self.opened + BATCH_SECONDS - time.monotonic())

    def commit(self) -> None:
        if self.rows:
            self.catalog.db.execute("COMMIT")
            self.rows = 0
