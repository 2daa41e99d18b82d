"""Dashboard conventions (what grafana/dashboard-linter checks) and generated JSON kept in sync."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from dashboards import generate

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(generate.DASHBOARDS)
COUNTER = re.compile(r"\b(huaweicloud_drs_\w+?(?:_total|_bucket|_count|_sum))\b")
# Series per object, and per table of a comparison: as many as the job has objects.
RAW_OBJECTS = re.compile(
    r"(?<![:\w])huaweicloud_drs_(object_progress_ratio|comparison_(table_status|source_rows|target_rows))\{"
)
RANGE_FUNCTIONS = re.compile(r"\b(rate|increase|irate)\s*\(")
EXPECTED_UIDS = {
    "drs-overview.json": "huaweicloud-drs-overview",
    "drs-job-detail.json": "huaweicloud-drs-job-detail",
    "drs-exporter-health.json": "huaweicloud-drs-exporter-health",
    "drs-data-consistency.json": "huaweicloud-drs-data-consistency",
    "drs-replication-health.json": "huaweicloud-drs-replication",
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "dashboards" / name).read_text())
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def enclosing_function(expr: str, position: int) -> list[str]:
    """Names of the function calls whose parentheses enclose ``position``, innermost first."""
    names: list[str] = []
    depth = 0
    for i in range(position - 1, -1, -1):
        ch = expr[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                match = re.search(r"([a-z_]+)\s*$", expr[:i])
                names.append(match.group(1) if match else "")
            else:
                depth -= 1
    return names


@pytest.mark.parametrize("name", FILES)
def test_committed_json_is_what_the_code_generates(name: str) -> None:
    assert (ROOT / "dashboards" / name).read_text() == generate.files()[name], (
        "dashboards/*.json are out of date: run `make dashboards`"
    )


@pytest.mark.parametrize("name", FILES)
def test_variables(name: str) -> None:
    variables = {v["name"]: v for v in load(name)["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    expected = {"job", "namespace", "service", "job_id"} | {
        "drs-exporter-health.json": {"instance"},
        "drs-job-detail.json": {"object_type", "src_db"},
    }.get(name, set())
    assert set(variables) - {"datasource"} == expected
    for var in expected:
        assert variables[var]["type"] == "query"
        assert variables[var]["datasource"]["uid"] == "${datasource}"
    assert variables["job_id"]["multi"] is True
    # One release at a time, no "All": two releases watching one DRS job are not counted twice
    # (issue 21); without the labels (outside Kubernetes) the variable is empty and matches them absent.
    for var in ("namespace", "service"):
        assert variables[var]["multi"] is False and variables[var]["includeAll"] is False
    for panel in panels(load(name)):
        for target in panel["targets"]:
            assert 'namespace=~"$namespace", service=~"$service"' in target["expr"], target["expr"]


@pytest.mark.parametrize("name", FILES)
def test_panels_follow_conventions(name: str) -> None:
    dashboard = load(name)
    assert dashboard["uid"] == EXPECTED_UIDS[name]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        where = f"{name}: {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel.get("description"), f"{where} has no description"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where} has no unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], f"{where} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", where
            expr = target["expr"]
            assert 'job=~"$job"' in expr, f"{where}: {expr}"
            # Recorded series carry no instance label: filtering them on one would empty the panel.
            assert ("instance" in expr) == (":" not in expr and "instance" in dashboard_vars(dashboard)), where
            for call in RANGE_FUNCTIONS.finditer(expr):
                window = re.match(r"[^\[]*\[([^\]]*)\]", expr[call.end() :])
                assert window and window.group(1) == "$__rate_interval", f"{where}: {expr}"
            for counter in COUNTER.finditer(expr):
                outer = enclosing_function(expr, counter.start())
                assert outer and outer[0] in ("rate", "increase"), f"{where}: counter {counter.group(1)} bare"


def dashboard_vars(dashboard: dict[str, Any]) -> set[str]:
    return {v["name"] for v in dashboard["templating"]["list"]}


@pytest.mark.parametrize("name", FILES)
def test_every_stat_has_thresholds(name: str) -> None:
    for panel in panels(load(name)):
        if panel["type"] in ("stat", "bargauge", "status-history"):
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps and steps[0]["value"] is None, panel["title"]


@pytest.mark.parametrize("name", FILES)
def test_object_series_are_read_only_by_bounded_instant_queries(name: str) -> None:
    """At 100k objects a range query or an unbounded table over object series is too costly."""
    for panel in panels(load(name)):
        for target in panel["targets"]:
            if not RAW_OBJECTS.search(target["expr"]):
                continue
            assert target.get("instant") is True, f"{panel['title']}: a range query over object series"
            # Bounded itself, or restricted to a bounded set (`… and on (…) topk(50, …)`).
            bounded = re.search(r"^(bottomk|topk|count)\(|\band on \([^)]*\) (bottomk|topk)\(\d+, ", target["expr"])
            assert bounded, f"{panel['title']}: unbounded"


def test_the_overview_job_table_links_to_the_job_detail() -> None:
    table = next(p for p in panels(load("drs-overview.json")) if p["title"] == "DRS jobs" and p["type"] == "table")
    # merge (one Time column) and queries keeping job_id only: no stray Time n / job n columns.
    assert table["transformations"][0]["id"] == "merge"
    for target in table["targets"]:
        assert re.match(r"max by \(job_id(, (name|status|shard))?\) \(", target["expr"]), target["expr"]
    columns = set(table["transformations"][1]["options"]["renameByName"].values())
    assert {"DRS job", "Name", "Status", "Completion", "ETA", "DRS remaining time", "Replication delay"} <= columns
    # Which shard owns each job (issue 26), from the recorded owner series.
    assert "Shard" in columns
    assert any("job_id_shard:huaweicloud_drs_job_info:latest" in t["expr"] for t in table["targets"])
    # Cut-over readiness in words (issue 25): 1 ready, 0 not ready.
    assert "Cut-over" in columns
    mapped = [
        prop["value"][0]["options"]
        for o in table["fieldConfig"]["overrides"]
        if o["matcher"]["options"] == "Cut-over"
        for prop in o["properties"]
        if prop["id"] == "mappings"
    ]
    assert mapped == [{"1": {"text": "ready", "color": "green"}, "0": {"text": "not ready", "color": "red"}}]
    links = [
        prop["value"][0]["url"]
        for o in table["fieldConfig"]["overrides"]
        if o["matcher"]["options"] == "DRS job"
        for prop in o["properties"]
        if prop["id"] == "links"
    ]
    assert links and links[0].startswith("/d/huaweicloud-drs-job-detail?")
    assert "var-job_id=${__value.raw}" in links[0] and "var-datasource=${datasource}" in links[0]


def test_lines_at_the_alert_thresholds_and_the_scrape_timeout() -> None:
    from alerts import rules, timing

    lines = {
        p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
        for name in FILES
        for p in panels(load(name))
        if p["fieldConfig"]["defaults"].get("custom", {}).get("thresholdsStyle", {}).get("mode") == "dashed"
    }
    assert lines["Data freshness"] == [rules.DEFAULT.stale_seconds]
    assert lines["Replication delay"] == [rules.DEFAULT.delay_seconds]
    assert lines["Refresh duration"] == lines["Scrape duration"] == [timing.DEFAULT.scrape_timeout]
    assert lines["RPO and RTO"] == sorted({rules.DEFAULT.rpo_seconds, rules.DEFAULT.rto_seconds})


def test_the_linter_catches_offences() -> None:
    """The helper checks above can fail: a bare counter and a fixed rate window are seen."""
    expr = 'sum(huaweicloud_drs_api_requests_total{job=~"$job"})'
    position = COUNTER.search(expr)
    assert position is not None and enclosing_function(expr, position.start()) == ["sum"]
    expr = "rate(x_total[5m])"
    window = re.match(r"[^\[]*\[([^\]]*)\]", expr[RANGE_FUNCTIONS.search(expr).end() :])  # type: ignore[union-attr]
    assert window is not None and window.group(1) == "5m"


def test_every_dashboard_has_the_promised_panels() -> None:
    titles = {name: {p["title"] for p in panels(load(name))} for name in FILES}
    assert {
        "DRS jobs",
        "Completion by job",
        "Objects",
        "Completion",
        "Keys down",
        "Firing alerts",
        "Completion over time",
        "Mean object progress and DRS job progress",
        "Replication delay",
        "Data freshness",
        "Estimated time to completion",
        "API errors by code",
        "Cut-over readiness: blocking reasons",
    } <= titles["drs-overview.json"]
    assert {
        "Least advanced objects (50)",
        "Objects not moving (30 minutes, 50 least advanced)",
        "Completion by source database",
        "Unfinished objects",
    } <= titles["drs-job-detail.json"]
    assert {
        "API requests by operation",
        "API errors by operation and code",
        "API request latency",
        "Refresh duration",
        "Refresh up",
        "Scrape duration",
    } <= titles["drs-exporter-health.json"]
    assert {
        "Jobs with inconsistent tables",
        "Latest comparisons",
        "Age of the latest finished comparison",
        "Tables not consistent (latest finished comparison, 50 largest differences)",
        "Tables per status",
        "Cut-over readiness",
    } <= titles["drs-data-consistency.json"]
    # Issue 24: delay by side, endpoints, RPO/RTO, throughput, DDL alarms, abnormal rows, failed-job expiry.
    assert {
        "Delay by side",
        "Endpoint up",
        "RPO and RTO",
        "Apply rate (rows)",
        "Apply rate (bytes)",
        "Phase progress",
        "DDL alarms",
        "Abnormal rows",
        "Failed jobs and their automatic expiry",
        "Health data read",
    } <= titles["drs-replication-health.json"]
    refresh_up = next(p for p in panels(load("drs-exporter-health.json")) if p["title"] == "Refresh up")
    assert refresh_up["type"] == "status-history"


def test_objects_not_moving_agrees_with_the_alert_after_a_restart(tmp_path: Path) -> None:
    """Review 16 item 10: 20 minutes after a restart (instance a, then b) the panel still counts the
    stuck object, as ObjectsStalled does (matching on instance, it counted none)."""
    stat = next(p for p in panels(load("drs-job-detail.json")) if p["title"] == "Objects not moving")
    expr = re.sub(r'=~"\$\w+"', '=~".*"', stat["targets"][0]["expr"])
    labels = 'job="drs", job_id="s", object_type="table", src_db="d", src_tb="t1", dst_db="d", dst_tb="t1"'
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'huaweicloud_drs_object_progress_ratio{{{labels}, instance="a"}}', "values": "0.4x24"},
                    {
                        "series": f'huaweicloud_drs_object_progress_ratio{{{labels}, instance="b"}}',
                        "values": "_x25 0.4x30",
                    },
                ],
                "promql_expr_test": [{"expr": expr, "eval_time": "45m", "exp_samples": [{"labels": "{}", "value": 1}]}],
            }
        ],
    }
    path = tmp_path / "not_moving_test.yaml"
    path.write_text(json.dumps(test))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# An aggregation straight over an exporter's raw series (not a recorded one, not a counter's rate):
# with two targets exporting the same job (a rollout, replicas) it counts that job twice.
RAW_AGGREGATION = re.compile(
    r"\b(sum|count|avg|topk|bottomk)\s*(?:by\s*\([^)]*\)\s*)?\(\s*(?:\d+\s*,\s*)?(?:abs\s*\(\s*)?huaweicloud_drs_\w+\{"
)


@pytest.mark.parametrize("name", FILES)
def test_raw_series_are_taken_once_before_they_are_aggregated(name: str) -> None:
    for panel in panels(load(name)):
        for target in panel["targets"]:
            found = RAW_AGGREGATION.search(target["expr"])
            assert found is None, f"{name}: {panel['title']!r} aggregates raw series: {found.group(0)}..."


def _promtool_eval(tmp_path: Path, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> None:
    test = {
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "panel_test.yaml"
    path.write_text(json.dumps(test))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _panel_expr(name: str, title: str, ref: str = "A") -> str:
    panel = next(p for p in panels(load(name)) if p["title"] == title)
    target = next(t for t in panel["targets"] if t["refId"] == ref)
    return re.sub(r'=~"\$\w+"', '=~".*"', target["expr"])


def test_consistency_panels_count_a_table_once_during_a_rollout(tmp_path: Path) -> None:
    """Review of issue 26: two targets (old and new pod) export the same job's comparison: the
    stats count its tables once, and the table of the worst tables still answers (matching both
    targets' row counts on the table alone was many-to-many)."""
    name = "drs-data-consistency.json"
    table = 'job="drs", job_id="j", src_db="d", src_tb="t", dst_db="d", dst_tb="t"'
    series = []
    for instance in ("a", "b"):
        on = f'instance="{instance}"'
        series += [
            {
                "series": f'huaweicloud_drs_comparison_tables{{job="drs", {on}, job_id="j", '
                'compare_type="lines", status="inconsistent"}',
                "values": "3x5",
            },
            {"series": f'huaweicloud_drs_comparison_up{{job="drs", {on}, job_id="j"}}', "values": "0x5"},
            {"series": f"huaweicloud_drs_comparison_source_rows{{{table}, {on}}}", "values": "10x5"},
            {"series": f"huaweicloud_drs_comparison_target_rows{{{table}, {on}}}", "values": "7x5"},
            {
                "series": f'huaweicloud_drs_comparison_table_status{{{table}, {on}, compare_type="lines", '
                'status="inconsistent"}',
                "values": "1x5",
            },
        ]
    checks = [
        {"expr": _panel_expr(name, "Inconsistent tables"), "eval_time": "4m", "exp_samples": [{"value": 3}]},
        {"expr": _panel_expr(name, "Jobs with inconsistent tables"), "eval_time": "4m", "exp_samples": [{"value": 1}]},
        {"expr": _panel_expr(name, "Jobs without comparisons read"), "eval_time": "4m", "exp_samples": [{"value": 1}]},
        {
            "expr": _panel_expr(name, "Tables per status"),
            "eval_time": "4m",
            "exp_samples": [{"labels": '{compare_type="lines", status="inconsistent"}', "value": 3}],
        },
    ]
    worst = f"Tables not consistent (latest finished comparison, {generate.ROWS} largest differences)"
    checks.append(
        {
            "expr": _panel_expr(name, worst, "D"),
            "eval_time": "4m",
            "exp_samples": [{"labels": f"{{{table}}}", "value": 3}],
        }
    )
    _promtool_eval(tmp_path, series, checks)
