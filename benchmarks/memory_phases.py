"""Where the memory of a large scrape goes: RSS over the phases, and what holds it (tracemalloc).

The exporter's own classes run in this process against the simulator (a process on loopback),
through the path a scrape takes minus the HTTP server (``Exporter.scrape``): fetch and snapshot
first, with no format asked for yet (nothing rendered), then the first scrape in each request
style, each a first rendering of that format (or a reuse of one already made).

    python -m benchmarks.memory_phases --jobs 100 --objects 10000            # RSS per phase
    python -m benchmarks.memory_phases --jobs 100 --objects 10000 --trace 15 # and tracemalloc

With ``--trace N`` tracemalloc runs (which slows everything and adds its own memory to RSS) and
the N largest holders are printed by traceback after each phase, plus the live objects by type.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from exporter import config as exporter_config
from exporter.app import Exporter
from exporter.render.exposition import OPENMETRICS, TEXT, choose
from tests.accept import PROMETHEUS2, PROMETHEUS3
from tests.procs import Simulator, sim_config


def rss() -> tuple[float, float]:
    """Current and peak RSS of this process, in MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def by_type(limit: int) -> str:
    """The live objects the GC tracks and large bytes objects (which it does not), by type: count and size."""
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for obj in gc.get_objects():
        name = type(obj).__name__
        counts[name] += 1
        sizes[name] += sys.getsizeof(obj)
    rows = [
        f"    {name:<24} {counts[name]:>9} objects {size / 2**20:8.1f} MiB" for name, size in sizes.most_common(limit)
    ]
    return "\n".join(rows)


def report(phase: str, seconds: float, trace: int) -> None:
    gc.collect()
    now, peak = rss()
    print(f"{phase:<44} {seconds:7.2f} s   RSS {now:7.0f} MiB   peak {peak:7.0f} MiB", flush=True)
    if trace:
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        total = sum(s.size for s in snapshot.statistics("filename"))
        print(f"  traced {total / 2**20:.1f} MiB; largest holders by traceback:")
        for stat in snapshot.statistics("traceback")[:trace]:
            frames = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[:4])
            print(f"    {stat.size / 2**20:8.1f} MiB {stat.count:>9} blocks  {frames}")
        print("  by type (GC-tracked objects):")
        print(by_type(8))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--latency-ms", type=int, default=20)
    p.add_argument("--trace", type=int, default=0, help="print the N largest holders per phase (tracemalloc)")
    args = p.parse_args()
    if args.trace:
        tracemalloc.start(6)
    sim = Simulator(
        "--jobs",
        str(args.jobs),
        "--objects",
        str(args.objects),
        "--types",
        "table",
        "--latency-ms",
        str(args.latency_ms),
    )
    try:
        cfg = exporter_config.parse(
            sim_config(sim, sim.info["jobs"], cache_ttl=3600, refresh_timeout=600, max_concurrency=8)
        )
        exporter = Exporter(cfg)
        try:
            report("start", 0.0, args.trace)
            started = time.perf_counter()
            snaps = exporter.cache.get_many(cfg.keys, time.monotonic() + 600)
            assert all(s.up for s in snaps)
            report("fetch + snapshot (nothing rendered)", time.perf_counter() - started, args.trace)
            styles = [
                ("plain text (first rendering)", TEXT, False),
                ("Prometheus 2: OpenMetrics, gzip", choose(PROMETHEUS2), True),
                ("Prometheus 3: OpenMetrics utf-8, gzip", choose(PROMETHEUS3), True),
                ("plain text, gzip", TEXT, True),
                ("OpenMetrics, no gzip", OPENMETRICS, False),
                ("plain text again (warm)", TEXT, False),
            ]
            size = 0
            for name, fmt, compress in styles:
                started = time.perf_counter()
                body = exporter.scrape(600, fmt, compress=compress)
                size = sum(len(chunk) for chunk in body)
                del body
                report(f"{name} ({size / 1e6:.0f} MB)", time.perf_counter() - started, args.trace)
        finally:
            exporter.close()
    finally:
        sim.stop()
    print(f"max RSS (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
