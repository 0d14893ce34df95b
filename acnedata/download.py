"""Bulk download of queued catalog items into the content-addressed store, validated first."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from acnedata.catalog import QUEUED, Catalog
from acnedata.http import PoliteSession
from acnedata.images import store_image, validate_image
from acnedata.licensing import refused_host
from acnedata.spec import Limits

IMAGES_DIR = "images"


@dataclass
class Outcome:
    """What happened to one item: stored (with its record) or failed (with a reason)."""

    item_id: int
    ok: bool
    reason: str | None = None
    retryable: bool = False
    record: dict | None = None


def fetch_one(
    session: PoliteSession, item_id: int, url: str, source: str, out_dir: Path, limits: Limits
) -> Outcome:
    """Download (or read, for local folders), validate and store one item. Never raises."""
    refusal = refused_host(url)
    if refusal:
        return Outcome(item_id, False, refusal)
    content_type = None
    if source == "folder" and url.startswith("file:"):
        # Local files come from the user's own folder: no network, no robots, same validation.
        try:
            data = Path(unquote(urlparse(url).path)).read_bytes()
        except OSError as exc:
            return Outcome(item_id, False, f"cannot read file: {exc.strerror or exc}")
    else:
        result = session.fetch(url, max_bytes=limits.max_bytes)
        if not result.ok or result.content is None:
            return Outcome(item_id, False, result.reason or "download failed", result.retryable)
        data, content_type = result.content, result.content_type
    image = validate_image(
        data, content_type=content_type, min_width=limits.min_width, min_height=limits.min_height
    )
    if not image.ok:
        return Outcome(item_id, False, image.reason)
    path = store_image(out_dir / IMAGES_DIR, image)
    return Outcome(
        item_id,
        True,
        record={
            "file": path.relative_to(out_dir).as_posix(),
            "sha256": image.sha256,
            "original_sha256": image.original_sha256,
            "pixel_sha256": image.pixel_sha256,
            "fmt": image.format,
            "width": image.width,
            "height": image.height,
            "size": len(image.data or b""),
        },
    )


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
    """Download every queued item; each result is committed as soon as its file is in place.

    Only this thread writes to the catalog, so a kill at any moment leaves rows that match the
    files on disk: a stored row always has its file; a file without a row is re-used next time.
    """
    queue = [(r["id"], r["url"], r["source"]) for r in catalog.items("state = ?", (QUEUED,))]
    counts = {"stored": 0, "failed": 0}
    pending: set[Future[Outcome]] = set()
    todo = iter(queue)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="dl") as pool:

        def submit_next() -> bool:
            if should_stop():
                return False
            nxt = next(todo, None)
            if nxt is None:
                return False
            pending.add(pool.submit(fetch_one, session, *nxt, out_dir, limits))
            return True

        def record(fut: Future[Outcome]) -> Outcome:
            pending.discard(fut)
            outcome = fut.result()
            if outcome.ok and outcome.record:
                catalog.mark_stored(outcome.item_id, **outcome.record)
                counts["stored"] += 1
            else:
                catalog.mark_failed(
                    outcome.item_id, outcome.reason or "failed", retryable=outcome.retryable
                )
                counts["failed"] += 1
            return outcome

        for _ in range(max(1, workers) * 2):
            if not submit_next():
                break
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    outcome = record(fut)
                    if on_done:
                        on_done(outcome)
                    submit_next()
        except KeyboardInterrupt:
            # Ctrl-C: start nothing new, but keep what is already in flight — those files are
            # (being) written, and dropping their rows would mean downloading them again.
            for fut in list(pending):
                record(fut)
            raise
    return counts
