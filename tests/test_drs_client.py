"""Unit tests of the exporter's DRS API client (`responses`, no server): paging, validation, error mapping,
retries, deadlines. Clients scraping the exporter: test_scrape_clients.py."""

from __future__ import annotations

import gzip
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from exporter.drs import errors
from exporter.drs.client import DRSClient, endpoint_for_region
from exporter.drs.errors import DRSAPIError, error_from_body
from exporter.drs.interpret import parse_retry_after
from exporter.drs.transport import ApiCall, RetryPolicy, Transport

BASE = "https://drs.ap-southeast-1.myhuaweicloud.com"
PROJECT = "5237e10fe9aa4ad5b16b6a5245248314"
JOB = "163b98e8-6088-46c3-8b86-c18fea6jb502"
URL = f"{BASE}/v5/{PROJECT}/jobs/{JOB}/progress-data/table"


def row(i: int, progress: Any = 50) -> dict[str, Any]:
    return {
        "src_db": f"db{i // 100}",
        "src_tb": f"t{i}",
        "dst_db": f"db{i // 100}",
        "dst_tb": f"t{i}",
        "progress": progress,
    }


def paged(total: int, *, page_cap: int = 1000, rows: list[dict[str, Any]] | None = None) -> Any:
    """A callback serving ``total`` rows with item offsets, like the real API."""
    data = rows if rows is not None else [row(i) for i in range(total)]

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        q = parse_qs(urlsplit(request.url or "").query)
        offset, limit = int(q["offset"][0]), min(int(q["limit"][0]), page_cap)
        body = {"count": total, "create_time": "1686038576882", "flow_compare_data": data[offset : offset + limit]}
        return 200, {}, json.dumps(body)

    return callback


def offsets(rsps: responses.RequestsMock) -> list[int]:
    return sorted(int(parse_qs(urlsplit(c.request.url or "").query)["offset"][0]) for c in rsps.calls)


def make_client(
    calls: list[ApiCall] | None = None, *, attempts: int = 3, page_size: int = 1000, max_pages: int = 1000
) -> DRSClient:
    transport = Transport(
        retry=RetryPolicy(attempts=attempts, backoff=0.01, backoff_max=0.02),
        observer=calls.append if calls is not None else None,
        timeout=2,
    )
    return DRSClient(transport, None, BASE, PROJECT, page_size=page_size, max_pages=max_pages)  # type: ignore[arg-type]


def soon(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


@pytest.mark.parametrize(
    ("count", "expected_offsets"),
    [(0, [0]), (1, [0]), (999, [0]), (1000, [0]), (1001, [0, 1000]), (2500, [0, 1000, 2000])],
)
@responses.activate
def test_paging_offsets(count: int, expected_offsets: list[int]) -> None:
    responses.add_callback(responses.GET, URL, callback=paged(count))
    data = make_client().progress_data(JOB, "table", deadline=soon())
    assert offsets(responses.mock) == expected_offsets
    assert data.count == count
    assert len(data.rows) == count
    assert {r.src_tb for r in data.rows} == {f"t{i}" for i in range(count)}
    assert all(c.request.url and "limit=1000" in c.request.url for c in responses.calls)


@responses.activate
def test_server_capping_page_size_is_followed_by_item_offsets() -> None:
    responses.add_callback(responses.GET, URL, callback=paged(25, page_cap=10))
    data = make_client().progress_data(JOB, "table", deadline=soon())
    assert offsets(responses.mock) == [0, 10, 20]
    assert len(data.rows) == 25


@responses.activate
def test_rows_repeated_across_pages_are_merged() -> None:
    rows = [row(i) for i in range(1000)] + [row(998, 70), row(999, 80)] + [row(i) for i in range(1000, 1498)]
    responses.add_callback(responses.GET, URL, callback=paged(1500, rows=rows))
    data = make_client().progress_data(JOB, "table", deadline=soon())
    assert len(data.rows) == 1498
    assert data.duplicate_rows == 2
    by_name = {r.src_tb: r.progress for r in data.rows}
    assert by_name["t998"] == 70  # the later page wins
    assert len({(r.src_db, r.src_tb, r.dst_db, r.dst_tb) for r in data.rows}) == len(data.rows)


@responses.activate
def test_count_larger_than_rows_stops_on_empty_page() -> None:
    rows = [row(i) for i in range(1500)]
    responses.add_callback(responses.GET, URL, callback=paged(5000, rows=rows))
    data = make_client(page_size=500).progress_data(JOB, "table", deadline=soon())
    assert len(data.rows) == 1500
    assert data.count == 5000
    # Pages past the first empty one may have started concurrently, but not all ten.
    assert 0 in offsets(responses.mock) and 1500 in offsets(responses.mock)


@responses.activate
def test_page_cap() -> None:
    responses.add_callback(responses.GET, URL, callback=paged(10_000, page_cap=10))
    with pytest.raises(DRSAPIError) as info:
        make_client(max_pages=50).progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == errors.PAGE_CAP_EXCEEDED
    assert len(responses.calls) == 1  # refused before fetching the rest


@responses.activate
def test_a_failing_page_fails_the_whole_refresh() -> None:
    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        if "offset=1000" in (request.url or ""):
            return 400, {}, json.dumps({"error_code": "DRS.M00210", "error_msg": "Invalid page value."})
        return paged(2500)(request)  # type: ignore[no-any-return]

    responses.add_callback(responses.GET, URL, callback=callback)
    with pytest.raises(DRSAPIError) as info:
        make_client().progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == "DRS.M00210"


ERROR_CASES = [
    (400, {"error_code": "DRS.M05003", "error_msg": "Task information not found."}, "DRS.M05003"),
    (401, {"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"}, "APIGW.0301"),
    (403, {"errorCode": "APIG.0302", "errorMsg": "not authorized"}, "APIG.0302"),
    (403, {"code": "DRS.M00261", "message": "Invalid project ID."}, "DRS.M00261"),
    (422, {"error_code": "DRS.M00002", "error_msg": "empty"}, "DRS.M00002"),
    (404, None, "http_404"),
    (400, {"unexpected": True}, "http_400"),
]


@pytest.mark.parametrize(("status", "body", "code"), ERROR_CASES)
@responses.activate
def test_error_bodies_map_to_codes(status: int, body: Any, code: str) -> None:
    responses.add(
        responses.GET,
        URL,
        status=status,
        body="<html>error</html>" if body is None else json.dumps(body),
        headers={"X-Request-Id": "req-123"},
    )
    calls: list[ApiCall] = []
    with pytest.raises(DRSAPIError) as info:
        make_client(calls).progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == code
    assert info.value.status == status
    assert info.value.request_id == "req-123"
    assert len(responses.calls) == 1, "4xx is never retried"
    assert [(c.operation, c.job_id, c.error_code) for c in calls] == [("show_progress_data", JOB, code)]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"count": -1, "flow_compare_data": []}', "negative"),
        ('{"count": "many", "flow_compare_data": []}', "not an integer"),
        ('{"count": 1, "flow_compare_data": {"a": 1}}', "not a list"),
    ],
)
@responses.activate
def test_invalid_responses(body: str, why: str) -> None:
    responses.add(responses.GET, URL, body=body)
    with pytest.raises(DRSAPIError) as info:
        make_client().progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == errors.INVALID_RESPONSE
    assert why in str(info.value)


@responses.activate
def test_body_over_cap() -> None:
    responses.add(responses.GET, URL, body=json.dumps({"count": 1, "flow_compare_data": [row(0)] * 200}))
    client = make_client()
    client.transport.max_body_bytes = 1024
    with pytest.raises(DRSAPIError) as info:
        client.progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == errors.RESPONSE_TOO_LARGE


@responses.activate
def test_timeout_and_connection_errors_are_retried_then_mapped() -> None:
    responses.add(responses.GET, URL, body=requests.exceptions.ReadTimeout("slow"))
    calls: list[ApiCall] = []
    with pytest.raises(DRSAPIError) as info:
        make_client(calls, attempts=3).progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == errors.TIMEOUT
    assert len(responses.calls) == 3
    assert [c.error_code for c in calls] == ["timeout"] * 3

    responses.replace(responses.GET, URL, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(DRSAPIError) as info:
        make_client(attempts=2).progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == errors.CONNECTION_ERROR


@responses.activate
def test_429_retried_with_retry_after_and_every_failure_counted() -> None:
    throttled = json.dumps({"error_code": "APIGW.0308", "error_msg": "throttled"})
    responses.add(responses.GET, URL, status=429, body=throttled, headers={"Retry-After": "1"})
    responses.add(responses.GET, URL, status=503, body="")
    responses.add_callback(responses.GET, URL, callback=paged(3))
    calls: list[ApiCall] = []
    started = time.monotonic()
    data = make_client(calls, attempts=4).progress_data(JOB, "table", deadline=soon())
    assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert len(data.rows) == 3
    assert [c.error_code for c in calls] == ["APIGW.0308", "http_503", None]


@responses.activate
def test_retry_after_beyond_deadline_gives_up_at_once() -> None:
    throttled = json.dumps({"error_code": "APIGW.0308", "error_msg": "throttled"})
    responses.add(responses.GET, URL, status=429, body=throttled, headers={"Retry-After": "30"})
    started = time.monotonic()
    with pytest.raises(DRSAPIError) as info:
        make_client(attempts=5).progress_data(JOB, "table", deadline=soon(1.0))
    assert info.value.error_code == "APIGW.0308"
    assert info.value.retry_after == 30
    assert time.monotonic() - started < 1.0
    assert len(responses.calls) == 1


@responses.activate
def test_no_retry_on_400() -> None:
    responses.add(responses.GET, URL, status=400, body=json.dumps({"error_code": "DRS.M00007", "error_msg": "bad"}))
    with pytest.raises(DRSAPIError):
        make_client(attempts=5).progress_data(JOB, "table", deadline=soon())
    assert len(responses.calls) == 1


@responses.activate
def test_deadline_respected_across_retries() -> None:
    responses.add(responses.GET, URL, status=500, body="")
    transport = Transport(retry=RetryPolicy(attempts=100, backoff=0.2, backoff_max=0.2), timeout=2)
    client = DRSClient(transport, None, BASE, PROJECT)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(DRSAPIError):
        client.progress_data(JOB, "table", deadline=started + 0.8)
    assert time.monotonic() - started < 1.0
    assert 1 <= len(responses.calls) < 100


def test_deadline_already_passed() -> None:
    with pytest.raises(DRSAPIError) as info:
        make_client().progress_data(JOB, "table", deadline=time.monotonic() - 1)
    assert info.value.error_code == errors.DEADLINE_EXCEEDED


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5", 5.0), ("0", 0.0), (None, None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date_in_the_future() -> None:
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    seconds = parse_retry_after(when)
    assert seconds is not None and 25 <= seconds <= 31


@responses.activate
def test_headers_language_and_user_agent() -> None:
    responses.add_callback(responses.GET, URL, callback=paged(1))
    transport = Transport(language="zh-cn")
    DRSClient(transport, None, BASE, PROJECT).progress_data(JOB, "table", deadline=soon())  # type: ignore[arg-type]
    sent = responses.calls[0].request.headers
    assert sent["X-Language"] == "zh-cn"
    assert sent["User-Agent"].startswith("huaweicloud-drs-exporter/")
    assert sent["Content-Type"] == "application/json"


@responses.activate
def test_pages_after_the_first_are_fetched_concurrently() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()
    inner = paged(5000)

    def callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        with lock:
            active -= 1
        return inner(request)  # type: ignore[no-any-return]

    responses.add_callback(responses.GET, URL, callback=callback)
    data = make_client().progress_data(JOB, "table", deadline=soon())
    assert len(data.rows) == 5000
    assert peak >= 2


def test_endpoint_for_region() -> None:
    assert endpoint_for_region("ap-southeast-1") == "https://drs.ap-southeast-1.myhuaweicloud.com"
    assert endpoint_for_region("eu-west-101") == "https://drs.eu-west-101.myhuaweicloud.eu"


def test_unknown_object_type() -> None:
    with pytest.raises(ValueError, match="unknown object type"):
        make_client().progress_data(JOB, "tables", deadline=soon())


@responses.activate
def test_search_name_is_sent() -> None:
    responses.add_callback(responses.GET, URL, callback=paged(1))
    make_client().progress_data(JOB, "table", deadline=soon(), search_name="orders")
    assert "search_name=orders" in (responses.calls[0].request.url or "")


def _progress_json(total: int) -> bytes:
    return json.dumps({"count": total, "create_time": "1686038576882", "flow_compare_data": [row(0)] * total}).encode()


@responses.activate
def test_a_gzip_body_is_decoded_by_the_transport() -> None:
    responses.add(responses.GET, URL, body=gzip.compress(_progress_json(1)), headers={"Content-Encoding": "gzip"})
    page = make_client().progress_data(JOB, "table", deadline=soon())
    assert page.count == 1 and len(page.rows) == 1


@pytest.mark.parametrize(
    ("body", "coding", "code"),
    [
        # 64 MiB of zeros compress to about 64 KiB: the decoded size is what the cap bounds.
        (gzip.compress(b"0" * (64 * 1024 * 1024 + 10)), "gzip", errors.RESPONSE_TOO_LARGE),
        (b"\x28\xb5\x2f\xfd", "zstd", errors.INVALID_RESPONSE),  # never asked for: only gzip is
        (b"\x1f\x8b\x08\x00garbage-not-deflate", "gzip", errors.CONNECTION_ERROR),
    ],
    ids=["bomb", "unrequested-coding", "corrupt"],
)
@responses.activate
def test_coded_bodies_that_fail(body: bytes, coding: str, code: str) -> None:
    responses.add(responses.GET, URL, body=body, headers={"Content-Encoding": coding})
    with pytest.raises(DRSAPIError) as info:
        make_client(attempts=1).progress_data(JOB, "table", deadline=soon())
    assert info.value.error_code == code
    assert responses.calls[0].request.headers["Accept-Encoding"] == "gzip"


@pytest.mark.parametrize("trailer", [b"", b"\x00\x00garbage"], ids=["members", "members-then-garbage"])
@responses.activate
def test_gzip_members_follow_each_other_and_trailing_garbage_is_ignored(trailer: bytes) -> None:
    body = _progress_json(3)
    half = len(body) // 2
    responses.add(
        responses.GET,
        URL,
        body=gzip.compress(body[:half]) + gzip.compress(body[half:]) + trailer,
        headers={"Content-Encoding": "gzip"},
    )
    page = make_client().progress_data(JOB, "table", deadline=soon())
    assert page.count == 3


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("DRS.M05003", "DRS.M05003"),
        ("APIGW.0301", "APIGW.0301"),
        ("APIG.0101", "APIG.0101"),
        ("IAM.0001", "IAM.0001"),
        ("Something went wrong <b>x</b>", "invalid_error_code"),
        ("DRS.M05003 and more", "invalid_error_code"),
        ("x" * 200, "invalid_error_code"),
        ("DRS", "invalid_error_code"),
    ],
)
def test_error_codes_from_server_text_are_checked(code: str, label: str) -> None:
    assert error_from_body({"error_code": code, "error_msg": "m"}) == (label, "m")
