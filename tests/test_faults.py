"""The fault matrix: every misbehaviour of the API, through the simulator as a real process.

For each: /metrics answers 200 within the scrape budget, the affected key reports up 0 with a
distinct error code (or up 1 with the sane rows where the data is merely odd), other keys are
unharmed, nothing is logged more than once per refresh, and the process lives.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .procs import Exporter, Simulator, samples, sim_config, value

# fault -> (up, error code when down)
EXPECTED: dict[str, tuple[int, str | None]] = {
    "timeout": (0, "timeout"),
    "reset": (0, "connection_error"),
    "status:500": (0, "DRS.M00004"),
    "status:502": (0, "APIGW.0201"),
    "status:503": (0, "APIGW.0613"),
    "status:504": (0, "APIGW.0201"),
    "plain:500": (0, "http_500"),
    "plain:502": (0, "http_502"),
    "plain:503": (0, "http_503"),
    "plain:504": (0, "http_504"),
    "html": (0, "http_502"),
    "malformed": (0, "invalid_response"),
    "truncated": (0, "connection_error"),
    "oversize": (0, "response_too_large"),
    "count_negative": (0, "invalid_response"),
    "count_string": (0, "invalid_response"),
    "endless": (0, "page_cap_exceeded"),
    "skew": (0, "APIGW.0303"),
    "count_larger": (1, None),
    "count_smaller": (1, None),
    "repeat_rows": (1, None),
    "odd_progress": (1, None),
    "missing_keys": (1, None),
    "control_chars": (1, None),
    "create_time_garbage": (1, None),
    # Hostile bodies are bad answers (or an unreadable time), not exceptions of the exporter.
    "deep_json": (0, "invalid_response"),
    "huge_create_time": (1, None),
}


def job_id(fault: str) -> str:
    return "f-" + fault.replace(":", "-").replace("_", "-")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Simulator, Exporter, str, float]]:
    tmp = tmp_path_factory.mktemp("faults")
    scenario = {
        "jobs": [{"id": "healthy", "objects": {"table": 250}}]
        + [{"id": job_id(f), "objects": {"table": 250}, "fault": f} for f in EXPECTED]
    }
    (tmp / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    sim = Simulator("--scenario", str(tmp / "scenario.yaml"))
    config = sim_config(
        sim,
        [j["id"] for j in scenario["jobs"]],
        request_timeout=1,
        retries=1,
        page_size=100,
        max_pages=10,
        max_response_bytes=1024 * 1024,
        max_concurrency=8,
    )
    exp = Exporter(config, tmp)
    started = time.monotonic()
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    elapsed = time.monotonic() - started
    yield sim, exp, text, elapsed
    exp.stop()
    sim.stop()


def test_scrape_answers_within_budget_and_process_lives(run: tuple[Simulator, Exporter, str, float]) -> None:
    _, exp, _, elapsed = run
    assert elapsed < 10
    assert exp.proc.poll() is None
    assert exp.get("/-/healthy").status_code == 200


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_fault(run: tuple[Simulator, Exporter, str, float], fault: str) -> None:
    _, exp, text, _ = run
    up, code = EXPECTED[fault]
    job = job_id(fault)
    assert value(text, "huaweicloud_drs_up", job_id=job) == up
    if code is None:
        assert value(text, "huaweicloud_drs_refresh_error_info", job_id=job) is None
    else:
        assert value(text, "huaweicloud_drs_refresh_error_info", job_id=job, error_code=code) == 1, code
        codes = {
            dict(k)["error_code"] for k in samples(text, "huaweicloud_drs_api_errors_total") if dict(k)["job_id"] == job
        }
        # Every failed call is counted by its code; the page cap fails the refresh, not a call.
        assert codes == ({code} if code != "page_cap_exceeded" else set())
        assert not [k for k in samples(text, "huaweicloud_drs_object_progress_ratio") if dict(k)["job_id"] == job]
    lines = [line for line in exp.log().splitlines() if job in line and "level=debug" not in line]
    assert len(lines) <= 1, f"logged more than once per refresh: {lines}"


def test_healthy_key_unharmed(run: tuple[Simulator, Exporter, str, float]) -> None:
    text = run[2]
    assert value(text, "huaweicloud_drs_up", job_id="healthy") == 1
    assert value(text, "huaweicloud_drs_objects", job_id="healthy") == 250
    assert (
        len([k for k in samples(text, "huaweicloud_drs_object_progress_ratio") if dict(k)["job_id"] == "healthy"])
        == 250
    )


def ratios(text: str, job: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k: v for k, v in samples(text, "huaweicloud_drs_object_progress_ratio").items() if dict(k)["job_id"] == job}


def test_odd_data_keeps_the_sane_rows(run: tuple[Simulator, Exporter, str, float]) -> None:
    text = run[2]
    assert len(ratios(text, job_id("count_larger"))) == 250, "paging ended on the empty page"
    assert value(text, "huaweicloud_drs_objects", job_id=job_id("count_larger")) == 750
    assert len(ratios(text, job_id("count_smaller"))) == 100, "count 1: the first page only"
    assert len(ratios(text, job_id("repeat_rows"))) == 250, "repeated rows merged"
    odd = ratios(text, job_id("odd_progress"))
    assert all(0 <= v <= 1 for v in odd.values())
    assert 0.555 in odd.values() and 0.42 in odd.values(), "float and numeric-string progress kept"
    skipped = value(text, "huaweicloud_drs_skipped_rows", job_id=job_id("odd_progress"))
    assert skipped is not None and skipped > 0 and len(odd) + skipped == 250
    assert any(dict(k)["src_db"] == "" for k in ratios(text, job_id("missing_keys")))
    names = {dict(k)["src_tb"] for k in ratios(text, job_id("control_chars"))}
    assert len(names) == 250 and all("\x01" in n and "\ufffd" in n for n in names)
    assert value(text, "huaweicloud_drs_progress_data_timestamp_seconds", job_id=job_id("create_time_garbage")) is None


def test_promtool_accepts_the_faulty_scrape(run: tuple[Simulator, Exporter, str, float]) -> None:
    result = subprocess.run(["promtool", "check", "metrics"], input=run[2], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_token_expiring_in_the_middle_of_paging(tmp_path: Path) -> None:
    scenario = {"jobs": [{"id": "big", "objects": {"table": 2500}, "fault": "expire_token_mid_paging"}]}
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    sim = Simulator("--scenario", str(tmp_path / "scenario.yaml"))
    iam = sim.info["iam"]
    config: dict[str, Any] = {
        **sim_config(sim, ["big"]),
        "auth": {
            "username": iam["username"],
            "password": iam["password"],
            "domain_name": iam["domain_name"],
            "iam_endpoint": iam["endpoint"],
        },
    }
    exp = Exporter(config, tmp_path)
    try:
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_up", job_id="big") == 1
        assert len(ratios(text, "big")) == 2500, "paging resumed with the new token"
        assert value(text, "huaweicloud_drs_api_errors_total", job_id="big", error_code="APIGW.0307") >= 1  # type: ignore[operator]
        assert value(text, "huaweicloud_drs_api_requests_total", operation="iam_token") == 2
    finally:
        exp.stop()
        sim.stop()


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = {
        "endpoint": f"http://127.0.0.1:{port}",
        "project_id": "p1",
        "auth": {"token": "abcdefgh"},
        "jobs": ["j-1"],
        "retries": 1,
    }
    exp = Exporter(config, tmp_path)
    try:
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_up", job_id="j-1") == 0
        assert value(text, "huaweicloud_drs_api_errors_total", job_id="j-1", error_code="connection_error") == 2
        assert exp.proc.poll() is None
    finally:
        exp.stop()
