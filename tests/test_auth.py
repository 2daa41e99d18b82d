"""Authentication: AK/SK headers, static token files, IAM token login and renewal."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses

from exporter.base import secrets
from exporter.base.deadline import Deadline
from exporter.base.secrets import Secret, SecretError, scrub
from exporter.drs import signer
from exporter.drs.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth, iam_endpoint_for, parse_expiry
from exporter.drs.client import DRSClient
from exporter.drs.errors import DRSAPIError
from exporter.drs.transport import ApiCall, Rejection, RetryPolicy, Transport

from .procs import wait_for

BASE = "https://drs.ap-southeast-1.myhuaweicloud.com"
IAM = "https://iam.ap-southeast-1.myhuaweicloud.com"
PROJECT = "5237e10fe9aa4ad5b16b6a5245248314"
JOB = "job-1"
URL = f"{BASE}/v5/{PROJECT}/jobs/{JOB}/progress-data/table"
OK_BODY = json.dumps(
    {
        "count": 1,
        "create_time": "1686038576882",
        "flow_compare_data": [{"src_db": "a", "src_tb": "b", "dst_db": "c", "dst_tb": "d", "progress": 10}],
    }
)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_aksk_signs_project_and_security_token() -> None:
    auth = AkSkAuth(
        Secret("ak", value="AK000001"),
        Secret("sk", value="SK-secret-value"),
        PROJECT,
        security_token=Secret("st", value="temporary-token-value"),
    )
    req = requests.Request(
        "GET", URL, params={"offset": 0, "limit": 1000}, headers={"Content-Type": "application/json"}
    )
    prepared = requests.Session().prepare_request(req)
    auth(prepared)
    fields = signer.parse_authorization(prepared.headers["Authorization"])
    assert fields is not None
    signed = fields["SignedHeaders"].split(";")
    assert {"host", "x-sdk-date", "x-project-id", "x-security-token", "content-type"} <= set(signed)
    assert "user-agent" not in signed
    assert prepared.headers["X-Project-Id"] == PROJECT
    assert prepared.headers["X-Security-Token"] == "temporary-token-value"
    # Recompute the signature independently of the auth object, as a server would.
    parts = urlsplit(prepared.url or "")
    canonical = signer.canonical_request(
        "GET", parts.path, parts.query, {n: prepared.headers[n] for n in signed}, signed, b""
    )
    expected = signer.signature("SK-secret-value", signer.string_to_sign(canonical, prepared.headers["X-Sdk-Date"]))
    assert fields["Signature"] == expected
    assert "SK-secret-value" not in repr(auth)


def test_token_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token-value\n")
    auth = StaticTokenAuth(Secret("token", file=str(path)))
    prepared = requests.Request("GET", URL).prepare()
    assert auth(prepared).headers["X-Auth-Token"] == "first-token-value"
    path.write_text("second-token-value-longer")
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    assert auth(prepared).headers["X-Auth-Token"] == "second-token-value-longer"
    # A rotation that briefly removes the file keeps the last good token.
    path.unlink()
    assert auth(prepared).headers["X-Auth-Token"] == "second-token-value-longer"
    assert "second-token" not in repr(auth)


def test_unreadable_secret_file_names_file_not_value(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="cannot read") as info:
        Secret("secret_key", file=str(tmp_path / "missing")).get()
    assert "secret_key" in str(info.value)


def test_registered_secrets_are_scrubbed() -> None:
    Secret("sk", value="a-very-secret-value-123")
    assert scrub("oops a-very-secret-value-123 leaked") == "oops <redacted> leaked"


def test_parse_expiry() -> None:
    assert (
        parse_expiry("2020-01-04T09:05:22.701000Z") == datetime(2020, 1, 4, 9, 5, 22, 701000, timezone.utc).timestamp()
    )
    assert parse_expiry("garbage") is None
    assert parse_expiry(None) is None
    assert iam_endpoint_for("eu-west-101") == "https://iam.eu-west-101.myhuaweicloud.eu"


class FakeIam:
    """Registers IAM login answers with ``responses`` and counts logins."""

    def __init__(self, lifetime: float = 86400.0, delay: float = 0.0) -> None:
        self.lifetime = lifetime
        self.delay = delay
        self.logins = 0
        self.bodies: list[Any] = []
        self.lock = threading.Lock()
        self.gate = threading.Event()  # logins wait while it is clear (at most 10 s): a login in flight
        self.gate.set()
        responses.add_callback(responses.POST, f"{IAM}/v3/auth/tokens", callback=self.login)

    def login(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        self.gate.wait(timeout=10)
        time.sleep(self.delay)
        with self.lock:
            self.logins += 1
            n = self.logins
        self.bodies.append(json.loads(request.body or b"{}"))
        now = time.time()
        body = {"token": {"issued_at": iso(now), "expires_at": iso(now + self.lifetime)}}
        return 201, {"X-Subject-Token": f"token-number-{n}"}, json.dumps(body)


def iam_auth(
    calls: list[ApiCall] | None = None,
    clock: Any = time.time,
    password: str = "pa55word!x",  # noqa: S107  # the fake IAM's
) -> tuple[IamPasswordAuth, Transport]:
    transport = Transport(
        retry=RetryPolicy(attempts=2, backoff=0.01), observer=calls.append if calls is not None else None
    )
    auth = IamPasswordAuth(
        transport,
        IAM,
        domain_name="acme",
        username="ops",
        password=Secret("pw", value=password),
        project_id=PROJECT,
        clock=clock,
    )
    return auth, transport


@responses.activate
def test_iam_login_body_and_token_use() -> None:
    iam = FakeIam()
    responses.add(responses.GET, URL, body=OK_BODY)
    calls: list[ApiCall] = []
    auth, transport = iam_auth(calls)
    DRSClient(transport, auth, BASE, PROJECT).progress_data(JOB, "table", deadline=time.monotonic() + 5)
    assert iam.bodies[0]["auth"]["identity"]["password"]["user"] == {
        "domain": {"name": "acme"},
        "name": "ops",
        "password": "pa55word!x",
    }
    assert iam.bodies[0]["auth"]["scope"] == {"project": {"id": PROJECT}}
    assert responses.calls[1].request.headers["X-Auth-Token"] == "token-number-1"
    assert [c.operation for c in calls] == ["iam_token", "show_progress_data"]
    assert "pa55word" not in repr(auth)


@responses.activate
def test_token_renewed_before_expiry() -> None:
    iam = FakeIam(lifetime=4 * 3600)
    now = [1_000_000.0]
    auth, _ = iam_auth(clock=lambda: now[0])
    assert auth.token() == "token-number-1"
    now[0] += 2 * 3600
    assert auth.token() == "token-number-1"
    now[0] += 3600 + 60  # under an hour (a quarter of the lifetime) left: renew in the background
    iam.gate.clear()  # the renewal stays in flight until the gate opens (it raced the assertion before)
    assert auth.token() == "token-number-1", "the still-valid token serves while renewal runs"
    iam.gate.set()
    wait_for(lambda: auth.logins == 2, timeout=5)
    assert auth.token() == "token-number-2"
    assert iam.logins == 2


@responses.activate
def test_token_renewed_once_on_apigw_0307_and_request_retried() -> None:
    iam = FakeIam()
    responses.add(responses.GET, URL, status=401, body=json.dumps({"error_code": "APIGW.0307", "error_msg": "update"}))
    responses.add(responses.GET, URL, body=OK_BODY)
    calls: list[ApiCall] = []
    auth, transport = iam_auth(calls)
    data = DRSClient(transport, auth, BASE, PROJECT).progress_data(JOB, "table", deadline=time.monotonic() + 5)
    assert len(data.rows) == 1
    assert iam.logins == 2
    sent = [c.request.headers.get("X-Auth-Token") for c in responses.calls if "progress-data" in (c.request.url or "")]
    assert sent == ["token-number-1", "token-number-2"]
    assert [c.error_code for c in calls if c.operation == "show_progress_data"] == ["APIGW.0307", None]


@responses.activate
def test_token_rejected_twice_is_not_renewed_forever() -> None:
    iam = FakeIam()
    responses.add(responses.GET, URL, status=401, body=json.dumps({"error_code": "APIGW.0301", "error_msg": "bad"}))
    auth, transport = iam_auth()
    with pytest.raises(DRSAPIError, match=r"APIGW\.0301"):
        DRSClient(transport, auth, BASE, PROJECT).progress_data(JOB, "table", deadline=time.monotonic() + 5)
    assert iam.logins == 2
    assert len([c for c in responses.calls if "progress-data" in (c.request.url or "")]) == 2


REJECTED_BODY = json.dumps({"error_code": "DRS.M00100", "error_msg": "invalid token"})


@responses.activate
def test_a_job_rejected_with_a_token_others_use_does_not_renew_it_per_request() -> None:
    iam = FakeIam()
    other = f"{BASE}/v5/{PROJECT}/jobs/job-refused/progress-data/table"
    responses.add(responses.GET, URL, body=OK_BODY)
    responses.add(responses.GET, other, status=403, body=REJECTED_BODY)
    auth, transport = iam_auth()
    client = DRSClient(transport, auth, BASE, PROJECT)
    client.progress_data(JOB, "table", deadline=time.monotonic() + 5)  # proves the token
    for _ in range(5):
        with pytest.raises(DRSAPIError, match=r"DRS\.M00100"):
            client.progress_data("job-refused", "table", deadline=time.monotonic() + 5)
        assert len(client.progress_data(JOB, "table", deadline=time.monotonic() + 5).rows) == 1
    # The first rejection gets one retry and at most one new token; once the new token is proven
    # by the other job too, that job's rejection is its own: no retry, no login.
    assert iam.logins <= 2
    refused = [c for c in responses.calls if "job-refused" in (c.request.url or "")]
    assert len(refused) <= 3 + 4


@responses.activate
def test_a_proven_token_rejected_for_everything_is_renewed_once_and_the_request_succeeds() -> None:
    iam = FakeIam()
    auth, transport = iam_auth()
    client = DRSClient(transport, auth, BASE, PROJECT)
    revoked: set[str] = set()
    sent: list[str] = []

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        token = request.headers.get("X-Auth-Token", "")
        sent.append(token)
        return (403, {}, REJECTED_BODY) if token in revoked else (200, {}, OK_BODY)

    responses.add_callback(responses.GET, URL, callback=answer)
    client.progress_data(JOB, "table", deadline=time.monotonic() + 5)  # token-number-1 proven
    revoked.add("token-number-1")
    data = client.progress_data(JOB, "table", deadline=time.monotonic() + 5)
    assert len(data.rows) == 1
    # Sent again once with the same token (a rejection may be about one request), then renewed.
    assert sent == ["token-number-1"] * 3 + ["token-number-2"]
    assert iam.logins == 2


@responses.activate
def test_logins_forced_by_rejections_back_off_though_each_new_token_works_elsewhere() -> None:
    iam = FakeIam()
    auth, _ = iam_auth()
    auth.BACKOFF = 0.2  # a short backoff for the test
    proof = requests.Request("GET", URL).prepare()
    forced = []
    for _ in range(4):
        token = auth.token()
        proof.headers["X-Auth-Token"] = token
        auth.accepted(proof)  # another request succeeded with it
        rejected = requests.Request("GET", URL, headers={"X-Auth-Token": token}).prepare()
        assert auth.renew_rejected(rejected, Deadline.after(5)) is Rejection.RETRY
        started = time.monotonic()
        assert auth.renew_rejected(rejected, Deadline.after(5), retried=True) is Rejection.RENEWED
        forced.append(time.monotonic() - started)
    assert iam.logins == 5
    # At once, then after 0.1-0.2 s, 0.2-0.4 s, 0.4-0.8 s (half to all of the doubled ceiling).
    assert forced[0] < 0.1 and forced[1] >= 0.1 and forced[2] >= 0.2 and forced[3] >= 0.4
    # A wait longer than the caller's deadline is not made: the rejection stands.
    token = auth.token()
    rejected = requests.Request("GET", URL, headers={"X-Auth-Token": token}).prepare()
    assert auth.renew_rejected(rejected, Deadline.after(0.05)) is Rejection.STANDS
    assert auth.token() == token, "the token is kept while the backoff holds"


@responses.activate
def test_single_renewal_under_ten_concurrent_callers() -> None:
    iam = FakeIam(delay=0.2)
    auth, _ = iam_auth()
    barrier = threading.Barrier(10)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait(timeout=5)
        tokens.append(auth.token())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert tokens == ["token-number-1"] * 10
    assert iam.logins == 1

    # Ten callers whose requests were all rejected with the same token renew it once.
    rejected = requests.Request("GET", URL, headers={"X-Auth-Token": "token-number-1"}).prepare()
    barrier = threading.Barrier(10)

    def renewer() -> None:
        barrier.wait(timeout=5)
        auth.renew_rejected(rejected)

    threads = [threading.Thread(target=renewer) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert iam.logins == 2
    assert auth.token() == "token-number-2"


@responses.activate
def test_iam_login_failure_is_a_typed_error_without_password() -> None:
    responses.add(
        responses.POST,
        f"{IAM}/v3/auth/tokens",
        status=401,
        body=json.dumps({"error": {"code": 401, "message": "The username or password is wrong."}}),
    )
    auth, _ = iam_auth()
    with pytest.raises(Exception) as info:
        auth.token()
    assert "http_401" in str(info.value)
    assert "pa55word" not in str(info.value)


def test_a_secret_file_that_cannot_be_read_for_a_moment_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Second review: a rotated file unreadable at first (a chmod after the move, no file handles)
    # was remembered as refused, and its new value never used.
    path = tmp_path / "token"
    path.write_text("token-value-0001\n")
    secret = Secret("token", file=str(path))
    assert secret.get() == "token-value-0001"
    path.write_text("token-value-0002\n")
    real_open = open

    def failing_open(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("not yet")

    monkeypatch.setattr("builtins.open", failing_open)
    assert secret.get() == "token-value-0001"
    monkeypatch.setattr("builtins.open", real_open)
    assert secret.get() == "token-value-0002"


def test_a_secret_file_with_a_bad_value_is_refused_once_then_a_good_one_is_used(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("token-value-0001\n")
    secret = Secret("token", file=str(path))
    assert secret.get() == "token-value-0001"
    path.write_text("token-value-BAD\nX: 1\n")
    assert secret.get() == "token-value-0001"
    assert secret.get() == "token-value-0001"
    path.write_text("token-value-0003\n")
    assert secret.get() == "token-value-0003"


@responses.activate
def test_a_password_that_cannot_be_read_is_a_failed_login_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    # Second review: the SecretError escaped the login as an unexpected exception (traceback, no backoff).
    auth, transport = iam_auth(password="pa55\x00word")
    with pytest.raises(DRSAPIError) as info:
        DRSClient(transport, auth, BASE, PROJECT).progress_data(JOB, "table", deadline=time.monotonic() + 5)
    assert info.value.error_code == "credentials_unavailable"
    assert "pa55" not in str(info.value) and "pa55" not in caplog.text and "Traceback" not in caplog.text
    assert len(responses.calls) == 0


def test_a_secret_file_gone_is_said_once_not_per_request(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Every request reads the secret: a removed file logged a warning per request.
    path = tmp_path / "token"
    path.write_text("token-value-0001\n")
    secret = Secret("token", file=str(path))
    assert secret.get() == "token-value-0001"
    path.unlink()
    assert [secret.get() for _ in range(5)] == ["token-value-0001"] * 5
    assert caplog.text.count("unreadable (FileNotFoundError), keeping the last value") == 1
    path.write_text("token-value-0002\n")
    assert secret.get() == "token-value-0002"
    path.unlink()
    secret.get()
    assert caplog.text.count("unreadable (FileNotFoundError), keeping the last value") == 2


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
