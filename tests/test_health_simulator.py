"""The simulator's replication-health APIs over HTTP, and the exporter's health clients against it.

The simulator runs as a real process on 127.0.0.1; the clients use the real transport (static token).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.base.deadline import Deadline
from exporter.base.secrets import Secret
from exporter.drs import health_client, health_job_client
from exporter.drs.auth import StaticTokenAuth
from exporter.drs.client import DRSClient
from exporter.drs.compare_client import ReadError
from exporter.drs.errors import INVALID_RESPONSE, PAGE_CAP_EXCEEDED, DRSAPIError
from exporter.drs.transport import RetryPolicy, Transport
from exporter.simulator.health_scenario import demo_health_jobs

from .procs import Simulator

TOKEN = "health-test-token"
SCENARIO: dict[str, Any] = {
    "jobs": [
        *demo_health_jobs(),
        {
            "id": "failed",
            "status": "INCRE_TRANSFER_FAILED",
            "objects": {"table": 5},
            "health": {"failed_reason": "apply failed", "expired_days": 30, "full_transfer_done_ago": 7200}
            | {
                "rpo_error": "DRS.M05004",
                "ddl": [{"text": f"ALTER TABLE t{i} ADD c INT", "status": 1} for i in range(25)],
            },
        },
        {"id": "full", "status": "FULL_TRANSFER_STARTED", "objects": {"table": 5}},
        {"id": "broken", "objects": {"table": 1}, "health_fault": "status:503"},
        {
            "id": "odd",
            "objects": {"table": 1},
            "health": {"ddl": [{"text": "DROP TABLE x"}]},
            "health_answers": {"list_ddl_alarms": "endless"},
        },
    ]
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    path: Path = tmp_path_factory.mktemp("sim") / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    s = Simulator("--scenario", str(path), "--token", TOKEN)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def client(sim: Simulator) -> Iterator[DRSClient]:
    transport = Transport(retry=RetryPolicy(attempts=2, backoff=0.01, backoff_max=0.02), timeout=5)
    c = DRSClient(transport, StaticTokenAuth(Secret("token", value=TOKEN)), sim.url, sim.info["project_id"])
    try:
        yield c
    finally:
        c.close()


def soon() -> Deadline:
    return Deadline.after(10)


def call(sim: Simulator, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, f"{sim.url}{path}", headers={"X-Auth-Token": TOKEN}, timeout=10, **kw)


def v5(sim: Simulator, job: str, tail: str, **params: Any) -> requests.Response:
    return call(sim, "GET", f"/v5/{sim.info['project_id']}/jobs/{job}/{tail}", params=params)


def v3(sim: Simulator, api: str, jobs: list[str]) -> requests.Response:
    return call(sim, "POST", f"/v3/{sim.info['project_id']}/jobs/{api}", json={"jobs": jobs})


def test_batch_rpo_rto_per_entry_errors(sim: Simulator, client: DRSClient) -> None:
    batch = health_client.fetch_rpo_rto(client, ["demo-dr", "failed", "full", "nobody"], soon())
    assert (batch.values["demo-dr"].rpo_seconds, batch.values["demo-dr"].rto_seconds) == (1.5, 0.8)
    assert batch.values["demo-dr"].rpo is not None and batch.values["demo-dr"].rpo.time is not None
    codes = {j: e.error_code for j, e in batch.errors.items()}
    assert codes == {"failed": "DRS.M05004", "full": "DRS.M00304", "nobody": "DRS.M05003"}


def test_monitor_data_v5_and_dr(sim: Simulator, client: DRSClient) -> None:
    data = health_job_client.fetch_monitor_data(client, "demo-dr", soon())
    assert (data.source.delay_seconds, data.target.delay_seconds, data.source.up) == (2.0, 1.0, True)
    assert data.updated_at is not None and abs(data.updated_at - time.time()) < 300
    raw = v3(sim, "disaster-recovery-monitoring-data", ["demo-dr"]).json()
    assert "data_guard_minitor" in raw["results"][0]  # the API's own spelling
    dr = health_client.fetch_dr_monitoring(client, ["demo-dr", "demo-ddl"], soon())
    assert dr.values["demo-dr"].source.delay_seconds == 2.0 and "demo-ddl" in dr.errors


def test_batch_progress_extras(sim: Simulator, client: DRSClient) -> None:
    batch = health_client.fetch_batch_progress(client, ["demo-dr", "full"], soon())
    running, full = batch.values["demo-dr"].throughput, batch.values["full"].throughput
    assert running.apply_rows_per_second == 120 and running.apply_bytes_per_second == 40960
    assert full.apply_rows_per_second is None and full.apply_bytes_per_second is None  # -1 before incremental
    assert [p.phase for p in full.phases] == ["structure", "data", "index"]


def test_batch_status_and_detail(sim: Simulator, client: DRSClient) -> None:
    status = health_client.fetch_job_status(client, ["failed", "demo-dr"], soon())
    assert status.values["failed"].failed and status.values["failed"].error_code == "DRS.M00004"
    detail = health_client.fetch_job_details(client, ["failed", "demo-dr", "nobody"], soon())
    failed = detail.values["failed"]
    assert failed.failed_reason == "apply failed" and (failed.expired_days, failed.expired_days_assumed) == (30, False)
    assert failed.full_transfer_complete_time is not None and failed.failed_expiry is not None
    assert detail.values["demo-dr"].expired_days_assumed and detail.errors["nobody"].error_code == "DRS.M05003"


def test_ddl_alarms_paged_and_filtered(sim: Simulator, client: DRSClient) -> None:
    page = v5(sim, "failed", "ddl", status=1, offset=20, limit=10).json()
    assert page["count"] == 25 and [d["seqno"] for d in page["ddl_list"]] == [21, 22, 23, 24, 25]
    assert v5(sim, "failed", "ddl", start_seq_no=24).json()["count"] == 2
    assert v5(sim, "failed", "ddl", status="x").json()["error_code"] == "DRS.M00202"
    alarms = health_job_client.fetch_ddl_alarms(client, "demo-ddl", soon())
    assert (alarms.active, alarms.failed) == (1, 1) and alarms.alarms[0].text.startswith(
        "ALTER TABLE secret_marker_ddl"
    )
    assert health_job_client.fetch_ddl_alarms(client, "failed", soon()).active == 25


def test_dirty_rows_window_phases_and_anonymize_mode(sim: Simulator, client: DRSClient) -> None:
    raw = v5(sim, "demo-dirty", "dirty-data", limit=10).json()
    assert raw["count"] == 4 and "secret_marker_sql" in raw["dirty_data_list"][0]["error_sql"]
    rows = health_job_client.fetch_dirty_rows(client, "demo-dirty", soon())
    assert rows.count == 4 and rows.tables is None
    tables = health_job_client.fetch_dirty_rows(client, "demo-dirty", soon(), per_table=True)
    assert tables.tables is not None and sum(t.rows for t in tables.tables) == 4 and len(tables.tables) == 2
    assert health_job_client.fetch_dirty_rows(client, "demo-dirty", soon(), phase="full").count == 0
    old = health_job_client.fetch_dirty_rows(client, "demo-dirty", soon(), now=time.time() - 86400)
    assert old.count == 0  # outside the look-back window
    health = sim.stats()["health"]
    assert health["demo-dirty/show_dirty_data/anonymized"] == 4 and health["demo-dirty/show_dirty_data/plain"] == 1
    assert v5(sim, "demo-dirty", "dirty-data", anonymize_mode="maybe").status_code == 400


def test_health_comparisons_policy_objects_and_progress(sim: Simulator, client: DRSClient) -> None:
    result = health_job_client.fetch_health_comparisons(client, "demo-dr", soon())
    assert result.policy is not None and result.policy.enabled and result.policy.next_compare_time is not None
    assert set(result.latest) == {"object_comparison", "lines"} and result.objects is not None
    assert result.objects.compare_job_id == "demo-health-objects" and result.objects.objects[0].status == "consistent"
    assert v5(sim, "demo-dr", "health-compare-jobs/demo-health-rows").json()["job_name"] == "demo-dr"
    closed = health_job_client.fetch_health_comparisons(client, "demo-ddl", soon())
    assert closed.policy is not None and not closed.policy.enabled and closed.runs == ()


def test_running_health_comparison_progress_set_at_run_time(sim: Simulator, client: DRSClient) -> None:
    sim.admin("jobs/full", {"health": {"comparisons": [{"id": "run-1", "type": "lines", "status": "RUNNING"}]}})
    result = health_job_client.fetch_health_comparisons(client, "full", soon())
    assert result.latest["lines"].running and result.progress["run-1"].full_ratio is not None
    sim.admin("jobs/full", {"health": {"rpo_ms": 4000}})  # merged: the comparison stays
    assert health_client.fetch_rpo_rto(client, ["full"], soon()).values["full"].rpo_seconds == 4.0
    assert health_job_client.fetch_health_comparisons(client, "full", soon()).latest["lines"].id == "run-1"


def test_faults_transport_answers_and_run_time_changes(sim: Simulator, client: DRSClient) -> None:
    with pytest.raises(DRSAPIError) as caught:
        health_job_client.fetch_monitor_data(client, "broken", soon())
    assert caught.value.error_code == "APIGW.0613" and caught.value.status == 503
    with pytest.raises(ReadError) as endless:
        health_job_client.fetch_ddl_alarms(client, "odd", soon())
    assert endless.value.error_code == PAGE_CAP_EXCEEDED
    sim.admin("jobs/odd", {"health_answers": {"show_compare_policy": "error_body", "list_ddl_alarms": "not_list"}})
    with pytest.raises(DRSAPIError) as body_error:
        health_job_client.fetch_health_comparisons(client, "odd", soon())
    assert body_error.value.error_code == "DRS.10000024"
    with pytest.raises(DRSAPIError) as not_list:
        health_job_client.fetch_ddl_alarms(client, "odd", soon())
    assert not_list.value.error_code == INVALID_RESPONSE
    sim.admin("jobs/odd", {"health_fault": "malformed", "health_answers": {}})
    with pytest.raises(DRSAPIError) as malformed:
        health_job_client.fetch_monitor_data(client, "odd", soon())
    assert malformed.value.error_code == INVALID_RESPONSE
    # A batch with a faulty job fails as a whole (the fault is the call's); the healthy jobs' next call works.
    with pytest.raises(DRSAPIError):
        health_client.fetch_rpo_rto(client, ["odd", "demo-dr"], soon())
    sim.admin("jobs/odd", {"health_fault": None})
    assert "odd" in health_client.fetch_rpo_rto(client, ["odd", "demo-dr"], soon()).errors


def test_stats_count_requests_per_job_and_operation(sim: Simulator, client: DRSClient) -> None:
    requests.post(f"{sim.url}/_sim/stats/reset", timeout=5).raise_for_status()
    health_client.fetch_job_details(client, ["demo-dr", "demo-ddl"], soon())
    health_job_client.fetch_monitor_data(client, "demo-dr", soon())
    stats = sim.stats()
    assert stats["health"] == {
        "demo-dr/batch_detail": 1,
        "demo-ddl/batch_detail": 1,
        "demo-dr/show_monitor_data": 1,
    }
    assert stats["requests"] == {"batch_detail": 1, "show_monitor_data": 1}


def test_errors_bodies_and_bad_requests(sim: Simulator) -> None:
    assert v5(sim, "nobody", "monitor-data").json()["error_code"] == "DRS.M05003"
    assert v5(sim, "demo-dr", "health-compare-jobs/none").json()["error_code"] == "DRS.M00202"
    assert v5(sim, "demo-dr", "health-compare-jobs", limit=0).json()["error_code"] == "DRS.M00211"
    bad = call(sim, "POST", f"/v3/{sim.info['project_id']}/jobs/batch-rpo-and-rto", data=b"[1")
    assert (bad.status_code, bad.json()["error_code"]) == (400, "DRS.M00007")
    wrong_project = call(sim, "GET", "/v5/0000/jobs/demo-dr/monitor-data")
    assert wrong_project.json()["error_code"] == "DRS.M00261"
    assert requests.get(f"{sim.url}/v5/{sim.info['project_id']}/jobs/demo-dr/ddl", timeout=5).status_code == 401


def test_unknown_health_settings_are_refused(sim: Simulator) -> None:
    for change in ({"health": {"bogus": 1}}, {"health_answers": {"ddl": "x"}}, {"health_fault": "nope"}):
        answer = requests.post(f"{sim.url}/_sim/jobs/demo-dr", json=change, timeout=5)
        assert answer.status_code == 400 and answer.json()["error_code"] == "SIM.BADJOB"


def test_health_demo_flag_adds_the_demo_jobs() -> None:
    s = Simulator("--jobs", "1", "--objects", "5", "--health-demo")
    try:
        assert {"demo-dr", "demo-ddl", "demo-dirty"} <= set(s.info["jobs"])
    finally:
        s.stop()
