"""Benchmark: `acnedata fetch` on this machine against `--distributor ray` with 1 and 2 workers.

The same nginx-served JPEGs as bench/download.py (its generator, nginx and measuring helpers).
Each Ray run gets a fresh local Ray instance with that many CPUs (one worker per CPU), started by
this script on the loopback; its peak memory counts the driver's process tree and every process
of the Ray instance (GCS, raylet, workers). On a 2-core machine the Ray path costs overhead and
cannot win: the figure to read is that overhead per image.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download import (  # bench/ is not a package: its sibling, by path
    Nginx,
    Run,
    _tree_rss,
    generate,
    ours_cmd,
    stage_rate,
    warm_cache,
)


def _cpu_seconds(pids: set[int]) -> float:
    """utime + stime of the given live processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def _descendants(root: int, skip: set[int]) -> set[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree and child not in skip:
                tree.add(child)
                frontier.append(child)
    return tree


def timed(name: str, cmd: list[str], log: Path, out: Path, skip: set[int]) -> Run:
    """Run cmd; peak RSS and CPU of its tree plus every other child of this script but `skip`
    (the Ray instance's processes); images counted afterwards."""
    import resource

    ray_pids = _descendants(os.getpid(), skip)
    ray_cpu = _cpu_seconds(ray_pids)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = 0
    with log.open("wb") as fh:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            ray_pids |= _descendants(os.getpid(), skip | {proc.pid})
            peak = max(peak, _tree_rss(proc.pid) + sum(_tree_rss(p) for p in ray_pids))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu += _cpu_seconds(ray_pids) - ray_cpu  # Ray workers outlive the run: read them live
    if proc.returncode != 0:
        print(f"{name} exited {proc.returncode}; see {log}", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
    images = sum(1 for _ in out.glob("images/*/*.jpg"))
    return Run(name, seconds, images, peak, proc.returncode, cpu=cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=5_000, help="JPEGs to generate and fetch")
    ap.add_argument("--workers", type=int, default=16, help="download threads per process")
    ap.add_argument("--data", type=Path, help="folder for the generated JPEGs (kept; reused)")
    ap.add_argument("--ray-workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="acnedata-bench-ray-"))
    work.chmod(0o755)
    www = (args.data or work / "www").resolve()
    runs: list[Run] = []
    try:
        generate(www / "img", args.count)
        with Nginx(work / "nginx", www) as nginx:
            assert nginx.proc is not None
            skip = {nginx.proc.pid} | _descendants(nginx.proc.pid, set())
            urls = work / "urls.csv"
            with urls.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["url", "licence", "label"])
                base = f"http://127.0.0.1:{nginx.port}"
                w.writerows(
                    [f"{base}/img/{i:06d}.jpg", "CC0-1.0", "bench"] for i in range(args.count)
                )
            plans: list[tuple[str, int]] = [("local", 0)] + [
                (f"ray x{n}", n) for n in args.ray_workers
            ]
            for name, n in plans:
                out = work / name.replace(" ", "-")
                cmd, _, _ = ours_cmd(urls, out, args.workers)
                cmd.remove("--quiet")  # keep the "download: stored N ... in S s" line
                if n:
                    ray.init(
                        num_cpus=n,
                        include_dashboard=False,
                        log_to_driver=False,
                        _node_ip_address="127.0.0.1",
                    )
                    cmd += ["--distributor", "ray"]
                    cmd += ["--ray-address", ray.get_runtime_context().gcs_address]
                warm_cache(www / "img", args.count)
                os.sync()
                log = work / f"{out.name}.log"
                try:
                    run = timed(name, cmd, log, out, skip)
                finally:
                    if n:
                        ray.shutdown()
                run.stage, run.load = stage_rate("acnedata", log), os.getloadavg()[0]
                runs.append(run)
                print(f"  {run.line()}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(runs)
    if any(r.returncode or r.images < args.count for r in runs):
        sys.exit(1)


def report(runs: list[Run]) -> None:
    print(f"\n{'path':<12} {'images':>7} {'seconds':>8} {'images/s':>9} {'peak':>11}")
    for run in runs:
        print(run.line())
    local = next((r for r in runs if r.name == "local" and r.images), None)
    if local is None:
        return
    for run in runs:
        if run is local or not run.images or not run.stage:
            continue
        # End to end, not by stage: Ray workers also find the region features in their
        # download stage, which the local path does in its content stage after it.
        wall = (run.seconds - local.seconds) * 1e3 / run.images
        print(
            f"{run.name}: end to end {run.seconds:.1f} s against {local.seconds:.1f} s here, "
            f"overhead {wall:+.2f} ms of wall per image (download stage {run.stage:.0f}/s with "
            f"the features against {local.stage:.0f}/s without)"
        )


if __name__ == "__main__":
    main()
