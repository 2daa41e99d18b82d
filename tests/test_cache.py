"""The snapshot cache on its own: single refreshes, failures cached, forgetting keys that are gone."""

from __future__ import annotations

import threading
import time

from exporter.base.deadline import Deadline
from exporter.drs.errors import DRSAPIError
from exporter.drs.progress import CompactRows, ProgressData, ProgressRow
from exporter.sources.cache import SnapshotCache


def fetch_counting(calls: list[tuple[str, str]]) -> object:
    lock = threading.Lock()

    def fetch(job_id: str, object_type: str, deadline: float) -> ProgressData:
        with lock:
            calls.append((job_id, object_type))
        if job_id == "broken":
            raise DRSAPIError("DRS.M05003", "Task information not found.")
        return ProgressData(1, None, CompactRows([ProgressRow("d", "t", "d", "t", 50.0)]))

    return fetch


def test_failures_are_cached_and_gone_keys_are_forgotten() -> None:
    calls: list[tuple[str, str]] = []
    cache = SnapshotCache(fetch_counting(calls), ttl=60, max_concurrency=2, refresh_timeout=5)  # type: ignore[arg-type]
    try:
        keys = [("a", "table"), ("broken", "table")]
        first = cache.get_many(keys, time.monotonic() + 5)
        assert [s.up for s in first] == [True, False]
        assert first[1].error_code == "DRS.M05003"
        cache.get_many(keys, time.monotonic() + 5)
        assert sorted(calls) == sorted(keys), "one refresh each, the failure cached too"
        assert len(calls) == 2
        cache.retain([("broken", "table")])
        assert ("a", "table") not in cache._last_data and ("a", "table") not in cache._last_success
        assert ("broken", "table") not in cache._last_data, "it never had data"
        again = cache.get_many([("a", "table")], time.monotonic() + 5)
        assert again[0].up and len(calls) == 3, "a forgotten key is refreshed anew"
    finally:
        cache.close()


def test_retain_wins_over_a_late_refresh() -> None:
    release = threading.Event()

    def fetch(job_id: str, object_type: str, deadline: Deadline) -> ProgressData:
        release.wait(5)
        return ProgressData(1, None, CompactRows())

    cache = SnapshotCache(fetch, ttl=60, max_concurrency=2, refresh_timeout=5)
    try:
        key = ("gone", "table")
        assert cache.get_many([key], Deadline.after(0.05))[0].error_code == "scrape_timeout"
        cache.retain([])  # the job went away while its refresh runs
        release.set()
        for _ in range(100):  # bounded: the refresh ends within a few milliseconds
            if not cache._inflight:
                break
            time.sleep(0.02)
        assert not cache._inflight
        assert key not in cache._last_data and key not in cache._last_success and key not in cache._latest
        assert cache._cache is not None and key not in cache._cache
    finally:
        cache.close()
