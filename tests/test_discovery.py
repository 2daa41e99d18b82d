"""Job discovery, job-level metrics, several projects in one config, and cardinality guards."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.drs.joblist import parse_jobs

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for

JOBS: list[dict[str, Any]] = [
    {"id": "prod-a", "name": "prod-a", "objects": {"table": 30}, "job_type": "migration"},
    {"id": "prod-a-child", "name": "prod-a-child", "objects": {"table": 10}, "parent": "prod-a"},
    {"id": "prod-b", "name": "prod-b", "objects": {"table": 20}, "job_type": "sync", "status": "FULL_TRANSFER_STARTED"},
    {"id": "dev-c", "name": "dev-c", "objects": {"table": 5}},
    {"id": "prod-d", "name": "prod-d", "objects": {"table": 5}, "status": "CONFIGURATION"},
    {"id": "prod-x", "name": "prod-x", "objects": {"table": 5}},
    {"id": "prod-later", "name": "prod-later", "objects": {"table": 5}, "listed": False},
]
DISCOVERY = {
    "job_types": ["migration", "sync"],
    "status": ["FULL_TRANSFER_STARTED", "INCRE_TRANSFER_STARTED"],
    "name_regex": "^prod-",
    "exclude_regex": "-x$",
    "object_types": ["table"],
    "refresh_interval": 1,
}


def simulator(tmp: Path, *args: str, jobs: list[dict[str, Any]] = JOBS, **scenario: Any) -> Simulator:
    path = tmp / f"scenario-{len(list(tmp.glob('scenario-*')))}.yaml"
    path.write_text(yaml.safe_dump({"jobs": jobs, **scenario}))
    return Simulator("--scenario", str(path), *args)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    stops: list[Any] = []

    def start(sim: Simulator, config: dict[str, Any]) -> Exporter:
        stops.append(sim.stop)
        workdir = tmp_path / f"exp{len(stops)}"
        workdir.mkdir()
        exp = Exporter(config, workdir)
        stops.append(exp.stop)
        return exp

    yield start
    for stop in reversed(stops):
        stop()


def discovered(text: str) -> set[str]:
    return {dict(k)["job_id"] for k in samples(text, "huaweicloud_drs_up")}


def discovery_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    config = sim_config(sim, [], retries=0, **extra)
    del config["jobs"]
    config["discovery"] = DISCOVERY
    return config


def test_discovery_with_filters_children_and_job_info(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    exp = run(sim, {**discovery_config(sim), "region": "ap-southeast-1"})
    text = exp.metrics()
    assert discovered(text) == {"prod-a", "prod-a-child", "prod-b"}
    assert all(value(text, "huaweicloud_drs_up", job_id=j) == 1 for j in discovered(text))
    info = {dict(k)["job_id"]: dict(k) for k in samples(text, "huaweicloud_drs_job_info")}
    assert info["prod-b"]["status"] == "FULL_TRANSFER_STARTED" and info["prod-b"]["job_type"] == "sync"
    assert info["prod-a"]["name"] == "prod-a" and info["prod-a"]["engine_type"] == "mysql-to-mysql"
    assert info["prod-a"]["project_id"] == sim.info["project_id"] and info["prod-a"]["region"] == "ap-southeast-1"
    assert value(text, "huaweicloud_drs_discovery_up", project_id=sim.info["project_id"]) == 1
    assert value(text, "huaweicloud_drs_discovered_jobs") == 3
    assert sim.stats()["requests"].get("list_jobs_v5", 0) >= 2, "one listing per job type"


def test_fallback_to_the_v3_list(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path, "--no-v5-list")
    exp = run(sim, discovery_config(sim))
    text = exp.metrics()
    assert discovered(text) == {"prod-a", "prod-a-child", "prod-b"}
    assert sim.stats()["requests"].get("list_jobs_v3", 0) >= 2
    time.sleep(1.1)
    exp.metrics()
    notices = [line for line in exp.log().splitlines() if "v5 job list is not available" in line]
    assert len(notices) == 1, "said once"


def test_jobs_appear_and_disappear(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    exp = run(sim, discovery_config(sim))
    assert "prod-later" not in discovered(exp.metrics())
    sim.admin("jobs/prod-later", {"listed": True})
    wait_for(lambda: "prod-later" in discovered(exp.metrics()), timeout=10, interval=0.5)
    sim.admin("jobs/prod-b", {"listed": False})
    wait_for(lambda: "prod-b" not in discovered(exp.metrics()), timeout=10, interval=0.5)
    text = exp.metrics()
    assert not [k for k in samples(text, "huaweicloud_drs_object_progress_ratio") if dict(k)["job_id"] == "prod-b"]


def test_static_jobs_and_discovery_combine(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    config = discovery_config(sim)
    config["jobs"] = ["prod-a", "dev-c"]
    exp = run(sim, config)
    text = exp.metrics()
    assert discovered(text) == {"prod-a", "prod-a-child", "prod-b", "dev-c"}
    assert len(samples(text, "huaweicloud_drs_up")) == 4, "prod-a once"
    info = {dict(k)["job_id"]: dict(k) for k in samples(text, "huaweicloud_drs_job_info")}
    assert info["dev-c"]["status"] == "INCRE_TRANSFER_STARTED", "static job: status from batch progress"


def test_discovery_failure_keeps_the_last_jobs(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    exp = run(sim, discovery_config(sim))
    assert discovered(exp.metrics()) == {"prod-a", "prod-a-child", "prod-b"}
    listed = exp.get("/status.json").json()["projects"][0]["discovery"]
    assert listed["error_code"] is None and listed["error_message"] is None
    sim.admin("faults", {"rate_list_error": 1.0})
    time.sleep(1.1)
    text = exp.metrics()
    assert value(text, "huaweicloud_drs_discovery_up") == 0
    assert discovered(text) == {"prod-a", "prod-a-child", "prod-b"}
    assert value(text, "huaweicloud_drs_api_errors_total", operation="list_jobs", error_code="DRS.M00004")
    # The status page: the last *successful* listing, and why the last attempt failed.
    failed = exp.get("/status.json").json()["projects"][0]["discovery"]
    assert failed["up"] is False and failed["error_code"] == "DRS.M00004" and failed["error_message"]
    assert failed["last_listing_timestamp_seconds"] == pytest.approx(listed["last_listing_timestamp_seconds"], abs=0.5)
    assert failed["last_listing_age_seconds"] >= 1.0
    page = exp.get("/").text
    assert "DRS.M00004" in page and "last successful listing" in page


@pytest.mark.parametrize("batch", [True, False], ids=["batch-progress", "per-job"])
def test_job_level_metrics(run: Any, tmp_path: Path, batch: bool) -> None:
    jobs: list[dict[str, Any]] = [
        {"id": "j-1", "objects": {"table": 50}, "delay": 7, "speed": 0.5},
        {"id": "j-2", "objects": {"table": 5}},
    ]
    sim = simulator(tmp_path, *([] if batch else ["--no-batch-progress"]), jobs=jobs)
    exp = run(sim, sim_config(sim, ["j-1", "j-2"]))
    text = exp.metrics()
    ratio = value(text, "huaweicloud_drs_job_progress_ratio", job_id="j-1")
    assert ratio is not None and 0 <= ratio <= 1
    assert value(text, "huaweicloud_drs_job_incremental_delay_seconds", job_id="j-1") == 7
    remaining = value(text, "huaweicloud_drs_job_remaining_seconds", job_id="j-1")
    assert remaining is not None and remaining > 0
    requests = sim.stats()["requests"]
    if batch:
        assert requests.get("batch_progress") == 1
    else:
        assert requests.get("other", 0) >= 2, "one job detail call per job"


def test_two_projects_with_different_credentials(tmp_path: Path) -> None:
    first = simulator(tmp_path, jobs=[{"id": "p1-job", "objects": {"table": 4}}])
    try:
        second = simulator(
            tmp_path,
            "--project-id",
            "fedcba9876543210fedcba9876543210",
            "--access-key",
            "OTHERACCESSKEY000001",
            "--secret-key",
            "another-secret-key-value",
            "--token",
            "second-project-token",
            jobs=[{"id": "p2-job", "objects": {"table": 3}}],
        )
    except Exception:
        first.stop()
        raise
    config = {
        "projects": [
            sim_config(first, ["p1-job"]),
            {
                "endpoint": second.url,
                "project_id": second.info["project_id"],
                "region": "eu-west-101",
                "auth": {"token": "second-project-token"},
                "jobs": ["p2-job"],
            },
        ]
    }
    exp: Exporter | None = None
    try:
        exp = Exporter(config, tmp_path)
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_up", job_id="p1-job") == 1
        assert value(text, "huaweicloud_drs_up", job_id="p2-job") == 1
        info = {dict(k)["job_id"]: dict(k) for k in samples(text, "huaweicloud_drs_job_info")}
        assert info["p2-job"]["project_id"] == "fedcba9876543210fedcba9876543210"
        assert info["p2-job"]["region"] == "eu-west-101"
        assert info["p1-job"]["project_id"] == first.info["project_id"]
        # Each project used its own credentials: a wrong pairing would have been refused.
        assert not samples(text, "huaweicloud_drs_api_errors_total")
    finally:
        if exp is not None:
            exp.stop()
        first.stop()
        second.stop()


def ratios(text: str, job: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k: v for k, v in samples(text, "huaweicloud_drs_object_progress_ratio").items() if dict(k)["job_id"] == job}


def test_cardinality_guards(run: Any, tmp_path: Path) -> None:
    jobs = [{"id": n, "objects": {"table": 1200}} for n in ("capped", "filtered", "aggregated", "reference")]
    sim = simulator(tmp_path, jobs=jobs)
    config = sim_config(sim, ["capped", "filtered", {"id": "aggregated", "aggregate_only": True}])
    config["max_objects_per_key"] = 100
    exp = run(sim, config)
    text = exp.metrics()
    assert len(ratios(text, "capped")) == 100
    assert value(text, "huaweicloud_drs_objects_not_exported", job_id="capped") == 1100
    assert value(text, "huaweicloud_drs_objects", job_id="capped") == 1200
    # The reference: the same objects without guards (their progress is the same function of time).
    (tmp_path / "ref").mkdir()
    reference = Exporter(sim_config(sim, ["reference"]), tmp_path / "ref")
    try:
        ref_text = reference.metrics()
    finally:
        reference.stop()
    ref_completed = value(ref_text, "huaweicloud_drs_objects_completed", job_id="reference")
    assert ref_completed is not None
    completed = value(text, "huaweicloud_drs_objects_completed", job_id="capped")
    assert completed is not None and abs(completed - ref_completed) <= 30, "aggregates count every object"
    # The mean progress covers every listed object, guarded or not: without guards it is the mean of
    # the per-object series; with them (capped, aggregate_only) it is still there and close to it.
    ref_ratios = ratios(ref_text, "reference")
    ref_mean = value(ref_text, "huaweicloud_drs_objects_progress_ratio_mean", job_id="reference")
    assert ref_mean is not None and len(ref_ratios) == 1200
    assert ref_mean == pytest.approx(sum(ref_ratios.values()) / 1200)
    for job in ("capped", "aggregated"):
        mean = value(text, "huaweicloud_drs_objects_progress_ratio_mean", job_id=job)
        assert mean is not None and abs(mean - ref_mean) <= 0.03, (job, mean, ref_mean)
    assert not ratios(text, "aggregated")
    db_objects = {
        dict(k)["src_db"]: v
        for k, v in samples(text, "huaweicloud_drs_database_objects").items()
        if dict(k)["job_id"] == "aggregated"
    }
    assert db_objects == {"db_0000": 500, "db_0001": 500, "db_0002": 200}
    db_done = sum(
        v
        for k, v in samples(text, "huaweicloud_drs_database_objects_completed").items()
        if dict(k)["job_id"] == "aggregated"
    )
    assert db_done == value(text, "huaweicloud_drs_objects_completed", job_id="aggregated")
    # A capped job exports the first 100 objects in API order (all of db_0000): its per-database
    # counts are over every object, or completion by source database would be a lie (issue 21 problem 9).
    for job in ("capped", "filtered"):
        assert {
            dict(k)["src_db"]: v
            for k, v in samples(text, "huaweicloud_drs_database_objects").items()
            if dict(k)["job_id"] == job
        } == {"db_0000": 500, "db_0001": 500, "db_0002": 200}, job
    capped_done = sum(
        v
        for k, v in samples(text, "huaweicloud_drs_database_objects_completed").items()
        if dict(k)["job_id"] == "capped"
    )
    assert capped_done == value(text, "huaweicloud_drs_objects_completed", job_id="capped")
    # Nothing is cut from the reference: its objects say it all, no per-database series.
    assert not [k for k in samples(ref_text, "huaweicloud_drs_database_objects") if dict(k)["job_id"] == "reference"]


def test_object_filters(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path, jobs=[{"id": "f", "objects": {"table": 1200}}])
    config = sim_config(sim, ["f"])
    config["object_filters"] = {"include_src_db": "^db_000[01]$", "exclude_src_tb": "5$"}
    exp = run(sim, config)
    text = exp.metrics()
    kept = ratios(text, "f")
    assert {dict(k)["src_db"] for k in kept} == {"db_0000", "db_0001"}
    assert not any(dict(k)["src_tb"].endswith("5") for k in kept)
    assert len(kept) == 900
    assert value(text, "huaweicloud_drs_objects_not_exported", job_id="f") == 300


def test_landing_page_lists_discovered_jobs(run: Any, tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    exp = run(sim, discovery_config(sim))
    exp.metrics()
    page = exp.get("/").text
    assert "prod-a-child" in page and "migration, sync jobs;" in page
    assert "dev-c" not in page
    assert sim.info["secret_key"] not in page


def test_unencodable_text_in_a_job_listing_does_not_fail_the_scrape(run: Any, tmp_path: Path) -> None:
    """A lone surrogate (JSON's \\ud800) in a listed field is a label value of job_info: made encodable on entry."""
    sim = simulator(tmp_path)
    exp = run(sim, discovery_config(sim))
    assert discovered(exp.metrics()) == {"prod-a", "prod-a-child", "prod-b"}
    sim.admin("jobs/prod-a", {"engine_type": "my\ud800sql", "name": "prod-a \udfff"})
    time.sleep(1.1)  # the listing interval
    answer = exp.get("/metrics", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    info = {dict(k)["job_id"]: dict(k) for k in samples(answer.text, "huaweicloud_drs_job_info")}
    assert info["prod-a"]["engine_type"] == "my?sql" and info["prod-a"]["name"] == "prod-a ?"
    for path in ("/", "/status.json"):
        assert exp.get(path).status_code == 200


def test_a_lone_surrogate_in_object_names_is_served_and_scraped(run: Any, tmp_path: Path) -> None:
    """The simulator answers it (as a \\ud800 escape) instead of crashing; the exporter exports it encodable."""
    names = [{"src_db": "db\ud800", "src_tb": "t", "dst_db": "db\ud800", "dst_tb": "t"}]
    sim = simulator(tmp_path, jobs=[{"id": "odd", "name": "odd", "objects": {"table": 2}, "names": names}])
    exp = run(sim, sim_config(sim, ["odd"]))
    answer = exp.get("/metrics", timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    rows = samples(answer.text, "huaweicloud_drs_object_progress_ratio")
    assert {dict(k)["src_db"] for k in rows} == {"db?", "db_0000"}
    assert exp.get("/").status_code == 200 and exp.get("/status.json").status_code == 200


def test_listed_job_ids_that_would_change_the_request_path_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    # Review: ids from a listing went into request paths as they were ("..", "a?b", "a#b").
    items = [
        {"id": "ok-1"},
        {"id": ".."},
        {"id": "a?b", "children": [{"id": "child-2"}, {"id": "x/y"}]},
        {"id": "a#b"},
        {"id": "\u202egnp.exe"},
        {"id": "abc\n"},  # second review: `$` let a final line break through
    ]
    assert [m.job_id for m in parse_jobs(items, "list_jobs")] == ["ok-1", "child-2"]
    assert caplog.text.count("skipped: not letters, digits and '-'") == 6
    # The next listing (every refresh_interval) says it no more.
    assert [m.job_id for m in parse_jobs(items, "list_jobs")] == ["ok-1", "child-2"]
    assert caplog.text.count("skipped: not letters, digits and '-'") == 6
    assert "\u202e" not in caplog.text and "'\\u202egnp.exe'" in caplog.text  # shown escaped
