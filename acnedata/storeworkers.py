"""Store processes: validate, store and sign downloaded bodies on every core, beside the fetchers.

Downloads run in threads of the main process, where the one PoliteSession keeps every host's
pacing, robots.txt and Retry-After pauses in one place. Decoding a downloaded image in full costs
several times the CPU of fetching it, and in threads of the same process it would compete for
the GIL with the fetchers: measured on the project's 2-core machine, a single process topped out
near 500 images/s. So bodies go over a pipe to one child process per core, each of which decodes,
validates, journals, stores and signs, and sends back the outcome for the main thread to commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from acnedata.intake import Body, IntakeSettings, Journal, Outcome, sign, store_body

if TYPE_CHECKING:
    from PIL import Image

QUEUE_PER_PROCESS = 32  # bodies sent but not finished, per process: twice a signing batch
# ... and their bytes: large photos need fewer in flight to keep a process busy, and 32 bodies of
# up to 25 MB (the default byte cap) per process would hold gigabytes.
BYTES_PER_PROCESS = 64 * 2**20
SIGN_BATCH = 16  # outcomes a process signs and sends back together, while more keep coming
# The products a store process computes are tiny; BLAS threads would only spin beside the
# other processes, which already keep every core busy.
_CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _child_main(tasks: Connection, results: Connection) -> None:
    """The store process: finish every body it is sent, until the pipe is closed.

    One thread does it all. Outcomes are held back, and signed and sent together, while more
    bodies are already waiting in the pipe (up to SIGN_BATCH): signing in batches costs a
    fraction per image, and every message wakes a thread in the parent. When the pipe is
    empty, whatever is held goes out at once, so a slow trickle of downloads is not delayed.
    """
    # Ctrl-C reaches the whole process group; the parent decides what to keep, so a child
    # finishes what it was sent and stops when the parent closes the pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        settings: IntakeSettings = tasks.recv()
    except (EOFError, OSError):
        return
    journal = Journal(settings.journal) if settings.journal else None
    held: list[Outcome] = []
    to_sign: list[tuple[Outcome, Image.Image]] = []
    orphaned = False

    def send_held() -> None:
        nonlocal orphaned
        sign(to_sign)
        to_sign.clear()
        if held and not orphaned:
            try:
                results.send([dataclasses.astuple(o) for o in held])
            except OSError:
                # The parent was killed. Bodies still in the pipe were downloaded already:
                # store them anyway, for the journal lets the next run adopt them.
                orphaned = True
        held.clear()

    try:
        while True:
            try:
                task = tasks.recv()
            except (EOFError, OSError):
                return  # the parent is gone: nothing more will come
            if task is None:
                return
            body = Body(*task)
            try:
                outcome, gray = store_body(body, settings, journal)
            except Exception as exc:  # never leave the parent waiting for this item
                reason = f"internal error: {type(exc).__name__}: {exc}"
                outcome, gray = Outcome(body.item_id, False, reason, attempts=body.attempts), None
            held.append(outcome)
            if gray is not None:
                to_sign.append((outcome, gray))
            if len(held) >= SIGN_BATCH or not tasks.poll():
                send_held()
    finally:
        send_held()
        if journal is not None:
            journal.close()


@dataclass
class _Child:
    process: Any
    tasks: Connection
    results: Connection
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards outstanding, alive
    # Sending has its own lock: a send blocks while the pipe is full, and the reader thread
    # must still be able to take results off the other pipe meanwhile.
    send_lock: threading.Lock = field(default_factory=threading.Lock)
    outstanding: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> attempts, size
    alive: bool = True
    reader: threading.Thread | None = None


class _Budget:
    """Room for bodies in flight, bounded in number and in bytes (a body that alone exceeds
    the bytes still goes when nothing else is in flight)."""

    def __init__(self, count: int, nbytes: int):
        self._max_count, self._max_bytes = count, nbytes
        self._count = self._bytes = 0
        self._changed = threading.Condition()

    def take(self, size: int) -> None:
        with self._changed:
            while self._count >= self._max_count or (
                self._count and self._bytes + size > self._max_bytes
            ):
                self._changed.wait()
            self._count += 1
            self._bytes += size

    def give_back(self, size: int, count: int = 1) -> None:
        with self._changed:
            self._count -= count
            self._bytes -= size
            self._changed.notify_all()


def _start(inherit_fds: tuple[int, ...]) -> tuple[subprocess.Popen[bytes], Connection, Connection]:
    """A store process on two fresh pipes: (process, its task pipe, its result pipe).

    A plain `python -m acnedata.storeworkers` rather than multiprocessing: forking a process
    that runs threads is unsafe, and multiprocessing's spawn re-runs the caller's main script,
    which breaks library users whose script has no `if __name__ == "__main__"` guard.
    """
    task_r, task_w = os.pipe()
    result_r, result_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "acnedata.storeworkers", str(task_r), str(result_w)],
            pass_fds=(task_r, result_w, *inherit_fds),
            stdin=subprocess.DEVNULL,
            close_fds=True,
            env={**os.environ, **_CHILD_ENV},
        )
    finally:
        os.close(task_r)  # the child's ends: closing ours lets EOF reach each side
        os.close(result_w)
    return proc, Connection(task_w, readable=False), Connection(result_r, writable=False)


class StorePool:
    """N store processes fed over pipes; every outcome goes to `deliver`, from reader threads.

    submit() blocks while QUEUE_PER_PROCESS bodies or BYTES_PER_PROCESS bytes per process are
    waiting (back-pressure on the downloads) and returns False when no process is alive, for
    the caller to finish the body itself. A process that dies (a crash in a decoder, say)
    fails the items it held with a retryable reason; the others carry on.
    """

    def __init__(
        self,
        settings: IntakeSettings,
        processes: int,
        deliver: Callable[[Outcome], None],
        *,
        inherit_fds: tuple[int, ...] = (),
    ):
        self._deliver = deliver
        self._room = _Budget(processes * QUEUE_PER_PROCESS, processes * BYTES_PER_PROCESS)
        self._pick = threading.Lock()
        self._children: list[_Child] = []
        for n in range(processes):
            proc, tasks, results = _start(inherit_fds)
            child = _Child(proc, tasks, results)
            with contextlib.suppress(OSError, ValueError):
                tasks.send(settings)  # a process that failed to start shows up in its reader
            child.reader = threading.Thread(
                target=self._read, args=(child,), name=f"store-reader-{n}", daemon=True
            )
            child.reader.start()
            self._children.append(child)

    def pids(self) -> list[int]:
        """Process ids of the store processes, live or not (for diagnostics and tests)."""
        return [child.process.pid for child in self._children]

    def submit(self, body: Body) -> bool:
        """Send a body to the least busy live process; False if none is alive."""
        size = len(body.data)
        self._room.take(size)
        while True:
            with self._pick:
                live = [c for c in self._children if c.alive]
                if not live:
                    self._room.give_back(size)
                    return False
                child = min(live, key=lambda c: len(c.outstanding))
                with child.lock:
                    child.outstanding[body.item_id] = (body.attempts, size)
            task = (body.item_id, body.url, body.data, body.content_type, body.attempts)
            try:
                with child.send_lock:
                    child.tasks.send(task)
                return True
            except (OSError, ValueError):  # it died under us: its reader fails the others
                with child.lock:
                    mine = child.outstanding.pop(body.item_id, None) is not None
                    child.alive = False
                if not mine:
                    return True  # its reader has already reported this item as failed

    def _read(self, child: _Child) -> None:
        while True:
            try:
                msg = child.results.recv()
            except (EOFError, OSError):
                break
            outcomes = [Outcome(*fields) for fields in msg]
            with child.lock:
                sizes = [child.outstanding.pop(o.item_id, (0, 0))[1] for o in outcomes]
            if outcomes:
                self._room.give_back(sum(sizes), len(outcomes))
            for outcome in outcomes:
                self._deliver(outcome)
        # The pipe closed: a clean stop leaves nothing outstanding; a crash fails what it held.
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=5)
        with child.lock:
            child.alive = False
            lost, child.outstanding = child.outstanding, {}
        code = child.process.returncode
        for item_id, (attempts, size) in lost.items():
            self._room.give_back(size)
            self._deliver(
                Outcome(
                    item_id,
                    False,
                    f"validation process died (exit code {code})",
                    retryable=True,
                    attempts=attempts,
                )
            )

    def close(self) -> None:
        """Let each process finish what it holds, then stop it; outcomes are all delivered."""
        for child in self._children:
            with child.send_lock, contextlib.suppress(OSError, ValueError):
                child.tasks.send(None)
        for child in self._children:
            if child.reader is not None:
                child.reader.join()
            child.tasks.close()
            child.results.close()
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


if __name__ == "__main__":
    _child_main(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
