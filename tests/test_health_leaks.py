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
