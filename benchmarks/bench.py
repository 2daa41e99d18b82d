"""`make bench`: scrape latency, refresh time, API calls and memory against the simulator, with targets.

Runs the simulator and the exporter as processes on loopback (the cold-refresh part drives the
exporter's own classes in this process to time the API phase). Prints a Markdown report, writes
it into docs/performance.md with --write, and exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import requests
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.report import publish
from exporter import config as exporter_config
from exporter.app import Exporter as InProcessExporter
from exporter.base.secrets import Secret
from exporter.drs.auth import AkSkAuth
from exporter.drs.client import DRSClient
from exporter.drs.telemetry import ApiStats
from exporter.drs.transport import Transport
from exporter.metrics.collector import ScrapeView, SelfMetrics
from exporter.sources.cache import Snapshot
from tests.accept import PROMETHEUS2, PROMETHEUS3
from tests.procs import Exporter, Simulator, sim_config

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PARTS = ("scrape", "cold", "calls", "memory", "compare")


@dataclass
class Target:
    name: str
    value: str
    goal: str
    ok: bool


def proc_status(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-like field of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def fetch_snapshots(sim: Simulator, jobs: list[str]) -> list[Snapshot]:
    """The same series the exporter serves, fetched in this process, for generate_latest."""
    auth = AkSkAuth(
        Secret("ak", value=sim.info["access_key"]), Secret("sk", value=sim.info["secret_key"]), sim.info["project_id"]
    )
    client = DRSClient(Transport(), auth, sim.url, sim.info["project_id"])
    now = time.time()
    snaps = [
        Snapshot(
            (job, "table"), client.progress_data(job, "table", deadline=time.monotonic() + 300), None, now, 0.0, now
        )
        for job in jobs
    ]
    client.close()
    return snaps


def get(url: str, headers: dict[str, str]) -> bytes:
    """One scrape, its whole body read (not decompressed: as Prometheus receives it)."""
    with requests.get(url, headers=headers, timeout=600, stream=True) as answer:
        answer.raise_for_status()
        return bytes(answer.raw.read())


def whole_gzip(body: bytes) -> bytes:
    """The decompressed ``body``, which must be one gzip member with nothing after it."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = reader.decompress(body) + reader.flush()
    assert reader.eof and not reader.unused_data, "not one whole gzip member"
    return plain


@dataclass
class Warm:
    """Warm scrape latencies (median of 10) per request style, and generate_latest's time."""

    plain: float
    prometheus2: float
    prometheus3: float
    reference: float
    text_gzip: float
    openmetrics: float

    def styles(self) -> list[tuple[str, float]]:
        return [
            ("plain text", self.plain),
            ("Prometheus 2's request", self.prometheus2),
            ("Prometheus 3's request", self.prometheus3),
            ("text format, gzip", self.text_gzip),
            ("OpenMetrics, no gzip", self.openmetrics),
        ]


def measure_size(series: int, rtt_ms: int, work: Path) -> tuple[list[str], Warm, int, float]:
    """One row of the scrape table, plus the warm latencies, generate_latest time, peak RSS and cold scrape."""
    per_job = min(series, 10_000)
    sim = Simulator(
        "--jobs", str(series // per_job), "--objects", str(per_job), "--types", "table", "--latency-ms", str(rtt_ms)
    )
    workdir = work / f"scrape-{series}"
    workdir.mkdir()
    long = {"X-Prometheus-Scrape-Timeout-Seconds": "600"}
    plain_headers = {**long, "Accept-Encoding": "identity"}
    prom_headers = {**long, "Accept": PROMETHEUS2, "Accept-Encoding": "gzip"}
    prom3_headers = {**long, "Accept": PROMETHEUS3, "Accept-Encoding": "gzip"}
    text_gzip_headers = {**long, "Accept-Encoding": "gzip"}
    om_headers = {**long, "Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "identity"}
    try:
        exp = Exporter(sim_config(sim, sim.info["jobs"], cache_ttl=3600), workdir)
    except Exception:
        sim.stop()  # the exporter did not start: do not leave the simulator behind
        raise
    url = exp.url + "/metrics"
    try:
        cold = timed(lambda: get(url, plain_headers))
        # The first request for a format renders it: not measured. Each answer must decode whole.
        om_size = len(whole_gzip(get(url, prom_headers)))
        om3_size = len(whole_gzip(get(url, prom3_headers)))
        text_gzip_size = len(whole_gzip(get(url, text_gzip_headers)))
        om_plain_size = len(get(url, om_headers))
        body = get(url, plain_headers)
        count = sum(1 for line in body.split(b"\n") if line.startswith(b"huaweicloud_drs_object_progress_ratio{"))
        assert count == series, f"{count} object series, expected {series}"
        cpu0 = cpu_seconds(exp.proc.pid)
        plain = statistics.median(timed(lambda: get(url, plain_headers)) for _ in range(10))
        cpu_plain = (cpu_seconds(exp.proc.pid) - cpu0) / 10
        prom = statistics.median(timed(lambda: get(url, prom_headers)) for _ in range(10))
        prom3 = statistics.median(timed(lambda: get(url, prom3_headers)) for _ in range(10))
        text_gzip = statistics.median(timed(lambda: get(url, text_gzip_headers)) for _ in range(10))
        om_plain = statistics.median(timed(lambda: get(url, om_headers)) for _ in range(10))
        peak = proc_status(exp.proc.pid, "VmHWM")
    except Exception:
        sim.stop()
        raise
    finally:
        exp.stop()
    try:
        view = ScrapeView(fetch_snapshots(sim, sim.info["jobs"]), 3600, SelfMetrics(ApiStats(), 0, 0))
    finally:
        sim.stop()
    runs = 1 if series >= 1_000_000 else 3
    reference = statistics.median(timed(lambda: generate_latest(view)) for _ in range(runs))
    row = [
        f"{series:,}",
        f"{len(body) / 1e6:.1f} MB",
        f"{cold:.2f} s",
        f"{plain * 1000:.1f} ms",
        f"{cpu_plain * 1000:.0f} ms",
        f"{prom * 1000:.1f} ms",
        f"{prom3 * 1000:.1f} ms",
        f"{text_gzip * 1000:.1f} ms",
        f"{om_plain * 1000:.1f} ms",
        f"{reference * 1000:.0f} ms",
        " / ".join(f"{reference / t:.0f}×" for t in (plain, prom, prom3, text_gzip, om_plain)),
        f"{peak / 2**20:.0f} MiB",
    ]
    assert min(om_size, om3_size, om_plain_size) > len(body) / 2, "OpenMetrics answers cut short"
    assert text_gzip_size == len(body), "the compressed text answer differs in length from the plain one"
    return row, Warm(plain, prom, prom3, reference, text_gzip, om_plain), peak, cold


def scrape_sizes(sizes: list[int], rtt_ms: int, work: Path) -> tuple[list[list[str]], list[Target]]:
    rows: list[list[str]] = []
    targets: list[Target] = []
    for series in sizes:
        row, warm, peak, cold = measure_size(series, rtt_ms, work)
        rows.append(row)
        name = {100_000: "100k", 1_000_000: "1M"}.get(series)
        if name is not None:
            targets.extend(
                Target(
                    f"warm scrape of {name} series, {style}, vs generate_latest",
                    f"{warm.reference / seconds:.1f}× faster",
                    "≥ 20×",
                    warm.reference / seconds >= 20,
                )
                for style, seconds in warm.styles()
            )
        if series == 100_000:
            targets.append(
                Target("peak RSS at 100k series", f"{peak / 2**20:.0f} MiB", "≤ 250 MiB", peak <= 250 * 2**20)
            )
        if series == 1_000_000:
            targets.append(Target("warm scrape of 1M series", f"{warm.plain:.2f} s", "< 1 s", warm.plain < 1.0))
            targets.append(
                Target("peak RSS at 1M series (issue 26)", f"{peak / 2**20:.0f} MiB", "≤ 600 MiB", peak <= 600 * 2**20)
            )
            targets.append(Target("cold first scrape of 1M series (issue 26)", f"{cold:.2f} s", "≤ 15 s", cold <= 15))
    return rows, targets


def one_cold_refresh(cfg: exporter_config.Config) -> tuple[float, float, int]:
    """API phase, total with rendering, and pages, for a fresh in-process exporter."""
    exporter = InProcessExporter(cfg)
    try:
        started_wall, started = time.time(), time.perf_counter()
        snaps = exporter.cache.get_many(cfg.keys, time.monotonic() + 600)
        total = time.perf_counter() - started
    finally:
        exporter.close()
    assert all(s.up for s in snaps)
    pages = sum(math.ceil(len(s.data.rows) / 1000) for s in snaps if s.data is not None)
    return max(s.refreshed_at for s in snaps) - started_wall, total, pages


def cold_refresh(rtts: list[int], jobs: int, objects: int, concurrency: int) -> tuple[list[list[str]], list[Target]]:
    rows: list[list[str]] = []
    targets: list[Target] = []
    for rtt in rtts:
        sim = Simulator("--jobs", str(jobs), "--objects", str(objects), "--types", "table", "--latency-ms", str(rtt))
        try:
            cfg = exporter_config.parse(
                sim_config(sim, sim.info["jobs"], max_concurrency=concurrency, refresh_timeout=600)
            )
            # Warm the simulator (it stands in for DRS, whose speed is not under test); then cold exporters.
            one_cold_refresh(cfg)
            runs = [one_cold_refresh(cfg) for _ in range(3)]
        finally:
            sim.stop()
        api_phases = sorted(r[0] for r in runs)
        api_phase, total, pages = statistics.median(api_phases), statistics.median(r[1] for r in runs), runs[0][2]
        ideal = math.ceil(pages / concurrency) * rtt / 1000
        rows.append(
            [
                f"{jobs} × {objects:,}",
                f"{rtt} ms",
                str(pages),
                f"{ideal:.2f} s",
                f"{api_phase:.2f} s ({api_phases[0]:.2f}–{api_phases[-1]:.2f})",
                f"{api_phase / ideal:.2f}×",
                f"{total:.2f} s",
            ]
        )
        if rtt == 20:
            targets.append(
                Target(
                    f"cold refresh {jobs}×{objects} at 20 ms RTT (median of 3)",
                    f"{api_phase / ideal:.2f}× ideal",
                    "≤ 2×",
                    api_phase <= 2 * ideal,
                )
            )
    return rows, targets


def api_calls(work: Path) -> tuple[list[list[str]], list[Target]]:
    counts = [0, 1, 999, 1000, 1001, 2500, 10_000]
    scenario = work / "calls.yaml"
    scenario.write_text("jobs:\n" + "".join(f"  - {{id: calls-{n}, objects: {{table: {n}}}}}\n" for n in counts))
    sim = Simulator("--scenario", str(scenario), "--latency-ms", "5")
    workdir = work / "calls"
    workdir.mkdir()
    exp = Exporter(sim_config(sim, [f"calls-{n}" for n in counts], cache_ttl=300), workdir)
    rows: list[list[str]] = []
    try:
        requests.post(f"{sim.url}/_sim/stats/reset", timeout=5)
        exp.metrics()
        after_one = sim.stats()["progress_data"]
        failures: list[str] = []
        barrier = threading.Barrier(50)

        def scraper() -> None:
            barrier.wait(timeout=30)
            for _ in range(5):
                try:
                    exp.metrics()
                except requests.RequestException as exc:
                    failures.append(str(exc))

        threads = [threading.Thread(target=scraper) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        after_many = sim.stats()["progress_data"]
    finally:
        exp.stop()
        sim.stop()
    all_minimal = True
    for n in counts:
        key = f"calls-{n}/table"
        minimum = max(1, math.ceil(n / 1000))
        one, many = after_one.get(key, 0), after_many.get(key, 0)
        all_minimal &= one == minimum and many == minimum
        rows.append([f"{n:,}", str(minimum), str(one), str(many)])
    targets = [
        Target(
            "API calls per refresh",
            "minimum for every key" if all_minimal else "over the minimum",
            "= ceil(count / 1000)",
            all_minimal,
        ),
        Target(
            "50 concurrent scrapers × 5 inside the TTL",
            f"{len(failures)} failed scrapes, extra calls: {sum(after_many.values()) - sum(after_one.values())}",
            "0 extra calls, 0 failures",
            not failures and after_many == after_one,
        ),
    ]
    return rows, targets


class _Families:
    """Parsed families as a registry stand-in, for generate_latest."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)


def comparisons(rtt_ms: int, work: Path) -> tuple[list[list[str]], list[Target]]:
    """100k progress series plus one job's finished comparison of 100k tables: warm scrapes and steady-state calls."""
    tables, interval, seconds = 100_000, 2.0, 12.0
    scenario = work / "compare.yaml"
    jobs = [f"job-{n:04d}" for n in range(1, 11)]
    scenario.write_text(
        "jobs:\n"
        + "".join(f"  - {{id: {j}, objects: {{table: 10000}}}}\n" for j in jobs[1:])
        + f"  - {{id: {jobs[0]}, objects: {{table: 10000}}, comparisons: [{{id: bench-rows, type: lines, "
        f"tables: {tables}, statuses: [0, 0, 3, 23]}}]}}\n"
    )
    sim = Simulator("--scenario", str(scenario), "--latency-ms", str(rtt_ms))
    workdir = work / "compare"
    workdir.mkdir()
    config = sim_config(sim, jobs, cache_ttl=3600, comparisons=True, compare_refresh_interval=interval)
    long = {"X-Prometheus-Scrape-Timeout-Seconds": "600"}
    styles = {
        "plain text": {**long, "Accept-Encoding": "identity"},
        "Prometheus 2's request": {**long, "Accept": PROMETHEUS2, "Accept-Encoding": "gzip"},
        "Prometheus 3's request": {**long, "Accept": PROMETHEUS3, "Accept-Encoding": "gzip"},
    }
    try:
        exp = Exporter(config, workdir)
    except Exception:
        sim.stop()
        raise
    url = exp.url + "/metrics"
    marker = b"huaweicloud_drs_comparison_source_rows{"
    try:
        started = time.perf_counter()
        body = b""
        for _ in range(600):  # bounded: 5 minutes for the first reading of 100k tables
            body = get(url, styles["plain text"])
            if body.count(marker) == tables:
                break
            time.sleep(0.5)
        first_read = time.perf_counter() - started
        assert body.count(marker) == tables, "the comparison's tables did not all appear"
        for headers in styles.values():  # the first request of a format renders it: not measured
            get(url, headers)
        warm = {name: statistics.median(timed(partial(get, url, h)) for _ in range(10)) for name, h in styles.items()}
        requests.post(f"{sim.url}/_sim/stats/reset", timeout=5)
        steady_started = time.perf_counter()
        while time.perf_counter() - steady_started < seconds:  # bounded by the clock, one scrape a second
            get(url, styles["Prometheus 3's request"])
            time.sleep(1.0)
        elapsed = time.perf_counter() - steady_started
        calls = sim.stats()["comparisons"]
        peak = proc_status(exp.proc.pid, "VmHWM")
    finally:
        exp.stop()
        sim.stop()
    parsed = _Families(list(text_string_to_metric_families(body.decode())))
    reference = statistics.median(timed(lambda: generate_latest(parsed)) for _ in range(3))
    lists = {k: v for k, v in calls.items() if k.endswith("/list_compare_jobs")}
    others = {k: v for k, v in calls.items() if not k.endswith("/list_compare_jobs")}
    expected = elapsed / interval
    per_job = lists.get(f"{jobs[0]}/list/list_compare_jobs", 0)
    steady_ok = not others and len(lists) == len(jobs) and all(abs(n - expected) <= 1.5 for n in lists.values())
    rows = [
        [
            f"{len(jobs)} jobs × 10,000 objects + {tables:,} compared tables",
            f"{len(body) / 1e6:.1f} MB",
            f"{first_read:.1f} s",
            *(f"{warm[name] * 1000:.1f} ms" for name in styles),
            f"{reference * 1000:.0f} ms",
            f"{per_job} list calls per job in {elapsed:.0f} s, {sum(others.values())} other",
            f"{peak / 2**20:.0f} MiB",
        ]
    ]
    targets = [
        Target(
            f"warm scrape with {tables // 1000}k compared tables, {name}, vs generate_latest",
            f"{reference / seconds_:.1f}× faster",
            "≥ 20×",
            reference / seconds_ >= 20,
        )
        for name, seconds_ in warm.items()
    ]
    targets.append(
        Target(
            "comparison API calls in steady state",
            f"{sorted(set(lists.values()))} list calls per job in {elapsed:.0f} s at {interval:g} s, "
            f"{sum(others.values())} other calls",
            "1 list call per job per interval, nothing else",
            steady_ok,
        )
    )
    return rows, targets


def memory_growth(cycles: int, work: Path) -> tuple[list[list[str]], list[Target]]:
    sim = Simulator("--jobs", "1", "--objects", "1000", "--types", "table")
    workdir = work / "soak"
    workdir.mkdir()
    exp = Exporter(sim_config(sim, sim.info["jobs"], cache_ttl=0), workdir)
    session = requests.Session()
    marks: dict[int, int] = {}
    try:
        started = time.perf_counter()
        for i in range(1, cycles + 1):
            session.get(exp.url + "/metrics", timeout=60).raise_for_status()
            if i in (100, cycles):
                marks[i] = proc_status(exp.proc.pid, "VmRSS")
        elapsed = time.perf_counter() - started
        refreshes = sim.stats()["progress_data"][f"{sim.info['jobs'][0]}/table"]
    finally:
        exp.stop()
        sim.stop()
    growth = marks[cycles] / marks[100] - 1
    rows = [
        [
            f"{refreshes:,} refreshes in {elapsed:.0f} s",
            f"{marks[100] / 2**20:.1f} MiB",
            f"{marks[cycles] / 2**20:.1f} MiB",
            f"{growth:+.1%}",
        ]
    ]
    return rows, [Target(f"RSS growth from 100 to {cycles:,} refreshes", f"{growth:+.1%}", "≤ 5 %", growth <= 0.05)]


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return (
        f"{os.cpu_count()} × {cpu}, {memory / 2**30:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, prometheus_client {version('prometheus-client')}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--rtt-ms", type=int, default=20, help="simulated latency for the scrape part")
    p.add_argument("--cycles", type=int, default=10_000, help="refresh cycles for the memory part")
    p.add_argument("--parts", default=",".join(PARTS), help=f"which parts to run, of {','.join(PARTS)}")
    p.add_argument("--write", type=Path, help="replace the results section of this Markdown file")
    args = p.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        p.error(f"--parts: unknown {', '.join(sorted(parts - set(PARTS)))}")
    command = "make bench" if os.environ.get("MAKELEVEL") else " ".join(["python -m benchmarks.bench", *sys.argv[1:]])
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sections: list[str] = []
        targets: list[Target] = []
        if "scrape" in parts:
            scrape_rows, found = scrape_sizes([int(s) for s in args.sizes.split(",")], args.rtt_ms, work)
            sections += scrape_section(args.rtt_ms, scrape_rows)
            targets += found
        if "cold" in parts:
            cold_rows, found = cold_refresh([20, 100], 100, 1000, 8)
            sections += cold_section(cold_rows)
            targets += found
        if "calls" in parts:
            call_rows, found = api_calls(work)
            sections += [
                "**API calls** per key for one scrape, and after 50 concurrent scrapers × 5 scrapes inside the TTL.",
                table(["objects", "minimum calls", "after 1 scrape", "after 250 more"], call_rows),
            ]
            targets += found
        if "compare" in parts:
            compare_rows, found = comparisons(args.rtt_ms, work)
            sections += [
                "**Comparisons**: 100k progress series plus a finished row comparison of 100k tables "
                f"(simulator at {args.rtt_ms} ms per request, compare_refresh_interval 2 s, warm = median of 10). "
                "*first reading* is from the exporter's start until every table's series is served; "
                "*generate_latest* renders the same exposition (parsed back) with prometheus_client; *steady "
                "state* counts the comparison API calls during 12 s of scrapes once the results were read.",
                table(
                    [
                        "series",
                        "text size",
                        "first reading",
                        "warm plain",
                        "warm Prometheus 2",
                        "warm Prometheus 3",
                        "generate_latest",
                        "steady state",
                        "peak RSS",
                    ],
                    compare_rows,
                ),
            ]
            targets += found
        if "memory" in parts:
            memory_rows, found = memory_growth(args.cycles, work)
            sections += [
                "**Memory** of the exporter refreshing one key of 1000 objects on every scrape (cache TTL 0).",
                table(["cycles", "RSS after 100", "RSS at the end", "growth"], memory_rows),
            ]
            targets += found
    report = "\n\n".join(
        [
            f"Run on {time.strftime('%Y-%m-%d', time.gmtime(started))} with `{command}` "
            f"({time.time() - started:.0f} s). Machine: {machine()}.",
            *sections,
            "**Targets**",
            table(
                ["target", "measured", "goal", "met"],
                [[t.name, t.value, t.goal, "yes" if t.ok else "**NO**"] for t in targets],
            ),
        ]
    )
    publish(report, args.write, "bench")
    missed = [t.name for t in targets if not t.ok]
    if missed:
        print(f"\nmissed targets: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


def scrape_section(rtt_ms: int, rows: list[list[str]]) -> list[str]:
    return [
        f"**Scrapes** (simulator at {rtt_ms} ms per request; exporter cache TTL 3600 s; warm = median of 10). "
        "*plain* asks for the text format without compression; *Prometheus 2* and *Prometheus 3* send "
        "those versions' `Accept` header (OpenMetrics first) with `Accept-Encoding: gzip`. "
        "*text gzip* asks for the text format compressed, *OpenMetrics* for OpenMetrics 1.0.0 uncompressed. "
        "*generate_latest* renders the same series in the text format with prometheus_client in the "
        "benchmark process, in the same run; the speed-up is its time over each warm scrape's "
        "(plain / Prometheus 2 / Prometheus 3 / text gzip / OpenMetrics).",
        table(
            [
                "series",
                "text size",
                "cold first scrape",
                "warm plain",
                "CPU per warm scrape",
                "warm Prometheus 2",
                "warm Prometheus 3",
                "warm text gzip",
                "warm OpenMetrics",
                "generate_latest",
                "speed-up",
                "peak RSS",
            ],
            rows,
        ),
    ]


def cold_section(rows: list[list[str]]) -> list[str]:
    return [
        "**Cold refresh** of every key by a fresh exporter, median of 3 with the range in brackets "
        "(max_concurrency 8, 1000 objects a page; the simulator was warmed by one pass before): "
        "*API phase* is until the last "
        "key's pages are all fetched and validated; *with rendering* until every key is also rendered "
        "(the first rendering of a key writes every line; later refreshes with the same objects reuse the "
        "lines). Ideal = ceil(pages / max_concurrency) × RTT.",
        table(["jobs × objects", "RTT", "pages", "ideal", "API phase", "vs ideal", "with rendering"], rows),
    ]


if __name__ == "__main__":
    sys.exit(main())
