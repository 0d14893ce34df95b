"""`--distributor ray` on a real local Ray cluster against a real local HTTP server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from httpserver import LocalHTTPServer
from test_cli import assert_one_line_error, run
from test_cli_scripting import class_folders
from test_crash_resume import N_IMAGES, essence, fetch_cmd, serve, write_urls

from acnedata.dedup import feature_store
from acnedata.dedup.keypoints import DEFAULT_REGION_CONFIG
from acnedata.distributed.shards import RECORD, SHARDS_DIR, ShardReader
from acnedata.manifest import load_manifest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'acnedata[ray]'")
pytestmark = pytest.mark.ray

PER_HOST = 2
LOOPBACK = "127.0.0.1"  # the cluster stays on this machine's loopback
TIMEOUT = 180  # seconds a whole run may take; a hang fails instead of blocking CI


@pytest.fixture(scope="module")
def cluster() -> str:
    """A Ray instance with two worker CPUs, shared by the module's tests; its address."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address=LOOPBACK)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def ray_cmd(urls: Path, out: Path, address: str, per_host: int = 4) -> list[str]:
    """fetch_cmd on the cluster, 4 download threads per worker."""
    cmd = [*fetch_cmd(urls, out, 0), "--distributor", "ray", "--ray-address", address]
    cmd[cmd.index("--per-host") + 1] = str(per_host)
    return cmd


def items_without_times(out: Path) -> list[dict]:
    """The manifest's items, less the time each was found (the runs' clocks differ)."""
    items = json.loads((out / "manifest.json").read_text("utf-8"))["items"]
    for item in items:
        item["source"].pop("retrieved_at", None)
    return sorted(items, key=lambda item: item["id"])


def test_the_manifest_equals_a_single_machine_run(tmp_path, cluster):
    with LocalHTTPServer() as server:
        paths = serve(server)
        urls = write_urls(tmp_path, server, paths)
        local, distributed = tmp_path / "local", tmp_path / "ray"
        subprocess.run(fetch_cmd(urls, local, 0), check=True, timeout=TIMEOUT, capture_output=True)
        server.counts.clear()
        loud = ray_cmd(urls, distributed, cluster)
        loud.insert(loud.index("fetch"), "-v")  # the content stage's log line
        done = subprocess.run(loud, check=True, timeout=TIMEOUT, capture_output=True, text=True)
        assert {p: server.counts[p] for p in paths} == {p: 1 for p in paths}
    assert items_without_times(distributed) == items_without_times(local)
    assert essence(distributed) == essence(local)
    assert len(essence(distributed)) == N_IMAGES  # the two copies share their clusters
    assert not list((distributed / SHARDS_DIR).glob(f"*{RECORD}"))  # merged, then removed
    # The workers found every image's region features: the driver's content stage scanned none.
    shown = " ".join((done.stdout + done.stderr).split())  # rich wraps lines
    assert f"content stage: {N_IMAGES} images ({N_IMAGES} with features from the store)" in shown
    folder = feature_store.store_dir(distributed, DEFAULT_REGION_CONFIG)
    assert feature_store.count(folder) == N_IMAGES


def test_a_per_host_limit_of_two_holds_across_workers_and_robots_is_fetched_once(tmp_path, cluster):
    lock = threading.Lock()
    in_flight = peak = started = 0
    bodies = {}
    # The first requests are held until PER_HOST of them are in flight at once, so the limit is
    # surely reached (the test has teeth) however the machine schedules the workers.
    first = threading.Barrier(PER_HOST)

    with LocalHTTPServer() as server:
        paths = serve(server)
        for path in paths:
            bodies[path] = server._routes[path].handler

        def counted(req) -> None:
            nonlocal in_flight, peak, started
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
                started += 1
                held = started <= PER_HOST
            try:
                if held:
                    first.wait(TIMEOUT)
                bodies[req.path](req)
            finally:
                with lock:
                    in_flight -= 1

        for path in paths:
            server.route(path, handler=counted)
        urls = write_urls(tmp_path, server, paths)
        out = tmp_path / "out"
        proc = subprocess.run(
            ray_cmd(urls, out, cluster, per_host=PER_HOST), timeout=TIMEOUT, capture_output=True
        )
        assert proc.returncode == 0, proc.stderr
        robots = server.counts["/robots.txt"]
    assert peak == PER_HOST  # reached (the test has teeth), never exceeded
    assert robots == 1
    assert len(essence(out)) == N_IMAGES


def _item_id(out: Path, url: str) -> int:
    with sqlite3.connect(out / "catalog.sqlite") as con:
        return con.execute("SELECT id FROM items WHERE url = ?", (url,)).fetchone()[0]


def _wait(condition, what: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_a_worker_killed_mid_run_loses_nothing_and_nothing_is_fetched_twice(tmp_path, cluster):
    blocked, arrived, release = "/img/7.jpg", threading.Event(), threading.Event()
    with LocalHTTPServer() as server:
        paths = serve(server)
        normal = server._routes[blocked].handler

        def hold(req) -> None:  # the first request waits until its worker was killed
            if not arrived.is_set():
                arrived.set()
                release.wait(TIMEOUT)
                return  # its client is dead by now
            normal(req)

        server.route(blocked, handler=hold)
        urls = write_urls(tmp_path, server, paths)
        out = tmp_path / "out"
        proc = subprocess.Popen(
            ray_cmd(urls, out, cluster), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait(arrived.is_set, "the blocked request arrived", proc)
            blocked_id = _item_id(out, server.url(blocked))
            reader = ShardReader(out)
            name, header = next(
                (n, h) for n, h in reader.headers().items() if blocked_id in h["items"]
            )
            record = out / SHARDS_DIR / f"{name}{RECORD}"
            # Every other item of the shard is recorded: only the blocked one is in flight.
            _wait(
                lambda: len(record.read_text().splitlines()) - 1 == len(header["items"]) - 1,
                "the rest of the shard was recorded",
                proc,
            )
            os.kill(header["pid"], signal.SIGKILL)
            release.set()
            _, stderr = proc.communicate(timeout=TIMEOUT)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stderr
        counts = {p: server.counts[p] for p in paths}

    # Each image was fetched once; the blocked one twice: by the killed worker, then its heir.
    assert counts == {p: 2 if p == blocked else 1 for p in paths}
    assert len(essence(out)) == N_IMAGES
    assert all(item["sha256"] for item in load_manifest(out / "manifest.json").items)
    verified = run("verify", str(out), "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)


def test_a_driver_killed_mid_run_resumes_and_fetches_nothing_it_stored(tmp_path, cluster):
    served_first = 12  # requests answered before the kill; every later one waits for `release`
    answered, release, lock = [], threading.Event(), threading.Lock()
    with LocalHTTPServer() as server:
        paths = serve(server)
        urls = write_urls(tmp_path, server, paths)
        reference = tmp_path / "local"
        subprocess.run(fetch_cmd(urls, reference, 0), check=True, timeout=TIMEOUT)
        server.counts.clear()
        normal = {p: server._routes[p].handler for p in paths}

        def gate(req) -> None:
            path = req.path.split("?")[0]
            with lock:
                first = len(answered) < served_first
                if first:
                    answered.append(path)
            if first or release.wait(TIMEOUT):
                with contextlib.suppress(OSError):  # a killed worker's socket
                    normal[path](req)

        for path in paths:
            server.route(path, handler=gate)
        out = tmp_path / "out"
        cmd = ray_cmd(urls, out, cluster)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        reader = ShardReader(out)
        recorded: dict[int, bool] = {}

        def all_answered_are_recorded() -> bool:
            for name in reader.headers():
                for outcome in reader.new_outcomes(out / SHARDS_DIR / f"{name}{RECORD}"):
                    recorded[outcome.item_id] = outcome.ok
            return len(recorded) == served_first

        try:
            _wait(all_answered_are_recorded, f"{served_first} outcomes recorded", proc)
            workers = [h["pid"] for h in reader.headers().values()]
            proc.kill()  # the driver, then its workers: none may store anything more
            proc.wait(timeout=TIMEOUT)
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _wait_gone(workers)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        assert all(recorded.values()) and len(recorded) == served_first
        stored_before = {p for p in paths if _item_id(out, server.url(p)) in recorded}
        assert len(stored_before) == served_first
        server.counts.clear()
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
        assert again.returncode == 0, again.stderr
        refetched = {p: server.counts[p] for p in paths if server.counts[p]}
    assert not stored_before & set(refetched)  # what the killed run stored is not fetched again
    assert set(refetched) == set(paths) - stored_before and set(refetched.values()) == {1}
    assert items_without_times(out) == items_without_times(reference)
    assert not list((out / SHARDS_DIR).glob(f"*{RECORD}"))  # the old records merged, removed


def _wait_gone(pids: list[int]) -> None:
    """Until every pid has exited (a zombie counts as gone: it runs no more code)."""
    deadline = time.monotonic() + TIMEOUT
    for pid in pids:
        while True:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            except (FileNotFoundError, ProcessLookupError):
                break
            if state in ("Z", "X"):
                break
            assert time.monotonic() < deadline, f"worker {pid} did not exit"
            time.sleep(0.01)


def test_an_import_on_the_cluster_equals_a_local_import(tmp_path, cluster):
    source = class_folders(tmp_path / "src")
    outs = {}
    for name, extra in (("local", []), ("ray", ["--distributor", "ray", "--ray-address", cluster])):
        outs[name] = tmp_path / name
        args = ["import", str(source), "--out", str(outs[name]), "--licence", "CC-BY-4.0"]
        proc = run(*args, *extra)
        assert proc.returncode == 0, proc.stderr
    assert items_without_times(outs["ray"]) == items_without_times(outs["local"])
    assert len(essence(outs["ray"])) == 6


def test_a_collect_on_the_cluster_equals_a_local_collect(tmp_path, cluster):
    with LocalHTTPServer() as server:
        paths = serve(server)
        urls = write_urls(tmp_path, server, paths)
        spec = tmp_path / "spec.toml"
        spec.write_text(
            'name = "ray-collect"\n[network]\nmin_interval = 0.0\nmax_retries = 0\n'
            f'[sources.urllist]\npath = "{urls}"\n'
            '[[classes]]\nname = "papular"\n[[classes]]\nname = "pustular"\n'
        )
        outs = {}
        on_ray = ["--distributor", "ray", "--ray-address", cluster]
        for name, extra in (("local", []), ("ray", on_ray)):
            outs[name] = tmp_path / name
            server.counts.clear()
            args = ["collect", str(spec), "--out", str(outs[name]), "--allow-private"]
            proc = run("-v", *args, *extra)
            assert proc.returncode == 0, proc.stderr
            assert {p: server.counts[p] for p in paths} == {p: 1 for p in paths}, name
            shown = " ".join((proc.stdout + proc.stderr).split())
            # Ray workers found the region features as they stored: the driver scanned none.
            from_store = N_IMAGES if name == "ray" else 0
            assert f"{N_IMAGES} images ({from_store} with features from the store)" in shown
    assert items_without_times(outs["ray"]) == items_without_times(outs["local"])
    assert len(essence(outs["ray"])) == N_IMAGES


def test_an_unreachable_cluster_is_one_line_naming_the_address(tmp_path):
    with LocalHTTPServer() as server:
        urls = write_urls(tmp_path, server, serve(server)[:2])
        proc = run(
            "fetch",
            str(urls),
            "--out",
            str(tmp_path / "out"),
            "--allow-private",
            "--distributor",
            "ray",
            "--ray-address",
            "127.0.0.1:9",
        )
    assert_one_line_error(proc, "--ray-address 127.0.0.1:9")


def test_a_distributor_that_does_not_exist_is_one_line(tmp_path):
    proc = run("fetch", "urls.csv", "--out", str(tmp_path), "--distributor", "spark")
    assert_one_line_error(proc, "--distributor spark", "local or ray")
