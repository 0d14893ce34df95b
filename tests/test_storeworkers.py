"""Store processes: outcomes come back once per body, and a dying process loses nothing silently."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from queue import Empty, SimpleQueue

import pytest
from imagefactory import make_image, to_bytes

from acnedata import dedup, storeworkers
from acnedata.download import process_count, usable_cpus
from acnedata.intake import Body, IntakeSettings, Outcome, finish
from acnedata.spec import Limits
from acnedata.storeworkers import StorePool, _Budget


def settings(tmp_path, journal: bool = False) -> IntakeSettings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "download.journal" if journal else None
    return IntakeSettings(tmp_path, Limits(min_width=16, min_height=16), journal=path)


def jpeg(i: int, size=(96, 80)) -> bytes:
    image = make_image(i, size=(96, 80))
    return to_bytes(image if size == (96, 80) else image.resize(size), "JPEG", quality=90)


def collect(queue: SimpleQueue, n: int, timeout: float = 60.0) -> list[Outcome]:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n:
        try:
            got.append(queue.get(timeout=max(0.01, deadline - time.monotonic())))
        except Empty:
            pytest.fail(f"only {len(got)} of {n} outcomes arrived")
    return got


def test_processes_store_and_sign_like_the_thread_path(tmp_path):
    bodies = [Body(i, f"http://x/{i}.jpg", jpeg(i), "image/jpeg") for i in range(12)]
    bodies.append(Body(99, "http://x/bad.jpg", b"<html>no</html>", "image/jpeg"))
    expected = {
        b.item_id: finish(
            Body(b.item_id, b.url, b.data, b.content_type), settings(tmp_path / "a"), None
        )
        for b in bodies
    }
    queue: SimpleQueue[Outcome] = SimpleQueue()
    pool = StorePool(settings(tmp_path / "b", journal=True), 2, queue.put)
    try:
        for b in bodies:
            assert pool.submit(b)
        got = {o.item_id: o for o in collect(queue, len(bodies))}
    finally:
        pool.close()
    assert sorted(got) == sorted(expected)
    for item_id, want in expected.items():
        have = got[item_id]
        assert (have.ok, have.reason) == (want.ok, want.reason)
        if want.ok:
            assert have.record == want.record
            assert (tmp_path / "b" / have.record["file"]).read_bytes() == (
                tmp_path / "a" / want.record["file"]
            ).read_bytes()
            # The signature made in the process is the one made from the same pixels here.
            assert have.signature == want.signature and have.phash == want.phash
            assert dedup.Signature.from_text(have.signature) is not None
    assert not got[99].ok and got[99].reason == "not an image (HTML)"
    # every stored file was journalled before its rename, by whichever process stored it
    journalled = (tmp_path / "b" / "download.journal").read_text().splitlines()
    assert len(journalled) == sum(o.ok for o in got.values())


def test_a_killed_process_fails_what_it_held_and_another_takes_the_rest(tmp_path):
    queue: SimpleQueue[Outcome] = SimpleQueue()
    pool = StorePool(settings(tmp_path), 2, queue.put)
    try:
        first = [Body(i, f"u{i}", jpeg(i), "image/jpeg") for i in range(4)]
        for b in first:
            assert pool.submit(b)
        assert all(o.ok for o in collect(queue, 4))

        victim, survivor = pool.pids()
        # Large bodies: a process cannot finish them before the kill lands.
        big = [Body(100 + i, f"big{i}", jpeg(i, (2400, 2000)), "image/jpeg") for i in range(6)]
        for b in big:
            assert pool.submit(b)
        os.kill(victim, signal.SIGKILL)
        outcomes = collect(queue, len(big))
        assert sorted(o.item_id for o in outcomes) == [b.item_id for b in big]
        died = [o for o in outcomes if not o.ok]
        assert died, "the kill landed after every body was finished: the test proves nothing"
        for o in died:
            assert o.reason == "validation process died (exit code -9)"
            assert o.retryable

        # New bodies all go to the survivor; each comes back exactly once.
        later = [Body(200 + i, f"v{i}", jpeg(50 + i), "image/jpeg") for i in range(8)]
        for b in later:
            assert pool.submit(b)
        outcomes = collect(queue, len(later))
        assert sorted(o.item_id for o in outcomes) == [b.item_id for b in later]
        assert all(o.ok for o in outcomes)

        os.kill(survivor, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while pool.submit(Body(300, "w", jpeg(300), "image/jpeg")):
            collect(queue, 1)  # sent before the death was noticed: it comes back as failed
            assert time.monotonic() < deadline
        # With no process left, submit says so and the caller finishes the body itself.
    finally:
        pool.close()
    assert queue.empty()


def test_an_outcome_is_not_held_back_waiting_for_a_full_batch(tmp_path):
    # A process signs and sends outcomes in batches while more bodies are waiting; a slow
    # trickle of downloads must still get each outcome back at once, not when 16 have come.
    queue: SimpleQueue[Outcome] = SimpleQueue()
    pool = StorePool(settings(tmp_path), 1, queue.put)
    try:
        for i in range(3):
            assert pool.submit(Body(i, f"u{i}", jpeg(i), "image/jpeg"))
            (outcome,) = collect(queue, 1, timeout=20)
            assert outcome.item_id == i and outcome.ok and outcome.signature
    finally:
        pool.close()


def test_a_stream_of_bodies_is_signed_in_batches_with_the_same_results(tmp_path):
    # Enough bodies at once that the process holds outcomes back and signs several together:
    # every body still comes back exactly once, signed as finish() signs it alone.
    bodies = [Body(i, f"http://x/{i}.jpg", jpeg(i), "image/jpeg") for i in range(40)]
    expected = {
        b.item_id: finish(Body(*vars(b).values()), settings(tmp_path / "a"), None) for b in bodies
    }
    queue: SimpleQueue[Outcome] = SimpleQueue()
    pool = StorePool(settings(tmp_path / "b"), 1, queue.put)
    try:
        for b in bodies:
            assert pool.submit(b)
        got = collect(queue, len(bodies))
    finally:
        pool.close()
    assert sorted(o.item_id for o in got) == sorted(expected)
    for o in got:
        assert o.ok and o.signature == expected[o.item_id].signature


def test_default_process_count_is_one_per_usable_cpu_plus_one():
    cpus = usable_cpus()
    assert process_count(None, 10_000) == (cpus + 1 if cpus > 1 else 0)
    assert process_count(None, 10) == 0  # a small run: starting processes costs more
    assert process_count(0, 10_000) == 0 and process_count(3, 10) == 3  # as asked


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux CPU affinity")
def test_usable_cpus_follows_the_affinity_limit_not_the_machine():
    # A container or `taskset` may give a process one CPU of many: one store process per CPU
    # of the machine would then fight over it.
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
        "from acnedata.download import usable_cpus, process_count; "
        "print(usable_cpus(), process_count(None, 10_000))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "0"]


def test_the_budget_bounds_bytes_in_flight_but_lets_one_oversized_body_through():
    budget = _Budget(count=10, nbytes=100)
    budget.take(60)
    second = threading.Event()
    waiter = threading.Thread(target=lambda: (budget.take(50), second.set()))
    waiter.start()
    assert not second.wait(0.3), "60 + 50 bytes went in flight under a 100-byte budget"
    budget.give_back(60)
    assert second.wait(10)
    waiter.join()
    budget.give_back(50)
    alone = threading.Thread(target=budget.take, args=(500,), daemon=True)
    alone.start()  # alone and over the budget: it must not wait forever
    alone.join(10)
    assert not alone.is_alive(), "a body bigger than the whole budget waits forever"


def test_large_bodies_are_held_back_by_bytes_not_only_by_count(tmp_path, monkeypatch):
    # Photos of many megabytes: 32 of them per process would hold gigabytes in flight.
    monkeypatch.setattr(storeworkers, "BYTES_PER_PROCESS", 1)  # every body is "large"
    queue: SimpleQueue[Outcome] = SimpleQueue()
    pool = StorePool(settings(tmp_path), 1, queue.put)
    most = 0
    try:
        for i in range(5):
            assert pool.submit(Body(i, f"big{i}", jpeg(i, (2400, 2000)), "image/jpeg"))
            most = max(most, len(pool._children[0].outstanding))
        assert all(o.ok for o in collect(queue, 5))
    finally:
        pool.close()
    assert most == 1
