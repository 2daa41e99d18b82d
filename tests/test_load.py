"""Load, soak and shutdown: bounded, loopback only."""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import requests

from benchmarks.soak import flat, soak

from .procs import Exporter, Simulator, sim_config


def test_50_concurrent_scrapers(tmp_path: Path) -> None:
    sim = Simulator("--jobs", "3", "--objects", "1500", "--latency-ms", "5")
    exp = Exporter(sim_config(sim, sim.info["jobs"], cache_ttl=1), tmp_path)
    failures: list[str] = []
    barrier = threading.Barrier(50)

    def scraper() -> None:
        session = requests.Session()
        barrier.wait(timeout=30)
        for _ in range(20):
            try:
                answer = session.get(exp.url + "/metrics", timeout=30)
                if answer.status_code != 200 or "huaweicloud_drs_up" not in answer.text:
                    failures.append(f"status {answer.status_code}")
            except requests.RequestException as exc:
                failures.append(str(exc))

    try:
        requests.post(f"{sim.url}/_sim/stats/reset", timeout=5)
        started = time.monotonic()
        threads = [threading.Thread(target=scraper) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        elapsed = time.monotonic() - started
        calls = sim.stats()["progress_data"]
    finally:
        exp.stop()
        sim.stop()
    assert failures == []
    allowed = math.floor(elapsed / 1) + 1  # refreshes per key: elapsed / TTL + 1
    for key, count in calls.items():
        refreshes = count / 2  # 1500 objects: two pages a refresh
        assert refreshes <= allowed, f"{key}: {refreshes} refreshes in {elapsed:.1f}s"


def test_short_soak_is_flat(tmp_path: Path) -> None:
    """A shorter run of `make soak` (which does 10,000 cycles and records docs/reliability.md)."""
    result = soak(2000, tmp_path)
    assert result.up_zero > 0, "faults were injected"
    assert flat(result) == []


def test_sigterm_during_a_refresh(tmp_path: Path) -> None:
    sim = Simulator("--jobs", "1", "--objects", "10", "--latency-ms", "3000")
    exp = Exporter(sim_config(sim, sim.info["jobs"]), tmp_path)
    outcome: list[str] = []

    def scrape() -> None:
        try:
            requests.get(exp.url + "/metrics", timeout=30)
            outcome.append("answered")
        except requests.RequestException:
            outcome.append("cut off by the shutdown")

    try:
        thread = threading.Thread(target=scrape, daemon=True)
        thread.start()
        time.sleep(0.5)  # the refresh is waiting on the slow API now
        started = time.monotonic()
        exp.proc.send_signal(signal.SIGTERM)
        assert exp.proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert "shutting down" in exp.log() and "Traceback" not in exp.log()
        thread.join(timeout=10)
        assert outcome, "the scrape in flight got an answer or a closed connection, not a hang"
    finally:
        exp.stop()
        sim.stop()
