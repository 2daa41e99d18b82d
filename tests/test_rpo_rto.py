"""RPO/RTO of DR jobs (v3 batch-rpo-and-rto, on by default) and DR jobs' monitor data from the batched
v3 DR monitoring API, in the exporter process against the simulator (issue 24 item 2, item 1's DR part)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from exporter import app, config
from exporter.drs.batch import Batch, EntryError
from exporter.drs.client import DRSClient
from exporter.drs.rpo import RpoRto
from exporter.metrics.rpo_metrics import RpoRtoSource
from exporter.render.exposition import TEXT
from exporter.sources.rpo import RpoRtoReader

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for
from .test_replication_health import job_status, opt_in_health_calls, promtool_clean, scrape_until

DR = "cloudDataGuard"
JOBS: list[dict[str, Any]] = [
    {"id": "dr-a", "job_type": DR, "objects": {"table": 3}, "health": {"rpo_ms": 1500, "rto_ms": 800}},
    {"id": "dr-b", "job_type": DR, "objects": {"table": 3}, "health": {"rpo_ms": 3000, "rto_ms": 2000}},
    {"id": "dr-err", "job_type": DR, "objects": {"table": 3}, "health": {"rpo_error": "DRS.M05003"}},
    {"id": "dr-off", "job_type": DR, "objects": {"table": 3}},
    {"id": "plain", "job_type": "migration", "objects": {"table": 3}},
]
RPO, RTO, UP = "huaweicloud_drs_job_rpo_seconds", "huaweicloud_drs_job_rto_seconds", "huaweicloud_drs_rpo_rto_up"
SUCCESS = "huaweicloud_drs_rpo_rto_last_success_timestamp_seconds"


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    """Start a simulator with the given jobs; stopped after the test."""
    started: list[Simulator] = []

    def begin(jobs: list[dict[str, Any]]) -> Simulator:
        path = tmp_path / f"scenario-{len(started)}.yaml"
        path.write_text(yaml.safe_dump({"jobs": jobs}))
        started.append(Simulator("--scenario", str(path)))
        return started[-1]

    yield begin
    for sim in started:
        sim.stop()


def errors_of(text: str, operation: str, job_id: str) -> dict[str, float]:
    return {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == operation and dict(k).get("job_id") == job_id
    }


def dr_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    """dr-a and dr-err configured as DR jobs, dr-off with rpo_rto off; dr-b and plain found by discovery."""
    jobs = [
        {"id": "dr-a", "job_type": DR},
        {"id": "dr-err", "job_type": DR},
        {"id": "dr-off", "job_type": DR, "rpo_rto": False},
    ]
    discovery = {"job_types": [DR, "migration"]}
    return sim_config(sim, jobs, retries=0, discovery=discovery, **extra)


def test_rpo_rto_values_health_and_an_entry_error_that_fails_no_other_job(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS)
    exp = start(dr_config(sim, rpo_rto_refresh_interval=600))
    text = scrape_until(
        exp, lambda t: value(t, RPO, job_id="dr-b") is not None and value(t, UP, job_id="dr-err") is not None, 20
    )
    # The API page gives milliseconds: exported in seconds.
    assert value(text, RPO, job_id="dr-a") == 1.5 and value(text, RTO, job_id="dr-a") == 0.8
    assert value(text, RPO, job_id="dr-b") == 3 and value(text, RTO, job_id="dr-b") == 2, "discovered DR job"
    assert value(text, UP, job_id="dr-a") == 1 and value(text, UP, job_id="dr-b") == 1
    read = value(text, SUCCESS, job_id="dr-a")
    assert read is not None and time.time() - 120 < read <= time.time()
    # The entry with its own error_code: that job is down and counted once; the others keep their values.
    assert value(text, UP, job_id="dr-err") == 0
    assert value(text, RPO, job_id="dr-err") is None and value(text, SUCCESS, job_id="dr-err") is None
    assert errors_of(text, "batch_rpo_rto", "dr-err") == {"DRS.M05003": 1}
    assert not errors_of(text, "batch_rpo_rto", "dr-a") and not errors_of(text, "batch_rpo_rto", "dr-b")
    # rpo_rto off for one job, and a job that is no DR job: no series, not asked.
    jobs_shown = {dict(k)["job_id"] for k in samples(text, UP)}
    assert jobs_shown == {"dr-a", "dr-b", "dr-err"}
    health = sim.stats()["health"]
    assert "dr-off/batch_rpo_rto" not in health and "plain/batch_rpo_rto" not in health
    assert health.get("dr-a/batch_rpo_rto") == 1 and health.get("dr-err/batch_rpo_rto") == 1
    assert sim.stats()["requests"].get("batch_rpo_rto") == 1, "one batched call for the project's DR jobs"
    promtool_clean(text)
    # Counted once per reading, not again on the next scrapes.
    again = exp.metrics()
    assert errors_of(again, "batch_rpo_rto", "dr-err") == {"DRS.M05003": 1}
    status = job_status(exp, "dr-a")["rpo_rto"]
    assert status["up"] is True and status["error_code"] is None
    assert status["rpo_seconds"] == 1.5 and status["rto_seconds"] == 0.8
    assert status["last_success_timestamp_seconds"] == read
    failed = job_status(exp, "dr-err")["rpo_rto"]
    assert failed == {
        "up": False,
        "error_code": "DRS.M05003",
        "last_success_timestamp_seconds": None,
        "rpo_seconds": None,
        "rto_seconds": None,
    }
    assert job_status(exp, "plain")["rpo_rto"] is None and job_status(exp, "dr-off")["rpo_rto"] is None
    page = exp.get("/").text
    assert "Disaster recovery" in page and "RPO 1.5 s, RTO 0.8 s" in page and "DRS.M05003" in page


def test_rpo_rto_is_off_when_switched_off(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS[:1])
    exp = start(sim_config(sim, [{"id": "dr-a", "job_type": DR}], cache_ttl=1, rpo_rto=False))
    text = scrape_until(exp, lambda t: sim.stats()["requests"].get("batch_progress", 0) >= 2)
    assert "huaweicloud_drs_rpo_rto" not in text and RPO not in text
    # Job details are on by default (batch_status, batch_detail): no other health call.
    assert not opt_in_health_calls(sim, counting={"batch_rpo_rto"}), "no batch-rpo-and-rto call"


def test_rpo_rto_kept_within_max_staleness_after_a_whole_call_fault(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS[:2])
    cfg = sim_config(
        sim,
        [{"id": "dr-a", "job_type": DR}, {"id": "dr-b", "job_type": DR}],
        retries=0,
        rpo_rto_refresh_interval=1,
        refresh_timeout=2,
        max_staleness=6,
    )
    exp = start(cfg)
    wait_for(lambda: value(exp.metrics(), RPO, job_id="dr-b") == 3, 15)
    sim.admin("jobs/dr-a", {"health_fault": "status:503"})  # the whole batched call fails, for both jobs
    text = scrape_until(exp, lambda t: value(t, UP, job_id="dr-a") == 0 and value(t, UP, job_id="dr-b") == 0)
    failed_at = time.time()
    # The failed call is counted by the transport, once per attempt, as a call about no one job
    # (job_id ""); its jobs are not counted again.
    codes = errors_of(text, "batch_rpo_rto", "")
    assert codes and all(v >= 1 for v in codes.values()), "the failed calls are counted"
    assert not errors_of(text, "batch_rpo_rto", "dr-a") and not errors_of(text, "batch_rpo_rto", "dr-b")
    assert value(text, RPO, job_id="dr-b") == 3, "the last good values are still shown"
    read = value(text, SUCCESS, job_id="dr-b")
    assert read is not None
    assert job_status(exp, "dr-b")["rpo_rto"]["error_code"] in codes
    # Older than max_staleness: the values go, the source stays down.
    text = scrape_until(exp, lambda t: value(t, RPO, job_id="dr-b") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, UP, job_id="dr-b") == 0 and value(text, SUCCESS, job_id="dr-b") is None
    assert job_status(exp, "dr-b")["rpo_rto"]["rpo_seconds"] is None
    sim.admin("jobs/dr-a", {"health_fault": None})
    wait_for(lambda: value(exp.metrics(), RPO, job_id="dr-a") == 1.5, 15)
    assert value(exp.metrics(), UP, job_id="dr-b") == 1


def test_a_reload_keeps_the_rpo_rto_read(simulate: Any) -> None:
    sim = simulate(JOBS[:1])
    cfg = config.parse(sim_config(sim, [{"id": "dr-a", "job_type": DR}], rpo_rto_refresh_interval=600))
    old = app.Exporter(cfg)
    new: app.Exporter | None = None
    try:
        source = old.source(RpoRtoSource)
        wait_for(lambda: old.scrape(10, TEXT, compress=False) and "dr-a" in source.snapshot().jobs, 15)
        kept = source.snapshot().jobs["dr-a"]
        assert kept.up and kept.data is not None
        new = app.Exporter(cfg, previous=old)
        assert new.source(RpoRtoSource).snapshot().jobs["dr-a"] == kept
        body = b"".join(new.scrape(10, TEXT, compress=False)).decode()
        assert value(body, RPO, job_id="dr-a") == 1.5
        assert sim.stats()["health"].get("dr-a/batch_rpo_rto") == 1, "not read again at once"
    finally:
        for exporter in (old, new):
            if exporter is not None:
                exporter.close()


# --- monitor data of DR jobs: batched v3 disaster-recovery-monitoring-data --------------------------------


def test_dr_jobs_monitor_data_comes_batched_from_the_dr_api(simulate: Any, start: Any) -> None:
    monitor = {"src_delay": 4, "dst_delay": 2, "dst_normal": False, "src_rps": 90, "trans_lines": 500}
    jobs = [
        {**JOBS[0], "health": {"monitor": monitor}},
        JOBS[1],
        # Configured as a DR job, but DRS answers no DR monitoring for it: that entry's error only.
        {"id": "liar", "job_type": "migration", "objects": {"table": 3}},
        {"id": "plain", "job_type": "migration", "objects": {"table": 3}, "health": {"monitor": monitor}},
    ]
    sim = simulate(jobs)
    configured = [{"id": j, "job_type": DR} for j in ("dr-a", "dr-b", "liar")]
    exp: Exporter = start(
        sim_config(
            sim, [*configured, "plain"], retries=0, monitor_data=True, rpo_rto=False, monitor_refresh_interval=600
        )
    )
    delay = "huaweicloud_drs_endpoint_delay_seconds"
    up = "huaweicloud_drs_monitor_data_up"
    text = scrape_until(
        exp,
        lambda t: (
            value(t, delay, job_id="dr-a", endpoint="source") is not None
            and value(t, up, job_id="liar") is not None
            and value(t, delay, job_id="plain", endpoint="source") is not None
        ),
        20,
    )
    assert value(text, delay, job_id="dr-a", endpoint="source") == 4
    assert value(text, delay, job_id="dr-a", endpoint="target") == 2
    assert value(text, "huaweicloud_drs_endpoint_up", job_id="dr-a", endpoint="target") == 0
    assert value(text, "huaweicloud_drs_endpoint_requests_per_second", job_id="dr-a", endpoint="source") == 90
    assert value(text, "huaweicloud_drs_job_transferred_rows", job_id="dr-a") == 500
    assert value(text, up, job_id="dr-a") == 1 and value(text, up, job_id="dr-b") == 1
    assert value(text, delay, job_id="plain", endpoint="source") == 4, "a job that is no DR job: v5 as before"
    assert value(text, up, job_id="liar") == 0
    assert errors_of(text, "show_dr_monitoring_data", "liar") == {"invalid_response": 1}
    assert not errors_of(text, "show_dr_monitoring_data", "dr-a")
    health = sim.stats()["health"]
    assert sim.stats()["requests"].get("show_dr_monitoring_data") == 1, "the three DR jobs in one call"
    assert health.get("dr-a/show_dr_monitoring_data") == 1 and "dr-a/show_monitor_data" not in health
    assert health.get("plain/show_monitor_data") == 1 and "plain/show_dr_monitoring_data" not in health
    promtool_clean(text)
    assert job_status(exp, "dr-a")["monitor"]["source"] == {"up": True, "delay_seconds": 4, "requests_per_second": 90}
    assert job_status(exp, "liar")["monitor"]["error_code"] == "invalid_response"


def test_an_entry_error_is_counted_once_and_a_failed_chunk_not_again() -> None:
    """A read with a partly failed batch: only the entries' own errors are the reader's to count."""
    counted: list[tuple[str, str, str]] = []
    reader = RpoRtoReader(60, 5, 600, on_error=lambda *error: counted.append(error))
    value_ = RpoRto("ok", None, None)
    batch: Batch[RpoRto] = Batch.of(
        {"ok": value_},
        {
            "entry": EntryError("entry", "DRS.M05003", "not found"),
            "chunk": EntryError("chunk", "http_503", "", call_failed=True),
        },
    )
    try:
        values, errors = reader._read_batch(lambda *_: batch, "batch_rpo_rto", cast(DRSClient, object()), ["x"])
    finally:
        reader.close()
    assert values == {"ok": value_} and errors == {"entry": "DRS.M05003", "chunk": "http_503"}
    assert counted == [("batch_rpo_rto", "entry", "DRS.M05003")]
