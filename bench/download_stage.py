"""Benchmark: the download stage alone (download_queued) with its CPU split, for A/B changes."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from acnedata.catalog import Catalog
from acnedata.download import download_queued
from acnedata.http import HttpConfig, PoliteSession
from acnedata.spec import Limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download import Nginx, generate, warm_cache


def run_once(base: str, count: int, workers: int, processes: int | None, out: Path) -> None:
    out.mkdir(parents=True)  # a fresh folder: see the note on deleting in download.py
    with Catalog(out / "catalog.sqlite") as catalog:
        with catalog.transaction():
            catalog.db.executemany(
                "INSERT INTO items (key, source, source_id, url, state, found_at) "
                "VALUES (?, 'urllist', ?, ?, 'queued', '')",
                ((str(i), str(i), f"{base}/img/{i:06d}.jpg") for i in range(count)),
            )
        config = HttpConfig(
            allow_private=True, min_interval=0, per_host_concurrency=workers, concurrency=workers
        )
        limits = Limits(min_width=1, min_height=1)
        before_self = resource.getrusage(resource.RUSAGE_SELF)
        before_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        with PoliteSession(config) as session:
            counts = download_queued(
                catalog, session, out, limits, workers=workers, processes=processes
            )
        seconds = time.perf_counter() - start
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    per = 1e3 / count
    print(
        f"  processes={processes if processes is not None else 'auto'} workers={workers}: "
        f"{counts['stored']} stored, {counts['failed']} failed in {seconds:.1f} s = "
        f"{count / seconds:.0f} images/s; CPU ms/image: main process user "
        f"{(me.ru_utime - before_self.ru_utime) * per:.2f} sys "
        f"{(me.ru_stime - before_self.ru_stime) * per:.2f}, store processes user "
        f"{(kids.ru_utime - before_kids.ru_utime) * per:.2f} sys "
        f"{(kids.ru_stime - before_kids.ru_stime) * per:.2f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument(
        "--processes", default="auto", help="comma-separated values to alternate, e.g. 0,2"
    )
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--data", type=Path, help="folder for the generated JPEGs (kept; reused)")
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    args = ap.parse_args()
    choices = [None if p == "auto" else int(p) for p in args.processes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="acnedata-stage-"))
    work.chmod(0o755)  # nginx's worker runs as an unprivileged user and must reach www/
    www = (args.data or work / "www").resolve()
    try:
        generate(www / "img", args.count)
        with Nginx(work / "nginx", www) as nginx:
            base = f"http://127.0.0.1:{nginx.port}"
            for n in range(args.repeat):
                for processes in choices:
                    warm_cache(www / "img", args.count)
                    os.sync()  # no dirty pages of an earlier run are written back during this one
                    out = work / f"out-{n}-{processes}"
                    run_once(base, args.count, args.workers, processes, out)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
