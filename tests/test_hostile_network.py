"""Hostile servers: bodies and robots.txt that trickle, Ctrl-C during a trickle, DNS rebinding."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from httpserver import LocalHTTPServer, send
from imagefactory import make_image, to_bytes
from test_crash_resume import fetch_cmd
from test_download_faults import write_urls

from acnedata.errors import NetworkError
from acnedata.fetch import url_list_spec
from acnedata.http import HttpConfig, PoliteSession
from acnedata.pipeline import Collector

ROOT = Path(__file__).resolve().parent.parent
STEP = 0.05  # seconds between two trickled bytes: never silent for a whole read timeout
HANG = 30.0  # "does not hang": far above every deadline here, only hit when one is missing
CONTACT = "tests@example.org"


class Trickle:
    """A handler that sends a response one byte every STEP seconds until the client hangs up
    (or the test ends: `stop`). `cut` is set when the client hung up before the end, `sending`
    once the first byte went out."""

    def __init__(self, body: bytes, headers: dict[str, str], *, slow_headers: bool = False):
        self.body, self.headers, self.slow_headers = body, headers, slow_headers
        self.sending, self.cut, self.stop = threading.Event(), threading.Event(), threading.Event()
        self.requests = 0

    def __call__(self, req) -> None:
        self.requests += 1
        head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        head += f"Content-Length: {len(self.body)}\r\n\r\n"
        data = head.encode() + self.body
        start = 0 if self.slow_headers else len(head)
        try:
            req.wfile.write(data[:start])
            for i in range(start, len(data)):
                if self.stop.is_set():
                    break
                req.wfile.write(data[i : i + 1])
                self.sending.set()
                self.stop.wait(STEP)
            else:
                return
        except OSError:  # the client hung up: what a deadline does
            self.cut.set()
        req.close_connection = True


def in_thread(fn, *args, **kwargs):
    """Run fn in a thread; (finished within HANG seconds, its result or exception)."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test
            out["value"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    return not t.is_alive(), out.get("value")


def jpeg(n: int) -> bytes:
    return to_bytes(make_image(n, (64, 64)), "JPEG")


# -- a total deadline per request ------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["plain GET", "headers trickle", "user:pw@ URL", "JSON API"],
)
def test_a_trickling_answer_fails_at_the_deadline_on_every_path(how):
    slow = Trickle(
        b'{"ok": true}' * 400 if how == "JSON API" else jpeg(1),
        {"Content-Type": "application/json" if how == "JSON API" else "image/jpeg"},
        slow_headers=how == "headers trickle",
    )
    config = HttpConfig(allow_private=True, timeout=5.0, deadline=1.0, max_retries=0)
    with LocalHTTPServer() as server, PoliteSession(config) as session:
        server.route("/slow", handler=slow)
        url = server.url("/slow")
        try:
            if how == "user:pw@ URL":  # credentials in the URL: the requests path
                url = url.replace("http://", "http://user:pw@")
            if how == "JSON API":
                finished, got = in_thread(session.get_json, url, params={"q": "x"})
            else:
                finished, got = in_thread(session.fetch, url)
            # the server's next byte after the client hung up fails: wait for that
            hung_up = finished and slow.cut.wait(HANG)
        finally:
            slow.stop.set()
        assert finished, "still downloading a trickling body"
        if how == "JSON API":
            assert isinstance(got, NetworkError)
            assert "too slow: deadline 1 s" in str(got)
            assert "raise [network] deadline" in str(got)
        else:
            assert not got.ok
            assert got.reason == "too slow: deadline 1 s"
        assert hung_up  # the client hung up; the server did not give up first
        assert slow.requests == 1


def test_a_trickling_item_is_a_recorded_failure_and_the_others_are_stored(tmp_path):
    slow = Trickle(jpeg(1), {"Content-Type": "image/jpeg"})
    with LocalHTTPServer() as server:
        server.route("/slow.jpg", handler=slow)
        for i in (2, 3):
            server.route(f"/ok{i}.jpg", body=jpeg(i), headers={"Content-Type": "image/jpeg"})
        urls = [server.url(p) for p in ("/slow.jpg", "/ok2.jpg", "/ok3.jpg")]
        spec = url_list_spec(write_urls(tmp_path, urls), workers=2)
        net = replace(spec.network, timeout=5.0, deadline=1.0, max_retries=0)
        spec = replace(spec, network=net, limits=replace(spec.limits, min_width=16, min_height=16))
        config = replace(
            HttpConfig.from_spec(spec),
            allowed_private_hosts=frozenset({f"127.0.0.1:{server.port}"}),
        )
        assert config.deadline == 1.0  # the spec's deadline reaches the session
        with Collector(spec, tmp_path / "out", session=PoliteSession(config)) as col:
            col.search()
            col.gate()
            try:
                finished, counts = in_thread(col.download)
            finally:
                slow.stop.set()
            assert finished, "still downloading a trickling body"
            assert counts == {"stored": 2, "failed": 1}
            rows = {r["url"].rsplit("/", 1)[1]: r for r in col.catalog.items()}
    assert rows["slow.jpg"]["state"] == "failed"
    assert rows["slow.jpg"]["reason"] == "too slow: deadline 1 s"
    assert rows["ok2.jpg"]["state"] == rows["ok3.jpg"]["state"] == "stored"


# -- a slow robots.txt -----------------------------------------------------------------------


def test_a_slow_robots_txt_holds_up_only_its_host_and_only_until_the_deadline(tmp_path):
    robots = Trickle(b"User-agent: *\nAllow: /\n" * 200, {"Content-Type": "text/plain"})
    order: list[str] = []  # what the servers saw, in order
    lock = threading.Lock()

    def image(n: int):
        def handler(req) -> None:
            send(req, 200, jpeg(n), {"Content-Type": "image/jpeg"})
            with lock:
                order.append(f"b{n}")

        return handler

    def slow_robots(req) -> None:
        robots(req)
        with lock:
            order.append("a robots.txt over")

    with LocalHTTPServer() as a, LocalHTTPServer() as b:
        a.route("/robots.txt", handler=slow_robots)
        for n in range(4):
            a.route(f"/a{n}.jpg", body=jpeg(10 + n), headers={"Content-Type": "image/jpeg"})
            b.route(f"/b{n}.jpg", handler=image(n))
        urls = [a.url("/a0.jpg"), a.url("/a1.jpg")] + [b.url(f"/b{n}.jpg") for n in range(4)]
        spec = url_list_spec(write_urls(tmp_path, urls), workers=4)
        # 3 s: far longer than 4 small images from another local server take
        net = replace(spec.network, timeout=5.0, deadline=3.0, max_retries=0)
        spec = replace(spec, network=net, limits=replace(spec.limits, min_width=16, min_height=16))
        hosts = frozenset({f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"})
        config = replace(HttpConfig.from_spec(spec), allowed_private_hosts=hosts)
        with Collector(spec, tmp_path / "out", session=PoliteSession(config)) as col:
            col.search()
            col.gate()
            try:
                finished, counts = in_thread(col.download)
                hung_up = finished and robots.cut.wait(HANG)
            finally:
                robots.stop.set()
            assert finished, "still waiting for a trickling robots.txt"
            rows = {r["url"].rsplit("/", 1)[1]: r for r in col.catalog.items()}
    assert counts == {"stored": 4, "failed": 2}
    for n in range(2):  # its own host: refused for now, to be retried
        assert rows[f"a{n}.jpg"]["state"] == "failed"
        assert rows[f"a{n}.jpg"]["reason"] == "robots.txt unavailable: too slow"
        assert rows[f"a{n}.jpg"]["retryable"] == 1
    assert all(rows[f"b{n}.jpg"]["state"] == "stored" for n in range(4))
    assert robots.requests == 1 and hung_up  # asked once, cut at the deadline
    assert a.counts["/a0.jpg"] == a.counts["/a1.jpg"] == 0
    # The other host did not wait for it: all its images were served while it trickled.
    assert order.index("a robots.txt over") == 4, order


# -- Ctrl-C during a trickle, on a real `acnedata fetch` -------------------------------------


def _to_another_thread(pid: int, sig: int) -> None:
    """Send sig to one of pid's threads other than its main thread, one that does not block it:
    what the kernel may do with a Ctrl-C aimed at the whole process."""
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("tgkill's system call number here is x86-64's")
    for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
        tid = int(task.name)
        status = (task / "status").read_text()
        blocked = int(next(x for x in status.splitlines() if x.startswith("SigBlk")).split()[1], 16)
        if tid != pid and not blocked & (1 << (sig - 1)):
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.syscall(234, pid, tid, sig) == 0  # tgkill(2) on x86-64
            return
    raise AssertionError(f"no thread of {pid} but its main thread takes signal {sig}")


def _to_the_process(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)


@pytest.mark.parametrize(
    "interrupt",
    [_to_the_process, lambda proc: _to_another_thread(proc.pid, signal.SIGINT)],
    ids=["to-the-process", "to-a-download-thread"],
)
def test_ctrl_c_during_a_trickle_stops_fetch_within_2_s_and_the_same_command_resumes(
    tmp_path, interrupt
):
    images = {f"/img{n}.jpg": jpeg(20 + n) for n in range(4)}
    trickles = {p: Trickle(body, {"Content-Type": "image/jpeg"}) for p, body in images.items()}
    fast = threading.Event()  # the second run: every image at once

    def handler(req) -> None:
        path = req.path.split("?")[0]
        if fast.is_set():
            send(req, 200, images[path], {"Content-Type": "image/jpeg"})
        else:
            trickles[path](req)

    out = tmp_path / "out"
    with LocalHTTPServer() as server:
        for path in images:
            server.route(path, handler=handler)
        urls = write_urls(tmp_path, [server.url(p) for p in images])
        cmd = fetch_cmd(urls, out, processes=0)
        # faulthandler: a fetch still running at HANG is aborted, and prints where each of
        # its threads stood (in the failure message below)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
               "PYTHONFAULTHANDLER": "1"}  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        try:
            # every download is under way (start-up imports take a while on a busy machine)
            assert all(t.sending.wait(120) for t in trickles.values()), "no download started"
            signalled = time.monotonic()
            interrupt(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=HANG)
            took = time.monotonic() - signalled
            hung_up = proc.poll() is not None and all(t.cut.wait(HANG) for t in trickles.values())
        finally:
            for t in trickles.values():
                t.stop.set()
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)  # faulthandler dumps every thread's stack
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                proc.kill()
            stderr = proc.communicate()[1]
        print(f"SIGINT to exit: {took:.3f} s")
        assert took < 2.0, f"fetch took {took:.1f} s to stop after SIGINT; stderr: {stderr[-6000:]}"
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "run the same command again" in stderr
        assert "Traceback" not in stderr
        assert hung_up  # every download was cut, not waited out
        # Consistent: nothing half-stored, the interrupted items still queued (not failed).
        with contextlib.closing(sqlite3.connect(out / "catalog.sqlite")) as db:
            states = sorted(s for (s,) in db.execute("SELECT state FROM items"))
        assert states == ["queued"] * 4
        assert not list((out / "images").glob("*/.*.tmp"))
        # The same command resumes, and finishes.
        fast.set()
        again = subprocess.run(cmd, capture_output=True, env=env, text=True, timeout=300)
        assert again.returncode == 0, again.stderr
    with contextlib.closing(sqlite3.connect(out / "catalog.sqlite")) as db:
        states = sorted(s for (s,) in db.execute("SELECT state FROM items"))
    assert states == ["stored"] * 4


# -- DNS rebinding on the requests path ------------------------------------------------------

# A public address by the guard's rules that no host answers: 3fff::/20 is for documentation
# only (RFC 9637), routed nowhere. Where this Python already knows that, the guard would refuse
# it as non-public and there would be nothing to show.
PUBLIC = "3fff::1"


@pytest.fixture
def rebinding(monkeypatch):
    """`rebind.test` answers the public address once, then 127.0.0.1: an attacker's DNS with a
    zero TTL. Returns the list of look-ups of that name. The DNS answer is the attacker's part;
    what is under test is which answer the connection uses."""
    if not ipaddress.ip_address(PUBLIC).is_global:
        pytest.skip(f"this Python counts {PUBLIC} as non-public")
    lookups: list[int] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if str(host).rstrip(".").lower() != "rebind.test":
            return real(host, port, *args, **kwargs)
        lookups.append(int(port))
        if len(lookups) == 1:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (PUBLIC, int(port), 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups


@pytest.mark.parametrize("how", ["JSON with params", "user:pw@ URL", "redirect to it"])
def test_a_rebinding_name_never_reaches_the_local_server(rebinding, how):
    with LocalHTTPServer() as target, LocalHTTPServer() as start:
        target.route("/api", body=b'{"secret": 1}', headers={"Content-Type": "application/json"})
        rebound = f"http://rebind.test:{target.port}/api"
        start.route("/go", 302, headers={"Location": rebound})
        config = HttpConfig(
            contact=CONTACT,
            timeout=1.0,
            max_retries=0,
            # only the redirecting server is let through by name; rebind.test is not
            allowed_private_hosts=frozenset({f"127.0.0.1:{start.port}"}),
        )
        with PoliteSession(config) as session:
            if how == "JSON with params":
                with pytest.raises(NetworkError):
                    session.get_json(rebound, params={"q": "x"})
            elif how == "user:pw@ URL":
                got = session.fetch(rebound.replace("http://", "http://user:pw@"))
                assert not got.ok and got.reason.startswith(("connection error", "timeout"))
            else:
                with pytest.raises(NetworkError):
                    session.get_json(start.url("/go"))
                assert start.counts["/go"] == 1
        assert target.counts == {}  # no request of any kind reached 127.0.0.1
        assert rebinding == [target.port]  # one look-up: the one the guard vetted


def test_a_pinned_connection_keeps_the_host_name_and_refuses_another_host():
    """The requests path connects to the vetted address and still names the host it wants."""
    from acnedata import pinning
    from acnedata.deadline import Watchdog

    dog = Watchdog()
    with LocalHTTPServer() as server:
        port = server.port
        server.route("/x", body=b"ok")
        vetted = ((socket.AF_INET, ("127.0.0.1", server.port)),)
        url = f"http://pinned.test:{server.port}/x"  # a name no DNS answers
        for aimed_at, expected in (("pinned.test", "ok"), ("other.test", "not the vetted host")):
            with requests.Session() as s:
                s.mount("http://", pinning.PinnedAdapter(max_retries=0))
                target = pinning.Target(aimed_at, server.port, vetted, dog.watch(HANG))
                with pinning.aimed(target):
                    try:
                        got = s.get(url, timeout=5).text
                    except requests.ConnectionError as exc:
                        got = str(exc)
            assert expected in got
    dog.close()
    assert len(server.requests) == 1
    assert server.requests[0][2]["Host"] == f"pinned.test:{port}"
