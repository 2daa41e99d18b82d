"""`make soak`: many refresh cycles with injected faults; RSS, threads and open files must stay flat.

Every scrape refreshes (cache TTL 0) one key of 200 objects while the simulator fails 10 % of
requests (5 % server errors, 5 % malformed JSON). Prints the figures; --write records them in
docs/reliability.md. The test suite runs a shorter soak through the same function.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.report import publish
from tests.procs import Exporter, Simulator, sim_config


@dataclass
class Sample:
    cycle: int
    rss: int
    threads: int
    fds: int


@dataclass
class SoakResult:
    cycles: int
    seconds: float
    failed_scrapes: int
    up_zero: int
    samples: list[Sample]

    @property
    def warm(self) -> Sample:
        """The sample after warm-up (a tenth of the run)."""
        return self.samples[1]

    @property
    def end(self) -> Sample:
        return self.samples[-1]


def status(pid: int) -> tuple[int, int]:
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def soak(cycles: int, work: Path) -> SoakResult:
    """Run ``cycles`` scrapes, each a refresh, sampling the exporter at 0, 10 % and every 10 % after."""
    sim = Simulator("--jobs", "1", "--objects", "200", "--rate-5xx", "0.05", "--rate-malformed", "0.05", "--seed", "7")
    config = sim_config(sim, sim.info["jobs"], cache_ttl=0, retries=0)
    exp = Exporter(config, work)
    session = requests.Session()
    samples: list[Sample] = []
    failed = down = 0
    marks = {0, *(cycles * k // 10 for k in range(1, 11))}
    started = time.perf_counter()
    try:
        for cycle in range(cycles + 1):
            if cycle in marks:
                rss, threads = status(exp.proc.pid)
                samples.append(Sample(cycle, rss, threads, len(os.listdir(f"/proc/{exp.proc.pid}/fd"))))
            if cycle == cycles:
                break
            try:
                answer = session.get(exp.url + "/metrics", timeout=30)
                answer.raise_for_status()
                down += 'huaweicloud_drs_up{job_id="job-0001",object_type="table"} 0.0' in answer.text
            except requests.RequestException:
                failed += 1
        assert exp.proc.poll() is None, "the exporter died"
    finally:
        exp.stop()
        sim.stop()
    return SoakResult(cycles, time.perf_counter() - started, failed, down, samples)


def report(result: SoakResult, command: str) -> str:
    rows = "\n".join(f"| {s.cycle:,} | {s.rss / 2**20:.1f} MiB | {s.threads} | {s.fds} |" for s in result.samples)
    growth = result.end.rss / result.warm.rss - 1
    return (
        f"Run on {time.strftime('%Y-%m-%d')} with `{command}`: {result.cycles:,} refresh cycles in "
        f"{result.seconds:.0f} s, {result.up_zero:,} of them with the key down from an injected fault "
        f"(10 % of requests fail), {result.failed_scrapes} failed scrapes.\n\n"
        "| cycle | RSS | threads | open files |\n|---|---|---|---|\n"
        f"{rows}\n\n"
        f"From the sample after warm-up (cycle {result.warm.cycle:,}) to the end: RSS {growth:+.1%}, threads "
        f"{result.end.threads - result.warm.threads:+d}, open files {result.end.fds - result.warm.fds:+d}."
    )


def flat(result: SoakResult) -> list[str]:
    """What is not flat after warm-up (empty when all is well)."""
    problems = []
    if result.failed_scrapes:
        problems.append(f"{result.failed_scrapes} failed scrapes")
    if result.end.rss > result.warm.rss * 1.05:
        problems.append(f"RSS grew {result.end.rss / result.warm.rss - 1:+.1%}")
    if result.end.threads > result.warm.threads:
        problems.append(f"threads grew from {result.warm.threads} to {result.end.threads}")
    if result.end.fds > result.warm.fds + 2:
        problems.append(f"open files grew from {result.warm.fds} to {result.end.fds}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cycles", type=int, default=10_000)
    p.add_argument("--write", type=Path, help="replace the soak section of this Markdown file")
    args = p.parse_args()
    command = "make soak" if os.environ.get("MAKELEVEL") else " ".join(["python -m benchmarks.soak", *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.cycles, Path(tmp))
    text = report(result, command)
    publish(text, args.write, "soak")
    problems = flat(result)
    if problems:
        print("not flat: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
