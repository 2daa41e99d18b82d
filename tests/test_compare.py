"""Parsing of the comparison APIs' answers: every documented shape, field spelling and status code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from exporter.base.deadline import Deadline
from exporter.drs import compare
from exporter.drs.client import DRSClient
from exporter.drs.compare import (
    DatabasePair,
    TableResult,
    latest,
    listing,
    parse_content_table,
    parse_database,
    parse_line_table,
    parse_object_overview,
    parse_run,
    status_name,
)
from exporter.drs.compare_client import CompareClient, ReadError
from exporter.drs.errors import DRSAPIError
from exporter.drs.transport import ApiCall, RetryPolicy, Transport

# The whole mapping of the API's per-table status codes 0-27 -> metric status name.
CODES = {
    0: "inconsistent",
    1: "unknown",
    2: "consistent",
    3: "target_missing",
    4: "failed",
    5: "comparing",
    6: "waiting",
    7: "cancelled",
    8: "empty",
    9: "empty",
    10: "empty",
    11: "source_missing",
    12: "target_missing",
    13: "source_missing",
    14: "connection_failed",
    15: "connection_failed",
    16: "sql_timeout",
    17: "sql_timeout",
    18: "sql_error",
    19: "sql_error",
    20: "source_missing",
    21: "source_missing",
    22: "target_missing",
    23: "too_large",
    24: "unknown",
    25: "unknown",
    26: "unknown",
    27: "timed_out",
    28: "unknown",
    -1: "unknown",
}


@pytest.mark.parametrize(("code", "name"), sorted(CODES.items()))
def test_every_status_code_maps_to_its_name(code: int, name: str) -> None:
    assert status_name(code) == name
    assert status_name(str(code)) == name  # numeric strings too
    assert status_name(float(code)) == name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("CONSISTENT", "consistent"),
        ("INCONSISTENT", "inconsistent"),
        ("COMPARING", "comparing"),
        ("WAITING_FOR_COMPARISON", "waiting"),
        ("FAILED_TO_COMPARE", "failed"),
        ("TARGET_DB_NOT_EXIST", "target_missing"),
        ("TARGET_DB_NOT_EXIT", "target_missing"),
        ("CAN_NOT_COMPARE", "failed"),
        ("consistent", "consistent"),
        ("something new", "unknown"),
        (None, "unknown"),
        (True, "unknown"),
        ([], "unknown"),
    ],
)
def test_string_enums_and_garbage(text: Any, name: str) -> None:
    assert status_name(text) == name


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("²", "unknown"),  # str.isdigit() is true for it, int() refuses it
        ("٢", "unknown"),  # a digit of another script: int() would take it as 2
        ("1_0", "unknown"),
        ("2.0", "consistent"),  # as float 2.0
        (" 2 ", "consistent"),
        ("+2", "consistent"),
        ("2e0", "consistent"),
        ("2.5", "unknown"),
        (2.5, "unknown"),
        ("nan", "unknown"),
        (float("inf"), "unknown"),
        ("-0", "inconsistent"),
    ],
)
def test_odd_status_spellings_never_raise(value: Any, name: str) -> None:
    assert status_name(value) == name
    pair = DatabasePair("db", "db", "consistent")
    table = parse_line_table({"source_table_name": "t", "status": value}, pair)
    assert table is not None and table.status == name
    database = parse_database({"source_db_name": "db", "status": value})
    assert database is not None and database.status == name


@pytest.mark.parametrize(
    ("value", "count"),
    [(5, 5), ("5", 5), ("5.0", 5), (5.0, 5), (0, 0), (-5, None), ("-5", None), ("²", None), ("٥", None), ("1e3", 1000)],
)
def test_row_counts_are_numbers_of_at_least_zero(value: Any, count: int | None) -> None:
    table = parse_line_table({"source_table_name": "t", "source_row_num": value, "target_row_num": value}, DB)
    assert table is not None and (table.source_rows, table.target_rows) == (count, count)
    assert compare.row_count(value) == count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T11:00:00", 1795777200.0),  # no zone: UTC, as the comparison APIs write their times
        ("2026-11-27 11:00:00", 1795777200.0),
        ("2026-11-27T11:00:00.5", 1795777200.5),
        ("2026-11-27T11:00:00Z", 1795777200.0),
        ("2026-11-27T12:00:00+01:00", 1795777200.0),
        ("2026-11-27", None),
        ("yesterday", None),
    ],
)
def test_times_without_a_zone_are_utc(text: str, expected: float | None) -> None:
    assert compare.timestamp(text) == expected


def test_naive_times_order_runs_like_zoned_ones() -> None:
    old = parse_run({"id": "old", "type": "lines", "status": "SUCCESSFUL", "start_time": "2026-11-27T10:00:00Z"})
    new = parse_run({"id": "new", "type": "lines", "status": "SUCCESSFUL", "start_time": "2026-11-27T11:00:00"})
    assert old is not None and new is not None
    assert latest([new, old], "lines") == (new, new)


def test_a_waiting_run_without_a_start_is_the_newest() -> None:
    done = parse_run(
        {
            "id": "done",
            "type": "lines",
            "status": "SUCCESSFUL",
            "start_time": "2026-11-27T10:00:00Z",
            "end_time": "2026-11-27T10:05:00Z",
        }
    )
    waiting = parse_run({"id": "waiting", "type": "lines", "status": "WAITING_FOR_RUNNING"})
    assert done is not None and waiting is not None
    assert latest([done, waiting], "lines") == (waiting, done)
    assert latest([waiting, done], "lines") == (waiting, done)
    # Without a start and not in flight (never ran): not newer than one that ran.
    gone = parse_run({"id": "gone", "type": "lines", "status": "CANCELLED"})
    assert gone is not None and latest([gone, done], "lines")[0] == done


def test_every_name_is_in_the_documented_set() -> None:
    names = set(compare.STATUS_CODES.values()) | set(compare.STATUS_TEXTS.values()) | {"unknown"}
    assert names <= set(compare.TABLE_STATUSES)
    assert len(set(compare.TABLE_STATUSES)) == 15


def test_list_item_iso_times_and_missing_end_time() -> None:
    run = parse_run({"id": "c1", "type": "lines", "status": "RUNNING", "start_time": "2024-04-02T06:17:56Z"})
    assert run is not None
    assert (run.id, run.compare_type, run.status, run.start_time, run.end_time) == (
        "c1",
        "lines",
        "RUNNING",
        1712038676.0,
        None,
    )
    assert run.running and not run.finished
    for end in ("", None):
        run = parse_run({"id": "c1", "type": "lines", "status": "SUCCESSFUL", "start_time": "x", "end_time": end})
        assert run is not None and run.end_time is None and run.start_time is None and run.finished


def test_list_item_epoch_millis_legacy_names_and_odd_status() -> None:
    run = parse_run(
        {"compare_task_id": "c2", "compare_type": "contents", "compare_task_status": "weird <b>", "create_time": 1.7e12}
    )
    assert run is not None
    assert (run.id, run.compare_type, run.status, run.start_time) == ("c2", "contents", "UNKNOWN", 1.7e9)
    assert parse_run({"type": "lines"}) is None
    assert parse_run("nope") is None


def test_latest_never_relies_on_list_order() -> None:
    def run(i: str, status: str, start: str, end: str | None) -> compare.CompareRun:
        parsed = parse_run({"id": i, "type": "lines", "status": status, "start_time": start, "end_time": end})
        assert parsed is not None
        return parsed

    old = run("old", "SUCCESSFUL", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z")
    new = run("new", "SUCCESSFUL", "2024-01-02T00:00:00Z", "2024-01-02T01:00:00Z")
    failed = run("failed", "FAILED", "2024-01-03T00:00:00Z", "2024-01-03T00:10:00Z")
    running = run("running", "RUNNING", "2024-01-04T00:00:00Z", None)
    values = run("values", "SUCCESSFUL", "2024-01-05T00:00:00Z", "2024-01-05T01:00:00Z")
    values = compare.CompareRun(values.id, "contents", values.status, values.start_time, values.end_time)
    for order in ([old, new, failed, running, values], [values, running, failed, new, old]):
        assert latest(order, "lines") == (running, new)
        assert latest(order, "contents") == (values, values)
    # Without end_time, start_time decides.
    a = run("a", "SUCCESSFUL", "2024-01-01T00:00:00Z", None)
    b = run("b", "SUCCESSFUL", "2024-01-02T00:00:00Z", None)
    assert latest([b, a], "lines")[1] == b
    assert latest([], "lines") == (None, None)


@pytest.mark.parametrize(
    ("body", "items", "total"),
    [
        ({"count": 2, "compare_jobs": [{}, {}]}, 2, 2),
        ({"total_count": "7", "compare_jobs": []}, 0, 7),
        ({"count": 0}, 0, 0),  # a total of 0 needs no list
        ({"count": "0", "compare_jobs": None}, 0, 0),
        ({"count": -3, "compare_jobs": []}, 0, None),
    ],
)
def test_listing_totals(body: dict[str, Any], items: int, total: int | None) -> None:
    page = listing(body, ("compare_jobs",), "op")
    assert (len(page.items), page.total) == (items, total)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "x",
        {"compare_jobs": {"a": 1}},
        # A 200 without the list is not "no comparisons" (that would drop the last good data).
        {},
        {"count": 1},
        {"compare_jobs": None},
        {"count": 3, "compare_jobs": None},
        {"count": 2, "compare_job": [{"id": "a"}]},  # misspelled key
    ],
)
def test_listing_wrong_shapes_are_invalid_responses(body: Any) -> None:
    with pytest.raises(DRSAPIError) as err:
        listing(body, ("compare_jobs",), "list_compare_jobs")
    assert err.value.error_code == "invalid_response"
    assert err.value.operation == "list_compare_jobs"


def test_listing_a_200_with_an_error_body_is_that_error() -> None:
    body = {"error_code": "DRS.10000024", "error_msg": "Another operation is running."}
    with pytest.raises(DRSAPIError) as err:
        listing(body, ("compare_jobs",), "list_compare_jobs")
    assert (err.value.error_code, err.value.status) == ("DRS.10000024", 200)
    with pytest.raises(DRSAPIError) as err:
        parse_object_overview(body)
    assert err.value.error_code == "DRS.10000024"


def test_both_overview_spellings() -> None:
    line = {"source_db_name": "db1", "target_db_name": "db2", "status": 0, "compare_num": 12}
    content = {"source_db": "db1", "target_db": "db2", "status": "2"}
    assert parse_database(line) == DatabasePair("db1", "db2", "inconsistent")
    assert parse_database(content) == DatabasePair("db1", "db2", "consistent")
    assert parse_database({"source_db": "db1"}) == DatabasePair("db1", "db1", "unknown")
    assert parse_database({"status": 2}) is None


DB = DatabasePair("sdb", "ddb", "inconsistent")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {
                "source_table_name": "orders",
                "target_table_name": "orders2",
                "source_row_num": 1000,
                "target_row_num": 998,
                "difference_row_num": 2,
                "status": 0,
            },
            TableResult("sdb", "orders", "ddb", "orders2", "inconsistent", 1000, 998, 2),
        ),
        (  # numeric strings (v5) and the legacy diff_row_num spelling
            {
                "source_table_name": "t",
                "source_row_num": "50",
                "target_row_num": "50.0",
                "diff_row_num": "0",
                "status": "CONSISTENT",
            },
            TableResult("sdb", "t", "ddb", "t", "consistent", 50, 50, 0),
        ),
        (  # no difference given: computed; garbage counts are left out
            {"source_table_name": "t", "source_row_num": 9, "target_row_num": 7, "status": 23},
            TableResult("sdb", "t", "ddb", "t", "too_large", 9, 7, 2),
        ),
        (
            {
                "source_table_name": "t",
                "source_row_num": "many",
                "target_row_num": True,
                "status": None,
                "line_compare_result": "FAILED_TO_COMPARE",
            },
            TableResult("sdb", "t", "ddb", "t", "failed", None, None, None),
        ),
    ],
)
def test_line_detail_items(item: dict[str, Any], expected: TableResult) -> None:
    assert parse_line_table(item, DB) == expected


def test_line_detail_items_without_a_table_are_skipped() -> None:
    assert parse_line_table({"source_row_num": 3}, DB) is None
    assert parse_line_table(["x"], DB) is None


@pytest.mark.parametrize(
    ("status", "result", "message", "verdict"),
    [
        (2, True, "", "consistent"),
        (2, False, "", "inconsistent"),
        (-2, "false", "", "inconsistent"),  # the minus-sign reading of the SDK text
        (1, None, "", "comparing"),
        (-1, None, "", "comparing"),
        (3, None, "", "waiting"),
        (4, True, "", "cancelled"),
        (-4, None, "", "cancelled"),
        (2, None, "timeout on source", "failed"),
        (None, None, "", "unknown"),
    ],
)
def test_content_detail_verdicts(status: Any, result: Any, message: str, verdict: str) -> None:
    item = {
        "source_db": "a",
        "target_db": "b",
        "source_table_name": "t",
        "target_table_name": "t",
        "status": status,
        "content_compare_result": result,
        "message": message,
        "source_row_num": 5,
        "target_row_num": 4,
        "difference_row_num": 1,
    }
    assert parse_content_table(item, DB) == TableResult("a", "t", "b", "t", verdict, 5, 4, 1)


def test_object_overview() -> None:
    body = {
        "status": "SUCCESSFUL",
        "create_time": "2024-04-02T06:17:56Z",
        "compare_job_id": "o1",
        "compare_result": [
            {"type": "DB", "status": 2, "source_count": 2, "target_count": 2},
            {"type": "TABLE", "status": 0, "source_count": "40", "target_count": 39},
            {"type": "VIEW", "status": 3},
            {"type": "bad type!", "status": 2},
            "junk",
        ],
    }
    overview = parse_object_overview(body)
    assert overview is not None
    assert (overview.compare_job_id, overview.status, overview.start_time) == ("o1", "SUCCESSFUL", 1712038676.0)
    assert [(o.object_type, o.source, o.target, o.status) for o in overview.objects] == [
        ("DB", 2, 2, "consistent"),
        ("TABLE", 40, 39, "inconsistent"),
        ("VIEW", None, None, "comparing"),
    ]
    assert parse_object_overview({"compare_result": []}) is None
    with pytest.raises(DRSAPIError):
        parse_object_overview({"compare_result": "x"})


BASE = "https://drs.example.test"
PID = "0123456789abcdef0123456789abcdef"


def make_client(max_pages: int = 1000, observer: Callable[[ApiCall], None] | None = None) -> CompareClient:
    transport = Transport(timeout=5, retry=RetryPolicy(attempts=1), observer=observer)
    return CompareClient(DRSClient(transport, None, BASE, PID), max_pages=max_pages)  # type: ignore[arg-type]


@pytest.fixture
def client() -> CompareClient:
    return make_client()


@responses.activate
def test_client_pages_by_items_received_and_asks_detail_per_database(client: CompareClient) -> None:
    prefix = f"{BASE}/v3/{PID}/jobs/j1"
    runs = [{"id": f"c{i}", "type": "lines", "status": "SUCCESSFUL"} for i in range(1500)]
    responses.get(f"{prefix}/table/compare", json={"count": 1500, "compare_jobs": runs[:1000]})
    responses.get(f"{prefix}/table/compare", json={"count": 1500, "compare_jobs": runs[1000:]})
    assert len(client.runs("j1", Deadline.after(10))) == 1500
    queries = [parse_qs(urlsplit(str(c.request.url)).query) for c in responses.calls]
    assert [q["offset"] for q in queries] == [["0"], ["1000"]] and all(q["limit"] == ["1000"] for q in queries)

    responses.get(
        f"{prefix}/compare/c1/line-overview",
        json={"total_count": 2, "data_compare_overview_infos": [{"source_db_name": "a"}, {"source_db_name": "b"}]},
    )
    for db in ("a", "b"):
        responses.get(
            f"{prefix}/compare/c1/line-detail",
            match=[
                responses.matchers.query_param_matcher(
                    {"db_name": db, "target_db_name": db, "offset": "0", "limit": "1000"}
                )
            ],
            json={"total_count": 1, "table_line_compare_result_infos": [{"source_table_name": f"t_{db}", "status": 0}]},
        )
    run = compare.CompareRun("c1", "lines", "SUCCESSFUL", None, None)
    tables = client.tables("j1", run, Deadline.after(10))
    assert [(t.src_db, t.src_tb, t.status) for t in tables] == [
        ("a", "t_a", "inconsistent"),
        ("b", "t_b", "inconsistent"),
    ]


@responses.activate
def test_client_content_detail_misspelled_key(client: CompareClient) -> None:
    prefix = f"{BASE}/v3/{PID}/jobs/j1/compare/v1"
    responses.get(f"{prefix}/content-overview", json={"content_compare_result_infos": [{"source_db": "a"}]})
    responses.get(
        f"{prefix}/content-detail",
        json={"content_compare_result_infost": [{"source_table_name": "t", "content_compare_result": True}]},
    )
    run = compare.CompareRun("v1", "contents", "SUCCESSFUL", None, None)
    assert [t.status for t in client.tables("j1", run, Deadline.after(10))] == ["consistent"]


@responses.activate
def test_client_error_codes_name_the_operation(client: CompareClient) -> None:
    responses.get(
        f"{BASE}/v3/{PID}/jobs/j1/table/compare",
        status=400,
        json={"error_code": "DRS.10000010", "error_msg": "Task not found. Check the task ID."},
    )
    with pytest.raises(DRSAPIError) as err:
        client.runs("j1", Deadline.after(10))
    assert (err.value.error_code, err.value.operation) == ("DRS.10000010", "list_compare_jobs")


@responses.activate
def test_client_a_failed_database_fails_the_whole_result_set(client: CompareClient) -> None:
    prefix = f"{BASE}/v3/{PID}/jobs/j1/compare/c1"
    dbs = [{"source_db_name": f"db{i}"} for i in range(6)]
    responses.get(f"{prefix}/line-overview", json={"total_count": 6, "data_compare_overview_infos": dbs})
    for i in range(6):
        answer: dict[str, Any] = {"json": {"table_line_compare_result_infos": [{"source_table_name": "t"}]}}
        if i == 4:
            answer = {"status": 400, "json": {"error_code": "DRS.M00202", "error_msg": "bad"}}
        responses.get(
            f"{prefix}/line-detail",
            match=[responses.matchers.query_param_matcher({"db_name": f"db{i}"}, strict_match=False)],
            **answer,
        )
    run = compare.CompareRun("c1", "lines", "SUCCESSFUL", None, None)
    with pytest.raises(DRSAPIError) as err:
        client.tables("j1", run, Deadline.after(10))
    assert (err.value.error_code, err.value.operation) == ("DRS.M00202", "show_line_compare_detail")


@responses.activate
def test_client_answers_of_the_wrong_shape_are_failed_requests() -> None:
    calls: list[ApiCall] = []
    client = make_client(observer=calls.append)
    prefix = f"{BASE}/v3/{PID}/jobs/j1"
    responses.get(f"{prefix}/compare/c1/line-overview", json={"data_compare_overview_infos": [{"source_db_name": "a"}]})
    responses.get(f"{prefix}/compare/c1/line-detail", json={"table_line_compare_result_infos": {"a": 1}})
    responses.get(f"{prefix}/table/compare", json={"count": 1})
    responses.get(f"{prefix}/object/compare", json={"error_code": "DRS.10000024", "error_msg": "busy"})
    run = compare.CompareRun("c1", "lines", "SUCCESSFUL", None, None)
    reads: list[tuple[Callable[[], object], str, str]] = [
        (lambda: client.tables("j1", run, Deadline.after(10)), "show_line_compare_detail", "invalid_response"),
        (lambda: client.runs("j1", Deadline.after(10)), "list_compare_jobs", "invalid_response"),
        (lambda: client.objects("j1", Deadline.after(10)), "show_object_compare_overview", "DRS.10000024"),
    ]
    for read, operation, code in reads:
        with pytest.raises(DRSAPIError) as err:
            read()
        assert (err.value.operation, err.value.error_code) == (operation, code)
        # Counted as a failed request (api_errors_total), not only logged.
        assert (calls[-1].operation, calls[-1].job_id, calls[-1].error_code) == (operation, "j1", code)


@responses.activate
def test_client_lying_totals_stop_by_the_pages_and_are_logged(
    client: CompareClient, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{BASE}/v3/{PID}/jobs/j1/table/compare"
    runs = [{"id": f"c{i}", "type": "lines", "status": "SUCCESSFUL"} for i in range(1000)]
    responses.get(url, json={"count": 5000, "compare_jobs": runs[:2]})  # a short page long before the total
    with caplog.at_level("WARNING", logger="exporter.drs.compare_client"):
        assert len(client.runs("j1", Deadline.after(10))) == 2
    assert "says 5000 items in all, the pages held 2" in caplog.text
    caplog.clear()
    responses.replace(responses.GET, url, json={"count": 10, "compare_jobs": runs})  # a full page past the total
    with caplog.at_level("WARNING", logger="exporter.drs.compare_client"):
        assert len(client.runs("j1", Deadline.after(10))) == 1000
    assert "says 10 items in all, the pages held 1000" in caplog.text and len(responses.calls) == 2
    caplog.clear()
    responses.replace(responses.GET, url, json={"count": 1000, "compare_jobs": runs})
    with caplog.at_level("WARNING", logger="exporter.drs.compare_client"):
        assert len(client.runs("j1", Deadline.after(10))) == 1000
    assert not caplog.text  # an honest total: nothing to say


@responses.activate
def test_client_page_cap_is_per_comparison_not_per_database() -> None:
    client = make_client(max_pages=3)
    prefix = f"{BASE}/v3/{PID}/jobs/j1/compare/c1"
    dbs = [{"source_db_name": f"db{i}"} for i in range(4)]
    responses.get(f"{prefix}/line-overview", json={"total_count": 4, "data_compare_overview_infos": dbs})
    full = [{"source_table_name": f"t{i}", "status": 2} for i in range(1000)]
    detail = responses.get(
        f"{prefix}/line-detail", json={"total_count": 10**9, "table_line_compare_result_infos": full}
    )
    run = compare.CompareRun("c1", "lines", "SUCCESSFUL", None, None)
    with pytest.raises(ReadError) as err:
        client.tables("j1", run, Deadline.after(30))
    assert (err.value.error_code, err.value.operation) == ("page_cap_exceeded", "show_line_compare_detail")
    # 3 pages' worth of tables for the whole comparison (plus pages already asked for when the cap was hit,
    # which depends on how the databases' reads interleave: none when the third page ends them all),
    # not 3 pages per database (12).
    assert 3 <= detail.call_count <= 3 + len(dbs)
