"""Replication-health sources of the exporter process against the simulator (issue 24).

Throughput and phase progress come from the batch-progress answer the job-level source already
reads (no call of their own).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.drs.joblist import parse_job_progress

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for

THROUGHPUT_JOBS: list[dict[str, Any]] = [
    {
        "id": "incr",
        "objects": {"table": 5},
        "status": "INCRE_TRANSFER_STARTED",
        "speed": 0.5,
        "health": {
            "apply_rows_rate": 250,
            "apply_bytes_rate": 8192,
            "progress_map": {"structure": "100%", "data": "40%", "index": "-1"},
        },
    },
    {"id": "full", "objects": {"table": 5}, "status": "FULL_TRANSFER_STARTED", "speed": 0.5},
]


def start_simulator(tmp: Path, jobs: list[dict[str, Any]], *args: str) -> Simulator:
    path = tmp / f"scenario-{len(list(tmp.glob('scenario-*')))}.yaml"
    path.write_text(yaml.safe_dump({"jobs": jobs}))
    return Simulator("--scenario", str(path), *args)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    stops: list[Any] = []

    def start(sim: Simulator, config: dict[str, Any]) -> Exporter:
        stops.append(sim.stop)
        workdir = tmp_path / f"exp{len(stops)}"
        workdir.mkdir()
        exp = Exporter(config, workdir)
        stops.append(exp.stop)
        return exp

    yield start
    for stop in reversed(stops):
        stop()


def promtool_clean(text: str) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_the_sdk_spelling_of_the_delay_in_milliseconds_is_read() -> None:
    for key in ("incre_trans_delay_millis", "incr_trans_delay_millis"):
        progress = parse_job_progress("j", {"progress": "10", key: "2500"}, "incre_trans_delay")
        assert progress.delay_seconds == 2.5, key
    both = {"incre_trans_delay": "4", "incre_trans_delay_millis": "2500"}
    assert parse_job_progress("j", both, "incre_trans_delay").delay_seconds == 4, "the seconds field wins"
    garbage = {"incre_trans_delay_millis": "2.5e", "incr_trans_delay_millis": "1000"}
    assert parse_job_progress("j", garbage, "incre_trans_delay").delay_seconds == 1, "garbage in one is skipped"


def test_throughput_and_phase_progress_from_batch_progress_at_no_extra_call(run: Any, tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, THROUGHPUT_JOBS)
    exp = run(sim, sim_config(sim, ["incr", "full"], cache_ttl=60))
    text = exp.metrics()
    assert value(text, "huaweicloud_drs_job_apply_rows_per_second", job_id="incr") == 250
    assert value(text, "huaweicloud_drs_job_apply_bytes_per_second", job_id="incr") == 8192
    # -1 before the incremental phase: no sample, never a negative rate.
    assert value(text, "huaweicloud_drs_job_apply_rows_per_second", job_id="full") is None
    assert value(text, "huaweicloud_drs_job_apply_bytes_per_second", job_id="full") is None
    ratios = samples(text, "huaweicloud_drs_job_phase_progress_ratio")
    incr = {dict(k)["phase"]: v for k, v in ratios.items() if dict(k)["job_id"] == "incr"}
    assert incr == {"structure": 1.0, "data": 0.4}, "index is -1: not in that phase, no sample"
    remaining = samples(text, "huaweicloud_drs_job_phase_remaining_seconds")
    incr_left = {dict(k)["phase"]: v for k, v in remaining.items() if dict(k)["job_id"] == "incr"}
    assert set(incr_left) == {"structure", "data"} and incr_left["structure"] == 0 and incr_left["data"] > 0
    full = {dict(k)["phase"] for k in ratios if dict(k)["job_id"] == "full"}
    assert "structure" in full and "data" in full
    assert all(v >= 0 for v in [*ratios.values(), *remaining.values()])
    promtool_clean(text)
    stats = sim.stats()
    assert stats["requests"].get("batch_progress") == 1, "one batch-progress call for both jobs"
    assert not stats["health"], "no replication-health API was called"


def test_throughput_follows_the_answer(run: Any, tmp_path: Path) -> None:
    sim = start_simulator(tmp_path, THROUGHPUT_JOBS)
    exp = run(sim, sim_config(sim, ["incr"], cache_ttl=1))
    assert value(exp.metrics(), "huaweicloud_drs_job_apply_rows_per_second", job_id="incr") == 250
    sim.admin("jobs/incr", {"health": {"apply_rows_rate": 75}})
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_job_apply_rows_per_second", job_id="incr") == 75, 15)
