"""Sharding: one process against three shards (``--shard 0..2 --total-shards 3``) on the same jobs.

Every process discovers the simulator's jobs itself. Each is started alone and scraped cold (the
shards one after another, as if each had a node of its own, so that the 2-core machine's
contention does not count), with the simulator's request counts reset before each: the calls each
process makes are its own. Reported per process: the jobs and series it exports, its cold first
scrape (the listing, every refresh, the rendering), its peak RSS, and its API calls. Checked: no
job's progress data is read by two shards (and each once, as by the single process), every shard
owns jobs, and the union of the shards' per-object series (labels and values) is the single
process's. Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench import proc_status
from benchmarks.report import publish
from tests.procs import Exporter, Simulator, sim_config

SHARDS = 3
LONG = {"X-Prometheus-Scrape-Timeout-Seconds": "600", "Accept-Encoding": "identity"}
Series = dict[tuple[tuple[str, str], ...], float]


def config(sim: Simulator) -> dict[str, Any]:
    """Discovery of every job, cached for longer than the benchmark: each key is read once."""
    cfg = sim_config(sim, [], cache_ttl=3600, refresh_timeout=600)
    del cfg["jobs"]
    cfg["discovery"] = {"job_types": ["migration"], "object_types": ["table"], "refresh_interval": 3600}
    return cfg


def per_object(text: str) -> Series:
    out: Series = {}
    for family in text_string_to_metric_families(text):
        if family.name == "huaweicloud_drs_object_progress_ratio":
            for sample in family.samples:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def run(sim: Simulator, workdir: Path, *flags: str) -> tuple[dict[str, Any], Series, dict[str, int]]:
    """One process, alone: its row's numbers, its per-object series, and the progress-data reads it made."""
    workdir.mkdir()
    requests.post(f"{sim.url}/_sim/stats/reset", timeout=5).raise_for_status()
    exp = Exporter(config(sim), workdir, *flags)
    try:
        started = time.perf_counter()
        answer = requests.get(exp.url + "/metrics", headers=LONG, timeout=900)
        cold = time.perf_counter() - started
        answer.raise_for_status()
        peak = proc_status(exp.proc.pid, "VmHWM")
    finally:
        exp.stop()
    stats = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()
    series = per_object(answer.text)
    reads: dict[str, int] = stats["progress_data"]
    row = {
        "jobs": len({dict(k)["job_id"] for k in series}),
        "series": len(series),
        "cold": cold,
        "peak": peak,
        "calls": sum(stats["requests"].values()),
        "listings": sum(n for op, n in stats["requests"].items() if op.startswith("list_jobs")),
        "batches": stats["requests"].get("batch_progress", 0),
        "progress": sum(reads.values()),
        "batch": sum(stats["jobs"].values()),
    }
    return row, series, reads


def main() -> int:
    """Measure and print (or with --write, record) one process against three shards."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--objects", type=int, default=1000, help="tables per job")
    parser.add_argument("--rtt-ms", type=int, default=20, help="simulated latency of every API request")
    parser.add_argument("--write", type=Path, help="record the result in this Markdown file")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    sim = Simulator(
        "--jobs",
        str(args.jobs),
        "--objects",
        str(args.objects),
        "--types",
        "table",
        "--speed",
        "0",
        "--latency-ms",
        str(args.rtt_ms),
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            single, everything, single_reads = run(sim, Path(tmp) / "single")
            shards = [
                run(sim, Path(tmp) / f"shard{n}", "--shard", str(n), "--total-shards", str(SHARDS))
                for n in range(SHARDS)
            ]
    finally:
        sim.stop()
    union: Series = {}
    overlap = 0
    for _, series, _ in shards:
        overlap += len(series.keys() & union.keys())
        union.update(series)
    readers: dict[str, int] = {}
    for _, _, reads in shards:
        for key, count in reads.items():
            readers[key] = readers.get(key, 0) + count
    read_once = readers == single_reads and set(readers) == {f"{j}/table" for j in sim.info["jobs"]}
    checks = {
        "every job's progress data read by exactly one shard, as often as by the single process": read_once,
        "no series on two shards": overlap == 0,
        "every shard owns jobs": all(row["jobs"] for row, _, _ in shards),
        "the union of the shards' per-object series (labels and values) is the single process's": union == everything,
    }

    def others(row: dict[str, Any]) -> int:
        return int(row["calls"] - row["listings"] - row["batches"] - row["progress"])

    rows = [("one process", single)] + [(f"shard {n} of {SHARDS}", row) for n, (row, _, _) in enumerate(shards)]
    total = {k: sum(row[k] for row, _, _ in shards) for k in ("calls", "listings", "batches", "progress", "batch")}
    text = (
        f"One process against {SHARDS} shards on the same {args.jobs} discovered jobs of {args.objects:,} tables "
        f"each, {args.rtt_ms} ms simulated latency (`python -m benchmarks.sharding --jobs {args.jobs} --objects "
        f"{args.objects} --rtt-ms {args.rtt_ms}`; each process alone, load average {load:.1f} at the start):\n\n"
        "| process | jobs | per-object series | cold first scrape | peak RSS | API calls | job listings "
        "| batch-progress calls | jobs asked in them | progress-data calls |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        + "".join(
            f"| {name} | {row['jobs']} | {row['series']:,} | {row['cold']:.2f} s | {row['peak'] / 2**20:.0f} MiB "
            f"| {row['calls']:,} | {row['listings']} | {row['batches']} | {row['batch']:,} | {row['progress']:,} |\n"
            for name, row in rows
        )
        + f"| shards together | {sum(r['jobs'] for r, _, _ in shards)} | {len(union):,} | | "
        f"| {total['calls']:,} | {total['listings']} | {total['batches']} | {total['batch']:,} "
        f"| {total['progress']:,} |\n\n"
        f"The shards make {total['calls'] - single['calls']} calls more than one process: every shard lists the "
        f"whole project ({total['listings']} listings instead of {single['listings']}: one per job type and "
        "page of jobs per `discovery.refresh_interval`), and each batches its own jobs' progress "
        f"({total['batches']} batch-progress calls instead of {single['batches']}, each job asked once). "
        "No progress-data call is repeated. "
        f"The other {others(total)} calls ({others(single)} in one process) are the job details, on by default "
        "since issue 24 (`batch-status`, 50 jobs a call, and `batch-detail`, 10 a call): each shard batches its "
        "own jobs, so the shards need a few more calls (each its own last, part-filled batch).\n\n"
        + "".join(f"- {'yes' if ok else 'NO'}: {name}\n" for name, ok in checks.items())
    )
    publish(text.rstrip("\n"), args.write, "sharding")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
