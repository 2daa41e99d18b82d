"""Abnormal ("dirty") rows of the exporter process against the simulator (issue 24 item 6).

Opt-in per job (``dirty_rows``), read in the background: DRS's count per phase over the look-back
window, and, behind ``dirty_rows_per_table`` and ``dirty_rows_max_tables``, per source table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.exposition import generate_latest

from exporter import app, config
from exporter.drs.dirty import DirtyRows, DirtyTable
from exporter.metrics.dirty_metrics import DirtyMetrics, DirtySource, table_series
from exporter.render.exposition import TEXT
from exporter.sources.dirty_rows import JobDirtyRows
from exporter.sources.perjob import JobRead, JobsSnapshot

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for
from .test_replication_health import check_off_by_default, job_status, promtool_clean, scrape_until

OPERATION = "show_dirty_data"
DIRTY_JOBS: list[dict[str, Any]] = [
    {
        "id": "dirty-a",
        "objects": {"table": 5},
        "status": "INCRE_TRANSFER_STARTED",
        "health": {"dirty": {"incremental": 3, "full": 2, "tables": 2}},
    },
    {"id": "dirty-off", "objects": {"table": 5}, "health": {"dirty": {"incremental": 1}}},
    {"id": "dirty-odd", "objects": {"table": 5}, "health_answers": {OPERATION: "error_body"}},
]


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    """Start simulators with the given jobs (and flags); all are stopped after the test."""
    started: list[Simulator] = []

    def begin(jobs: list[dict[str, Any]] | None, *args: str) -> Simulator:
        if jobs is not None:
            path = tmp_path / f"scenario-{len(started)}.yaml"
            path.write_text(yaml.safe_dump({"jobs": jobs}))
            args = ("--scenario", str(path), *args)
        started.append(Simulator(*args))
        return started[-1]

    yield begin
    for sim in started:
        sim.stop()


def dirty_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    jobs = ["dirty-a", {"id": "dirty-off", "dirty_rows": False}, "dirty-odd"]
    return sim_config(sim, jobs, retries=0, dirty_rows=True, **extra)


def rows(text: str, job_id: str, phase: str) -> float | None:
    return value(text, "huaweicloud_drs_dirty_rows", job_id=job_id, phase=phase)


def api_errors(text: str, job_id: str) -> dict[str, float]:
    return {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == OPERATION and dict(k).get("job_id") == job_id
    }


def test_dirty_rows_are_off_by_default(simulate: Any, start: Any) -> None:
    sim = simulate(DIRTY_JOBS)
    exp = start(sim_config(sim, ["dirty-a"], cache_ttl=1))
    check_off_by_default(sim, exp, "dirty-a", "dirty_rows", "huaweicloud_drs_dirty", "huaweicloud_drs_table_dirty")


def test_dirty_rows_per_phase_source_health_and_error_codes(simulate: Any, start: Any) -> None:
    sim = simulate(DIRTY_JOBS)
    exp = start(dirty_config(sim, dirty_rows_refresh_interval=600))
    text = scrape_until(
        exp, lambda t: rows(t, "dirty-a", "full") is not None and api_errors(t, "dirty-odd").get("DRS.10000024")
    )
    assert rows(text, "dirty-a", "incremental") == 3 and rows(text, "dirty-a", "full") == 2
    # The series the cut-over rules read: job_id and phase, nothing else.
    assert {tuple(sorted(dict(k))) for k in samples(text, "huaweicloud_drs_dirty_rows")} == {("job_id", "phase")}
    assert {dict(k)["phase"] for k in samples(text, "huaweicloud_drs_dirty_rows")} == {"incremental", "full"}
    assert value(text, "huaweicloud_drs_dirty_data_up", job_id="dirty-a") == 1
    assert value(text, "huaweicloud_drs_dirty_rows_capped", job_id="dirty-a", phase="incremental") == 0
    read = value(text, "huaweicloud_drs_dirty_data_last_success_timestamp_seconds", job_id="dirty-a")
    assert read is not None and time.time() - 120 < read <= time.time()
    # An error body in a 200 answer: the source is down for that job, with the answer's own code counted once.
    assert value(text, "huaweicloud_drs_dirty_data_up", job_id="dirty-odd") == 0
    assert api_errors(text, "dirty-odd") == {"DRS.10000024": 1}
    assert rows(text, "dirty-odd", "incremental") is None
    # A job with dirty_rows off has no series and costs no call; per table is off by default.
    assert not any(dict(k)["job_id"] == "dirty-off" for k in samples(text, "huaweicloud_drs_dirty_data_up"))
    assert "huaweicloud_drs_table_dirty_rows" not in text
    health = sim.stats()["health"]
    assert health.get("dirty-a/show_dirty_data/anonymized") == 2, "one call per phase, always anonymized"
    assert "dirty-a/show_dirty_data/plain" not in health and "dirty-off/show_dirty_data" not in health
    promtool_clean(text)
    status = job_status(exp, "dirty-a")["dirty_rows"]
    assert status["up"] is True and status["error_code"] is None and status["window_seconds"] == 3600
    assert [(p["phase"], p["rows"], p["exact"], p["capped"], p["tables"]) for p in status["phases"]] == [
        ("incremental", 3, True, False, None),
        ("full", 2, True, False, None),
    ]
    odd = job_status(exp, "dirty-odd")["dirty_rows"]
    assert odd["up"] is False and odd["error_code"] == "DRS.10000024" and odd["phases"] == []
    assert job_status(exp, "dirty-off")["dirty_rows"] is None
    page = exp.get("/").text
    assert "Abnormal rows in the last 60 min" in page and "DRS.10000024" in page


def test_dirty_rows_for_discovered_jobs(simulate: Any, start: Any) -> None:
    sim = simulate(DIRTY_JOBS[:2])
    discovery = {"job_types": ["migration"], "dirty_rows": True}
    exp = start(sim_config(sim, [], retries=0, discovery=discovery, dirty_rows_refresh_interval=600))
    text = scrape_until(exp, lambda t: rows(t, "dirty-off", "full") is not None and rows(t, "dirty-a", "full"))
    assert rows(text, "dirty-a", "incremental") == 3 and rows(text, "dirty-off", "incremental") == 1


def test_dirty_rows_kept_within_max_staleness_after_a_fault(simulate: Any, start: Any) -> None:
    sim = simulate(DIRTY_JOBS[:1])
    config = sim_config(
        sim, ["dirty-a"], retries=0, dirty_rows=True, dirty_rows_refresh_interval=1, refresh_timeout=2, max_staleness=6
    )
    exp = start(config)
    wait_for(lambda: rows(exp.metrics(), "dirty-a", "incremental") == 3, 15)
    sim.admin("jobs/dirty-a", {"health_fault": "status:503"})
    text = scrape_until(exp, lambda t: value(t, "huaweicloud_drs_dirty_data_up", job_id="dirty-a") == 0)
    failed_at = time.time()
    codes = api_errors(text, "dirty-a")
    assert codes and all(v >= 1 for v in codes.values()), "the failed reads are counted"
    read = value(text, "huaweicloud_drs_dirty_data_last_success_timestamp_seconds", job_id="dirty-a")
    assert read is not None, "the last good data is still shown, with the time it was read"
    assert rows(text, "dirty-a", "incremental") == 3 and rows(text, "dirty-a", "full") == 2
    assert job_status(exp, "dirty-a")["dirty_rows"]["error_code"] in codes
    # Older than max_staleness: the data goes, the source stays down.
    text = scrape_until(exp, lambda t: rows(t, "dirty-a", "incremental") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, "huaweicloud_drs_dirty_data_up", job_id="dirty-a") == 0
    assert value(text, "huaweicloud_drs_dirty_data_last_success_timestamp_seconds", job_id="dirty-a") is None
    assert job_status(exp, "dirty-a")["dirty_rows"]["phases"] == []
    sim.admin("jobs/dirty-a", {"health_fault": None, "health": {"dirty": {"incremental": 5}}})
    wait_for(lambda: rows(exp.metrics(), "dirty-a", "incremental") == 5, 15)
    assert value(exp.metrics(), "huaweicloud_drs_dirty_data_up", job_id="dirty-a") == 1


def test_per_table_rows_behind_the_guard_and_the_page_bound(simulate: Any, start: Any) -> None:
    many = {"id": "dirty-many", "objects": {"table": 5}, "health": {"dirty": {"incremental": 1500, "tables": 3}}}
    sim = simulate([many])
    config = sim_config(
        sim,
        ["dirty-many"],
        retries=0,
        dirty_rows=True,
        dirty_rows_refresh_interval=600,
        dirty_rows_per_table=True,
        dirty_rows_max_tables=1,
        dirty_rows_max_pages=1,
    )
    exp = start(config)
    text = scrape_until(exp, lambda t: rows(t, "dirty-many", "full") is not None)
    # DRS's count stays exact; the listing stopped after one page of 1000 rows, and says so.
    assert rows(text, "dirty-many", "incremental") == 1500
    assert value(text, "huaweicloud_drs_dirty_rows_capped", job_id="dirty-many", phase="incremental") == 1
    assert value(text, "huaweicloud_drs_dirty_rows_capped", job_id="dirty-many", phase="full") == 0
    tables = samples(text, "huaweicloud_drs_table_dirty_rows")
    assert len(tables) == 1, "dirty_rows_max_tables"
    ((labels, count),) = tables.items()
    assert dict(labels)["src_db"] == "db_0000" and dict(labels)["phase"] == "incremental"
    assert dict(labels)["src_tb"].startswith("table_") and 0 < count <= 1000
    left = value(text, "huaweicloud_drs_table_dirty_rows_not_exported", job_id="dirty-many", phase="incremental")
    assert left == 2
    assert value(text, "huaweicloud_drs_table_dirty_rows_not_exported", job_id="dirty-many", phase="full") == 0
    health = sim.stats()["health"]
    assert health.get("dirty-many/show_dirty_data/anonymized") == 2, "one page per phase: the bound"
    promtool_clean(text)
    incremental = job_status(exp, "dirty-many")["dirty_rows"]["phases"][0]
    assert (incremental["rows"], incremental["exact"], incremental["capped"], incremental["tables"]) == (
        1500,
        True,
        True,
        3,
    )
    assert "listing capped" in exp.get("/").text


@pytest.mark.parametrize("level", [None, "info"], ids=["default-log-level", "info"])
def test_error_sql_never_leaves(simulate: Any, start: Any, level: str | None) -> None:
    sim = simulate(None, "--jobs", "1", "--objects", "5", "--health-demo")
    config = sim_config(
        sim,
        [{"id": "demo-dirty", "dirty_rows": True}],
        retries=0,
        dirty_rows_refresh_interval=1,
        dirty_rows_per_table=True,
        dirty_rows_max_pages=2,
    )
    exp: Exporter = start(config, *(["--log.level", level] if level else []))
    wait_for(lambda: rows(exp.metrics(), "demo-dirty", "incremental") == 4, 15)
    per_table = samples(exp.metrics(), "huaweicloud_drs_table_dirty_rows")
    assert sorted(dict(k)["src_tb"] for k in per_table) == ["table_0000000", "table_0000001"]
    assert sorted(per_table.values()) == [2, 2]
    # Full pages of rows (with their SQL and error messages) up to the bound, then an error body.
    sim.admin("jobs/demo-dirty", {"health_answers": {OPERATION: "endless"}})
    flag = "huaweicloud_drs_dirty_rows_capped"
    wait_for(lambda: value(exp.metrics(), flag, job_id="demo-dirty", phase="incremental") == 1, 15)
    sim.admin("jobs/demo-dirty", {"health_answers": {OPERATION: "error_body"}})
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_dirty_data_up", job_id="demo-dirty") == 0, 15)
    seen = {path: exp.get(path).text for path in ("/metrics", "/", "/status.json")}
    assert job_status(exp, "demo-dirty")["dirty_rows"]["error_code"] == "DRS.10000024"
    assert sim.stats()["health"]["demo-dirty/show_dirty_data/anonymized"] >= 5
    exp.stop()
    seen["log"] = exp.log()
    assert "abnormal rows of job demo-dirty failed" in seen["log"], "the log was looked at"
    for where, text in seen.items():
        assert "secret_marker_sql" not in text, where
        assert "Duplicate entry" not in text, where


def test_per_table_series_sum_tables_whose_labels_meet_and_keep_the_largest() -> None:
    tables = (
        DirtyTable("db", "s", "t", 4, None),
        DirtyTable("db", "", "s.t", 1, None),  # the same labels as s.t: added up, not a duplicate series
        DirtyTable("db", "", "u", 3, None),
        DirtyTable("db", "", "v", 2, None),
    )
    rows = DirtyRows("j", "incremental", 10, 0.0, 3600.0, tables, capped=True, exact=False)
    assert table_series(rows, 2) == ([("db", "s.t", 5), ("db", "u", 3)], 1)
    assert table_series(rows, 0) == ([], 3)
    snapshot = JobsSnapshot({"j": JobRead("j", True, None, JobDirtyRows((rows,)), 1.0)})
    text = generate_latest(DirtyMetrics(snapshot, 2)).decode()
    promtool_clean(text)
    assert value(text, "huaweicloud_drs_dirty_rows_capped", job_id="j", phase="incremental") == 1
    assert value(text, "huaweicloud_drs_table_dirty_rows_not_exported", job_id="j", phase="incremental") == 1


def test_a_reload_keeps_the_rows_read_unless_what_is_asked_changed(simulate: Any) -> None:
    sim = simulate(DIRTY_JOBS[:1])
    raw = sim_config(sim, ["dirty-a"], dirty_rows=True, dirty_rows_refresh_interval=600)
    cfg = config.parse(raw)
    exporters = [app.Exporter(cfg)]
    try:
        source = exporters[0].source(DirtySource)
        wait_for(lambda: exporters[0].scrape(10, TEXT, compress=False) and "dirty-a" in source.snapshot().jobs, 15)
        kept = source.snapshot().jobs["dirty-a"]
        assert kept.up and kept.data is not None
        exporters.append(app.Exporter(cfg, previous=exporters[0]))
        assert exporters[1].source(DirtySource).snapshot().jobs["dirty-a"] == kept
        body = b"".join(exporters[1].scrape(10, TEXT, compress=False)).decode()
        assert rows(body, "dirty-a", "incremental") == 3
        assert sim.stats()["health"].get("dirty-a/show_dirty_data/anonymized") == 2, "not read again at once"
        # A longer window counts other rows: what was read is not kept.
        exporters.append(app.Exporter(config.parse({**raw, "dirty_rows_window": 7200}), previous=exporters[1]))
        assert "dirty-a" not in exporters[2].source(DirtySource).snapshot().jobs
    finally:
        for exporter in exporters:
            exporter.close()
