"""One downloaded body into one stored item: validate, store, sign for dedup; never raises."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from acnedata import dedup
from acnedata.errors import is_disk_full
from acnedata.images import store_image, validate_image
from acnedata.spec import Limits

IMAGES_DIR = "images"
# The reason of an item the full disk did not take: the run stops, and the next one retries it.
DISK_FULL = "cannot store: no space left on the disk"
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


@dataclass
class Outcome:
    """What happened to one item: stored (with its record) or failed (with a reason)."""

    item_id: int
    ok: bool
    reason: str | None = None
    retryable: bool = False
    record: dict | None = None
    attempts: int = 1  # HTTP tries made for the item (1 + retries)
    phash: str | None = None  # the dedup signature, when it was computed on the way in
    signature: str | None = None


@dataclass
class Body:
    """A downloaded (or read) file waiting to be validated and stored."""

    item_id: int
    url: str
    data: bytes
    content_type: str | None
    attempts: int = 1


@dataclass(frozen=True)
class IntakeSettings:
    """How bodies are checked and where they go; picklable, for the store processes."""

    out_dir: Path
    limits: Limits
    journal: Path | None = None
    sign: bool = True  # compute the dedup signature from the decoded pixels


class Journal:
    """Append-only log of stored files, so a kill between rename and commit loses no download.

    The catalog row is committed after the file's rename; a kill in between would leave a file
    nobody points to, and the rerun would fetch the item again. Each worker (thread or process)
    appends the item's record here before the rename (one O_APPEND write, atomic between
    writers and kept by the kernel once the call returns, as far as a killed process goes); the
    next run adopts every record whose item is still queued and whose file is there with its
    sha256, without any request.
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


def finish(body: Body, settings: IntakeSettings, journal: Journal | None) -> Outcome:
    """Validate, journal, store (temp file, rename; the caller flushes) and sign one body."""
    return finish_many([body], settings, journal)[0]


def finish_many(
    bodies: list[Body], settings: IntakeSettings, journal: Journal | None
) -> list[Outcome]:
    """finish() for several bodies, signed together: batched signatures cost a fraction each."""
    outcomes, to_sign = [], []
    for body in bodies:
        outcome, gray = store_body(body, settings, journal)
        outcomes.append(outcome)
        if gray is not None:
            to_sign.append((outcome, gray))
    sign(to_sign)
    return outcomes


def store_body(
    body: Body, settings: IntakeSettings, journal: Journal | None
) -> tuple[Outcome, Image.Image | None]:
    """Validate, journal and store one body: (outcome, the small grayscale copy to sign, if any).

    The copy is what dedup.signatures() works from; it is a few kB, so a caller can hold many
    of them and sign them in one batch with sign().
    """
    outcome, rgb = _store(body, settings, journal)
    if rgb is None:
        return outcome, None
    try:
        return outcome, dedup.signature_gray(rgb)
    except Exception:  # unsigned: the dedup stage hashes the stored file instead
        return outcome, None


def sign(pending: list[tuple[Outcome, Image.Image]]) -> None:
    """Give each outcome the dedup signature of its grayscale copy (store_body), in one batch."""
    if not pending:
        return
    try:
        sigs = dedup.signatures([gray for _, gray in pending])
    except Exception:  # the dedup stage hashes the stored files instead
        return
    for (outcome, _), sig in zip(pending, sigs, strict=True):
        outcome.phash, outcome.signature = sig.phash, sig.to_text()


def _store(
    body: Body, settings: IntakeSettings, journal: Journal | None
) -> tuple[Outcome, Image.Image | None]:
    """Validate, journal and store one body; (outcome, its pixels when they are to be signed)."""
    limits = settings.limits
    image = validate_image(
        body.data,
        content_type=body.content_type,
        min_width=limits.min_width,
        min_height=limits.min_height,
        keep_rgb=settings.sign,
    )
    body.data = b""  # validated: the original bytes are not needed any more
    if not image.ok or image.sha256 is None:
        return Outcome(body.item_id, False, image.reason, attempts=body.attempts), None
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
    try:
        if journal is not None:
            journal.add(body.item_id, body.url, record)
        path = store_image(settings.out_dir / IMAGES_DIR, image, durable=False)
    except OSError as exc:  # disk full, permissions: worth another try once fixed
        reason = DISK_FULL if is_disk_full(exc) else f"cannot store: {exc.strerror or exc}"
        failed = Outcome(body.item_id, False, reason, retryable=True, attempts=body.attempts)
        return failed, None
    finally:
        image.data = None  # the bytes are on disk (or lost): let them go
    record["file"] = path.relative_to(settings.out_dir).as_posix()
    return Outcome(body.item_id, True, record=record, attempts=body.attempts), image.rgb
