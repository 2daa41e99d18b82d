"""Dashboard conventions (what grafana/dashboard-linter checks) and generated JSON kept in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from dashboards import generate

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted(generate.DASHBOARDS)
COUNTER = re.compile(r"\b(huaweicloud_drs_\w+?(?:_total|_bucket|_count|_sum))\b")
RANGE_FUNCTIONS = re.compile(r"\b(rate|increase|irate)\s*\(")
EXPECTED_UIDS = {
    "drs-overview.json": "huaweicloud-drs-overview",
    "drs-job-detail.json": "huaweicloud-drs-job-detail",
    "drs-exporter-health.json": "huaweicloud-drs-exporter-health",
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
    for var in ("job", "instance", "job_id"):
        assert variables[var]["type"] == "query"
        assert variables[var]["datasource"]["uid"] == "${datasource}"
    assert variables["job_id"]["multi"] is True


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
            assert 'job=~"$job"' in expr and 'instance=~"$instance"' in expr, f"{where}: {expr}"
            for call in RANGE_FUNCTIONS.finditer(expr):
                window = re.match(r"[^\[]*\[([^\]]*)\]", expr[call.end() :])
                assert window and window.group(1) == "$__rate_interval", f"{where}: {expr}"
            for counter in COUNTER.finditer(expr):
                outer = enclosing_function(expr, counter.start())
                assert outer and outer[0] in ("rate", "increase"), f"{where}: counter {counter.group(1)} bare"


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
        "Completion by job",
        "DRS jobs",
        "Objects",
        "Completed objects",
        "Keys down",
        "Completion over time",
        "Data freshness",
        "Estimated time to completion",
        "API errors by code",
    } <= titles["drs-overview.json"]
    assert {"Objects", "Objects not moving (30 minutes)", "Completion by source database"} <= titles[
        "drs-job-detail.json"
    ]
    assert {
        "API requests by operation",
        "API errors by operation and code",
        "API request latency",
        "Refresh duration",
        "Refresh up",
    } <= titles["drs-exporter-health.json"]
