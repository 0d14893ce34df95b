"""The Ray driver: queued items in shards to workers, their records merged into the catalog."""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acnedata.catalog import QUEUED, Catalog
from acnedata.distributed import RayOptions, probe_address, require_ray
from acnedata.distributed.politeness import Broker
from acnedata.distributed.shards import SHARDS_DIR, ShardReader, finish, leftover_shards, merge
from acnedata.distributed.worker import PROBE, NotShared, ShardJob, run_shard
from acnedata.download import BATCH_SECONDS, Item, _exclusive, queued_items, recover
from acnedata.download import remove_temp_files as _remove_temp_files
from acnedata.errors import AcnedataError
from acnedata.http import HttpConfig
from acnedata.intake import IMAGES_DIR, Outcome
from acnedata.spec import Limits

MAX_TRIES = 3  # a shard whose worker died is given this many workers in all
SHARDS_PER_CPU = 2  # so that a slow shard does not leave a core idle at the end
MAX_SHARD = 1000  # items per shard at most: what a dead worker can leave for another
BROKER_THREADS = 64  # the broker actor's concurrent calls (leases, robots.txt loads)


def ray_download(
    catalog: Catalog,
    config: HttpConfig,
    out_dir: Path,
    limits: Limits,
    *,
    threads: int,
    options: RayOptions,
    on_done: Callable[[Outcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """download_queued across a Ray cluster: the same outcomes in the catalog, and the same
    resume guarantees. `threads` downloads run in each worker, one worker per CPU."""
    ray = require_ray()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        _remove_temp_files(out_dir / IMAGES_DIR)
        recover(catalog, out_dir)  # a single-machine run killed before
        reader = ShardReader(out_dir)
        for name in leftover_shards(out_dir):  # a driver killed before: its workers' records
            finish(catalog, out_dir, reader, name)
        queue = queued_items(catalog)
        if not queue:
            return {"stored": 0, "failed": 0}
        started = _connect(ray, options)
        try:
            run = _Run(ray, catalog, config, out_dir, limits, threads, reader, on_done)
            return run.until_done(queue, options.shard_size, should_stop)
        finally:
            if started:
                ray.shutdown()


def _connect(ray: Any, options: RayOptions) -> bool:
    """Join the cluster (or start one here); True when this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if options.address:
        probe_address(options.address)
        kwargs["address"] = options.address
    else:  # a one-machine cluster: on the loopback, never on the machine's network address
        kwargs["_node_ip_address"] = "127.0.0.1"
        if options.num_cpus:
            kwargs["num_cpus"] = options.num_cpus
    try:
        ray.init(**kwargs)
    except Exception as exc:
        short = " ".join(str(exc).split())[:160] or type(exc).__name__
        where = f"--ray-address {options.address}" if options.address else "a local Ray instance"
        raise AcnedataError(
            f"{where}: cannot start or reach Ray ({short}); start a cluster with "
            "`ray start --head` and pass its address, or check the address"
        ) from None
    return True


def _task(job: ShardJob, broker: Any) -> dict[str, int]:
    """The Ray task body: run_shard with the broker reached through the actor handle."""
    import ray

    def call(method: str, *args: Any) -> Any:
        return ray.get(getattr(broker, method).remote(*args))

    return run_shard(job, call)


class _Run:
    """One driver run: submit shards, merge their records as they grow, requeue the dead's."""

    def __init__(
        self,
        ray: Any,
        catalog: Catalog,
        config: HttpConfig,
        out_dir: Path,
        limits: Limits,
        threads: int,
        reader: ShardReader,
        on_done: Callable[[Outcome], None] | None,
    ):
        self.ray, self.catalog, self.config = ray, catalog, config
        self.out_dir, self.limits, self.threads = out_dir, limits, max(1, threads)
        self.reader, self.on_done = reader, on_done
        self.counts = {"stored": 0, "failed": 0}
        self.id = secrets.token_hex(4)
        self.serial = 0
        self.pending: dict[Any, tuple[str, list[Item], int]] = {}
        self.probe = secrets.token_hex(8)
        self.task = ray.remote(_task).options(num_cpus=1, max_retries=0)
        self.broker = (
            ray.remote(Broker).options(num_cpus=0, max_concurrency=BROKER_THREADS).remote(config)
        )

    def until_done(
        self, queue: list[Item], shard_size: int | None, should_stop: Callable[[], bool]
    ) -> dict[str, int]:
        probe = self.out_dir / SHARDS_DIR / PROBE
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text(self.probe, encoding="utf-8")
        cpus = max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        size = shard_size or min(MAX_SHARD, math.ceil(len(queue) / (SHARDS_PER_CPU * cpus)))
        for start in range(0, len(queue), max(1, size)):
            self.submit(queue[start : start + size], 1)
        try:
            while self.pending and not should_stop():
                ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=BATCH_SECONDS)
                for name, _, _ in self.pending.values():
                    self.tally(merge(self.catalog, self.out_dir, self.reader, name))
                for ref in ready:
                    self.ended(ref)
        finally:
            self.stop_all()
            probe.unlink(missing_ok=True)
        return self.counts

    def submit(self, items: list[Item], tries: int) -> None:
        self.serial += 1
        name = f"{self.id}-{self.serial:05d}-{tries}"
        job = ShardJob(
            name, items, str(self.out_dir), self.probe, self.config, self.limits, self.threads
        )
        self.pending[self.task.remote(job, self.broker)] = (name, items, tries)

    def ended(self, ref: Any) -> None:
        """A shard's task ended: merge it, and give its unfinished items to a new worker when
        the old one died (nothing it stored is fetched again: its record and journal say so)."""
        name, items, tries = self.pending.pop(ref)
        error: Exception | None = None
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, NotShared):
                raise AcnedataError(
                    f"{cause}; --distributor ray needs the output folder on storage that every "
                    "node mounts at the same path (see the README)"
                ) from None
            error = exc
            self.broker.release_all.remote(name)  # a dead worker's slots, at once
        self.tally(finish(self.catalog, self.out_dir, self.reader, name))
        if error is None:
            return
        left = [item for item in items if self.catalog.item(item[0])["state"] == QUEUED]
        if left and tries < MAX_TRIES:
            self.submit(left, tries + 1)
        elif left:
            reason = f"worker lost {tries} times: {type(error).__name__}"
            failed = [(item[0], reason, True, 0) for item in left]
            with self.catalog.transaction():
                self.catalog.record_downloads([], failed)
            self.tally([Outcome(item[0], False, reason, True) for item in left])

    def tally(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.counts["stored" if outcome.ok else "failed"] += 1
            if self.on_done:
                self.on_done(outcome)

    def stop_all(self) -> None:
        """Cancel what still runs (Ctrl-C, a full disk), then merge what it recorded."""
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        for ref, (name, _, _) in list(self.pending.items()):
            with contextlib.suppress(Exception):
                self.ray.get(ref, timeout=10)
            self.tally(finish(self.catalog, self.out_dir, self.reader, name))
        self.pending.clear()
        with contextlib.suppress(Exception):
            self.ray.kill(self.broker)
