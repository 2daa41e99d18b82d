"""Rule files: generated from code, accepted by promtool, unit-tested with promtool test rules."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from alerts import rules

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"


@pytest.mark.parametrize("name", sorted(rules.files()))
def test_committed_rules_are_what_the_code_generates(name: str) -> None:
    assert (ALERTS / name).read_text() == rules.files()[name], "alerts/*.yaml are out of date: run `make rules`"


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", *(str(ALERTS / n) for n in sorted(rules.files()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = subprocess.run(
        ["promtool", "test", "rules", str(ALERTS / "tests" / "alerts_test.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tests = (ALERTS / "tests" / "alerts_test.yaml").read_text()
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.lower() for h in re.findall(r"^## (\S+)$", runbooks, flags=re.MULTILINE)}
    alerts = yaml.safe_load((ALERTS / "prometheus_alerts.yaml").read_text())["groups"][0]["rules"]
    assert len(alerts) == 10
    for alert in alerts:
        name = alert["alert"]
        assert f"alertname: {name}" in tests, f"{name} has no promtool test"
        assert name.lower() in anchors, f"{name} has no runbook section"
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"] and "{{" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith(f"docs/runbooks.md#{name.lower()}")
