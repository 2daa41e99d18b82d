"""Comparison results end to end: simulator → drs-exporter → a real Prometheus.

Requests are counted by the simulator, so "a finished comparison's results are read once" is
shown by its counts, not by timing.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .procs import Exporter, Simulator, sim_config, value, wait_for
from .test_end_to_end import Service, free_port

JOB = "cmp-job"
PLAIN = "plain-job"  # comparisons switched off for this job
FIRST = {
    "id": "rows-1",
    "type": "lines",
    "status": "SUCCESSFUL",
    "tables": 30,
    "per_db": 20,
    "statuses": [0, 3, 23],
    "started_ago": 7200,
}
VALUES = {"id": "values-1", "type": "contents", "status": "SUCCESSFUL", "tables": 30, "per_db": 20, "statuses": [0]}
RUNNING = {"id": "rows-0-running", "type": "lines", "status": "RUNNING", "tables": 30, "started_ago": 9000}
SCENARIO = {
    "jobs": [
        {
            "id": JOB,
            "objects": {"table": 30},
            "speed": 100,  # progress complete within seconds: the old cut-over query depends on comparisons only
            "comparisons": [VALUES, FIRST, RUNNING],
            "object_comparison": {"status": "SUCCESSFUL", "objects": {"DB": [2, 2], "TABLE": [30, 29]}},
        },
        {"id": PLAIN, "objects": {"table": 5}, "comparisons": [FIRST]},
    ]
}


# The README's old cut-over query (issue 25 replaced it in docs/metrics.md by the recorded
# job_id:huaweicloud_drs_cutover_ready:bool): still a check that the series it reads follow the latest
# row comparison, but no readiness verdict (it ignores the value comparison's inconsistent table here).
OLD_CUT_OVER = """(
  sum by (job_id) (huaweicloud_drs_objects_completed) == sum by (job_id) (huaweicloud_drs_objects)
)
and on (job_id) (
  sum by (job_id) (huaweicloud_drs_comparison_tables{compare_type="lines", status!="consistent"}) == 0
)
and on (job_id) (
  huaweicloud_drs_comparison_info{compare_type="lines", status="SUCCESSFUL"}
)"""


class Stack:
    """Simulator, exporter and Prometheus on loopback."""

    def __init__(self, tmp: Path) -> None:
        self.started = time.time()
        self.cleanup: list[Any] = []
        scenario = tmp / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(SCENARIO))
        self.sim = Simulator("--scenario", str(scenario))
        self.cleanup.append(self.sim.stop)
        (tmp / "exporter").mkdir()
        config = sim_config(
            self.sim, [JOB, {"id": PLAIN, "comparisons": False}], comparisons=True, compare_refresh_interval=1
        )
        self.exporter = Exporter(config, tmp / "exporter")
        self.cleanup.append(self.exporter.stop)
        self.instance = self.exporter.url.removeprefix("http://")
        port = free_port()
        prom_config = tmp / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "huaweicloud-drs-exporter", "static_configs": [{"targets": [self.instance]}]}
                    ],
                }
            )
        )
        prom = Service(
            [
                "prometheus",
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            tmp / "prometheus.log",
            f"http://127.0.0.1:{port}/-/ready",
        )
        self.cleanup.append(prom.stop)
        self.prometheus = f"http://127.0.0.1:{port}"

    def query(self, expr: str) -> list[Any]:
        body = requests.get(f"{self.prometheus}/api/v1/query", params={"query": expr}, timeout=30).json()
        assert body.get("status") == "success", f"{expr}: {body}"
        result: list[Any] = body["data"]["result"]
        return result

    def query_range(self, expr: str) -> list[Any]:
        params = {"query": expr, "start": str(self.started), "end": str(time.time()), "step": "1"}
        body = requests.get(f"{self.prometheus}/api/v1/query_range", params=params, timeout=30).json()
        assert body.get("status") == "success", f"{expr}: {body}"
        result: list[Any] = body["data"]["result"]
        return result

    def compare_requests(self) -> dict[str, int]:
        counts: dict[str, int] = self.sim.stats()["comparisons"]
        return counts

    def stop(self) -> None:
        for step in reversed(self.cleanup):
            step()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("compare-e2e"))
    try:
        yield s
    finally:
        s.stop()


def test_per_table_row_counts_and_statuses_reach_prometheus(stack: Stack) -> None:
    rows = wait_for(lambda: stack.query(f'huaweicloud_drs_comparison_source_rows{{job_id="{JOB}"}}'), 60, 1)
    assert len(rows) == 30
    diff = stack.query(
        f'huaweicloud_drs_comparison_source_rows{{job_id="{JOB}",src_tb="table_0000000"}}'
        f' - huaweicloud_drs_comparison_target_rows{{job_id="{JOB}",src_tb="table_0000000"}}'
    )
    assert [float(d["value"][1]) for d in diff] == [1.0]  # the simulator's inconsistent table 0 lacks one row
    statuses = {
        (s["metric"]["src_tb"], s["metric"]["status"])
        for s in stack.query(f'huaweicloud_drs_comparison_table_status{{job_id="{JOB}",compare_type="lines"}}')
    }
    expected = {("table_0000000", "inconsistent"), ("table_0000001", "target_missing"), ("table_0000002", "too_large")}
    assert expected <= statuses
    assert len(statuses) == 30 and ("table_0000003", "consistent") in statuses
    counts = {
        s["metric"]["status"]: float(s["value"][1])
        for s in stack.query(f'huaweicloud_drs_comparison_tables{{job_id="{JOB}",compare_type="lines"}}')
    }
    assert (counts["consistent"], counts["inconsistent"], counts["target_missing"], counts["too_large"]) == (
        27,
        1,
        1,
        1,
    )
    values = stack.query(f'huaweicloud_drs_comparison_table_status{{job_id="{JOB}",compare_type="contents"}} == 1')
    assert {s["metric"]["status"] for s in values} == {"consistent", "inconsistent"}
    # The latest row comparison is the running one (started later), whatever the list order.
    info = stack.query(f'huaweicloud_drs_comparison_info{{job_id="{JOB}"}}')
    assert {(s["metric"]["compare_type"], s["metric"]["compare_job_id"], s["metric"]["status"]) for s in info} == {
        ("lines", "rows-1", "SUCCESSFUL"),
        ("contents", "values-1", "SUCCESSFUL"),
        ("objects", f"{JOB}-objects", "SUCCESSFUL"),
    }
    # Progress is complete, but the latest row comparison found inconsistent tables: not ready for cut-over.
    wait_for(lambda: stack.query(f'huaweicloud_drs_objects_completed{{job_id="{JOB}"}} == 30'), 30, 1)
    assert not stack.query(OLD_CUT_OVER)
    # docs/metrics.md's example: tables whose row counts differ (table 0 lacks a row, table 1 is missing).
    differ = stack.query("huaweicloud_drs_comparison_source_rows != huaweicloud_drs_comparison_target_rows")
    assert sorted(s["metric"]["src_tb"] for s in differ) == ["table_0000000", "table_0000001"]
    objects = stack.query(f'huaweicloud_drs_comparison_objects{{job_id="{JOB}",object_type="TABLE"}}')
    assert {s["metric"]["side"]: float(s["value"][1]) for s in objects} == {"source": 30, "target": 29}
    assert not stack.query(f'{{__name__=~"huaweicloud_drs_comparison_.*",job_id="{PLAIN}"}}')
    assert stack.query(f'huaweicloud_drs_comparison_up{{job_id="{JOB}"}} == 1')


def test_finished_results_are_read_once_across_many_refreshes(stack: Stack) -> None:
    listed = f"{JOB}/list/list_compare_jobs"
    wait_for(lambda: stack.compare_requests().get(listed, 0) >= 6, timeout=60, interval=0.5)
    counts = stack.compare_requests()
    # 30 tables, 20 per database: two databases, so one overview and two detail reads per comparison, ever.
    assert counts[f"{JOB}/rows-1/line_overview"] == 1
    assert counts[f"{JOB}/rows-1/line_detail"] == 2
    assert counts[f"{JOB}/values-1/content_overview"] == 1
    assert counts[f"{JOB}/values-1/content_detail"] == 2
    assert not [k for k in counts if "rows-0-running" in k]  # a running comparison's tables are not read
    assert counts[f"{JOB}/objects/show_object_compare_overview"] == 1  # the list did not change
    assert not [k for k in counts if k.startswith(PLAIN)]
    text = stack.exporter.metrics()
    assert value(text, "huaweicloud_drs_api_requests_total", operation="list_compare_jobs")
    assert value(text, "huaweicloud_drs_api_requests_total", operation="show_line_compare_detail") == 2


def test_a_new_comparison_replaces_the_old_ones_series(stack: Stack) -> None:
    newer = {"id": "rows-2", "type": "lines", "status": "SUCCESSFUL", "tables": 25, "started_ago": 10, "per_db": 20}
    stack.sim.admin(f"jobs/{JOB}", {"comparisons": [VALUES, FIRST, RUNNING, newer]})
    selector = f'huaweicloud_drs_comparison_table_status{{job_id="{JOB}",compare_type="lines"}}'

    def replaced() -> bool:
        series = stack.query(selector)
        return len(series) == 25 and all(s["metric"]["status"] == "consistent" for s in series)

    wait_for(replaced, timeout=60, interval=1)
    assert len(stack.query(f'huaweicloud_drs_comparison_source_rows{{job_id="{JOB}"}}')) == 25
    assert not stack.query(
        f'huaweicloud_drs_comparison_table_status{{job_id="{JOB}",compare_type="lines",status="inconsistent"}}'
    )
    finished = stack.query(f'huaweicloud_drs_comparison_last_finished_timestamp_seconds{{job_id="{JOB}"}}')
    assert {(s["metric"]["compare_type"], s["metric"]["compare_job_id"]) for s in finished} == {
        ("lines", "rows-2"),
        ("contents", "values-1"),
    }
    counts = stack.compare_requests()
    assert counts[f"{JOB}/rows-2/line_detail"] == 2 and counts[f"{JOB}/rows-1/line_detail"] == 2
    # The old query follows the latest row comparison: consistent now, so it matches once progress is complete.
    docs = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text()
    assert OLD_CUT_OVER not in docs and "job_id:huaweicloud_drs_cutover_ready:bool == 1" in docs
    ready = wait_for(lambda: stack.query(OLD_CUT_OVER), 30, 1)
    assert {s["metric"]["job_id"] for s in ready} == {JOB}


def test_promtool_check_metrics_with_every_comparison_family(stack: Stack) -> None:
    def complete() -> str | None:
        text = stack.exporter.metrics()
        return text if "huaweicloud_drs_comparison_object_status{" in text else None

    text = wait_for(complete, 30, 0.5)
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE huaweicloud_drs_comparison")}
    assert len(families) == 13, families
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
