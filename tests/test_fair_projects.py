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
import yaml

from exporter.base.deadline import Deadline
from exporter.base.fairpool import FairPool, FairSlots, reserve, share
from exporter.drs.progress import CompactRows, ProgressData, ProgressRow
from exporter.sources.cache import SnapshotCache

from .procs import Exporter, Simulator, samples, wait_for

BUDGET = {"X-Prometheus-Scrape-Timeout-Seconds": "5"}
# Every scrape waits for the hanging project's keys until its deadline: a shorter one keeps the
# tests that repeat the scenario quick.
SHORT_BUDGET = {"X-Prometheus-Scrape-Timeout-Seconds": "3"}


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


def hanging_project(silent: Silent) -> dict[str, Any]:
    return {
        "endpoint": silent.url,
        "project_id": "0" * 32,
        "auth": {"access_key": "HANGINGACCESSKEY0001", "secret_key": "hanging-secret-key-0123456789"},
        "jobs": [f"hang-{i}" for i in range(12)],  # more than max_concurrency
    }


def healthy_project(sim: Simulator) -> dict[str, Any]:
    return {
        "endpoint": sim.url,
        "project_id": sim.info["project_id"],
        "auth": {"access_key": sim.info["access_key"], "secret_key": sim.info["secret_key"]},
        "jobs": sim.info["jobs"],
    }


# 1 is below one per project: each still gets one request at once; 2 and 3 are below two per
# project (one reserved each); 8 is the default.
@pytest.mark.parametrize("max_concurrency", [1, 2, 3, 8])
def test_a_healthy_project_is_up_beside_one_that_never_answers(
    tmp_path: Path, silent: Silent, max_concurrency: int
) -> None:
    sim = Simulator("--jobs", "3", "--objects", "40")
    try:
        config = {
            "projects": [hanging_project(silent), healthy_project(sim)],
            "request_timeout": 20,
            "refresh_timeout": 40,
            "retries": 0,
            "max_concurrency": max_concurrency,
        }
        exp = Exporter(config, tmp_path)
        try:
            for scrape in range(3):
                started = time.monotonic()
                text = exp.metrics(headers=BUDGET if max_concurrency == 8 else SHORT_BUDGET)
                assert time.monotonic() - started < 7, "answered within the scrape's budget"
                up = {dict(k)["job_id"]: v for k, v in samples(text, "huaweicloud_drs_up").items()}
                assert {j: up.get(j) for j in sim.info["jobs"]} == dict.fromkeys(sim.info["jobs"], 1.0), scrape
                assert [v for j, v in up.items() if j.startswith("hang-")] == [0.0] * 12
            assert silent.held, "project A's endpoint was asked (and never answered)"
        finally:
            exp.stop()
    finally:
        sim.stop()


def test_four_healthy_projects_beside_a_hanging_one_at_the_default_concurrency(tmp_path: Path, silent: Silent) -> None:
    # 8 slots for 5 projects: one reserved each. A cache TTL of 3 s: later scrapes refresh again.
    sims = []
    try:
        for i in range(1, 5):
            scenario = tmp_path / f"sc{i}.yaml"
            jobs = [{"id": f"p{i}-job{k}", "objects": {"table": 20}} for k in range(2)]
            scenario.write_text(yaml.safe_dump({"jobs": jobs}))
            sims.append(Simulator("--scenario", str(scenario), "--project-id", f"{i}" * 32))
        config = {
            "projects": [hanging_project(silent), *map(healthy_project, sims)],
            "request_timeout": 20,
            "refresh_timeout": 40,
            "retries": 0,
            "cache_ttl": 3,
        }
        exp = Exporter(config, tmp_path)
        try:
            seen = []
            for _ in range(6):
                up = samples(exp.metrics(headers=SHORT_BUDGET), "huaweicloud_drs_up")
                seen.append([v for k, v in up.items() if not dict(k)["job_id"].startswith("hang-")])
                time.sleep(1)  # pacing, so that scrapes find expired keys too (not an assertion)
            assert all(healthy == [1.0] * 8 for healthy in seen), seen
        finally:
            exp.stop()
    finally:
        for sim in sims:
            sim.stop()


def test_share_leaves_a_reserve_for_every_other_project() -> None:
    assert (share(8, 1), reserve(8, 1)) == (8, 0)
    assert (share(8, 2), reserve(8, 2)) == (6, 2), "2 kept for the other"
    assert share(8, 3) == 6
    assert share(8, 4) == 5
    assert (share(8, 5), reserve(8, 5)) == (4, 1), "one a project at least"
    assert (share(2, 2), reserve(2, 2)) == (1, 1)
    assert (share(1, 2), reserve(1, 2)) == (1, 1), "fewer slots than projects: one each still"


def test_fair_slots_lend_a_reserve_and_take_it_back_at_once() -> None:
    slots = FairSlots(3, limit=2, reserve=1)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1)
    assert slots.acquire("a", 0.1), "b's reserve is lent to a while b does not ask"
    assert not slots.acquire("a", 0.1), "none free"
    assert slots.acquire("b", 0.1), "b gets its reserve at once, though a holds every slot"
    assert not slots.acquire("b", 0.1), "beyond its reserve, b waits for a free slot"
    slots.release("a")
    assert not slots.acquire("b", 0.1), "the loan is being taken back: 3 held of 3"
    slots.release("a")
    assert slots.acquire("b", 0.1), "2 of 3 held: a free slot"
    assert not slots.acquire("a", 0.1)
    assert slots.held("a") == 1 and slots.held("b") == 2


def ask_in_turn(slots: FairSlots, *groups: str) -> tuple[list[threading.Thread], list[str]]:
    """A thread per group asking ``slots`` for one, in that order; the groups that got one, in order."""
    got: list[str] = []

    def take(group: str) -> None:
        if slots.acquire(group, 5):
            got.append(group)

    waiters = [threading.Thread(target=take, args=(g,)) for g in groups]
    for asked, waiter in enumerate(waiters, 1):
        waiter.start()
        wait_for(lambda asked=asked: len(slots._waiters) + len(got) == asked, timeout=5, interval=0.01)
    return waiters, got


def test_fair_slots_lend_only_while_no_group_below_its_limit_waits() -> None:
    slots = FairSlots(3, limit=2)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1) and slots.acquire("b", 0.1)
    waiters, got = ask_in_turn(slots, "a", "b")
    slots.release("b")
    waiters[1].join(timeout=5)
    assert got == ["b"], "a is at its limit, b below it"
    slots.release("b")
    waiters[0].join(timeout=5)
    assert got == ["b", "a"], "no one below its limit waits: a loan"


def test_fair_slots_give_a_freed_slot_to_the_group_holding_fewest() -> None:
    slots = FairSlots(2)
    assert slots.acquire("a", 0.1) and slots.acquire("a", 0.1)
    waiters, got = ask_in_turn(slots, "a", "b")
    slots.release("a")
    waiters[1].join(timeout=5)
    assert got == ["b"], "b holds none, a holds one"
    slots.release("a")
    waiters[0].join(timeout=5)
    assert got == ["b", "a"]


def test_fair_pool_lends_threads_and_gives_a_key_its_reserve_at_once() -> None:
    pool = FairPool(3, "test", limit=2, reserve=1)
    gate = threading.Event()
    started: list[str] = []

    def hold(key: str) -> str:
        started.append(key)
        gate.wait(5)
        return key

    try:
        held = [pool.submit("a", hold, "a") for _ in range(4)]
        wait_for(lambda: len(started) == 3, timeout=5, interval=0.01)  # a borrows b's thread while b asks none
        other = pool.submit("b", lambda: "b ran")
        assert other.result(timeout=5) == "b ran", "b's reserve is taken back at once, in a fourth thread"
        assert started == ["a"] * 3, "a's fourth call waits: 3 of 3 run"
        gate.set()
        assert [f.result(timeout=5) for f in held] == ["a"] * 4
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
