"""The replication-health client calls against `responses`: batching, per-entry errors, paging, deadlines, counting."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from exporter.drs import health_client, health_job_client
from exporter.drs.client import DRSClient
from exporter.drs.compare_client import ReadError
from exporter.drs.errors import DEADLINE_EXCEEDED, INVALID_RESPONSE, PAGE_CAP_EXCEEDED, TIMEOUT, DRSAPIError
from exporter.drs.transport import ApiCall, RetryPolicy, Transport

BASE = "https://drs.ap-southeast-1.myhuaweicloud.com"
PROJECT = "5237e10fe9aa4ad5b16b6a5245248314"
V3 = f"{BASE}/v3/{PROJECT}/jobs"
V5 = f"{BASE}/v5/{PROJECT}/jobs"


def make_client(calls: list[ApiCall] | None = None) -> DRSClient:
    transport = Transport(
        retry=RetryPolicy(attempts=2, backoff=0.01, backoff_max=0.02),
        observer=calls.append if calls is not None else None,
        timeout=2,
    )
    return DRSClient(transport, None, BASE, PROJECT)  # type: ignore[arg-type]


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


def asked(call: Any) -> list[str]:
    jobs: list[str] = json.loads(call.request.body)["jobs"]
    return jobs


def query(call: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url or "").query)


def rpo_answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    jobs = json.loads(request.body or b"{}")["jobs"]
    results = [
        {"job_id": j, "error_code": "DRS.M05003", "error_msg": "Task information not found."}
        if j.startswith("gone")
        else {"job_id": j, "rpo_info": {"delay": "2000"}, "rto_info": {"delay": "500"}}
        for j in jobs
    ]
    return 200, {}, json.dumps({"count": len(results), "results": results})


@responses.activate
def test_rpo_rto_is_batched_fifty_per_call_and_entry_errors_stay_per_job() -> None:
    responses.add_callback(responses.POST, f"{V3}/batch-rpo-and-rto", callback=rpo_answer)
    calls: list[ApiCall] = []
    ids = [f"dr-{i}" for i in range(120)] + ["gone-1", "dr-0"]  # a repeated id is asked once
    batch = health_client.fetch_rpo_rto(make_client(calls), ids, soon())
    assert [len(asked(c)) for c in responses.calls] == [50, 50, 21]
    assert len(batch.values) == 120 and batch.values["dr-7"].rpo_seconds == 2.0
    assert batch.values["dr-7"].rto_seconds == 0.5
    assert batch.errors["gone-1"].error_code == "DRS.M05003"
    assert not batch.errors["gone-1"].call_failed, "an entry's own error: the caller counts it"
    assert [c.error_code for c in calls] == [None, None, None]  # entry errors are the caller's to count


@responses.activate
def test_a_failed_chunk_marks_its_jobs_and_the_others_keep_their_values() -> None:
    first = json.dumps({"results": [{"job_id": f"j{i}", "rpo_info": {"delay": "1"}} for i in range(50)]})
    answers: Iterator[tuple[int, dict[str, str], str]] = iter([(200, {}, first)])

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        return next(answers, (400, {}, json.dumps({"error_code": "DRS.M00202", "error_msg": "bad"})))

    responses.add_callback(responses.POST, f"{V3}/batch-rpo-and-rto", callback=callback)
    calls: list[ApiCall] = []
    batch = health_client.fetch_rpo_rto(make_client(calls), [f"j{i}" for i in range(60)], soon())
    assert len(batch.values) == 50 and {e.error_code for e in batch.errors.values()} == {"DRS.M00202"}
    assert len(batch.errors) == 10
    assert [c.error_code for c in calls] == [None, "DRS.M00202"]  # the failed call is counted by the transport
    assert all(e.call_failed for e in batch.errors.values()), "so that the caller does not count them again"


@responses.activate
def test_every_chunk_failing_raises_so_a_missing_api_is_told_apart() -> None:
    responses.add(responses.POST, f"{V3}/batch-status", status=404, json={"error_code": "APIGW.0101", "error_msg": "x"})
    with pytest.raises(DRSAPIError) as caught:
        health_client.fetch_job_status(make_client(), ["a", "b"], soon())
    assert caught.value.error_code == "APIGW.0101" and caught.value.status == 404


@responses.activate
def test_an_answer_of_the_wrong_shape_is_a_counted_failed_call() -> None:
    responses.add(responses.POST, f"{V3}/batch-detail", json={"results": "nope"})
    calls: list[ApiCall] = []
    with pytest.raises(DRSAPIError) as caught:
        health_client.fetch_job_details(make_client(calls), ["a"], soon())
    assert caught.value.error_code == INVALID_RESPONSE
    assert [(c.operation, c.error_code) for c in calls] == [("batch_detail", INVALID_RESPONSE)]


@responses.activate
def test_dr_monitoring_ten_per_call_and_details_ten_per_call() -> None:
    def monitoring(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        jobs = json.loads(request.body or b"{}")["jobs"]
        body = {"results": [{"id": j, "data_guard_minitor": {"sr_delay": 1, "dst_delay": 2}} for j in jobs]}
        return 200, {}, json.dumps(body)

    def detail(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        jobs = json.loads(request.body or b"{}")["jobs"]
        return 200, {}, json.dumps({"results": [{"id": j, "status": "INCRE_TRANSFER_STARTED"} for j in jobs]})

    responses.add_callback(responses.POST, f"{V3}/disaster-recovery-monitoring-data", callback=monitoring)
    responses.add_callback(responses.POST, f"{V3}/batch-detail", callback=detail)
    client = make_client()
    ids = [f"j{i}" for i in range(25)]
    monitor = health_client.fetch_dr_monitoring(client, ids, soon())
    details = health_client.fetch_job_details(client, ids, soon())
    assert [len(asked(c)) for c in responses.calls] == [10, 10, 5, 10, 10, 5]
    assert monitor.values["j3"].target.delay_seconds == 2.0 and len(details.values) == 25


@responses.activate
def test_batch_progress_whole_entry() -> None:
    body = {
        "results": [
            {"job_id": "a", "progress": "40", "incre_trans_delay": "3", "apply_rows_rate": 7, "apply_bytes_rate": -1}
            | {"progress_map": {"data": {"completed": "40%", "remaining_time": "60"}}}
        ]
    }
    responses.add(responses.POST, f"{V3}/batch-progress", json=body)
    value = health_client.fetch_batch_progress(make_client(), ["a"], soon()).values["a"]
    assert value.progress.delay_seconds == 3.0 and value.throughput.apply_rows_per_second == 7.0
    assert value.throughput.apply_bytes_per_second is None and value.throughput.phases[0].remaining_seconds == 60.0


@responses.activate
def test_batched_calls_stop_at_the_deadline() -> None:
    def slow(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        time.sleep(0.3)
        return rpo_answer(request)

    responses.add_callback(responses.POST, f"{V3}/batch-rpo-and-rto", callback=slow)
    batch = health_client.fetch_rpo_rto(make_client(), [f"j{i}" for i in range(500)], soon(0.5))
    assert len(responses.calls) <= 2 < 10  # ten chunks were due; no call is sent once the deadline passed
    assert batch.values and len(batch.values) + len(batch.errors) == 500
    assert {e.error_code for e in batch.errors.values()} <= {DEADLINE_EXCEEDED, TIMEOUT}
    assert DEADLINE_EXCEEDED in {e.error_code for e in batch.errors.values()}


@responses.activate
def test_monitor_data_signed_path_and_parse() -> None:
    responses.add(responses.GET, f"{V5}/j1/monitor-data", json={"is_src_normal": True, "src_delay": "4"})
    data = health_job_client.fetch_monitor_data(make_client(), "j1", soon())
    assert data.source.up is True and data.source.delay_seconds == 4.0


@responses.activate
def test_ddl_alarms_page_by_items_with_status_one() -> None:
    alarms = [
        {"seqno": i, "status": 1, "ddl_text": f"ALTER {i}", "ddl_timestamp": 1700000000000 + i} for i in range(230)
    ]

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlsplit(request.url or "").query)
        offset, limit = int(q["offset"][0]), int(q["limit"][0])
        return 200, {}, json.dumps({"count": len(alarms), "ddl_list": alarms[offset : offset + limit]})

    responses.add_callback(responses.GET, f"{V5}/j1/ddl", callback=callback)
    result = health_job_client.fetch_ddl_alarms(make_client(), "j1", soon())
    assert [query(c)["offset"][0] for c in responses.calls] == ["0", "100", "200"]
    assert all(query(c)["status"] == ["1"] for c in responses.calls)
    assert result.active == 230 and result.alarms[0].seqno == 229


@responses.activate
def test_ddl_alarms_endless_paging_is_capped() -> None:
    page = {"count": 10**9, "ddl_list": [{"seqno": i, "status": 1} for i in range(100)]}
    responses.add(responses.GET, f"{V5}/j1/ddl", json=page)
    with pytest.raises(ReadError) as caught:
        health_job_client.fetch_ddl_alarms(make_client(), "j1", soon())
    assert caught.value.error_code == PAGE_CAP_EXCEEDED and len(responses.calls) == health_job_client.DDL_MAX_PAGES


@responses.activate
def test_dirty_rows_count_is_one_anonymized_call_over_the_window() -> None:
    responses.add(
        responses.GET,
        f"{V5}/j1/dirty-data",
        json={"count": 42, "dirty_data_list": [{"table_name": "t", "error_sql": "secret_marker_sql"}]},
    )
    rows = health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), window_seconds=600, now=1689736165.0)
    q = query(responses.calls[0])
    assert q["anonymize_mode"] == ["true"] and q["limit"] == ["1"] and "task_mode" not in q
    assert (q["begin_time"], q["end_time"]) == (["2023-07-19T02:59:25Z"], ["2023-07-19T03:09:25Z"])
    assert (rows.count, rows.phase, rows.tables) == (42, "incremental", None)
    full = health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), phase="full")
    assert query(responses.calls[1])["task_mode"] == ["FULL_TRANSFER"] and full.phase == "full"
    with pytest.raises(ValueError, match="phase"):
        health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), phase="both")


@responses.activate
def test_dirty_rows_per_table_pages_and_caps() -> None:
    items = [{"db_name": "d", "table_name": f"t{i % 3}", "error_sql": "x"} for i in range(1500)]

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlsplit(request.url or "").query)
        offset, limit = int(q["offset"][0]), int(q["limit"][0])
        return 200, {}, json.dumps({"count": len(items), "dirty_data_list": items[offset : offset + limit]})

    responses.add_callback(responses.GET, f"{V5}/j1/dirty-data", callback=callback)
    rows = health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), per_table=True)
    assert rows.count == 1500 and rows.tables is not None and [t.rows for t in rows.tables] == [500, 500, 500]
    assert not rows.capped and rows.exact and len(responses.calls) == 2
    # At the page bound the read stops and says so: the count is still DRS's, the tables cover the rows read.
    capped = health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), per_table=True, max_pages=1)
    assert capped.capped and capped.exact and capped.count == 1500 and len(responses.calls) == 3
    assert capped.tables is not None and sum(t.rows for t in capped.tables) == 1000


@responses.activate
def test_dirty_rows_without_a_count_are_counted_by_pages_up_to_the_bound() -> None:
    items = [{"db_name": "d", "table_name": "t", "error_sql": "secret_marker_sql"} for _ in range(2500)]

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlsplit(request.url or "").query)
        offset, limit = int(q["offset"][0]), int(q["limit"][0])
        return 200, {}, json.dumps({"dirty_data_list": items[offset : offset + limit]})

    responses.add_callback(responses.GET, f"{V5}/j1/dirty-data", callback=callback)
    rows = health_job_client.fetch_dirty_rows(make_client(), "j1", soon())
    # limit=1 gave no count: listed instead, 1 + 3 calls.
    assert (rows.count, rows.exact, rows.capped, rows.tables, len(responses.calls)) == (2500, True, False, None, 4)
    capped = health_job_client.fetch_dirty_rows(make_client(), "j1", soon(), max_pages=2)
    assert (capped.count, capped.exact, capped.capped, len(responses.calls)) == (2000, False, True, 7)
    assert "secret_marker_sql" not in repr(capped)


@responses.activate
def test_health_comparisons_runs_policy_objects_and_progress() -> None:
    runs = [
        {"id": "o-1", "type": "object_comparison", "status": "SUCCESSFUL", "start_time": "2023-07-19T01:00:00Z"}
        | {"end_time": "2023-07-19T01:05:00Z"},
        {"id": "l-1", "type": "lines", "status": "SUCCESSFUL", "start_time": "2023-07-19T00:00:00Z"},
        {"id": "l-2", "type": "lines", "status": "RUNNING", "start_time": "2023-07-19T02:00:00Z"},
        {"id": "../evil", "type": "account", "status": "RUNNING", "start_time": "2023-07-19T02:00:00Z"},
    ]
    responses.add(responses.GET, f"{V5}/j1/health-compare-jobs", json={"count": 4, "compare_jobs": runs})
    responses.add(
        responses.GET, f"{V5}/j1/compare-policy", json={"status": "OPEN", "next_compare_time": "2023-07-20T00:00:00Z"}
    )
    responses.add(
        responses.GET,
        f"{V5}/j1/health-compare-jobs/object/o-1",
        json={"compare_result": [{"type": "TABLE", "source_count": 10, "target_count": 9, "status": 0}]},
    )
    responses.add(responses.GET, f"{V5}/j1/compare-progress/l-2", json={"full_info": {"progress": 30}})
    result = health_job_client.fetch_health_comparisons(make_client(), "j1", soon())
    assert result.latest["lines"].id == "l-2" and result.latest_finished["lines"].id == "l-1"
    assert result.policy is not None and result.policy.enabled
    assert result.objects is not None and result.objects.compare_job_id == "o-1"
    assert result.objects.objects[0].status == "inconsistent"
    assert dict(result.progress) == {"l-2": result.progress["l-2"]} and result.progress["l-2"].full_ratio == 0.3
    assert len(responses.calls) == 4  # "../evil" is never put into a path
    # The finished object comparison's result is known: it never changes, so it is not asked for again.
    again = health_job_client.fetch_health_comparisons(make_client(), "j1", soon(), known=result.objects)
    assert again.objects == result.objects
    asked = [c.request.url for c in responses.calls[4:]]
    assert len(asked) == 3 and not any("/object/" in str(url) for url in asked)
    # Another finished object comparison than the one known: read.
    other = replace(result.objects, compare_job_id="o-0")
    assert (
        health_job_client.fetch_health_comparisons(make_client(), "j1", soon(), known=other).objects == result.objects
    )
    assert sum("/object/" in str(c.request.url) for c in responses.calls[7:]) == 1


@responses.activate
def test_health_comparisons_a_failing_part_fails_the_read() -> None:
    responses.add(responses.GET, f"{V5}/j1/health-compare-jobs", json={"count": 0, "compare_jobs": []})
    responses.add(responses.GET, f"{V5}/j1/compare-policy", json={"error_code": "DRS.M00304", "error_msg": "no"})
    with pytest.raises(DRSAPIError) as caught:
        health_job_client.fetch_health_comparisons(make_client(), "j1", soon())
    assert caught.value.error_code == "DRS.M00304"
    quiet = health_job_client.fetch_health_comparisons(make_client(), "j1", soon(), policy=False)
    assert quiet.runs == () and quiet.policy is None
