"""The data consistency dashboard and alerts: generated files in sync, dashboard conventions, chart copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboards import consistency

from . import test_dashboards

ROOT = Path(__file__).resolve().parent.parent
CHART_FILES = ROOT / "helm" / "huaweicloud-drs-exporter" / "files"


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
