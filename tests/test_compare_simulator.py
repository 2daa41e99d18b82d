"""The simulator's comparison APIs, asked over HTTP like the real service: paging, every status code, faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .procs import Simulator

TOKEN = "compare-test-token"
SCENARIO = {
    "jobs": [
        {
            "id": "cj",
            "objects": {"table": 10},
            "comparisons": [
                {"id": "all-codes", "type": "lines", "tables": 2600, "per_db": 1300, "statuses": list(range(28))},
                {"id": "values", "type": "contents", "tables": 8, "statuses": [0, 5, 6, 7, 14]},
                {"id": "running", "type": "lines", "status": "RUNNING", "tables": 3, "end_time": "missing"},
                {"id": "failed", "type": "lines", "status": "FAILED", "tables": 3, "end_time": "empty"},
                {"id": "cancelled", "type": "contents", "status": "CANCELLED", "tables": 3, "end_time": "null"},
            ],
            "object_comparison": {"status": "RUNNING", "objects": {"TABLE": [10, 9]}},
        },
        {"id": "none", "objects": {"table": 1}},
        {"id": "broken", "objects": {"table": 1}, "comparisons": [{"id": "x"}], "compare_fault": "status:503"},
    ]
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    path: Path = tmp_path_factory.mktemp("sim") / "scenario.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    s = Simulator("--scenario", str(path), "--token", TOKEN)
    try:
        yield s
    finally:
        s.stop()


def get(sim: Simulator, path: str, **params: Any) -> requests.Response:
    url = f"{sim.url}/v3/{sim.info['project_id']}/jobs/{path}"
    return requests.get(url, params=params, headers={"X-Auth-Token": TOKEN}, timeout=10)


def test_list_shows_every_state_and_end_time_form(sim: Simulator) -> None:
    body = get(sim, "cj/table/compare").json()
    assert body["count"] == 5
    runs = {r["id"]: r for r in body["compare_jobs"]}
    assert {r["status"] for r in runs.values()} == {"SUCCESSFUL", "RUNNING", "FAILED", "CANCELLED"}
    assert "end_time" not in runs["running"] and runs["failed"]["end_time"] == ""
    assert runs["cancelled"]["end_time"] is None and runs["all-codes"]["end_time"].endswith("Z")
    assert [r["id"] for r in get(sim, "cj/table/compare", offset=1, limit=2).json()["compare_jobs"]] == [
        "values",
        "running",
    ]
    assert get(sim, "none/table/compare").json() == {"count": 0, "compare_jobs": []}


def test_detail_pages_per_database_carry_every_status_code(sim: Simulator) -> None:
    overview = get(sim, "cj/compare/all-codes/line-overview").json()
    assert [d["source_db_name"] for d in overview["data_compare_overview_infos"]] == ["db_0000", "db_0001"]
    first = overview["data_compare_overview_infos"][0]
    assert (first["compare_num"], first["data_inconsistent_num"], first["status"]) == (1300, 1, 5)  # 5, 6: comparing
    seen: list[dict[str, Any]] = []
    for offset in range(0, 2000, 1000):  # bounded: two pages of db_0000
        page = get(sim, "cj/compare/all-codes/line-detail", db_name="db_0000", offset=offset, limit=1000).json()
        assert page["total_count"] == 1300
        seen.extend(page["table_line_compare_result_infos"])
    assert len(seen) == 1300 and "source_db_name" not in seen[0]  # items carry no database, as documented
    assert [t["status"] for t in seen[:28]] == list(range(28))
    assert seen[0]["source_row_num"] - seen[0]["target_row_num"] == seen[0]["difference_row_num"] > 0
    filtered = get(sim, "cj/compare/all-codes/line-detail", status=23).json()
    assert [t["source_table_name"] for t in filtered["table_line_compare_result_infos"]] == ["table_0000023"]


def test_value_comparison_items(sim: Simulator) -> None:
    overview = get(sim, "cj/compare/values/content-overview").json()["content_compare_result_infos"]
    assert overview[0]["source_db"] == "db_0000"
    items = get(sim, "cj/compare/values/content-detail", db_name="db_0000").json()["content_compare_result_infos"]
    assert [(i["content_compare_result"], i["status"]) for i in items[:6]] == [
        (False, 2),
        (None, 1),
        (None, 3),
        (None, 4),
        (None, 2),
        (True, 2),
    ]
    assert items[4]["message"]  # could not compare: a reason is given
    assert get(sim, "cj/compare/values/line-detail").json()["total_count"] == 0  # wrong type: empty


def test_object_overview_and_errors(sim: Simulator) -> None:
    body = get(sim, "cj/object/compare").json()
    assert body["status"] == "RUNNING" and body["compare_result"] == [
        {"type": "TABLE", "source_count": 10, "target_count": 9, "status": 3}
    ]
    assert get(sim, "none/object/compare").json() == {"compare_result": []}
    bad = get(sim, "cj/compare/nope/line-detail")
    assert (bad.status_code, bad.json()["error_code"]) == (400, "DRS.M00202")
    assert get(sim, "missing/table/compare").json()["error_code"] == "DRS.10000010"
    assert get(sim, "cj/table/compare", limit=1001).json()["error_code"] == "DRS.M00211"
    broken = get(sim, "broken/table/compare")
    assert (broken.status_code, broken.json()["error_code"]) == (503, "APIGW.0613")


def test_comparisons_change_at_run_time_and_requests_are_counted(sim: Simulator) -> None:
    requests.post(f"{sim.url}/_sim/stats/reset", timeout=5).raise_for_status()
    sim.admin("jobs/none", {"comparisons": [{"id": "late", "tables": 2}]})
    assert [r["id"] for r in get(sim, "none/table/compare").json()["compare_jobs"]] == ["late"]
    get(sim, "none/compare/late/line-overview")
    assert sim.stats()["comparisons"] == {"none/list/list_compare_jobs": 1, "none/late/line_overview": 1}
    bad = requests.post(f"{sim.url}/_sim/jobs/none", json={"comparisons": [{"status": "DONE"}]}, timeout=5)
    assert bad.status_code == 400


def test_answer_faults_distort_one_api_only(sim: Simulator) -> None:
    def faulted(fault: str, operation: str = "list_compare_jobs") -> requests.Response:
        sim.admin("jobs/none", {"comparisons": [{"id": "f", "tables": 3}], "compare_answers": {operation: fault}})
        path = "none/table/compare" if operation == "list_compare_jobs" else "none/compare/f/line-detail"
        return get(sim, path)

    try:
        assert faulted("no_list").json() == {"count": 1}
        assert faulted("null_list").json() == {"count": 1, "compare_jobs": None}
        assert faulted("not_list").json() == {"count": 1, "compare_jobs": {"a": 1}}
        assert faulted("error_body").json()["error_code"] == "DRS.10000024"
        assert faulted("status:503", "line_detail").status_code == 503
        assert get(sim, "none/compare/f/line-overview").status_code == 200  # the other APIs answer as usual
        statuses = [
            t["status"] for t in faulted("unicode_status", "line_detail").json()["table_line_compare_result_infos"]
        ]
        assert statuses == ["\u00b2"] * 3
        assert faulted("endless", "line_detail").json()["total_count"] == 10**9
        assert (
            len(get(sim, "none/compare/f/line-detail", offset=5000).json()["table_line_compare_result_infos"]) == 1000
        )
        assert faulted("nested", "line_detail").content.startswith(b"[[[[")
        bad = requests.post(f"{sim.url}/_sim/jobs/none", json={"compare_answers": {"line_detail": "odd"}}, timeout=5)
        assert bad.status_code == 400
    finally:
        sim.admin("jobs/none", {"comparisons": [], "compare_answers": {}})
