"""Secrets and customer data never leave, with every replication-health source on (issue 24 acceptance).

One exporter process against the simulator's --health-demo jobs, at the default log level, every
source switched on: once each source has read the job that carries the customer data (the DDL text
of demo-ddl, the error_sql of demo-dirty, DRS's failure reason of demo-failed), its logs, /metrics,
the status page and /status.json are searched for the DDL text's and the SQL's markers and for the
configuration's secret (the secret key, or the IAM password and its tokens). The per-source tests
look at one source each; this one looks at all of them in one process, where one source's log line
or status field could carry another's data.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from .procs import Simulator, value, wait_for

DDL_MARKER = "secret_marker_ddl"  # in the DDL text of demo-ddl (exporter/simulator/health_scenario.py)
SQL_MARKER = "secret_marker_sql"  # in the error_sql (and error_msg) of demo-dirty's abnormal rows
# Every source's switch (the on-by-default ones too, in case their default changes) and its interval.
SOURCES = {
    "monitor_data": "monitor_refresh_interval",
    "rpo_rto": "rpo_rto_refresh_interval",
    "job_details": "job_details_refresh_interval",
    "ddl_alarms": "ddl_refresh_interval",
    "dirty_rows": "dirty_rows_refresh_interval",
    "health_comparisons": "health_compare_refresh_interval",
}
JOBS = [
    {"id": "demo-dr", "job_type": "cloudDataGuard", "comparisons": True},
    "demo-ddl",
    "demo-dirty",
    "demo-failed",
    "job-0000",
]


@pytest.fixture
def health_demo() -> Any:
    sim = Simulator("--jobs", "1", "--objects", "5", "--health-demo")
    yield sim
    sim.stop()


def read_by_every_source(text: str) -> bool:
    """Each source has served the job whose customer data it reads."""
    return (
        value(text, "huaweicloud_drs_ddl_alarms", job_id="demo-ddl") == 1
        and value(text, "huaweicloud_drs_dirty_rows", job_id="demo-dirty", phase="incremental") == 4
        and value(text, "huaweicloud_drs_job_error_info", job_id="demo-failed") == 1
        and value(text, "huaweicloud_drs_job_rpo_seconds", job_id="demo-dr") == 1.5
        and value(text, "huaweicloud_drs_endpoint_delay_seconds", job_id="demo-dirty", endpoint="source") is not None
        and value(text, "huaweicloud_drs_compare_policy_enabled", job_id="demo-dr") == 1
    )


def credentials(sim: Simulator, kind: str, tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The ``auth`` of ``kind`` and the secrets that must not leave: the secret key, or the IAM password
    and the tokens IAM hands out (the simulator's start with ``MIIsim``)."""
    if kind == "aksk":
        return {"access_key": sim.info["access_key"], "secret_key": sim.info["secret_key"]}, [sim.info["secret_key"]]
    iam = sim.info["iam"]
    password_file = tmp_path / "password"
    password_file.write_text(iam["password"] + "\n")
    auth = {
        "username": iam["username"],
        "password_file": str(password_file),
        "domain_name": iam["domain_name"],
        "iam_endpoint": iam["endpoint"],
    }
    return auth, [iam["password"], "MIIsim"]


@pytest.mark.parametrize("kind", ["aksk", "password"])
def test_no_customer_data_or_secret_leaves_with_every_source_on(
    health_demo: Simulator, start: Any, kind: str, tmp_path: Path
) -> None:
    sim = health_demo
    auth, secrets = credentials(sim, kind, tmp_path)
    config = {
        "endpoint": sim.url,
        "project_id": sim.info["project_id"],
        "auth": auth,
        "jobs": JOBS,
        "compare_refresh_interval": 1,
        # Per-table series too (their labels are table names, never SQL); the DDL text stays off the
        # page (ddl_text_on_status_page, off by default, is the one switch that shows it, cut and escaped).
        "dirty_rows_per_table": True,
        **dict.fromkeys(SOURCES, True),
        **dict.fromkeys(SOURCES.values(), 1),
    }
    exp = start(config)  # the default log level: no --log.level
    found: list[str] = []

    def served() -> bool:
        found[:] = [exp.metrics()]
        return read_by_every_source(found[0])

    wait_for(served, timeout=30, interval=0.3)
    calls = sim.stats()["health"]
    for job, operation in (("demo-ddl", "list_ddl_alarms"), ("demo-dirty", "show_dirty_data")):
        assert calls.get(f"{job}/{operation}"), f"{operation} of {job} was never called"
    status_json = exp.get("/status.json").text
    page = exp.get("/").text
    # DRS's failure reason does reach the page and /status.json (their job): the page was read with the data in.
    assert "access denied for the DRS account" in status_json and "access denied for the DRS account" in page
    exp.proc.send_signal(signal.SIGTERM)
    exp.proc.wait(timeout=10)
    logs = exp.log()
    assert "level=debug" not in logs, "the default log level"
    for where, body in (("/metrics", found[0]), ("/", page), ("/status.json", status_json), ("the log", logs)):
        for what, needle in (
            ("the DDL text", DDL_MARKER),
            ("error_sql", SQL_MARKER),
            *(("a secret", x) for x in secrets),
        ):
            assert needle not in body, f"{what} is in {where}"


# DRS's own error_msg may quote the customer's SQL ("... syntax near 'ALTER TABLE ...'"): every source
# whose reading fails with such an answer, as a 400 error or as a 200 error body, logs the code only.
QUOTED_SQL_FAULTS = {
    "demo-ddl": {"list_ddl_alarms": "sql_error"},
    "demo-dirty": {"show_dirty_data": "sql_error_body"},
    "demo-dr": {"list_health_compare_jobs": "sql_error", "batch_rpo_rto": "sql_error"},
    "demo-failed": {"batch_status": "sql_error_body"},
}


@pytest.mark.parametrize("log_args", [(), ("--log.level", "info")], ids=["default", "info"])
def test_an_error_message_quoting_customer_sql_is_not_logged(
    health_demo: Simulator, start: Any, log_args: tuple[str, ...]
) -> None:
    sim = health_demo
    for job_id, answers in QUOTED_SQL_FAULTS.items():
        sim.admin(f"jobs/{job_id}", {"health_answers": answers})
    config = {
        "endpoint": sim.url,
        "project_id": sim.info["project_id"],
        "auth": {"access_key": sim.info["access_key"], "secret_key": sim.info["secret_key"]},
        "jobs": JOBS,
        "retries": 0,
        **dict.fromkeys(SOURCES, True),
        **dict.fromkeys(SOURCES.values(), 1),
    }
    exp = start(config, *log_args)

    def all_failed() -> bool:
        text = exp.metrics()
        return all(
            value(text, f"huaweicloud_drs_{source}_up", job_id=job) == 0
            for source, job in (
                ("ddl_data", "demo-ddl"),
                ("dirty_data", "demo-dirty"),
                ("health_compare", "demo-dr"),
                ("rpo_rto", "demo-dr"),
            )
        )

    assert wait_for(all_failed, timeout=30, interval=0.3)
    logs = exp.log()
    assert "DRS.10000001" in logs, "the failed readings are logged, with the API's error code"
    assert "secret_marker_quoted" not in logs, [line for line in logs.splitlines() if "secret_marker_quoted" in line]
    assert "secret_marker_quoted" not in exp.metrics() + exp.get("/").text


def test_drs_api_error_text_leaves_out_the_apis_message() -> None:
    from exporter.drs.errors import DRSAPIError

    quoted = "You have an error in your SQL syntax near 'ALTER TABLE secret_marker_quoted'"
    err = DRSAPIError("DRS.10000001", quoted, status=400, operation="list_ddl_alarms", request_id="r1", from_api=True)
    assert err.error_msg == quoted  # kept for the status page and debug logging
    assert str(err) == "list_ddl_alarms: DRS.10000001 (HTTP 400) [request_id=r1]"
    assert "secret_marker_quoted" not in repr(err) and "secret_marker_quoted" not in str(err.args)
    own = DRSAPIError("page_cap_exceeded", "more than 10 pages", operation="list_ddl_alarms")
    assert str(own) == "list_ddl_alarms: page_cap_exceeded: more than 10 pages"
