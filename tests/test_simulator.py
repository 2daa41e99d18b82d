"""The simulator as a real process, driven by the real client over loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from exporter.base.secrets import Secret
from exporter.drs import signer
from exporter.drs.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from exporter.drs.client import DRSClient
from exporter.drs.errors import DRSAPIError
from exporter.drs.transport import ApiCall, RetryPolicy, Transport

from .procs import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(
        "--jobs",
        "2",
        "--objects",
        "2500",
        "--types",
        "table,view",
        "--token",
        "static-token-value-1",
        "--token-ttl",
        "2",
    )
    yield s
    s.stop()


def client(sim: Simulator, auth: requests.auth.AuthBase, calls: list[ApiCall] | None = None) -> DRSClient:
    transport = Transport(
        retry=RetryPolicy(attempts=3, backoff=0.05), observer=calls.append if calls is not None else None
    )
    return DRSClient(transport, auth, sim.url, sim.info["project_id"])


def aksk(sim: Simulator, sk: str | None = None) -> AkSkAuth:
    return AkSkAuth(
        Secret("ak", value=sim.info["access_key"]),
        Secret("sk", value=sk or sim.info["secret_key"]),
        sim.info["project_id"],
    )


def test_pages_2500_objects_with_aksk(sim: Simulator) -> None:
    requests.post(f"{sim.url}/_sim/stats/reset", timeout=5)
    data = client(sim, aksk(sim)).progress_data("job-0001", "table", deadline=time.monotonic() + 10)
    assert data.count == 2500
    assert len(data.rows) == 2500
    assert len({r.src_tb for r in data.rows}) == 2500
    assert all(0 <= r.progress <= 100 for r in data.rows)
    assert data.create_time is not None and abs(data.create_time - time.time()) < 60
    assert sim.stats()["progress_data"] == {"job-0001/table": 3}


def test_iso_create_time_job(sim: Simulator) -> None:
    data = client(sim, aksk(sim)).progress_data("job-0002", "view", deadline=time.monotonic() + 10)
    assert data.create_time is not None and abs(data.create_time - time.time()) < 60


def test_wrong_secret_key_is_refused(sim: Simulator) -> None:
    calls: list[ApiCall] = []
    with pytest.raises(DRSAPIError) as info:
        client(sim, aksk(sim, sk="not-the-secret-key"), calls).progress_data(
            "job-0001", "table", deadline=time.monotonic() + 10
        )
    assert info.value.status == 401
    assert info.value.error_code == "APIGW.0301"
    assert len(calls) == 1


def test_unknown_job(sim: Simulator) -> None:
    with pytest.raises(DRSAPIError) as info:
        client(sim, aksk(sim)).progress_data("no-such-job", "table", deadline=time.monotonic() + 10)
    assert info.value.error_code == "DRS.M05003"
    assert info.value.request_id


def test_skewed_date_is_refused(sim: Simulator) -> None:
    url = f"{sim.url}/v5/{sim.info['project_id']}/jobs/job-0001/progress-data/table?offset=0&limit=10"
    signed_url, headers = signer.sign(
        "GET", url, {"X-Sdk-Date": "20200101T000000Z"}, b"", sim.info["access_key"], sim.info["secret_key"]
    )
    answer = requests.get(signed_url, headers=headers, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error_code"] == "APIGW.0301"
    assert "skew" in answer.json()["error_msg"]
    # The same request with a current date is accepted: only the date was wrong.
    signed_url, headers = signer.sign("GET", url, {}, b"", sim.info["access_key"], sim.info["secret_key"])
    assert requests.get(signed_url, headers=headers, timeout=5).status_code == 200


def test_static_token(sim: Simulator) -> None:
    data = client(sim, StaticTokenAuth(Secret("t", value="static-token-value-1"))).progress_data(
        "job-0001", "view", deadline=time.monotonic() + 10
    )
    assert len(data.rows) == 2500
    with pytest.raises(DRSAPIError) as info:
        client(sim, StaticTokenAuth(Secret("t", value="wrong-token-value"))).progress_data(
            "job-0001", "view", deadline=time.monotonic() + 10
        )
    assert info.value.error_code == "APIGW.0301"


def test_iam_tokens_expire_and_are_renewed(sim: Simulator) -> None:
    calls: list[ApiCall] = []
    transport = Transport(retry=RetryPolicy(attempts=2, backoff=0.05), observer=calls.append)
    iam = sim.info["iam"]
    auth = IamPasswordAuth(
        transport,
        iam["endpoint"],
        domain_name=iam["domain_name"],
        username=iam["username"],
        password=Secret("pw", value=iam["password"]),
        project_id=sim.info["project_id"],
    )
    c = DRSClient(transport, auth, sim.url, sim.info["project_id"])
    c.progress_data("job-0001", "table", deadline=time.monotonic() + 10)
    sim.admin("tokens/expire", {})
    c.progress_data("job-0001", "table", deadline=time.monotonic() + 10)
    assert auth.logins >= 2
    assert ("show_progress_data", "APIGW.0307") in {(x.operation, x.error_code) for x in calls}


def test_faults_429_are_retried(sim: Simulator) -> None:
    sim.admin("faults", {"rate_429": 0.5, "retry_after": "0"})
    try:
        calls: list[ApiCall] = []
        transport = Transport(retry=RetryPolicy(attempts=12, backoff=0.01, backoff_max=0.02), observer=calls.append)
        c = DRSClient(transport, aksk(sim), sim.url, sim.info["project_id"])
        data = c.progress_data("job-0001", "table", deadline=time.monotonic() + 20)
        assert len(data.rows) == 2500
        assert any(x.error_code == "APIGW.0308" for x in calls)
    finally:
        sim.admin("faults", {"rate_429": 0})


def test_malformed_and_5xx(sim: Simulator) -> None:
    sim.admin("faults", {"rate_malformed": 1.0})
    try:
        with pytest.raises(DRSAPIError) as info:
            client(sim, aksk(sim)).progress_data("job-0001", "table", deadline=time.monotonic() + 10)
        assert info.value.error_code == "invalid_response"
    finally:
        sim.admin("faults", {"rate_malformed": 0})
    sim.admin("faults", {"rate_5xx": 1.0})
    try:
        with pytest.raises(DRSAPIError) as info:
            client(sim, aksk(sim)).progress_data("job-0001", "table", deadline=time.monotonic() + 10)
        assert info.value.error_code == "DRS.M00004" and info.value.status == 500
    finally:
        sim.admin("faults", {"rate_5xx": 0})


def test_stall_freezes_progress(sim: Simulator) -> None:
    c = client(sim, aksk(sim))
    sim.admin("jobs/job-0002", {"stalled": True})
    first = c.progress_data("job-0002", "table", deadline=time.monotonic() + 10)
    time.sleep(1.1)
    second = c.progress_data("job-0002", "table", deadline=time.monotonic() + 10)
    assert first.rows == second.rows
    sim.admin("jobs/job-0002", {"stalled": False})


def test_scenario_file_with_odd_names(tmp_path: Path) -> None:
    scenario = {
        "project_id": "feedfacefeedfacefeedfacefeedface",
        "jobs": [
            {
                "id": "odd-job",
                "objects": {"table": 3},
                "time_format": "iso",
                "names": [{"src_db": 'q"uote', "src_tb": "back\\slash", "dst_db": "new\nline", "dst_tb": "数据表"}],
            }
        ],
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(json.dumps(scenario))
    s = Simulator("--scenario", str(path))
    try:
        c = client(s, aksk(s))
        data = c.progress_data("odd-job", "table", deadline=time.monotonic() + 10)
        assert data.rows[0][:4] == ('q"uote', "back\\slash", "new\nline", "数据表")
        assert s.info["project_id"] == "feedfacefeedfacefeedfacefeedface"
    finally:
        s.stop()
