"""Comparison answers that misbehave, end to end: simulator → drs-exporter process, scraped over HTTP.

Each job of the scenario has one comparison API misbehaving (``compare_answers``); the exporter
must keep serving, keep the last good data, mark the job down and count the error in
``huaweicloud_drs_api_errors_total`` — never a traceback, never a silent "no comparisons".
Requests are counted by the simulator, so "not read again" is shown by its counts, not by timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for

ROWS = {"id": "rows-1", "type": "lines", "status": "SUCCESSFUL", "tables": 5, "statuses": [0]}
OBJECTS = {"status": "SUCCESSFUL", "objects": {"TABLE": [5, 5]}}
JOBS: dict[str, dict[str, Any]] = {
    "unicode": {"compare_answers": {"line_overview": "unicode_status", "line_detail": "unicode_status"}},
    "nolist": {},  # misbehaves at run time, after its results were read
    "shape": {"compare_answers": {"line_detail": "not_list"}},
    "endless": {"compare_answers": {"line_detail": "endless"}},
    "nested": {"compare_answers": {"line_detail": "nested"}},
    "objects": {},  # its object overview fails at run time
}
MAX_PAGES = 3


class Stack:
    def __init__(self, tmp: Path) -> None:
        scenario = tmp / "scenario.yaml"
        jobs = [
            {"id": job_id, "objects": {"table": 5}, "comparisons": [ROWS], "object_comparison": OBJECTS, **extra}
            for job_id, extra in JOBS.items()
        ]
        scenario.write_text(yaml.safe_dump({"jobs": jobs}))
        self.sim = Simulator("--scenario", str(scenario))
        try:
            config = sim_config(self.sim, list(JOBS), comparisons=True, compare_refresh_interval=1, max_pages=MAX_PAGES)
            self.exporter = Exporter(config, tmp)
        except Exception:
            self.sim.stop()
            raise

    def metric(self, name: str, **labels: str) -> float | None:
        return value(self.exporter.metrics(), name, **labels)

    def errors(self, job_id: str, operation: str, code: str) -> float:
        found = self.metric("huaweicloud_drs_api_errors_total", job_id=job_id, operation=operation, error_code=code)
        return found or 0.0

    def requests(self, key: str) -> int:
        counts: dict[str, int] = self.sim.stats()["comparisons"]
        return counts.get(key, 0)

    def listed(self, job_id: str, at_least: int) -> None:
        """Scrape (each scrape lets due refreshes start) until the job was listed ``at_least`` times."""
        wait_for(
            lambda: self.exporter.metrics() and self.requests(f"{job_id}/list/list_compare_jobs") >= at_least, 60, 0.3
        )

    def stop(self) -> None:
        self.exporter.stop()
        self.sim.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("compare-faults"))
    try:
        yield s
    finally:
        s.stop()


def test_a_unicode_digit_status_is_unknown_not_a_crash(stack: Stack) -> None:
    def unknown() -> float | None:
        return stack.metric(
            "huaweicloud_drs_comparison_tables", job_id="unicode", compare_type="lines", status="unknown"
        )

    assert wait_for(unknown, 30, 0.3) == 5
    stack.listed("unicode", 5)
    assert stack.metric("huaweicloud_drs_comparison_up", job_id="unicode") == 1
    assert stack.requests("unicode/rows-1/line_detail") == 1  # read once, not again at every interval
    assert "comparisons of job unicode failed" not in stack.exporter.log()
    assert "Traceback" not in stack.exporter.log()


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ("no_list", "invalid_response"),
        ("null_list", "invalid_response"),
        ("not_list", "invalid_response"),
        ("error_body", "DRS.10000024"),
    ],
)
def test_a_200_without_the_list_keeps_the_last_data_and_counts_an_error(stack: Stack, fault: str, code: str) -> None:
    def rows() -> int:
        found = samples(stack.exporter.metrics(), "huaweicloud_drs_comparison_source_rows")
        return sum(1 for labels in found if ("job_id", "nolist") in labels)

    wait_for(lambda: rows() == 5 and stack.metric("huaweicloud_drs_comparison_up", job_id="nolist") == 1, 30, 0.3)
    before = stack.errors("nolist", "list_compare_jobs", code)
    stack.sim.admin("jobs/nolist", {"compare_answers": {"list_compare_jobs": fault}})
    # The error is counted as the answer comes; the state changes when the job's refresh ends.
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="nolist") == 0, 30, 0.3)
    assert stack.errors("nolist", "list_compare_jobs", code) > before
    assert rows() == 5  # the last good results are still exported
    info = stack.metric(
        "huaweicloud_drs_comparison_info", job_id="nolist", compare_type="lines", compare_job_id="rows-1"
    )
    assert info == 1
    stack.sim.admin("jobs/nolist", {"compare_answers": {}})
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="nolist") == 1, 30, 0.3)
    assert stack.requests("nolist/rows-1/line_detail") == 1  # the good answer did not cause a re-read


def test_a_detail_answer_of_the_wrong_shape_is_counted(stack: Stack) -> None:
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="shape") == 0, 30, 0.3)
    assert stack.errors("shape", "show_line_compare_detail", "invalid_response") >= 1


def test_endless_detail_pages_stop_at_the_cap_and_back_off(stack: Stack) -> None:
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="endless") == 0, 30, 0.3)
    pages = stack.requests("endless/rows-1/line_detail")
    failures = stack.errors("endless", "show_line_compare_detail", "page_cap_exceeded")
    assert failures >= 1
    stack.listed("endless", stack.requests("endless/list/list_compare_jobs") + 8)
    assert stack.metric("huaweicloud_drs_comparison_up", job_id="endless") == 0
    # Without a backoff each of these 8 intervals would read MAX_PAGES pages again; with one (4
    # intervals, doubling) at most two reads fall into them.
    assert stack.requests("endless/rows-1/line_detail") - pages <= 2 * MAX_PAGES
    assert stack.errors("endless", "show_line_compare_detail", "page_cap_exceeded") - failures <= 2


def test_an_answer_the_reader_cannot_handle_is_an_error_not_a_traceback(stack: Stack) -> None:
    # JSON nested 100,000 deep (a RecursionError while decoding, unless the transport refuses it first).
    def counted() -> float:
        text = stack.exporter.metrics()
        return sum(v for (k, v) in _errors(text, "nested").items() if ("operation", "show_line_compare_detail") in k)

    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="nested") == 0, 30, 0.3)
    assert counted() >= 1
    assert "Traceback" not in stack.exporter.log()
    assert stack.metric("huaweicloud_drs_comparison_up", job_id="unicode") == 1  # other jobs go on


def _errors(text: str, job_id: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k: v for k, v in samples(text, "huaweicloud_drs_api_errors_total").items() if ("job_id", job_id) in k}


def test_a_failed_object_overview_is_asked_again_at_the_next_interval(stack: Stack) -> None:
    def target_tables() -> float | None:
        return stack.metric("huaweicloud_drs_comparison_objects", job_id="objects", object_type="TABLE", side="target")

    assert wait_for(target_tables, 30, 0.3) == 5
    # A new comparison makes the overview due; it fails once, and the object comparison has changed meanwhile.
    running = {"id": "values-2", "type": "contents", "status": "RUNNING", "tables": 5}
    stack.sim.admin(
        "jobs/objects",
        {
            "compare_answers": {"show_object_compare_overview": "status:503"},
            "comparisons": [ROWS, running],
            "object_comparison": {"status": "SUCCESSFUL", "objects": {"TABLE": [5, 4]}},
        },
    )
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="objects") == 0, 30, 0.3)
    assert stack.errors("objects", "show_object_compare_overview", "APIGW.0613") >= 1
    stack.sim.admin("jobs/objects", {"compare_answers": {}})
    # Asked again at the next interval (not an hour later): the changed counts show.
    assert wait_for(lambda: target_tables() == 4, 30, 0.3)
    wait_for(lambda: stack.metric("huaweicloud_drs_comparison_up", job_id="objects") == 1, 30, 0.3)
