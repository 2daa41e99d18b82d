"""Issue 22: one project whose endpoint accepts and never answers does not starve the others.

Project A points at a socket that accepts connections and never answers; project B at a healthy
simulator. Both run as real processes; A has more jobs than ``max_concurrency`` (its refreshes
would take every refresh thread and transport slot first come, first served).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from exporter.base.deadline import Deadline
from exporter.base.fairpool import FairPool, FairSlots, share
from exporter.drs.progress import CompactRows, ProgressData, ProgressRow
from exporter.sources.cache import SnapshotCache

from .procs import Exporter, Simulator, samples

BUDGET = {"X-Prometheus-Scrape-Timeout-Seconds": "5"}


class Silent:
    """A TCP server on loopback that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    server = Silent()
    yield server
    server.close()


def test_a_healthy_project_is_up_beside_one_that_never_answers(tmp_path: Path, silent: Silent) -> None:
    sim = Simulator("--jobs", "3", "--objects", "40")
    try:
        hanging = {
            "endpoint": silent.url,
            "project_id": "0" * 32,
            "auth": {"access_key": "HANGINGACCESSKEY0001", "secret_key": "hanging-secret-key-0123456789"},
            "jobs": [f"hang-{i}" for i in range(12)],  # more than max_concurrency: 8
        }
        healthy = {
            "endpoint": sim.url,
            "project_id": sim.info["project_id"],
            "auth": {"access_key": sim.info["access_key"], "secret_key": sim.info["secret_key"]},
            "jobs": sim.info["jobs"],
        }
        config = {"projects": [hanging, healthy], "request_timeout": 20, "refresh_timeout": 40, "retries": 0}
        exp = Exporter(config, tmp_path)
        try:
            for scrape in range(3):
                started = time.monotonic()
                text = exp.metrics(headers=BUDGET)
                assert time.monotonic() - started < 7, "answered within the scrape's budget"
                up = {dict(k)["job_id"]: v for k, v in samples(text, "huaweicloud_drs_up").items()}
                assert {j: up.get(j) for j in sim.info["jobs"]} == dict.fromkeys(sim.info["jobs"], 1.0), scrape
                assert [v for j, v in up.items() if j.startswith("hang-")] == [0.0] * 12
            assert silent.held, "project A's endpoint was asked (and never answered)"
        finally:
            exp.stop()
    finally:
        sim.stop()


def test_share_leaves_a_reserve_for_every_other_project() -> None:
    assert share(8, 1) == 8
    assert share(8, 2) == 6, "2 kept for the other"
    assert share(8, 3) == 6
    assert share(8, 4) == 5
    assert share(8, 5) == 8, "below two slots a project, nothing is reserved"
    assert share(2, 2) == 2


def test_fair_slots_keep_a_slot_for_another_group() -> None:
    slots = FairSlots(3, limit=2)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1)
    assert not slots.acquire("a", 0.1), "a is at its limit though a slot is free"
    assert slots.acquire("b", 0.1), "the free slot is b's"
    assert not slots.acquire("b", 0.1)
    slots.release("a")
    assert slots.acquire("b", 0.1)
    assert slots.held("a") == 1 and slots.held("b") == 2


def test_fair_slots_give_a_freed_slot_to_the_group_holding_fewest() -> None:
    slots = FairSlots(2)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1)
    got: list[str] = []

    def take(group: str) -> None:
        if slots.acquire(group, 5):
            got.append(group)

    waiters = [threading.Thread(target=take, args=(g,)) for g in ("a", "b")]
    for w in waiters:  # a asks first
        w.start()
        time.sleep(0.1)
    slots.release("a")
    waiters[1].join(timeout=5)
    assert got == ["b"], "b holds none, a holds one"
    slots.release("a")
    waiters[0].join(timeout=5)
    assert got == ["b", "a"]


def test_fair_pool_runs_at_most_limit_calls_of_a_key() -> None:
    pool = FairPool(3, "test", limit=2)
    gate = threading.Event()
    try:
        held = [pool.submit("a", gate.wait, 5) for _ in range(4)]
        other = pool.submit("b", lambda: "b ran")
        assert other.result(timeout=5) == "b ran", "a third thread is left for b"
        gate.set()
        assert all(f.result(timeout=5) for f in held)
    finally:
        gate.set()
        pool.shutdown()


def test_a_refresh_queued_for_a_dropped_key_calls_no_api() -> None:
    fetched: list[str] = []
    gate = threading.Event()

    def fetch(job_id: str, object_type: str, deadline: Deadline) -> ProgressData:
        fetched.append(job_id)
        gate.wait(5)
        return ProgressData(1, None, CompactRows([ProgressRow("d", "t", "d", "t", 50.0)]))

    cache = SnapshotCache(fetch, ttl=60, max_concurrency=1, refresh_timeout=5)
    try:
        done: Future[Any] = Future()
        scrape = threading.Thread(
            target=lambda: done.set_result(cache.get_many([("kept", "table"), ("gone", "table")], Deadline.after(5)))
        )
        scrape.start()
        deadline = time.monotonic() + 5
        while fetched != ["kept"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fetched == ["kept"], "the one thread refreshes the first key; the second waits in the queue"
        cache.retain([("kept", "table")])  # the job of the second key is gone
        gate.set()
        scrape.join(timeout=10)
        assert done.result(timeout=1)[0].up
        # Queued after the dropped key's refresh, on the one thread: by its end that one has had its turn.
        assert cache.get_many([("later", "table")], Deadline.after(5))[0].up
        assert fetched == ["kept", "later"], "no API call for the dropped key"
    finally:
        gate.set()
        cache.close()
