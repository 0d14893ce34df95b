"""One Ray task: fetch, validate, store and sign a shard of items, recording each outcome."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from acnedata.dedup import feature_store
from acnedata.dedup.content import scan_file
from acnedata.dedup.keypoints import DEFAULT_REGION_CONFIG
from acnedata.distributed.leases import Call, LeasedPacer, SharedRobots
from acnedata.distributed.shards import ShardWriter
from acnedata.download import Item, download_items
from acnedata.http import HttpConfig, PoliteSession
from acnedata.intake import IntakeSettings, Journal
from acnedata.spec import Limits

PROBE = ".probe"  # written by the driver under OUT/shards/; a worker that cannot read it refuses


@dataclass(frozen=True)
class ShardJob:
    """What a worker needs; picklable, sent with the task."""

    name: str
    items: list[Item]
    out_dir: str  # the same path on every node (shared storage)
    probe: str  # the token the driver wrote to OUT/shards/.probe
    config: HttpConfig
    limits: Limits
    threads: int


class NotShared(Exception):
    """The output folder this worker sees is not the driver's."""


def run_shard(job: ShardJob, call: Call) -> dict[str, int]:
    """Download the shard's items with the cluster's politeness; `call` reaches the broker.

    Returns the counts; every outcome is in the shard record by then.
    """
    out_dir = Path(job.out_dir)
    probe = out_dir / "shards" / PROBE
    try:
        seen = probe.read_text(encoding="utf-8")
    except OSError:
        seen = None
    if seen != job.probe:
        raise NotShared(
            f"{job.out_dir} on node {socket.gethostname()} is not the driver's folder "
            f"(no matching {probe.name})"
        )
    writer = ShardWriter(out_dir, job.name, [item[0] for item in job.items])
    journal = Journal(writer.journal)
    pacers: list[LeasedPacer] = []

    def make_pacer(sleep, clock) -> LeasedPacer:
        pacer = LeasedPacer(
            call, job.name, sleep=sleep, clock=clock, concurrency=job.config.concurrency
        )
        pacers.append(pacer)
        return pacer

    session = PoliteSession(
        job.config, make_pacer=make_pacer, robots_cache=SharedRobots(call, time.monotonic)
    )
    try:
        settings = IntakeSettings(out_dir, job.limits, writer.journal)
        counts = download_items(
            job.items, session, settings, journal, writer, job.threads, 0, None, lambda: False
        )
    finally:
        writer.close()
        journal.close()
        session.close()
        for pacer in pacers:
            pacer.close()
    counts["features"] = keep_features(out_dir, writer.stored_files)
    return {**counts, "pid": os.getpid()}


def keep_features(out_dir: Path, stored: list[tuple[str, str]]) -> int:
    """Find the region features of the images this worker stored and keep them in the feature
    store, so the driver's content stage reads them instead of scanning (~60 ms an image).
    Returns how many it found; an image already there or unreadable is skipped."""
    config = DEFAULT_REGION_CONFIG  # the content stage's settings
    folder = feature_store.store_dir(out_dir, config)
    found = 0
    for sha256, file in stored:
        if feature_store.has(folder, sha256):
            continue
        found += feature_store.keep(folder, sha256, scan_file(str(out_dir / file), config))
    return found
