"""The data consistency dashboard and alerts: generated files in sync, dashboard conventions, chart copies."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts import consistency as alert_consistency
from alerts import rules
from dashboards import consistency

from . import test_dashboards

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = ROOT / "helm" / "huaweicloud-drs-exporter" / "files"
ALERTS = ROOT / "alerts"


def test_committed_dashboard_is_what_the_code_generates_and_the_chart_ships_it() -> None:
    text = consistency.files()[consistency.NAME]
    assert (ROOT / "dashboards" / consistency.NAME).read_text() == text, "run `make dashboards`"
    assert (CHART_FILES / "dashboards" / consistency.NAME).read_text() == text, "run `make dashboards`"


def test_dashboard_follows_the_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(test_dashboards.EXPECTED_UIDS, consistency.NAME, "huaweicloud-drs-data-consistency")
    test_dashboards.test_variables(consistency.NAME)
    test_dashboards.test_panels_follow_conventions(consistency.NAME)


def test_dashboard_has_the_promised_panels() -> None:
    titles = {p["title"] for p in test_dashboards.panels(test_dashboards.load(consistency.NAME))}
    assert {
        "Latest comparisons",
        "Age of the latest finished comparison",
        "Tables not consistent (latest finished comparison)",
        "Tables per status",
    } <= titles


def test_committed_alerts_are_what_the_code_generates_and_the_chart_ships_them() -> None:
    text = rules.files()[alert_consistency.NAME]
    assert (ALERTS / alert_consistency.NAME).read_text() == text, "run `make rules`"
    assert (CHART_FILES / "rules" / alert_consistency.NAME).read_text() == text, "run `make rules`"


def test_promtool_test_rules_fires_and_near_misses() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", str(ALERTS / "tests" / "consistency_test.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_consistency_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tests = (ALERTS / "tests" / "consistency_test.yaml").read_text()
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\S+)$", runbooks, flags=re.MULTILINE)}
    alerts = yaml.safe_load((ALERTS / alert_consistency.NAME).read_text())["groups"][0]["rules"]
    assert [a["alert"] for a in alerts] == [
        "HuaweiCloudDRSTablesInconsistent",
        "HuaweiCloudDRSComparisonFailed",
        "HuaweiCloudDRSComparisonMissing",
    ]
    for alert in alerts:
        name = alert["alert"]
        assert tests.count(f"alertname: {name}") >= 1, f"{name} has no promtool test"
        assert name.lower() in anchors, f"{name} has no runbook section"
        assert alert["annotations"]["runbook_url"].endswith(f"docs/runbooks.md#{name.lower()}")
