"""Replication-health sources of the exporter process against the simulator (issue 24).

Throughput and phase progress come from the batch-progress answer the job-level source already
reads (no call of their own).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter import app, config
from exporter.drs.joblist import parse_job_progress
from exporter.metrics.monitor_metrics import MonitorSource
from exporter.render.exposition import TEXT

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


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    """Start simulators with the given jobs (and flags); all are stopped after the test."""
    started: list[Simulator] = []

    def begin(jobs: list[dict[str, Any]], *args: str) -> Simulator:
        path = tmp_path / f"scenario-{len(started)}.yaml"
        path.write_text(yaml.safe_dump({"jobs": jobs}))
        started.append(Simulator("--scenario", str(path), *args))
        return started[-1]

    yield begin
    for sim in started:
        sim.stop()


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


def test_throughput_and_phase_progress_from_batch_progress_at_no_extra_call(simulate: Any, start: Any) -> None:
    sim = simulate(THROUGHPUT_JOBS)
    # Job details (batch-status, on by default) off: this is about what batch-progress alone gives.
    exp = start(sim_config(sim, ["incr", "full"], cache_ttl=60, job_details=False))
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


def test_throughput_follows_the_answer(simulate: Any, start: Any) -> None:
    sim = simulate(THROUGHPUT_JOBS)
    exp = start(sim_config(sim, ["incr"], cache_ttl=1))
    assert value(exp.metrics(), "huaweicloud_drs_job_apply_rows_per_second", job_id="incr") == 250
    sim.admin("jobs/incr", {"health": {"apply_rows_rate": 75}})
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_job_apply_rows_per_second", job_id="incr") == 75, 15)


# --- monitor data (v5 monitor-data, opt-in) -----------------------------------------------------

MONITOR = {
    "src_delay": 3,
    "dst_delay": 1,
    "src_normal": True,
    "dst_normal": False,
    "src_rps": 120,
    "dst_rps": 118,
    "trans_lines": 100000,
    "trans_data": 512,
}
MONITOR_JOBS: list[dict[str, Any]] = [
    {"id": "mon-a", "objects": {"table": 5}, "status": "INCRE_TRANSFER_STARTED", "health": {"monitor": MONITOR}},
    {"id": "mon-off", "objects": {"table": 5}},
    {"id": "mon-odd", "objects": {"table": 5}, "health_answers": {"show_monitor_data": "error_body"}},
]


def monitor_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    jobs = ["mon-a", {"id": "mon-off", "monitor_data": False}, "mon-odd"]
    return sim_config(sim, jobs, retries=0, monitor_data=True, **extra)


def api_errors(text: str, job_id: str, code: str) -> float:
    return (
        value(text, "huaweicloud_drs_api_errors_total", operation="show_monitor_data", job_id=job_id, error_code=code)
        or 0
    )


def scrape_until(exp: Exporter, holds: Any, timeout: float = 15) -> str:
    """The first scrape whose text ``holds``, polling at most ``timeout`` seconds."""
    found: list[str] = []

    def check() -> bool:
        found[:] = [exp.metrics()]
        return bool(holds(found[0]))

    wait_for(check, timeout)
    return found[0]


def job_status(exp: Exporter, job_id: str) -> dict[str, Any]:
    status = exp.get("/status.json").json()
    found: dict[str, Any] = next(j for p in status["projects"] for j in p["jobs"] if j["job_id"] == job_id)
    return found


# The replication-health calls of the sources on by default: job details, and RPO/RTO (of DR jobs).
ON_BY_DEFAULT = frozenset({"batch_status", "batch_detail", "batch_rpo_rto"})


def opt_in_health_calls(sim: Simulator, counting: frozenset[str] | set[str] = frozenset()) -> dict[str, int]:
    """The simulator's replication-health calls ("job/operation": count) of the sources that are off by default.

    ``counting``: operations of ``ON_BY_DEFAULT`` that count nonetheless (those of the source switched off).
    """
    skipped = ON_BY_DEFAULT - counting
    return {k: n for k, n in sim.stats()["health"].items() if k.split("/")[1] not in skipped}


def check_off_by_default(sim: Simulator, exp: Exporter, job_id: str, field: str, *families: str) -> None:
    """No call of an opt-in health API, no family starting with any of ``families``, /status.json's ``field`` null."""
    # Two rounds of job-level reads (each scrape asks for one when due): the source would have read by then.
    text = scrape_until(exp, lambda t: sim.stats()["requests"].get("batch_progress", 0) >= 2)
    assert not [f for f in families if f in text]
    assert not opt_in_health_calls(sim), "no opt-in replication-health API was called"
    assert job_status(exp, job_id)[field] is None


def test_monitor_data_is_off_by_default(simulate: Any, start: Any) -> None:
    sim = simulate(MONITOR_JOBS)
    exp = start(sim_config(sim, ["mon-a"], cache_ttl=1))
    check_off_by_default(sim, exp, "mon-a", "monitor", "huaweicloud_drs_endpoint", "huaweicloud_drs_monitor_data")


def test_monitor_data_values_source_health_and_error_codes(simulate: Any, start: Any) -> None:
    sim = simulate(MONITOR_JOBS)
    exp = start(monitor_config(sim, monitor_refresh_interval=600))
    text = scrape_until(
        exp,
        lambda t: "huaweicloud_drs_endpoint_delay_seconds{" in t and api_errors(t, "mon-odd", "DRS.10000024") == 1,
    )
    assert value(text, "huaweicloud_drs_monitor_data_up", job_id="mon-a") == 1
    assert value(text, "huaweicloud_drs_endpoint_up", job_id="mon-a", endpoint="source") == 1
    assert value(text, "huaweicloud_drs_endpoint_up", job_id="mon-a", endpoint="target") == 0
    assert value(text, "huaweicloud_drs_endpoint_delay_seconds", job_id="mon-a", endpoint="source") == 3
    assert value(text, "huaweicloud_drs_endpoint_delay_seconds", job_id="mon-a", endpoint="target") == 1
    assert value(text, "huaweicloud_drs_endpoint_requests_per_second", job_id="mon-a", endpoint="source") == 120
    assert value(text, "huaweicloud_drs_endpoint_requests_per_second", job_id="mon-a", endpoint="target") == 118
    assert value(text, "huaweicloud_drs_job_transferred_rows", job_id="mon-a") == 100000
    assert value(text, "huaweicloud_drs_job_transferred_bytes", job_id="mon-a") == 512 * 2**20
    stamp = value(text, "huaweicloud_drs_monitor_data_timestamp_seconds", job_id="mon-a")
    read = value(text, "huaweicloud_drs_monitor_data_last_success_timestamp_seconds", job_id="mon-a")
    assert stamp is not None and read is not None and abs(stamp - time.time()) < 120 and read <= time.time()
    # An error body in a 200 answer: the source is down for that job, with the answer's own code counted.
    assert value(text, "huaweicloud_drs_monitor_data_up", job_id="mon-odd") == 0
    assert value(text, "huaweicloud_drs_endpoint_delay_seconds", job_id="mon-odd", endpoint="source") is None
    # A job with monitor_data off has no series and costs no call.
    assert not any(dict(k)["job_id"] == "mon-off" for k in samples(text, "huaweicloud_drs_monitor_data_up"))
    health = sim.stats()["health"]
    assert health.get("mon-a/show_monitor_data") == 1 and "mon-off/show_monitor_data" not in health
    promtool_clean(text)
    status = job_status(exp, "mon-a")["monitor"]
    assert status["up"] is True and status["error_code"] is None
    assert status["source"] == {"up": True, "delay_seconds": 3, "requests_per_second": 120}
    assert status["target"]["up"] is False and status["transferred_rows"] == 100000
    odd = job_status(exp, "mon-odd")["monitor"]
    assert odd["up"] is False and odd["error_code"] == "DRS.10000024" and odd["source"] is None
    assert job_status(exp, "mon-off")["monitor"] is None
    page = exp.get("/").text
    assert "Endpoints (monitor data)" in page and "DRS.10000024" in page


def test_monitor_data_kept_within_max_staleness_after_a_fault(simulate: Any, start: Any) -> None:
    sim = simulate(MONITOR_JOBS[:1])
    config = sim_config(
        sim, ["mon-a"], retries=0, monitor_data=True, monitor_refresh_interval=1, refresh_timeout=2, max_staleness=6
    )
    exp = start(config)
    delay = "huaweicloud_drs_endpoint_delay_seconds"
    wait_for(lambda: value(exp.metrics(), delay, job_id="mon-a", endpoint="source") == 3, 15)
    sim.admin("jobs/mon-a", {"health_fault": "status:503"})
    text = scrape_until(exp, lambda t: value(t, "huaweicloud_drs_monitor_data_up", job_id="mon-a") == 0)
    failed_at = time.time()
    codes = {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == "show_monitor_data" and dict(k).get("job_id") == "mon-a"
    }
    assert codes and all(v >= 1 for v in codes.values()), "the failed reads are counted"
    read = value(text, "huaweicloud_drs_monitor_data_last_success_timestamp_seconds", job_id="mon-a")
    assert read is not None, "the last good data is still shown, with the time it was read"
    assert value(text, delay, job_id="mon-a", endpoint="source") == 3
    assert job_status(exp, "mon-a")["monitor"]["error_code"] in codes
    # Older than max_staleness: the data goes, the source stays down.
    text = scrape_until(exp, lambda t: value(t, delay, job_id="mon-a", endpoint="source") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, "huaweicloud_drs_monitor_data_up", job_id="mon-a") == 0
    assert value(text, "huaweicloud_drs_monitor_data_last_success_timestamp_seconds", job_id="mon-a") is None
    assert job_status(exp, "mon-a")["monitor"]["source"] is None
    sim.admin("jobs/mon-a", {"health_fault": None})
    wait_for(lambda: value(exp.metrics(), delay, job_id="mon-a", endpoint="source") == 3, 15)
    assert value(exp.metrics(), "huaweicloud_drs_monitor_data_up", job_id="mon-a") == 1


def test_a_reload_keeps_the_monitor_data_read(simulate: Any) -> None:
    sim = simulate(MONITOR_JOBS[:1])
    cfg = config.parse(sim_config(sim, ["mon-a"], monitor_data=True, monitor_refresh_interval=600))
    old = app.Exporter(cfg)
    new: app.Exporter | None = None
    try:
        source = old.source(MonitorSource)
        wait_for(lambda: old.scrape(10, TEXT, compress=False) and "mon-a" in source.snapshot().jobs, 15)
        kept = source.snapshot().jobs["mon-a"]
        assert kept.up and kept.data is not None
        new = app.Exporter(cfg, previous=old)
        assert new.source(MonitorSource).snapshot().jobs["mon-a"] == kept
        body = b"".join(new.scrape(10, TEXT, compress=False)).decode()
        assert value(body, "huaweicloud_drs_endpoint_delay_seconds", job_id="mon-a", endpoint="source") == 3
        assert sim.stats()["health"].get("mon-a/show_monitor_data") == 1, "not read again at once"
    finally:
        for exporter in (old, new):
            if exporter is not None:
                exporter.close()


def test_a_value_aged_out_is_down_as_stale_until_the_next_reading() -> None:
    """No scrape for longer than max_staleness: the value is dropped and the job is down (``stale``), never
    "up with nothing to report" (that would let DDL or abnormal-row alerts resolve), until a reading lands."""
    from exporter.base.deadline import Deadline
    from exporter.metrics.perjob import health_families
    from exporter.sources.perjob import PerJobReader
    from exporter.web.healthpage import _reading_failed

    release = threading.Event()

    class Reader(PerJobReader[str]):
        NAME = "aged-test"
        OPERATION = "aged_op"

        def fetch(self, client: Any, job_id: str, deadline: Deadline) -> str:
            release.wait(10)
            return "value"

    reader = Reader(interval=0.1, refresh_timeout=5, max_staleness=0.3)
    client: Any = object()
    try:
        release.set()
        reader.want({"job": client})
        assert wait_for(lambda: (j := reader.snapshot().jobs.get("job")) is not None and j.data, timeout=10)
        release.clear()  # the next reading hangs until released
        read_at = reader.snapshot().jobs["job"].read_at or 0.0
        time.sleep(max(0.0, read_at + 0.4 - time.time()))  # older than max_staleness: no scrape meanwhile
        state = reader.want({"job": client}).jobs["job"]
        assert (state.up, state.error_code, state.data) == (False, "stale", None)
        families = {f.name: f for f in health_families("huaweicloud_drs_test", "data", reader.snapshot())}
        assert [s.value for s in families["huaweicloud_drs_test_up"].samples] == [0.0]
        assert families["huaweicloud_drs_test_last_success_timestamp_seconds"].samples == []
        assert "older than max_staleness" in _reading_failed(state.up, state.error_code)
        release.set()
        assert wait_for(lambda: reader.snapshot().jobs["job"].up, timeout=10)
        assert reader.snapshot().jobs["job"].data == "value"
    finally:
        release.set()
        reader.close()
