"""The table of cut-over readiness cases (``cutover_cases.yaml``) as promtool tests and as page inputs.

``python -m alerts.cutover_cases`` writes ``alerts/tests/cutover_test.yaml`` from the table (``make
rules`` runs it); tests/test_cutover.py checks the file is up to date and gives the same cases to the
status page's judge, so that the rules and the page cannot drift apart. :func:`states` is the one
reading of a case both use: its state at every minute, the last one being what the page sees.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.drs.compare import TABLE_STATUSES  # every one is exported for a finished comparison

from . import cutover, rules

HERE = Path(__file__).resolve().parent
TABLE = HERE / "cutover_cases.yaml"
TEST_FILE = HERE / "tests" / "cutover_test.yaml"
TYPES = ("lines", "contents")
BASE = {"job": "drs", "instance": "a"}
# The README's old example query (issue 25): it calls the readme-false-positive case ready.
OLD_QUERY = (
    '(sum by (job_id) (huaweicloud_drs_objects_completed{job_id="readme-false-positive"})'
    " == sum by (job_id) (huaweicloud_drs_objects))\n"
    "and on (job_id) (sum by (job_id) "
    '(huaweicloud_drs_comparison_tables{compare_type="lines", status!="consistent"}) == 0)\n'
    'and on (job_id) (huaweicloud_drs_comparison_info{compare_type="lines", status="SUCCESSFUL"})'
)


@dataclass(frozen=True)
class Case:
    """One row of the table."""

    name: str
    about: str
    reasons: list[str]
    page: list[str]  # the status page's reasons
    alerts: list[str]
    states: list[dict[str, Any]]  # the job's state at each minute 0..eval

    @property
    def last(self) -> dict[str, Any]:
        """What the status page sees."""
        return self.states[-1]

    def finished(self, compare_type: str) -> dict[str, Any] | None:
        """The latest SUCCESSFUL comparison of ``compare_type`` by the end (the one whose tables count)."""
        return _finished(self.states, compare_type, len(self.states) - 1)


def load(path: Path = TABLE) -> tuple[int, list[Case]]:
    """The evaluation minute and the cases of the table."""
    doc = yaml.safe_load(path.read_text())
    minutes = int(doc["eval"])
    out = []
    for raw in doc["cases"]:
        state = copy.deepcopy(doc["defaults"])
        state.update(
            {k: v for k, v in raw.items() if k not in ("name", "about", "reasons", "page", "alerts", "changes")}
        )
        changes = sorted(raw.get("changes", []), key=lambda c: c["at"])
        states = []
        for minute in range(minutes + 1):
            for change in changes:
                if change["at"] == minute:
                    state = {**state, **{k: v for k, v in change.items() if k != "at"}}
            states.append(state)
        reasons = list(raw["reasons"])
        unknown = set(reasons) - set(cutover.REASONS)
        if unknown:
            raise ValueError(f"case {raw['name']}: unknown reasons {sorted(unknown)}")
        out.append(
            Case(
                raw["name"], raw["about"], reasons, list(raw.get("page", reasons)), list(raw.get("alerts", [])), states
            )
        )
    return minutes, out


def _finished(states: list[dict[str, Any]], compare_type: str, minute: int) -> dict[str, Any] | None:
    for state in reversed(states[: minute + 1]):
        run = state.get(compare_type)
        if run is not None and run["status"] == "SUCCESSFUL":
            return dict(run)
    return None


def delay_at(delay: Any, minute: int) -> float | None:
    """The delay reading at ``minute``: constant, None, or the last [from minute, seconds] step begun."""
    if delay is None or isinstance(delay, int | float):
        return delay
    current = None
    for start, seconds in delay:
        if start <= minute:
            current = seconds
    return current


def _series(name: str, job_id: str, **extra: str) -> str:
    labels = {**BASE, "job_id": job_id, **extra}
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _values(points: list[float | None]) -> str:
    """promtool's notation: runs of one value as ``vxN``, missing samples as ``_``."""
    out: list[str] = []
    i = 0
    while i < len(points):
        value = points[i]
        j = i
        while j + 1 < len(points) and points[j + 1] == value:
            j += 1
        if value is None:
            out += ["_"] * (j - i + 1)
        else:
            text = f"{value:g}"
            out.append(text if j == i else f"{text}x{j - i}")
        i = j + 1
    return " ".join(out)


def input_series(case: Case, minutes: int) -> list[dict[str, str]]:
    """Every series the exporter would have exported for the case, minute by minute."""
    now = minutes * 60
    points: dict[str, list[float | None]] = {}

    def put(series: str, minute: int, value: float) -> None:
        points.setdefault(series, [None] * (minutes + 1))[minute] = value

    name = case.name
    for minute, state in enumerate(case.states):
        put(_series("huaweicloud_drs_comparison_up", name), minute, 0 if state.get("comparison_error") else 1)
        put(_series("huaweicloud_drs_job_info", name, status=state["status"]), minute, 1)
        if state.get("replica_status"):
            put(_series("huaweicloud_drs_job_info", name, instance="b", status=state["replica_status"]), minute, 1)
        failing = state.get("refresh_failing") or []
        for object_type, (objects, completed) in state["objects"].items():
            put(
                _series("huaweicloud_drs_up", name, object_type=object_type), minute, 0 if object_type in failing else 1
            )
            if object_type in failing:
                continue  # a failed refresh drops the type's object series
            put(_series("huaweicloud_drs_objects", name, object_type=object_type), minute, objects)
            put(_series("huaweicloud_drs_objects_completed", name, object_type=object_type), minute, completed)
        delay = delay_at(state["delay"], minute)
        if delay is not None:
            put(_series("huaweicloud_drs_job_incremental_delay_seconds", name), minute, delay)
        for compare_type in TYPES:
            run = state.get(compare_type)
            if run is not None:
                info = _series(
                    "huaweicloud_drs_comparison_info",
                    name,
                    compare_type=compare_type,
                    compare_job_id=run["id"],
                    status=run["status"],
                )
                put(info, minute, 1)
            done = _finished(case.states, compare_type, minute)
            if done is None:
                continue
            finished = _series(
                "huaweicloud_drs_comparison_last_finished_timestamp_seconds",
                name,
                compare_type=compare_type,
                compare_job_id=done["id"],
            )
            put(finished, minute, now - done["finished_ago"])
            for status in TABLE_STATUSES:
                tables = _series("huaweicloud_drs_comparison_tables", name, compare_type=compare_type, status=status)
                put(tables, minute, done["tables"].get(status, 0))
        for object_type, verdict in (state.get("object_compare") or {}).items():
            put(
                _series("huaweicloud_drs_comparison_object_status", name, object_type=object_type, status=verdict),
                minute,
                1,
            )
        if "ddl_alarms" in state:
            put(_series("huaweicloud_drs_ddl_alarms", name), minute, state["ddl_alarms"])
        for phase, rows in (state.get("dirty_rows") or {}).items():
            put(_series("huaweicloud_drs_dirty_rows", name, phase=phase), minute, rows)
        if "full_done_ago" in state:
            put(_series(cutover.FULL_DONE, name), minute, now - state["full_done_ago"])
        health = state.get("health_rows")
        if health is not None:  # a scheduled row comparison, as the health-comparison source exports it
            ids = {"compare_type": "lines", "compare_job_id": health["id"]}
            put(_series("huaweicloud_drs_health_compare_info", name, **ids, status="SUCCESSFUL"), minute, 1)
            finished = _series("huaweicloud_drs_health_compare_last_finished_timestamp_seconds", name, **ids)
            put(finished, minute, now - health["finished_ago"])
    return [{"series": series, "values": _values(values)} for series, values in points.items()]


def _annotations(alert: dict[str, Any], case: Case) -> dict[str, str]:
    description = alert["annotations"]["description"].replace(cutover.REASONS_TEMPLATE, " ".join(case.reasons) + " ")
    return {
        "summary": alert["annotations"]["summary"],
        "description": description.replace("{{ $labels.job_id }}", case.name),
        "runbook_url": alert["annotations"]["runbook_url"],
    }


def unit_tests(path: Path = TABLE) -> dict[str, Any]:
    """The promtool test file: reasons, verdicts and alerts of every case at the evaluation minute."""
    minutes, cases = load(path)
    at = f"{minutes}m"
    blocked = [
        {"labels": f'{cutover.BLOCKED}{{job="drs", job_id="{c.name}", reason="{r}"}}', "value": 1}
        for c in cases
        for r in c.reasons
    ]
    ready = [
        {"labels": f'{cutover.READY}{{job="drs", job_id="{c.name}"}}', "value": 0 if c.reasons else 1} for c in cases
    ]
    every = [{"labels": f'{{job_id="{c.name}"}}', "value": len(cutover.REASONS)} for c in cases]
    rules_by_name = {r["alert"]: r for r in cutover.alerts(rules.DEFAULT)}
    alert_tests = [
        {
            "eval_time": at,
            "alertname": name,
            "exp_alerts": [
                {
                    "exp_labels": {"severity": alert["labels"]["severity"], "job": "drs", "job_id": c.name},
                    "exp_annotations": _annotations(alert, c),
                }
                for c in cases
                if name.removeprefix(rules.PREFIX) in c.alerts
            ],
        }
        for name, alert in rules_by_name.items()
    ]
    series = [s for c in cases for s in input_series(c, minutes)]
    return {
        "rule_files": ["../recording_rules.yaml", "../prometheus_alerts.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": f"{cutover.BLOCKED} == 1", "eval_time": at, "exp_samples": blocked},
                    {"expr": cutover.READY, "eval_time": at, "exp_samples": ready},
                    # Every reason is there for every job, 0 or 1: absence never reads as "not blocked".
                    {"expr": f"count by (job_id) ({cutover.BLOCKED})", "eval_time": at, "exp_samples": every},
                    # What the recorded verdict replaces: the old query's false positive.
                    {
                        "expr": OLD_QUERY,
                        "eval_time": at,
                        "exp_samples": [{"labels": '{job_id="readme-false-positive"}', "value": 105}],
                    },
                ],
                "alert_rule_test": alert_tests,
            }
        ],
    }


HEADER = (
    "# Generated by `python -m alerts.cutover_cases` (make rules) from alerts/cutover_cases.yaml:\n"
    "# edit the table, not this file. promtool test rules alerts/tests/cutover_test.yaml\n"
)


def render() -> str:
    """The test file's text."""
    return HEADER + yaml.safe_dump(unit_tests(), sort_keys=False, width=200)


def main() -> int:
    TEST_FILE.write_text(render(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
