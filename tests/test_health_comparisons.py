"""Scheduled ("health") comparisons of the exporter process against the simulator (issue 24 item 7).

v5 ``health-compare-jobs``, ``compare-policy``, ``compare-progress`` and the object overview, read
per job in the background when ``health_comparisons`` is on.
"""

from __future__ import annotations

import time
from typing import Any

from exporter import app, config
from exporter.metrics.health_compare_metrics import HealthCompareSource
from exporter.render.exposition import TEXT

from .procs import Simulator, samples, sim_config, value, wait_for
from .test_replication_health import job_status, opt_in_health_calls, promtool_clean, scrape_until, simulate

__all__ = ["simulate"]  # the fixture, used by name

HEALTH = {
    "policy": {"status": "OPEN", "interval_hour": 24, "types": ["lines", "object_comparison"], "next_in": 3600},
    "comparisons": [
        {
            "id": "hc-obj",
            "type": "object_comparison",
            "objects": {"TABLE": [10, 9], "VIEW": [2, 2]},
            "started_ago": 900,
        },
        {"id": "hc-rows-1", "type": "lines", "status": "SUCCESSFUL", "started_ago": 7200, "duration": 120},
        {"id": "hc-rows-2", "type": "lines", "status": "RUNNING", "started_ago": 60},
    ],
}
JOBS: list[dict[str, Any]] = [
    {"id": "hc-a", "objects": {"table": 5}, "status": "INCRE_TRANSFER_STARTED", "health": HEALTH},
    {"id": "hc-off", "objects": {"table": 5}, "health": HEALTH},
    {"id": "hc-odd", "objects": {"table": 5}, "health_answers": {"list_health_compare_jobs": "error_body"}},
]
UP = "huaweicloud_drs_health_compare_up"
FINISHED = "huaweicloud_drs_health_compare_last_finished_timestamp_seconds"


def health_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    jobs = ["hc-a", {"id": "hc-off", "health_comparisons": False}, "hc-odd"]
    return sim_config(sim, jobs, retries=0, health_comparisons=True, **extra)


def test_health_comparisons_are_off_by_default(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS)
    exp = start(sim_config(sim, ["hc-a"], cache_ttl=1))
    text = scrape_until(exp, lambda t: sim.stats()["requests"].get("batch_progress", 0) >= 2)
    assert "huaweicloud_drs_health_compare" not in text and "huaweicloud_drs_compare_policy" not in text
    assert not opt_in_health_calls(sim), "no health-comparison call"
    assert job_status(exp, "hc-a")["health_comparisons"] is None


def test_health_comparisons_values_policy_progress_health_and_error_codes(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS)
    exp = start(health_config(sim, health_compare_refresh_interval=600))
    errors = "huaweicloud_drs_api_errors_total"
    text = scrape_until(
        exp,
        lambda t: (
            f"{FINISHED}{{" in t
            and (
                value(t, errors, operation="list_health_compare_jobs", job_id="hc-odd", error_code="DRS.10000024") or 0
            )
            == 1
        ),
    )
    now = time.time()
    assert value(text, UP, job_id="hc-a") == 1
    read = value(text, "huaweicloud_drs_health_compare_last_success_timestamp_seconds", job_id="hc-a")
    assert read is not None and now - 60 < read <= now
    # The compare policy.
    assert value(text, "huaweicloud_drs_compare_policy_enabled", job_id="hc-a") == 1
    next_run = value(text, "huaweicloud_drs_compare_policy_next_run_timestamp_seconds", job_id="hc-a")
    assert next_run is not None and 3000 < next_run - now <= 3600
    assert value(text, "huaweicloud_drs_compare_policy_interval_seconds", job_id="hc-a") == 86400
    # The latest run of each type; the latest finished one of each.
    info = {
        (d["compare_type"], d["compare_job_id"], d["status"])
        for d in (dict(k) for k in samples(text, "huaweicloud_drs_health_compare_info"))
        if d["job_id"] == "hc-a"
    }
    assert info == {("object_comparison", "hc-obj", "SUCCESSFUL"), ("lines", "hc-rows-2", "RUNNING")}
    rows_done = value(text, FINISHED, job_id="hc-a", compare_type="lines", compare_job_id="hc-rows-1")
    assert rows_done is not None and abs(rows_done - (now - 7200 + 120)) < 60
    assert value(text, FINISHED, job_id="hc-a", compare_type="object_comparison", compare_job_id="hc-obj") is not None
    assert (
        value(text, "huaweicloud_drs_health_compare_end_timestamp_seconds", job_id="hc-a", compare_type="lines") is None
    )
    started = value(text, "huaweicloud_drs_health_compare_start_timestamp_seconds", job_id="hc-a", compare_type="lines")
    assert started is not None and abs(started - (now - 60)) < 60
    # The running one's progress (the simulator: a sixth of a percent per second, 2 s of incremental delay).
    ratio = value(text, "huaweicloud_drs_health_compare_progress_ratio", job_id="hc-a", compare_type="lines")
    assert ratio is not None and 0.05 < ratio < 0.5
    delay = "huaweicloud_drs_health_compare_incremental_delay_seconds"
    assert value(text, delay, job_id="hc-a", compare_type="lines") == 2
    assert value(text, "huaweicloud_drs_health_compare_rows_per_second", job_id="hc-a", compare_type="lines") == 50
    assert value(text, "huaweicloud_drs_health_compare_recheck_rows", job_id="hc-a", compare_type="lines") == 0
    assert value(text, delay, job_id="hc-a", compare_type="object_comparison") is None, "finished: no progress"
    # The object comparison's result.
    objects = "huaweicloud_drs_health_compare_objects"
    assert value(text, objects, job_id="hc-a", object_type="TABLE", side="source") == 10
    assert value(text, objects, job_id="hc-a", object_type="TABLE", side="target") == 9
    status = "huaweicloud_drs_health_compare_object_status"
    assert value(text, status, job_id="hc-a", object_type="TABLE", status="inconsistent") == 1
    assert value(text, status, job_id="hc-a", object_type="VIEW", status="consistent") == 1
    # Not the on-demand comparison families: those stay as they were (no source label, no series).
    assert "huaweicloud_drs_comparison_" not in text
    # An error body in a 200 answer: down for that job, with the answer's own code counted once.
    assert value(text, UP, job_id="hc-odd") == 0
    assert not any(dict(k)["job_id"] == "hc-odd" for k in samples(text, "huaweicloud_drs_health_compare_info"))
    # Off for a job: no series, no call.
    assert not any(dict(k)["job_id"] == "hc-off" for k in samples(text, UP))
    calls = opt_in_health_calls(sim)  # job details are on by default: their calls are not this source's
    assert not any(k.startswith("hc-off/") for k in calls)
    # The cost of one reading: list, policy, object result, progress of the running row comparison.
    assert {k: v for k, v in calls.items() if k.startswith("hc-a/")} == {
        "hc-a/list_health_compare_jobs": 1,
        "hc-a/show_compare_policy": 1,
        "hc-a/show_health_object_compare": 1,
        "hc-a/show_compare_progress": 1,
    }
    promtool_clean(text)
    # /status.json and the status page.
    found = job_status(exp, "hc-a")["health_comparisons"]
    assert found["up"] is True and found["error_code"] is None and found["last_success_timestamp_seconds"] == read
    assert found["policy"]["status"] == "OPEN" and found["policy"]["next_run_timestamp_seconds"] == next_run
    assert found["policy"]["interval_seconds"] == 86400
    assert found["policy"]["compare_types"] == ["lines", "object_comparison"]
    lines = next(t for t in found["types"] if t["compare_type"] == "lines")
    assert lines["compare_job_id"] == "hc-rows-2" and lines["status"] == "RUNNING" and lines["progress_ratio"] > 0
    assert (
        lines["last_finished_compare_job_id"] == "hc-rows-1" and lines["last_finished_timestamp_seconds"] == rows_done
    )
    assert found["inconsistent_object_types"] == ["TABLE"]
    odd = job_status(exp, "hc-odd")["health_comparisons"]
    assert odd["up"] is False and odd["error_code"] == "DRS.10000024" and odd["types"] == [] and odd["policy"] is None
    assert job_status(exp, "hc-off")["health_comparisons"] is None
    page = exp.get("/").text
    assert "Scheduled comparisons" in page and "objects inconsistent: TABLE" in page and "DRS.10000024" in page


def test_health_comparisons_kept_within_max_staleness_after_a_fault(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS[:1])
    cfg = sim_config(
        sim,
        ["hc-a"],
        retries=0,
        health_comparisons=True,
        health_compare_refresh_interval=1,
        refresh_timeout=2,
        max_staleness=6,
    )
    exp = start(cfg)
    enabled = "huaweicloud_drs_compare_policy_enabled"
    wait_for(lambda: value(exp.metrics(), enabled, job_id="hc-a") == 1, 15)
    sim.admin("jobs/hc-a", {"health_fault": "status:503"})
    text = scrape_until(exp, lambda t: value(t, UP, job_id="hc-a") == 0)
    failed_at = time.time()
    codes = {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == "list_health_compare_jobs" and dict(k).get("job_id") == "hc-a"
    }
    assert codes and all(v >= 1 for v in codes.values()), "the failed readings are counted"
    read = value(text, "huaweicloud_drs_health_compare_last_success_timestamp_seconds", job_id="hc-a")
    assert read is not None, "the last good data is still shown, with the time it was read"
    assert value(text, enabled, job_id="hc-a") == 1
    assert value(text, FINISHED, job_id="hc-a", compare_type="lines", compare_job_id="hc-rows-1") is not None
    assert job_status(exp, "hc-a")["health_comparisons"]["error_code"] in codes
    # Older than max_staleness: the data goes (the alerts then see no current health comparison), up stays 0.
    text = scrape_until(exp, lambda t: value(t, enabled, job_id="hc-a") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, UP, job_id="hc-a") == 0
    assert not any(dict(k)["job_id"] == "hc-a" for k in samples(text, FINISHED))
    assert job_status(exp, "hc-a")["health_comparisons"]["types"] == []
    sim.admin("jobs/hc-a", {"health_fault": None})
    wait_for(lambda: value(exp.metrics(), enabled, job_id="hc-a") == 1, 15)
    assert value(exp.metrics(), UP, job_id="hc-a") == 1


def test_a_finished_object_result_is_read_once_and_a_reload_keeps_what_was_read(simulate: Any) -> None:
    sim = simulate(JOBS[:1])
    cfg = config.parse(sim_config(sim, ["hc-a"], health_comparisons=True, health_compare_refresh_interval=1))
    old = app.Exporter(cfg)
    new: app.Exporter | None = None
    try:
        source = old.source(HealthCompareSource)

        def lists() -> int:
            count: int = sim.stats()["health"].get("hc-a/list_health_compare_jobs", 0)
            return count

        wait_for(lambda: old.scrape(10, TEXT, compress=False) and lists() >= 3, 20)
        assert sim.stats()["health"]["hc-a/show_health_object_compare"] == 1, "a finished result never changes"
        kept = source.snapshot().jobs["hc-a"]
        assert kept.up and kept.data is not None
        slow = config.parse(sim_config(sim, ["hc-a"], health_comparisons=True, health_compare_refresh_interval=600))
        old.close()
        new = app.Exporter(slow, previous=old)
        assert new.source(HealthCompareSource).snapshot().jobs["hc-a"] == kept
        before = lists()
        body = b"".join(new.scrape(10, TEXT, compress=False)).decode()
        assert value(body, "huaweicloud_drs_compare_policy_enabled", job_id="hc-a") == 1
        assert lists() == before, "not read again at once"
    finally:
        for exporter in (old, new):
            if exporter is not None:
                exporter.close()


def test_an_endless_health_comparison_list_is_counted_once_per_reading(simulate: Any, start: Any) -> None:
    """Full pages forever: the reading ends at its deadline long before the page cap (1000 pages of
    1000), and that failure is counted once in api_errors_total, like every other."""
    jobs = [{"id": "hc-endless", "objects": {"table": 5}, "health": HEALTH}]
    jobs[0]["health_answers"] = {"list_health_compare_jobs": "endless"}
    sim = simulate(jobs)
    exp = start(
        sim_config(
            sim,
            ["hc-endless"],
            retries=0,
            refresh_timeout=2,
            health_comparisons=True,
            health_compare_refresh_interval=600,
        )
    )
    text = wait_for(lambda: t if value(t := exp.metrics(), UP, job_id="hc-endless") == 0 else None, 20)
    assert text
    code = job_status(exp, "hc-endless")["health_comparisons"]["error_code"]
    counted = {
        (dict(k)["operation"], dict(k)["error_code"]): v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("job_id") == "hc-endless"
    }
    assert counted == {("list_health_compare_jobs", code): 1}, code
