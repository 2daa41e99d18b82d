"""The fair pool that fetches pages: keys take turns, so a small key is not queued behind a big one."""

from __future__ import annotations

import threading

from exporter.base.fairpool import FairPool


def test_fair_pool_takes_turns_between_keys() -> None:
    pool = FairPool(1, "test")
    order: list[str] = []
    gate = threading.Event()
    try:
        first = pool.submit("big", gate.wait, 5)  # holds the one thread while the rest is queued
        futures = [pool.submit("big", order.append, f"big{i}") for i in range(5)]
        futures.append(pool.submit("small", order.append, "small0"))
        gate.set()
        first.result(timeout=5)
        for f in futures:
            f.result(timeout=5)
        assert order.index("small0") <= 1, order
    finally:
        pool.shutdown()
