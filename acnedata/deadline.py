"""Deadlines for requests in flight: one thread cuts their sockets at the deadline or on cancel."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time

DEADLINE = "deadline"  # why a Watch was cut: its request ran past the total deadline
CANCELLED = "cancelled"  # ... or the whole session was cancelled (Ctrl-C)


def cut(sock: socket.socket) -> None:
    """Wake any thread blocked on `sock` (recv returns EOF, send fails), from any thread.

    shutdown() rather than close(): closing a descriptor another thread is blocked on does not
    wake it on Linux, and its number could be reused at once. socket.socket's own shutdown is
    called even on an SSLSocket, whose override would drop its TLS state under the reader.
    """
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watch:
    """One request's sockets, and whether (and why) it was cut off."""

    __slots__ = ("_lock", "_sockets", "due", "why")

    def __init__(self, due: float):
        self.due = due
        self.why: str | None = None  # DEADLINE or CANCELLED once cut
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def add(self, sock: socket.socket) -> None:
        """Watch `sock` too (before connecting it: a cut aborts a connect in progress).

        Raises ConnectionAbortedError when the request was already cut off, so a caller about
        to connect or send does not go on.
        """
        with self._lock:
            if self.why is None:
                self._sockets.append(sock)
                return
        cut(sock)
        raise ConnectionAbortedError(f"request cut off ({self.why})")

    def fire(self, why: str) -> None:
        with self._lock:
            if self.why is not None:
                return
            self.why = why
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            cut(sock)


class Watchdog:
    """Hands out a Watch per request and cuts each one that is still open at its due time.

    One daemon thread for all requests, sleeping until the earliest due time: a request costs
    a heap push, not a timer thread. `cancel_all` cuts every open request now and every later
    one as it starts, so no worker waits out a slow body after Ctrl-C.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Watch]] = []
        self._open: set[Watch] = set()
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._cancelled = False
        self._generation = 0  # close() ends the thread of the current generation

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def watch(self, seconds: float) -> Watch:
        """A Watch due `seconds` from now (already cut when the watchdog was cancelled)."""
        w = Watch(time.monotonic() + seconds)
        with self._cond:
            if self._cancelled:
                w.fire(CANCELLED)
                return w
            self._open.add(w)
            heapq.heappush(self._heap, (w.due, next(self._order), w))
            if len(self._heap) > 2 * len(self._open) + 64:
                # finished requests leave entries behind until their due time: drop them
                self._heap = [e for e in self._heap if e[2] in self._open]
                heapq.heapify(self._heap)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run,
                    args=(self._generation,),
                    name="acnedata-deadlines",
                    daemon=True,
                )
                self._thread.start()
            elif self._heap[0][2] is w:
                self._cond.notify()
        return w

    def done(self, w: Watch) -> None:
        """The request is over: nothing more to cut."""
        with self._cond:
            self._open.discard(w)

    def cancel_all(self) -> None:
        """Cut every open request, and every one started from now on."""
        with self._cond:
            self._cancelled = True
            cutting, self._open = list(self._open), set()
            self._heap = []
            self._cond.notify()
        for w in cutting:
            w.fire(CANCELLED)

    def close(self) -> None:
        """Stop the thread (a later watch() starts a new one)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=1.0)

    def _run(self, generation: int) -> None:
        with self._cond:
            while generation == self._generation:
                now = time.monotonic()
                due: list[Watch] = []
                while self._heap and self._heap[0][0] <= now:
                    w = heapq.heappop(self._heap)[2]
                    if w in self._open:
                        self._open.discard(w)
                        due.append(w)
                if due:
                    self._cond.release()
                    try:  # cut outside the lock: shutdown() is a system call per socket
                        for w in due:
                            w.fire(DEADLINE)
                    finally:
                        self._cond.acquire()
                    continue
                self._cond.wait(self._heap[0][0] - now if self._heap else None)
