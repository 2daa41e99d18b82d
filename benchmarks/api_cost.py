"""`make bench`, API cost: steady-state DRS API calls per source, per interval and per job, every source on.

Runs the simulator and the exporter as processes on loopback: DR and non-DR jobs, every data source
switched on with the same short refresh interval (and the progress cache TTL set to it), Prometheus
replaced by a scraper asking every half second. After a warm-up (every source's ``_up`` series
present for every job it reads) the simulator's request counters are reset and read again after
several intervals: calls per interval and per job per interval, by source and API operation, and
whether the API is a batched one (one call for many jobs). Prints a Markdown table, writes it into
docs/performance.md with --write, and exits 1 when a source that is on made no call at all or a
batched API was called more often than once per interval and chunk of jobs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from benchmarks.report import publish
from exporter.config import Config, JobConfig
from exporter.simulator.compare_scenario import ANSWER_OPERATIONS  # the comparison APIs, as the simulator counts them
from tests.procs import Exporter, Simulator, samples, sim_config

# source -> (its switch in the configuration or None when always on, its interval key, the simulator's
# operations it calls, the jobs it reads: "all", "dr" or "other").
SOURCES: dict[str, tuple[str | None, str | None, tuple[str, ...], str]] = {
    "progress data (scrape, cache_ttl)": (None, "cache_ttl", ("show_progress_data",), "all"),
    "job status and apply rates": (None, "cache_ttl", ("batch_progress",), "all"),
    "comparisons": ("comparisons", "compare_refresh_interval", ANSWER_OPERATIONS, "all"),
    "monitor data": ("monitor_data", "monitor_refresh_interval", ("show_monitor_data",), "other"),
    "monitor data (DR jobs)": ("monitor_data", "monitor_refresh_interval", ("show_dr_monitoring_data",), "dr"),
    "RPO/RTO": ("rpo_rto", "rpo_rto_refresh_interval", ("batch_rpo_rto",), "dr"),
    "job details": ("job_details", "job_details_refresh_interval", ("batch_status", "batch_detail"), "all"),
    "DDL alarms": ("ddl_alarms", "ddl_refresh_interval", ("list_ddl_alarms",), "all"),
    "abnormal rows": ("dirty_rows", "dirty_rows_refresh_interval", ("show_dirty_data",), "all"),
    "health comparisons": (
        "health_comparisons",
        "health_compare_refresh_interval",
        (
            "list_health_compare_jobs",
            "show_health_compare_job",
            "show_health_object_compare",
            "show_compare_policy",
            "show_compare_progress",
        ),
        "all",
    ),
}
# Batched APIs and the most jobs DRS takes in one call (exporter/drs/health_client.py, drs/client.py).
BATCHED = {
    "batch_progress": 50,
    "batch_rpo_rto": 50,
    "batch_status": 50,
    "show_dr_monitoring_data": 10,
    "batch_detail": 10,
}
# The `_up` family each background source exposes per job: the warm-up waits for all of them.
UP = {
    "monitor_data": "huaweicloud_drs_monitor_data_up",
    "rpo_rto": "huaweicloud_drs_rpo_rto_up",
    "job_details": "huaweicloud_drs_job_details_up",
    "ddl_alarms": "huaweicloud_drs_ddl_data_up",
    "dirty_rows": "huaweicloud_drs_dirty_data_up",
    "health_comparisons": "huaweicloud_drs_health_compare_up",
    "comparisons": "huaweicloud_drs_comparison_up",
}


def scenario(dr: int, other: int, tables: int) -> dict[str, Any]:
    """``dr`` DR jobs with RPO/RTO, monitor data and health comparisons, ``other`` sync jobs with a DDL
    alarm, abnormal rows and a finished comparison."""
    compared = {"id": "rows-1", "type": "lines", "status": "SUCCESSFUL", "tables": tables, "statuses": []}
    jobs: list[dict[str, Any]] = [
        {
            "id": f"dr-{n}",
            "job_type": "cloudDataGuard",
            "objects": {"table": tables},
            "comparisons": [compared],
            "health": {
                "rpo_ms": 1500,
                "rto_ms": 800,
                "monitor": {"src_delay": 2, "dst_delay": 1},
                "policy": {"status": "OPEN", "interval_hour": 24, "types": ["lines"]},
                "comparisons": [{"type": "lines"}],
            },
        }
        for n in range(dr)
    ]
    jobs += [
        {
            "id": f"sync-{n}",
            "job_type": "sync",
            "objects": {"table": tables},
            "comparisons": [compared],
            "health": {
                "ddl": [{"text": "ALTER TABLE t ADD COLUMN c INT", "exe_result": False, "ago": 60}],
                "dirty": {"incremental": 3, "full": 1},
                "monitor": {"src_delay": 2, "dst_delay": 1},
            },
        }
        for n in range(other)
    ]
    return {"jobs": jobs}


def known_switches() -> set[str]:
    """The configuration's keys in this build (a source not merged yet has no switch)."""
    return {*Config.__struct_fields__, *JobConfig.__struct_fields__}


def measure(dr: int, other: int, interval: float, intervals: int, work: Path) -> tuple[list[list[str]], list[str]]:
    """Table rows (source, API, jobs, calls per interval, per job, batched) and the problems found."""
    known = known_switches()
    on = {switch for switch, *_ in SOURCES.values() if switch is not None and switch in known}
    scenario_file = work / "cost.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario(dr, other, 10)))
    sim = Simulator("--scenario", str(scenario_file))
    jobs: list[dict[str, Any]] = [{"id": f"dr-{n}", "job_type": "cloudDataGuard"} for n in range(dr)]
    jobs += [{"id": f"sync-{n}", "job_type": "sync"} for n in range(other)]
    for job in jobs:
        job["comparisons"] = True  # a per-job switch only
    settings: dict[str, Any] = {"cache_ttl": interval, "max_staleness": 10 * interval}
    for switch, interval_key, _, _ in SOURCES.values():
        if interval_key is not None and (switch is None or switch in on):
            settings[interval_key] = interval
        if switch is not None and switch in on and switch != "comparisons":
            settings[switch] = True
    (work / "cost").mkdir()
    exporter = Exporter(sim_config(sim, jobs, **settings), work / "cost")
    ids = {job["id"] for job in jobs}
    try:
        deadline = time.monotonic() + 30 + 10 * interval
        while True:
            text = exporter.metrics()
            missing = {
                family
                for switch, family in UP.items()
                if switch in on
                and not {dict(k)["job_id"] for k in samples(text, family)}
                >= ({j for j in ids if j.startswith("dr-")} if switch == "rpo_rto" else ids)
            }
            if not missing:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up: no data for every job from {sorted(missing)}")
            time.sleep(0.5)
        time.sleep(interval)  # one interval more: every reader in its steady rhythm
        requests.post(f"{sim.url}/_sim/stats/reset", timeout=5).raise_for_status()
        started = time.monotonic()
        while time.monotonic() - started < intervals * interval:
            exporter.metrics()
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        counts: dict[str, int] = sim.stats()["requests"]
    finally:
        exporter.stop()
        sim.stop()
    return table_rows(counts, elapsed / interval, dr, other, on)


def table_rows(
    counts: dict[str, int], periods: float, dr: int, other: int, on: set[str]
) -> tuple[list[list[str]], list[str]]:
    """Per source and API: calls per interval, per job and interval, batched; the problems."""
    rows: list[list[str]] = []
    problems: list[str] = []
    jobs_of = {"all": dr + other, "dr": dr, "other": other}
    total = 0.0
    for source, (switch, _, operations, which) in SOURCES.items():
        if switch is not None and switch not in on:
            rows.append([source, "—", "—", "—", "—", "not in this build"])
            continue
        jobs = jobs_of[which]
        made = 0
        for operation in operations:
            calls = counts.get(operation, 0)
            made += calls
            per = calls / periods
            total += per
            chunk = BATCHED.get(operation)
            rows.append(
                [
                    source,
                    f"`{operation}`",
                    str(jobs),
                    f"{per:.2f}",
                    f"{per / jobs:.2f}" if jobs else "—",
                    f"yes, {chunk} jobs a call" if chunk else "no",
                ]
            )
            # One call per chunk of jobs and interval; one more for an interval's edge.
            if chunk and jobs and per > math.ceil(jobs / chunk) + 1:
                problems.append(f"{operation}: {per:.2f} calls per interval for {jobs} jobs")
        if not made:
            problems.append(f"{source}: no call at all")
    others = {k: v for k, v in counts.items() if not any(k in ops for _, _, ops, _ in SOURCES.values())}
    for operation, calls in sorted(others.items()):
        rows.append(["other", f"`{operation}`", "—", f"{calls / periods:.2f}", "—", "—"])
    rows.append(["**all sources**", "", str(dr + other), f"{total:.2f}", f"{total / (dr + other):.2f}", ""])
    return rows, problems


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--dr", type=int, default=10, help="DR (cloudDataGuard) jobs")
    p.add_argument("--other", type=int, default=30, help="other (sync) jobs")
    p.add_argument("--interval", type=float, default=3.0, help="every refresh interval and the cache TTL, seconds")
    p.add_argument("--intervals", type=int, default=5, help="intervals counted after the warm-up")
    p.add_argument("--write", type=Path, help="replace the api-cost section of this Markdown file")
    args = p.parse_args()
    command = (
        "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python -m benchmarks.api_cost", *sys.argv[1:]])
    )
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rows, problems = measure(args.dr, args.other, args.interval, args.intervals, Path(tmp))
    report = "\n\n".join(
        [
            f"Run on {time.strftime('%Y-%m-%d', time.gmtime(started))} with `{command}` "
            f"({time.time() - started:.0f} s): {args.dr} DR jobs and {args.other} sync jobs of 10 tables, every "
            f"source on, every refresh interval and the cache TTL {args.interval:g} s, {args.intervals} intervals "
            "counted after the warm-up, /metrics scraped every 0.5 s.",
            table(["source", "API", "jobs", "calls per interval", "calls per job per interval", "batched"], rows),
            "0.00: an API read only when something changed (a comparison newly finished or running, a job's "
            "status changed), none in steady state.",
            "**Problems**: " + ("; ".join(problems) if problems else "none"),
        ]
    )
    publish(report, args.write, "api-cost")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
