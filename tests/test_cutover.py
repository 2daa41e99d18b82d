"""Cut-over readiness (issue 25): the rules and the status page give the same verdict for one table of cases.

``alerts/cutover_cases.yaml`` is the table. ``alerts/tests/cutover_test.yaml`` is generated from it
(promtool runs it in tests/test_rules.py); here the same cases go to the status page's judge.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import msgspec
import pytest
from prometheus_client.exposition import generate_latest

from alerts import cutover, cutover_cases, rules
from exporter.base.deadline import Deadline
from exporter.config import Config, ObjectFilter
from exporter.drs.compare import CompareRun, ObjectCount, ObjectOverview, TableResult
from exporter.drs.compare_client import ReadError
from exporter.metrics.compare_metrics import ComparisonMetrics
from exporter.sources.comparisons import (
    ComparisonReader,
    ComparisonSnapshot,
    Guards,
    JobComparisons,
    TableSet,
    TypeState,
)
from exporter.web import cutover as page

NOW = 1_700_000_000.0
MINUTES, CASES = cutover_cases.load()
# What the page cannot see (docs/metrics.md "Ready for cut-over"): only these reasons may it miss.
BLIND = {"delay", "ddl_alarm", "dirty_rows", "comparison_stale"}


def test_the_promtool_tests_are_generated_from_the_table() -> None:
    assert cutover_cases.TEST_FILE.read_text() == cutover_cases.render(), "run `make rules`"


def test_the_page_and_the_rules_know_the_same_reasons_and_thresholds() -> None:
    assert page.REASONS == cutover.REASONS
    s = rules.DEFAULT
    assert s.cutover_delay_seconds == page.DELAY_SECONDS
    assert s.cutover_comparison_max_age_seconds == page.MAX_AGE_SECONDS
    assert f"{page.WINDOW_SECONDS / 60:g}m" == s.cutover_window
    assert page.INCREMENTAL == rules.INCREMENTAL
    # The exporter's own settings (the chart feeds them from the rules' settings) start from the same defaults.
    defaults = {f.name: f.default for f in msgspec.structs.fields(Config)}
    assert defaults["cutover_delay_seconds"] == s.cutover_delay_seconds
    assert defaults["cutover_comparison_max_age_seconds"] == s.cutover_comparison_max_age_seconds


def test_the_page_judges_with_the_exporters_thresholds() -> None:
    """Where the rules run with other thresholds (the chart's prometheusRule.settings), so does the page."""
    case = next(c for c in CASES if c.name == "comparison-almost-stale")  # 23 h old, delay 5 s: ready by default
    assert judged(case).ready
    verdict = page.judge(
        status=page.INCREMENTAL,
        objects=105,
        completed=105,
        delay_seconds=45,
        comparisons=comparisons(case),
        now=NOW,
        delay_below=30,
        max_age=6 * 3600,
    )
    assert verdict.summary == (
        "not ready: delay 45 s (must stay below 30 s); the row comparison finished 23 h ago, over 6 h"
    )
    assert (verdict.delay_below_seconds, verdict.comparison_max_age_seconds) == (30, 6 * 3600)


def test_the_table_covers_every_reason_and_the_issues_cases() -> None:
    covered = {r for c in CASES for r in c.reasons}
    assert covered == set(cutover.REASONS)
    names = {c.name for c in CASES}
    assert {
        "ready",
        "readme-false-positive",
        "tables-missing",
        "tables-not-compared",
        "delay-high",
        "delay-not-for-the-window",
        "comparison-stale",
        "newer-running",
        "newer-failed",
        "objects-inconsistent",
        "full-running",
        "health-absent",
        "health-rows-only",
    } <= names
    for case in CASES:  # the page may miss what it cannot see, never add a reason
        assert set(case.page) <= set(case.reasons), case.name
        # A second replica's reading is not the page's (its own exporter's) to see.
        replica = {"not_incremental"} if any(s.get("replica_status") for s in case.states) else set()
        assert set(case.reasons) - set(case.page) <= BLIND | replica, case.name


def _run(compare_type: str, run: dict[str, Any]) -> CompareRun:
    end = NOW - run["finished_ago"] if "finished_ago" in run else None
    start = NOW - run["started_ago"] if "started_ago" in run else None
    return CompareRun(run["id"], compare_type, run["status"], start, end)


def _tables(run: dict[str, Any]) -> TableSet:
    tables = [
        TableResult("db", f"{status}_{n}", "db", f"{status}_{n}", status)
        for status, count in run["tables"].items()
        for n in range(count)
    ]
    return TableSet.build(run["id"], tables, max_objects=None, object_filter=ObjectFilter(), aggregate_only=False)


def comparisons(case: cutover_cases.Case) -> JobComparisons:
    """The exporter's comparison snapshot of the case's job, at its last minute."""
    state = case.last
    types = {}
    for compare_type in cutover_cases.TYPES:
        latest, done = state.get(compare_type), case.finished(compare_type)
        if latest is None:
            continue
        finished = _run(compare_type, done) if done is not None else None
        types[compare_type] = TypeState(_run(compare_type, latest), finished, _tables(done) if done else None)
    verdicts = state.get("object_compare")
    objects = (
        ObjectOverview(
            "objects-1", "SUCCESSFUL", NOW - 600, tuple(ObjectCount(t, 1, 1, v) for t, v in verdicts.items())
        )
        if verdicts
        else None
    )
    error = state.get("comparison_error")
    return JobComparisons(case.name, error is None, error, NOW - 30, types, objects)


def judged(case: cutover_cases.Case) -> page.Cutover:
    state = case.last
    failing = state.get("refresh_failing") or []
    counts = [n for t, n in state["objects"].items() if t not in failing]
    return page.judge(
        status=state["status"],
        objects=sum(n for n, _ in counts) if counts else None,
        completed=sum(c for _, c in counts) if counts else None,
        delay_seconds=cutover_cases.delay_at(state["delay"], MINUTES),
        comparisons=comparisons(case),
        now=NOW,
        unknown_types=failing,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_page_gives_the_rules_verdict(case: cutover_cases.Case) -> None:
    verdict = judged(case)
    assert [r.reason for r in verdict.reasons] == [r for r in cutover.REASONS if r in case.page], case.about
    assert verdict.ready == (not case.page)
    assert verdict.summary == ("ready" if verdict.ready else "not ready: " + "; ".join(r.text for r in verdict.reasons))
    assert verdict.not_judged == ["delay_window", "ddl_alarm", "dirty_rows", "full_phase_end"]


def test_the_reasons_in_words() -> None:
    by_name = {c.name: c for c in CASES}
    assert judged(by_name["tables-missing"]).summary == (
        "not ready: 12 tables target_missing in the row comparison of 3 h ago"
    )
    assert judged(by_name["readme-false-positive"]).summary == (
        "not ready: status INCRE_TRANSFER_FAILED, not INCRE_TRANSFER_STARTED; delay 3600 s (must stay below 60 s); "
        "the latest value comparison ended FAILED; the row comparison finished 30 days ago, over 24 h"
    )
    assert judged(by_name["newer-running"]).summary == "not ready: a row comparison is running (RUNNING)"
    assert judged(by_name["full-running"]).reasons[1].text == "40 of 105 objects not complete"


def test_every_series_the_rules_read_is_scoped_by_the_selector() -> None:
    """Like issue 21's rules: one release's readiness reads only its own exporter's series."""
    s = replace(rules.DEFAULT, selector='namespace="a", service="b"')
    groups = [g for g in rules.recording_groups(s) + rules.alert_groups(s) if "cutover" in g["name"]]
    assert len(groups) == 2
    for rule in (r for g in groups for r in g["rules"]):
        names = re.findall(r'(?<![\w:"])((?:\w+:)?huaweicloud_drs_\w+(?::\w+)?)(\{[^}]*\})?', rule["expr"])
        assert names
        for name, selector in names:
            assert 'namespace="a", service="b"' in selector, (rule.get("record") or rule.get("alert"), name)


class _Client:
    """A DRS comparison API of one job: two consistent comparisons, then what the test makes of it."""

    def __init__(self) -> None:
        now = time.time()
        self.runs_list = [
            CompareRun("rows-1", "lines", "SUCCESSFUL", now - 7200, now - 7000),
            CompareRun("values-1", "contents", "SUCCESSFUL", now - 7200, now - 7000),
        ]
        self.fail_list = False

    def runs(self, job_id: str, deadline: Deadline) -> list[CompareRun]:
        if self.fail_list:
            raise ReadError("http_503", "down", operation="list_compare_jobs")
        return self.runs_list

    def tables(self, job_id: str, run: CompareRun, deadline: Deadline) -> list[TableResult]:
        if run.id == "rows-2":  # too large to read
            raise ReadError("page_cap_exceeded", "too many", operation="show_line_compare_detail")
        return [TableResult("db", f"t{i}", "db", f"t{i}", "consistent", 1, 1, 1) for i in range(10)]

    def objects(self, job_id: str, deadline: Deadline) -> ObjectOverview | None:
        return None


def _read(reader: ComparisonReader) -> tuple[page.Cutover, str]:
    """One refresh of the reader's job: the page's verdict and the exporter's comparison metrics."""
    state = reader._job("j1")
    assert state is not None
    snap = reader._snapshot = ComparisonSnapshot({"j1": state})
    verdict = page.judge(
        status=page.INCREMENTAL,
        objects=10,
        completed=10,
        delay_seconds=1.0,
        comparisons=snap.jobs["j1"],
        now=time.time(),
    )
    return verdict, generate_latest(ComparisonMetrics(snap)).decode()


@pytest.mark.parametrize("failure", ["newer-unreadable", "listing-fails"])
def test_comparisons_the_exporter_cannot_read_now_are_no_readiness(failure: str) -> None:
    """The real reader keeps the last state it read when a read fails: the page must not call that ready
    (the rules' case is in the table: comparisons-unreadable, newer-comparison-unreadable)."""
    reader = ComparisonReader(60, 5, Guards(None, ObjectFilter()))
    reader.close()
    client = _Client()
    reader.want({"j1": (client, False)})  # type: ignore[dict-item]
    assert _read(reader)[0].ready
    if failure == "listing-fails":
        client.fail_list = True
    else:  # a last row comparison finished; DRS has its results, the exporter cannot read them
        now = time.time()
        client.runs_list = [*client.runs_list, CompareRun("rows-2", "lines", "SUCCESSFUL", now - 600, now - 60)]
    verdict, metrics = _read(reader)
    assert 'huaweicloud_drs_comparison_up{job_id="j1"} 0.0' in metrics
    assert not verdict.ready
    assert [r.reason for r in verdict.reasons] == ["comparison_unreadable"]
    code = "http_503" if failure == "listing-fails" else "page_cap_exceeded"
    assert verdict.reasons[0].text.startswith(f"the comparisons cannot be read now ({code}, last read ")
