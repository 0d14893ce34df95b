"""Benchmark: `acnedata fetch` against img2dataset 1.47 on the same nginx-served JPEGs, same run."""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

I2D_VERSION = "1.47.0"
I2D_VENV = Path("/tmp/i2d-venv")
SIZE = 256

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ image/jpeg jpg; text/plain txt; }}
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
    }}
}}
"""


def _make_jpeg(index: int) -> bytes:
    """A photo-like 256x256 JPEG (smooth structure + grain, ~25 kB), distinct per index."""
    rng = np.random.default_rng(index)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, (SIZE, SIZE, 3), dtype=np.int16)
    pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _write_batch(args: tuple[Path, range]) -> int:
    folder, indices = args
    for i in indices:
        (folder / f"{i:06d}.jpg").write_bytes(_make_jpeg(i))
    return len(indices)


def generate(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = {p.name for p in folder.glob("*.jpg")}
    missing = [i for i in range(count) if f"{i:06d}.jpg" not in have]
    if not missing:
        return
    step = 500
    batches = [(folder, range(s, min(s + step, count))) for s in range(0, count, step)]
    batches = [(f, r) for f, r in batches if any(f"{i:06d}.jpg" not in have for i in r)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_write_batch, batches))


def warm_cache(folder: Path, count: int) -> float:
    """Read every file once so both tools are served from the page cache; returns seconds.

    On a cold cache nginx waits on the disk (seen here: 20,000 files took 15 s to read cold),
    and whichever tool ran first would pay for it.
    """
    start = time.perf_counter()
    for i in range(count):
        with (folder / f"{i:06d}.jpg").open("rb") as fh:
            while fh.read(1 << 20):
                pass
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Nginx:
    """nginx in the foreground on 127.0.0.1 with its own config, pid and log under `root`."""

    def __init__(self, root: Path, www: Path):
        self.root, self.port = root, free_port()
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        link = root / "www"
        if not link.exists():
            link.symlink_to(www, target_is_directory=True)
        (www / "robots.txt").write_text("User-agent: *\nAllow: /\n")
        self.conf = root / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(root=root, port=self.port))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            sys.exit("nginx not found: apt-get update && apt-get install -y nginx-light")
        self.proc = subprocess.Popen([binary, "-p", str(self.root), "-c", str(self.conf)])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        sys.exit(f"nginx did not start; see {self.root / 'error.log'}")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _probe_worker(args: tuple[int, list[str], float]) -> int:
    """Keep-alive GETs in 8 threads for `seconds`; the number of complete responses."""
    port, paths, seconds = args
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n, i = 0, offset
        while time.monotonic() < stop:
            conn.request("GET", paths[i % len(paths)])
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"nginx answered {resp.status} for {paths[i % len(paths)]}")
            n, i = n + 1, i + 8
        conn.close()
        with lock:
            done[0] += n

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0]


def probe(port: int, count: int, seconds: float = 3.0) -> float:
    """nginx's rate for this workload from a bare keep-alive client in 2 processes (req/s)."""
    paths = [f"/img/{i:06d}.jpg" for i in range(min(count, 2000))]
    with ProcessPoolExecutor(max_workers=2) as pool:
        total = sum(pool.map(_probe_worker, [(port, paths, seconds)] * 2))
    return total / seconds


def file_creation_ms(folder: Path, files: int = 500) -> float:
    """CPU milliseconds to create one small file in a new subfolder of folder (files kept).

    On ext4 without a journal, as here, creating a file skips every inode of its group that
    was deleted in the last minutes, one by one: after a big delete nearby this rises from
    ~0.05 ms to ~0.6 ms, which would weigh on both tools for reasons of their own.
    """
    target = folder / "creation-probe"
    target.mkdir()
    start = time.process_time()
    for i in range(files):
        fd = os.open(target / f"{i}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x" * 4096)
        os.close(fd)
    return (time.process_time() - start) * 1e3 / files


def _tree_rss(root_pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in tree)


@dataclass
class Run:
    name: str
    seconds: float
    images: int
    peak_rss: int
    returncode: int
    stage: float | None = None  # the download stage's own rate, as the tool reports it
    load: float = 0.0  # the machine's 1-minute load average when the run started
    cpu: float = 0.0  # user + system CPU seconds of the whole process tree

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        stage = f", stage {self.stage:.0f}/s" if self.stage else ""
        cpu = f", CPU {self.cpu * 1e3 / self.images:.2f} ms/image" if self.images else ""
        return (
            f"{self.name:<12} {self.images:>7} {self.seconds:>8.1f} {self.rate:>9.0f} "
            f"{self.peak_rss / 2**20:>7.0f} MiB  (load {self.load:.1f}{stage}{cpu})"
        )


def timed(name: str, cmd: list[str], log: Path, count_images) -> Run:
    """Run cmd, sampling the whole process tree's RSS every 0.1 s; count images afterwards."""
    peak = 0
    # Every process of the tree is waited for by its parent, so RUSAGE_CHILDREN counts them all.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        print(f"{name} exited {proc.returncode}; last lines of {log}:", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(name, seconds, count_images(), peak, proc.returncode, cpu=cpu)


def stage_rate(name: str, log: Path) -> float | None:
    """The download stage's rate as the tool itself reports it (None where not found)."""
    text = log.read_text(errors="replace") if log.exists() else ""
    if name == "acnedata":
        found = re.findall(r"download: stored (\d+), failed (\d+) in ([\d.]+) s", text)
        if found:
            stored, failed, seconds = found[-1]
            return (int(stored) + int(failed)) / max(float(seconds), 1e-9)
        return None
    rates = re.findall(r"^total .*images per sec: (\d+)", text, re.M)
    return float(rates[-1]) if rates else None


def ensure_img2dataset(venv: Path) -> Path:
    """img2dataset in its own virtualenv (never a project dependency); returns its executable."""
    exe = venv / "bin" / "img2dataset"
    pip = venv / "bin" / "pip"
    if exe.exists():
        shown = subprocess.run([str(pip), "show", "img2dataset"], capture_output=True, text=True)
        if f"Version: {I2D_VERSION}" in shown.stdout:
            return exe
    if not (venv / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(pip), "install", "-q", f"img2dataset=={I2D_VERSION}"], check=True)
    return exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=20_000, help="JPEGs to generate and fetch")
    ap.add_argument("--workers", type=int, default=16, help="acnedata fetch --workers")
    ap.add_argument(
        "--processes", type=int, help="acnedata fetch --processes (default: its own choice)"
    )
    ap.add_argument("--data", type=Path, help="folder for the generated JPEGs (kept; reused)")
    ap.add_argument("--i2d-venv", type=Path, default=I2D_VENV, help="img2dataset's virtualenv")
    ap.add_argument("--skip-img2dataset", action="store_true", help="time acnedata only")
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    ap.add_argument(
        "--work",
        type=Path,
        help="folder to hold the run's nginx config and outputs (default: the system temp folder)",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool, alternating")
    args = ap.parse_args()

    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="acnedata-bench-", dir=args.work))
    work.chmod(0o755)  # nginx's worker runs as an unprivileged user and must reach www/
    www = (args.data or work / "www").resolve()
    try:
        t0 = time.perf_counter()
        generate(www / "img", args.count)
        print(f"images: {args.count} JPEGs {SIZE}x{SIZE} ({time.perf_counter() - t0:.0f} s)")
        i2d = None if args.skip_img2dataset else ensure_img2dataset(args.i2d_venv)

        with Nginx(work / "nginx", www) as nginx:
            base = f"http://127.0.0.1:{nginx.port}"
            urls = [f"{base}/img/{i:06d}.jpg" for i in range(args.count)]
            ours_csv, i2d_csv = work / "urls.csv", work / "urls-i2d.csv"
            with ours_csv.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["url", "licence", "label"])
                w.writerows([u, "CC0-1.0", "bench"] for u in urls)
            with i2d_csv.open("w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["url"])
                w.writerows([u] for u in urls)

            print(f"page cache: every file read in {warm_cache(www / 'img', args.count):.1f} s")
            creation = file_creation_ms(work)
            print(f"file creation in {work}: {creation:.3f} ms of CPU per file")
            if creation > 0.2:
                print(
                    "warning: creating files is slow here (many files were deleted nearby in "
                    "the last minutes); both tools pay for it"
                )
            probe_rate = probe(nginx.port, args.count)
            print(f"nginx probe: {probe_rate:.0f} req/s (bare keep-alive client, 2 processes)")

            # Alternate the tools, so a busy spell on a shared machine hits both alike; each
            # run starts from an empty output folder.
            runs: list[Run] = []
            for n in range(args.repeat):
                # A fresh folder per run, all deleted at the end: on ext4 without a journal
                # (this machine's disk) creating a file skips every inode deleted in the last
                # minutes one by one, so deleting the previous run's 20,000 files just before a
                # run made each file creation cost ~0.6 ms of CPU, more than decoding it.
                out_ours, out_i2d = work / f"ours-{n}", work / f"i2d-{n}"
                tools = [("acnedata", ours_cmd(ours_csv, out_ours, args.workers, args.processes))]
                if i2d is not None:
                    tools.append(("img2dataset", i2d_cmd(i2d, i2d_csv, out_i2d)))
                for name, (cmd, out, pattern) in tools:
                    warm_cache(www / "img", args.count)
                    # img2dataset never syncs: without this, its run's ~0.5 GB of dirty pages
                    # would be written back during the next run, whose own flushes (acnedata
                    # syncs the filesystem before every catalog commit) would pay for it.
                    os.sync()
                    log = work / f"{name}-{n}.log"
                    load = os.getloadavg()[0]
                    run = timed(name, cmd, log, lambda o=out, g=pattern: sum(1 for _ in o.glob(g)))
                    run.stage, run.load = stage_rate(name, log), load
                    runs.append(run)
                    print(f"  run {n + 1} {run.line()}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(runs, probe_rate)
    if args.keep:
        print(f"kept outputs under {work}")
    if any(r.returncode or r.images < args.count for r in runs):
        sys.exit(1)


def ours_cmd(
    urls: Path, out: Path, workers: int, processes: int | None = None
) -> tuple[list[str], Path, str]:
    cmd = [sys.executable, "-m", "acnedata", "fetch", str(urls), "--out", str(out)]
    cmd += ["--allow-private", "--workers", str(workers), "--per-host", str(workers), "--quiet"]
    if processes is not None:
        cmd += ["--processes", str(processes)]
    return cmd, out, "images/*/*.jpg"


def i2d_cmd(exe: Path, urls: Path, out: Path) -> tuple[list[str], Path, str]:
    cmd = [str(exe), "--url_list", str(urls), "--input_format", "csv", "--url_col", "url"]
    cmd += ["--output_folder", str(out), "--output_format", "files", "--resize_mode", "no"]
    cmd += ["--processes_count", "2", "--thread_count", "32"]
    return cmd, out, "*/*.jpg"


def report(runs: list[Run], probe_rate: float) -> None:
    """Each tool's best run (the least disturbed by other load) and the ratios between them."""
    best = {}
    for r in runs:
        if r.name not in best or r.rate > best[r.name].rate:
            best[r.name] = r
    print(f"best of {len(runs) // len(best)} per tool:")
    print(f"  {'tool':<12} {'images':>7} {'seconds':>8} {'images/s':>9} {'peak RSS':>10}")
    for r in best.values():
        print(f"  {r.line()}")
    ours, theirs = best.get("acnedata"), best.get("img2dataset")
    if ours and theirs and theirs.rate:
        print(f"ratio acnedata / img2dataset, end to end: {ours.rate / theirs.rate:.2f}x")
    if ours and ours.stage:
        stages = [r.stage for r in runs if r.name == "acnedata" and r.stage]
        print(
            f"download stage alone (fetch, full decode and validation, sha256s, store, a flush per "
            f"batch, dedup signature, catalog rows; "
            f"no search/dedup/sort/manifest): acnedata {max(stages):.0f} images/s"
        )
        theirs_stages = [r.stage for r in runs if r.name == "img2dataset" and r.stage]
        if theirs_stages:
            print(
                f"img2dataset's own rate: {max(theirs_stages):.0f} images/s; ratio of the "
                f"stages: {max(stages) / max(theirs_stages):.2f}x"
            )
    if probe_rate < 2 * max(r.rate for r in runs):
        print(f"warning: nginx probe ({probe_rate:.0f}/s) is under 2x the fastest tool")


if __name__ == "__main__":
    main()
