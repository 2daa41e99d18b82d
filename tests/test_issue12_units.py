"""Unit-level checks of issue 12: ISO time forms without 3.11's fromisoformat, error code labels,
the redactor forgetting replaced secrets, retain() against a late refresh, IAM waits bounded by
the caller's deadline, redirects refused, the round-robin page pool."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import responses

from exporter.base import secrets
from exporter.base.deadline import Deadline
from exporter.base.fairpool import FairPool
from exporter.base.secrets import Secret, scrub
from exporter.base.timeparse import parse_iso8601
from exporter.drs.auth import IamPasswordAuth
from exporter.drs.errors import DRSAPIError, error_from_body
from exporter.drs.progress import CompactRows, ProgressData, parse_create_time
from exporter.drs.transport import RetryPolicy, Transport
from exporter.sources.cache import SnapshotCache

BASE = datetime(2020, 9, 1, 18, 50, 20, tzinfo=timezone.utc)


# Every form the API documents or is seen to send; Python 3.10's fromisoformat refuses most of them.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-09-01T18:50:20.200Z", BASE + timedelta(milliseconds=200)),  # the SDK's example
        ("2020-09-01T18:50:20.2Z", BASE + timedelta(milliseconds=200)),  # one fraction digit
        ("2020-09-01T18:50:20.20Z", BASE + timedelta(milliseconds=200)),
        ("2020-09-01T18:50:20.701000Z", BASE + timedelta(microseconds=701000)),  # IAM's expires_at
        ("2020-09-01T18:50:20.123456789Z", BASE + timedelta(microseconds=123456)),  # nanoseconds cut
        ("2020-09-01T18:50:20Z", BASE),
        ("2020-09-01T18:50:20z", BASE),
        ("2020-09-01 18:50:20Z", BASE),
        ("2020-09-01T18:50Z", BASE - timedelta(seconds=20)),
        ("2020-09-02T02:50:20+08:00", BASE),
        ("2020-09-02T02:50:20+0800", BASE),  # no colon in the offset
        ("2020-09-02T02:50:20+08", BASE),
        ("2020-09-01T13:20:20-05:30", BASE),
        ("2020-09-01T18:50:20.200+00:00", BASE + timedelta(milliseconds=200)),
        (" 2020-09-01T18:50:20Z ", BASE),
        ("2020-09-01T18:50:20", None),  # no zone: ambiguous
        ("2020-09-01", None),
        ("2020-13-01T18:50:20Z", None),  # no 13th month
        ("2020-09-01T18:50:20+24:00", None),
        ("2020-09-01T18:50:20Zjunk", None),
        ("yesterday", None),
    ],
)
def test_iso8601_forms(text: str, expected: datetime | None) -> None:
    got = parse_iso8601(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected.timestamp(), abs=1e-6)
        assert parse_create_time(text) == got


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


def test_redactor_keeps_only_live_secrets() -> None:
    secrets.register("first-live-token-value")
    secrets.unregister("first-live-token-value")
    assert scrub("first-live-token-value") == "first-live-token-value"
    size = len(secrets._known)
    for n in range(50):  # fifty renewals, each replacing the previous token
        secrets.register(f"rotating-token-{n:04d}")
        if n:
            secrets.unregister(f"rotating-token-{n - 1:04d}")
    assert len(secrets._known) == size + 1
    assert scrub("rotating-token-0049") == secrets.REDACTED


def test_retain_wins_over_a_late_refresh() -> None:
    release = threading.Event()

    def fetch(job_id: str, object_type: str, deadline: Deadline) -> ProgressData:
        release.wait(5)
        return ProgressData(1, None, CompactRows())

    cache = SnapshotCache(fetch, ttl=60, max_concurrency=2, refresh_timeout=5)
    try:
        key = ("gone", "table")
        assert cache.get_many([key], Deadline.after(0.05))[0].error_code == "scrape_timeout"
        cache.retain([])  # the job went away while its refresh runs
        release.set()
        for _ in range(100):  # bounded: the refresh ends within a few milliseconds
            if not cache._inflight:
                break
            time.sleep(0.02)
        assert not cache._inflight
        assert key not in cache._last_data and key not in cache._last_success and key not in cache._latest
        assert cache._cache is not None and key not in cache._cache
    finally:
        cache.close()


IAM = "https://iam.example.test"


@responses.activate
def test_iam_waiters_are_bounded_by_their_deadline_and_failures_back_off() -> None:
    gate = threading.Event()
    logins: list[int] = []

    def login(request: Any) -> tuple[int, dict[str, str], str]:
        logins.append(1)
        gate.wait(5)
        return 503, {}, json.dumps({"error_code": "APIGW.0613", "error_msg": "IAM unavailable"})

    responses.add_callback(responses.POST, f"{IAM}/v3/auth/tokens", callback=login)
    transport = Transport(retry=RetryPolicy(attempts=1))
    auth = IamPasswordAuth(
        transport, IAM, domain_name="d", username="u", password=Secret("pw", value="pass-word-1"), project_id="p"
    )
    # A slow login does not hold a caller past its own deadline.
    with pytest.raises(DRSAPIError) as info:
        auth.ready(Deadline.after(0.2))
    assert info.value.error_code == "deadline_exceeded"
    gate.set()
    for _ in range(100):  # bounded wait for the background login to end
        if auth._login_done is None:
            break
        time.sleep(0.02)
    # Failed: later callers get that failure at once, without a login each, until the backoff ends.
    for _ in range(5):
        with pytest.raises(DRSAPIError) as info:
            auth.ready(Deadline.after(1))
        assert info.value.error_code == "APIGW.0613"
    assert len(logins) == 1


@responses.activate
def test_redirects_are_refused_and_not_followed() -> None:
    url = "https://drs.example.test/v5/p/jobs/j/progress-data/table"
    responses.add(responses.GET, url, status=302, headers={"Location": "http://elsewhere.test/x"})
    transport = Transport(retry=RetryPolicy(attempts=3))
    with pytest.raises(DRSAPIError) as info:
        transport.request("GET", url, operation="op", deadline=Deadline.after(5))
    assert info.value.error_code == "http_3xx" and info.value.status == 302
    assert len(responses.calls) == 1, "not retried, not followed"


def test_fair_pool_takes_turns_between_keys() -> None:
    pool = FairPool(1, "test")
    order: list[str] = []
    gate = threading.Event()
    try:
        first = pool.submit("big", gate.wait, 5)  # holds the one thread while the rest is queued
        futures = [pool.submit("big", order.append, f"big{i}") for i in range(5)]
        futures.append(pool.submit("small", order.append, "small0"))
        gate.set()
        first.result(timeout=5)
        for f in futures:
            f.result(timeout=5)
        assert order.index("small0") <= 1, order
    finally:
        pool.shutdown()
