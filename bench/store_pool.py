"""Benchmark: the store processes alone, fed bodies from memory, against the same work in-process.

No network and no disk effects: the bodies are JPEGs read into memory first, and the outputs go
to a folder on tmpfs (/dev/shm when there is one). It prints the CPU per image of this process
and of the store processes, so the cost of the process split (pipes, pickling, start-up) shows
as the difference between `--modes inproc` and `--modes 2`. For A/B comparisons of a change,
run two checkouts alternately with PYTHONPATH pointing at each (from a folder outside both, as
`python -m` puts the current folder first on the store processes' path).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from acnedata.intake import Body, IntakeSettings, Journal, Outcome, finish_many
from acnedata.spec import Limits
from acnedata.storeworkers import StorePool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download import generate


def run(mode: str, datas: list[bytes], out: Path) -> str:
    journal = Journal(out / "download.journal")
    settings = IntakeSettings(out, Limits(min_width=1, min_height=1), journal.path)
    got: list[Outcome] = []
    kids0, self0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
    start = time.perf_counter()
    if mode == "inproc":
        for i in range(0, len(datas), 16):
            batch = range(i, min(i + 16, len(datas)))
            got += finish_many(
                [Body(j, f"u{j}", datas[j], "image/jpeg") for j in batch], settings, journal
            )
    else:
        pool = StorePool(settings, int(mode), got.append)
        for j, data in enumerate(datas):
            pool.submit(Body(j, f"http://x/{j}", data, "image/jpeg"))
        pool.close()
    seconds = time.perf_counter() - start
    journal.close()
    kids1, self1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(0)
    if len(got) != len(datas) or not all(o.ok for o in got):
        raise SystemExit(f"{mode}: {sum(o.ok for o in got)} of {len(datas)} stored")

    def per_image(a: resource.struct_rusage, b: resource.struct_rusage) -> float:
        return (b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime) * 1e3 / len(datas)

    return (
        f"{mode:>6}: {len(datas) / seconds:5.0f} images/s; CPU ms/image: this process "
        f"{per_image(self0, self1):.3f}, store processes {per_image(kids0, kids1):.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=6000)
    ap.add_argument("--data", type=Path, help="folder of generated JPEGs (kept; reused)")
    ap.add_argument("--modes", default="inproc,2", help="inproc and/or process counts, e.g. 2,3")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="acnedata-storepool-", dir=shm if shm.is_dir() else None))
    try:
        folder = (args.data or work / "www").resolve() / "img"
        generate(folder, args.count)
        datas = [(folder / f"{i:06d}.jpg").read_bytes() for i in range(args.count)]
        for n in range(args.repeat):
            for mode in args.modes.split(","):
                out = work / f"out-{n}-{mode}"
                out.mkdir()
                print(run(mode, datas, out), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
