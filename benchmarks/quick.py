"""A quick before/after check: cold and warm scrape of JOBS × OBJECTS against the simulator.

    python -m benchmarks.quick 100 1000

Uses only what every commit since the exporter core has (tests/procs.py), so the same command
measures an older checkout too.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.procs import Exporter, Simulator, sim_config


def main() -> int:
    jobs, objects = int(sys.argv[1]), int(sys.argv[2])
    sim = Simulator("--jobs", str(jobs), "--objects", str(objects), "--types", "table")
    with tempfile.TemporaryDirectory() as tmp:
        config = sim_config(sim, sim.info["jobs"], cache_ttl=600)
        exp = Exporter(config, Path(tmp))
        headers = {"Accept-Encoding": "identity", "X-Prometheus-Scrape-Timeout-Seconds": "120"}
        try:
            started = time.perf_counter()
            size = len(requests.get(exp.url + "/metrics", headers=headers, timeout=120).content)
            cold = time.perf_counter() - started
            warm = []
            for _ in range(10):
                started = time.perf_counter()
                requests.get(exp.url + "/metrics", headers=headers, timeout=120).raise_for_status()
                warm.append(time.perf_counter() - started)
        finally:
            exp.stop()
            sim.stop()
    print(
        f"{jobs} × {objects}: cold {cold:.2f} s, warm median {statistics.median(warm) * 1000:.1f} ms, "
        f"{size / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
