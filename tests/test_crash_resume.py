"""kill -9 in the middle of `acnedata fetch`, then resume: same manifest, nothing refetched."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from httpserver import LocalHTTPServer, send
from imagefactory import make_image, to_bytes

from acnedata.manifest import load_manifest

N_IMAGES = 60
WORKERS = 4
DELAY = 0.04  # seconds per image response, so a kill lands while downloads are in flight
KILL_AFTER = (5, 20, 40)  # image requests that have arrived (all runs together) at each kill
STORE_NAME = re.compile(r"[0-9a-f]{64}\.(jpg|png|webp|gif|bmp)")


def serve(server: LocalHTTPServer) -> list[str]:
    bodies = {
        f"/img/{i}.jpg": to_bytes(make_image(i, size=(72, 64)), "JPEG", quality=90)
        for i in range(N_IMAGES)
    }
    # Two exact copies of earlier images: the dedup stage must cluster them the same way too.
    bodies["/img/copy-of-3.jpg"] = bodies["/img/3.jpg"]
    bodies["/img/copy-of-50.jpg"] = bodies["/img/50.jpg"]

    def slow(req) -> None:
        time.sleep(DELAY)
        send(req, 200, bodies[req.path], {"Content-Type": "image/jpeg"})

    for path in bodies:
        server.route(path, handler=slow)
    server.route("/robots.txt", body="User-agent: *\nAllow: /\n")
    return sorted(bodies)


def write_urls(folder: Path, server: LocalHTTPServer, paths: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "urls.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["url", "licence", "label"])
        for p in paths:
            number = int(re.sub(r"\D", "", p))  # a copy gets its original's label
            writer.writerow([server.url(p), "CC0-1.0", "papular" if number % 2 else "pustular"])
    return path


def fetch_cmd(urls: Path, out: Path, processes: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "acnedata",
        "fetch",
        str(urls),
        "--out",
        str(out),
        "--allow-private",
        "--workers",
        str(WORKERS),
        "--per-host",
        str(WORKERS),
        "--processes",
        str(processes),
        "--quiet",
    ]


def image_requests(server: LocalHTTPServer, paths: list[str]) -> dict[str, int]:
    return {p: server.counts[p] for p in paths}


def stored_at_kill(out: Path, server: LocalHTTPServer) -> set[str]:
    """Paths whose file was in place when the process died: committed rows, and files the
    journal names that reached their final name (renamed, row not yet committed)."""
    prefix = server.url("")
    done: set[str] = set()
    db = out / "catalog.sqlite"
    if db.exists():
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT url FROM items WHERE state = 'stored'").fetchall()
        done |= {url[len(prefix) - 1 :] for (url,) in rows}
    journal = out / "download.journal"
    if journal.exists():
        for line in journal.read_text("utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut short by the kill
            if (out / entry["record"]["file"]).is_file():
                done.add(entry["url"][len(prefix) - 1 :])
    return done


def essence(out: Path) -> list[tuple]:
    items = load_manifest(out / "manifest.json").items
    return sorted((i["id"], i["sha256"], i["label"], i["cluster"]) for i in items)


@pytest.mark.parametrize("processes", [0, 2], ids=["in-thread", "store-processes"])
def test_kill_9_at_several_points_then_resume(tmp_path, processes):
    with LocalHTTPServer() as server:
        paths = serve(server)
        urls = write_urls(tmp_path, server, paths)

        # The reference: one uninterrupted run.
        ref = tmp_path / "ref"
        subprocess.run(
            fetch_cmd(urls, ref, processes), check=True, timeout=120, capture_output=True
        )
        assert image_requests(server, paths) == {p: 1 for p in paths}
        server.counts.clear()

        out = tmp_path / "out"
        kills = []
        for threshold in KILL_AFTER:
            proc = subprocess.Popen(
                fetch_cmd(urls, out, processes),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            # Killed once `threshold` requests arrived and at least one file is in the store, so
            # every kill has something stored that must not be fetched again.
            while sum(image_requests(server, paths).values()) < threshold or not any(
                STORE_NAME.fullmatch(f.name) for f in out.glob("images/*/*")
            ):
                assert proc.poll() is None, "the run ended before it could be killed"
                assert time.monotonic() < deadline, "no downloads arrived"
                time.sleep(0.002)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills.append((image_requests(server, paths), stored_at_kill(out, server)))

        subprocess.run(
            fetch_cmd(urls, out, processes), check=True, timeout=120, capture_output=True
        )
        final = image_requests(server, paths)

    # Every item reached the store once the last run finished, and equals the reference.
    assert essence(out) == essence(ref)
    assert len(essence(out)) == N_IMAGES  # the two copies share their originals' clusters

    # No stored item was fetched again; only items in flight at a kill may be fetched twice.
    for n, (counts, stored) in enumerate(kills):
        assert stored, f"kill {n}: nothing stored yet, the test proves nothing"
        again = {p for p in paths if final[p] > counts[p] and counts[p] > 0}
        assert not again & stored, f"kill {n}: stored items fetched again: {again & stored}"
        assert len(again) <= WORKERS, f"kill {n}: {len(again)} refetches > {WORKERS} in flight"
    assert all(n >= 1 for n in final.values())
    assert sum(final.values()) - len(paths) <= WORKERS * len(KILL_AFTER)

    # No half-written or temp file anywhere in the store; every file is named by its content.
    files = [p for p in (out / "images").rglob("*") if p.is_file()]
    for f in files:
        assert STORE_NAME.fullmatch(f.name), f
        assert f.parent.name == f.name[:2]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == f.stem
    with sqlite3.connect(out / "catalog.sqlite") as con:
        listed = {r[0] for r in con.execute("SELECT file FROM items WHERE state = 'stored'")}
    assert {f.relative_to(out).as_posix() for f in files} == listed
    assert not (out / "download.journal").exists()
