"""A worker's leased per-host slots against a broker, without Ray (the broker called directly)."""

from __future__ import annotations

import time

from acnedata.distributed.leases import LeasedPacer
from acnedata.distributed.politeness import Broker
from acnedata.http import HttpConfig


def test_a_slow_request_does_not_keep_the_hosts_spare_slots_from_other_workers():
    broker = Broker(HttpConfig(per_host_concurrency=2))

    def call(method: str, *args):
        return getattr(broker, method)(*args)

    worker = LeasedPacer(call, "a", sleep=lambda seconds: None, clock=time.monotonic)
    worker._stop.set()  # no heartbeat of its own: the test beats once, by hand
    worker._keeper.join()
    with worker.paced("host"):
        with worker.paced("host"):
            pass  # one request ended, the other (slow) is still in flight
        assert broker.lease("b", "host", 1, 0, {}).slots == 0  # a holds both
        broker.renew("a", ["host"], worker._idle())  # a's heartbeat
        assert broker.lease("b", "host", 1, 0, {}).slots == 1  # its spare slot went back
    worker.close()
