"""Why a job failed and when its full phase ended (issue 24 item 4): the exporter process against the simulator.

v3 ``batch-status`` every ``job_details_refresh_interval`` for all jobs of a project, ``batch-detail``
only for jobs whose status changed; on by default. Requests are counted by the simulator, so the
cost is shown by its counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter import app, config
from exporter.drs.jobstatus import DETAIL_OPERATION, STATUS_OPERATION, JobDetail, JobStatus
from exporter.metrics.details_metrics import JobDetailsSource, details_families
from exporter.render.exposition import TEXT
from exporter.sources.details import Details
from exporter.sources.perjob import JobRead, JobsSnapshot
from exporter.web.details_status import job_details_status
from exporter.web.healthpage import _job_details

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for
from .test_end_to_end import Service, free_port
from .test_replication_health import promtool_clean, scrape_until

DAY = 86400
REASON = "apply failed: <script>alert('secret_marker_reason')</script> & more"
JOBS: list[dict[str, Any]] = [
    {
        "id": "failed",
        "objects": {"table": 5},
        "status": "INCRE_TRANSFER_FAILED",
        "health": {"error_code": "DRS.M00004", "failed_reason": REASON, "failed_ago": 3600},
    },
    {
        "id": "incr",
        "objects": {"table": 5},
        "status": "INCRE_TRANSFER_STARTED",
        "health": {"full_transfer_done_ago": 7200},
    },
    {
        "id": "full",
        "objects": {"table": 5},
        "status": "FULL_TRANSFER_STARTED",
        "health": {"expired_days": 30},
    },
    {"id": "off", "objects": {"table": 5}},
]
GHOST = "ghost"  # configured, unknown to DRS: batch-status answers its entry with DRS.M05003


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    started: list[Simulator] = []

    def begin(jobs: list[dict[str, Any]]) -> Simulator:
        path = tmp_path / f"scenario-{len(started)}.yaml"
        path.write_text(yaml.safe_dump({"jobs": jobs}))
        started.append(Simulator("--scenario", str(path)))
        return started[-1]

    yield begin
    for sim in started:
        sim.stop()


def details_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    jobs = ["failed", "incr", "full", {"id": "off", "job_details": False}, GHOST]
    return sim_config(sim, jobs, retries=0, **extra)


def calls(sim: Simulator, operation: str) -> int:
    """Calls of a batch API: the simulator counts each job of each call; ``failed`` is in every one."""
    return int(sim.stats()["health"].get(f"failed/{operation}", 0))


def errors(text: str, operation: str, job_id: str) -> dict[str, float]:
    return {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == operation and dict(k).get("job_id") == job_id
    }


def details(exp: Exporter, job_id: str) -> Any:
    status = exp.get("/status.json").json()
    return next(j for p in status["projects"] for j in p["jobs"] if j["job_id"] == job_id)["job_details"]


def test_failure_reason_phase_end_expiry_health_and_an_entry_error_counted_once(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS)
    exp = start(details_config(sim, job_details_refresh_interval=600))
    text = scrape_until(exp, lambda t: "huaweicloud_drs_job_error_info{" in t)
    now = time.time()
    assert samples(text, "huaweicloud_drs_job_error_info") == {
        (("error_code", "DRS.M00004"), ("job_id", "failed")): 1
    }, "only the failed job has DRS's error code, as a label; never the reason"
    full_done = value(text, "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds", job_id="incr")
    assert full_done is not None and abs(full_done - (now - 7200)) < 30
    assert value(text, "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds", job_id="full") is None
    # Failed an hour ago (update_time), expired_days not in the answer: DRS's default (and minimum) of 14.
    expiry = value(text, "huaweicloud_drs_job_failed_expiry_timestamp_seconds", job_id="failed")
    assert expiry is not None and abs(expiry - (now - 3600 + 14 * DAY)) < 30
    assert samples(text, "huaweicloud_drs_job_failed_expiry_timestamp_seconds").keys() == {(("job_id", "failed"),)}
    ups = {dict(k)["job_id"]: v for k, v in samples(text, "huaweicloud_drs_job_details_up").items()}
    assert ups == {"failed": 1, "incr": 1, "full": 1, GHOST: 0}, "a job with job_details off has no series"
    success = samples(text, "huaweicloud_drs_job_details_last_success_timestamp_seconds")
    assert {dict(k)["job_id"] for k in success} == {"failed", "incr", "full"}
    assert all(now - 120 < v <= now for v in success.values())
    promtool_clean(text)
    # The unknown job's own entry error: counted once, as batch-status's; the others are unaffected.
    assert errors(text, STATUS_OPERATION, GHOST) == {"DRS.M05003": 1}
    assert not any(errors(text, op, j) for op in (STATUS_OPERATION, DETAIL_OPERATION) for j in ("failed", "incr"))
    # One batch-status call for the four jobs, one batch-detail call for the three it knows (none before).
    health = sim.stats()["health"]
    assert {k: v for k, v in health.items() if k.startswith("off/")} == {}, "a job with job_details off costs nothing"
    assert calls(sim, "batch_status") == 1 and calls(sim, "batch_detail") == 1
    assert health.get("incr/batch_detail") == 1 and health.get(f"{GHOST}/batch_detail") is None
    text = exp.metrics()
    assert errors(text, STATUS_OPERATION, GHOST) == {"DRS.M05003": 1}, "not counted again by later scrapes"

    failed = details(exp, "failed")
    assert failed["up"] is True and failed["status"] == "INCRE_TRANSFER_FAILED"
    assert failed["job_error_code"] == "DRS.M00004" and failed["failed_reason"] == REASON
    assert failed["expired_days"] == 14 and failed["expired_days_assumed"] is True
    assert failed["failed_since"] == "update_time"
    assert abs(failed["failed_expiry_timestamp_seconds"] - expiry) < 1
    assert abs(failed["failed_timestamp_seconds"] - (now - 3600)) < 30
    ghost = details(exp, GHOST)
    assert ghost["up"] is False and ghost["error_code"] == "DRS.M05003" and ghost["status"] is None
    assert details(exp, "incr")["failed_reason"] is None
    assert details(exp, "off") is None
    page = exp.get("/").text
    assert "Job details" in page and "&lt;script&gt;alert(&#x27;secret_marker_reason&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page and "&amp; more" in page
    # The reason is text for people: in no label, in no log line at the default level.
    assert "secret_marker_reason" not in exp.metrics()
    assert "secret_marker_reason" not in exp.log()


def test_details_are_read_again_only_when_a_status_changes(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS)
    exp = start(details_config(sim, job_details_refresh_interval=1))
    wait_for(lambda: exp.metrics() and calls(sim, "batch_status") >= 4, 30)
    assert calls(sim, "batch_detail") == 1, "steady state: one batch-status call per interval, nothing else"
    # The full phase ends: the job's details are read again (once), and its end time is shown from then on.
    sim.admin("jobs/full", {"status": "INCRE_TRANSFER_STARTED", "health": {"full_transfer_done_ago": 5}})
    done = "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds"
    text = scrape_until(exp, lambda t: value(t, done, job_id="full") is not None, 30)
    assert abs((value(text, done, job_id="full") or 0) - (time.time() - 5)) < 30
    before = calls(sim, "batch_status")
    wait_for(lambda: exp.metrics() and calls(sim, "batch_status") >= before + 3, 30)
    health = sim.stats()["health"]
    assert health.get("full/batch_detail") == 2 and health.get("incr/batch_detail") == 1


def test_a_whole_call_fault_keeps_the_last_data_within_max_staleness(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS[:2])
    cfg = sim_config(
        sim, ["failed", "incr"], retries=0, job_details_refresh_interval=1, refresh_timeout=2, max_staleness=6
    )
    exp = start(cfg)
    info = "huaweicloud_drs_job_error_info"
    wait_for(lambda: value(exp.metrics(), info, job_id="failed") == 1, 20)
    sim.admin("jobs/incr", {"health_fault": "status:503"})  # every call that asks for it fails, whole
    text = scrape_until(exp, lambda t: value(t, "huaweicloud_drs_job_details_up", job_id="failed") == 0)
    failed_at = time.time()
    assert value(text, "huaweicloud_drs_job_details_up", job_id="incr") == 0
    read = value(text, "huaweicloud_drs_job_details_last_success_timestamp_seconds", job_id="failed")
    assert read is not None and value(text, info, job_id="failed") == 1, "the last good data stays, with its age"
    code = details(exp, "failed")["error_code"]
    assert code == "APIGW.0613" and details(exp, "failed")["failed_reason"] == REASON
    # Each failed call is counted once, by the transport (as a call of no one job), never again as the
    # jobs' entry errors: the count equals the calls the simulator failed (every call minus those it answered).

    def failed_calls() -> int:
        stats = sim.stats()
        return int(stats["requests"]["batch_status"] - stats["health"]["failed/batch_status"])

    def counted_once() -> bool:
        text = exp.metrics()
        if errors(text, STATUS_OPERATION, "failed") or errors(text, STATUS_OPERATION, "incr"):
            raise AssertionError("a whole call's failure counted as the jobs' own")
        return errors(text, STATUS_OPERATION, "") == {code: failed_calls()}

    wait_for(counted_once, 20)
    # Older than max_staleness: the data goes, the source stays down.
    text = scrape_until(exp, lambda t: value(t, info, job_id="failed") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, "huaweicloud_drs_job_details_up", job_id="failed") == 0
    assert value(text, "huaweicloud_drs_job_details_last_success_timestamp_seconds", job_id="failed") is None
    assert value(text, "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds", job_id="incr") is None
    assert details(exp, "failed")["failed_reason"] is None
    sim.admin("jobs/incr", {"health_fault": None})
    wait_for(lambda: value(exp.metrics(), info, job_id="failed") == 1, 20)
    assert value(exp.metrics(), "huaweicloud_drs_job_details_up", job_id="incr") == 1
    assert not errors(exp.metrics(), DETAIL_OPERATION, "failed"), "no detail was asked for while the status stayed"


def test_job_details_are_on_by_default_and_off_globally_or_by_discovery(simulate: Any, start: Any) -> None:
    sim = simulate(JOBS[:2])
    on = start(sim_config(sim, ["failed"]))
    scrape_until(on, lambda t: value(t, "huaweicloud_drs_job_error_info", job_id="failed") == 1)
    off = start(sim_config(sim, ["incr"], job_details=False, cache_ttl=1))
    text = scrape_until(off, lambda t: sim.stats()["requests"].get("batch_progress", 0) >= 3)
    assert "huaweicloud_drs_job_details" not in text and details(off, "incr") is None
    assert "incr/batch_status" not in sim.stats()["health"]
    cfg = config.parse(sim_config(sim, [], discovery={"job_types": ["migration"], "job_details": False}))
    project = cfg.projects[0]
    assert project.discovery is not None and project.discovery.job_details is False


def test_a_reload_keeps_the_details_read(simulate: Any) -> None:
    sim = simulate(JOBS[:1])
    cfg = config.parse(sim_config(sim, ["failed"], job_details_refresh_interval=600))
    old = app.Exporter(cfg)
    new: app.Exporter | None = None
    try:
        source = old.source(JobDetailsSource)
        wait_for(lambda: old.scrape(10, TEXT, compress=False) and source.snapshot().jobs.get("failed"), 15)
        kept = source.snapshot().jobs["failed"]
        assert kept.up and kept.data is not None and kept.data.detail is not None and kept.data.failed_seen is not None
        new = app.Exporter(cfg, previous=old)
        assert new.source(JobDetailsSource).snapshot().jobs["failed"] == kept
        body = b"".join(new.scrape(10, TEXT, compress=False)).decode()
        assert value(body, "huaweicloud_drs_job_error_info", job_id="failed") == 1
        assert sim.stats()["health"].get("failed/batch_status") == 1, "not read again at once"
    finally:
        for exporter in (old, new):
            if exporter is not None:
                exporter.close()


# --- the estimate of when a failed job ends by itself ---------------------------------------------


def _state(status: str, update: float | None, seen: float | None, days: int | None = None) -> Details:
    job = JobStatus("j", status, None, "")
    detail = JobDetail(
        "j", status, None, "", update_time=update, expired_days=days or 14, expired_days_assumed=days is None
    )
    return Details(job, detail, seen)


def test_the_failure_time_is_the_earlier_of_the_last_update_and_the_first_sighting() -> None:
    assert _state("INCRE_TRANSFER_FAILED", 1000.0, 5000.0).failed_expiry == 1000.0 + 14 * DAY
    # Updated after it failed (the exporter saw it failed first): the sighting is the earlier bound.
    assert _state("INCRE_TRANSFER_FAILED", 9000.0, 5000.0).failed_at == 5000.0
    # No update_time: when the exporter first saw it failed (late by at most the time it was down).
    assert _state("FULL_TRANSFER_FAILED", None, 5000.0, days=30).failed_expiry == 5000.0 + 30 * DAY
    assert _state("INCRE_TRANSFER_STARTED", 1000.0, None).failed_expiry is None
    assert _state("INCRE_TRANSFER_FAILED", None, None).failed_expiry is None


def test_the_estimate_says_whether_it_rests_on_drs_update_time_or_the_first_sighting() -> None:
    """Without update_time the failure time is the exporter's first sighting: late, not early; it says so."""
    assert _state("INCRE_TRANSFER_FAILED", 1000.0, 5000.0).failed_since == "update_time"
    assert _state("INCRE_TRANSFER_FAILED", 9000.0, 5000.0).failed_since == "first_seen"
    first_seen = _state("FULL_TRANSFER_FAILED", None, 5000.0, days=30)
    assert first_seen.failed_since == "first_seen"
    assert _state("INCRE_TRANSFER_STARTED", 1000.0, None).failed_since is None
    job: JobRead[Details] = JobRead("j", True, None, first_seen, 6000.0)
    status = job_details_status(job)
    assert status.failed_since == "first_seen"
    assert "first saw it failed" in _job_details(status)
    families = {f.name: f for f in details_families(JobsSnapshot({"j": job}))}
    help_text = families["huaweicloud_drs_job_failed_expiry_timestamp_seconds"].documentation
    assert "errs early" not in help_text and "first saw it failed" in help_text, help_text


# --- the cut-over rules see the exporter's full-phase end time ------------------------------------

CUTOVER_COMPARISONS = [
    {"id": "rows", "type": "lines", "status": "SUCCESSFUL", "tables": 5, "statuses": [], "started_ago": 1800},
    {"id": "values", "type": "contents", "status": "SUCCESSFUL", "tables": 5, "statuses": [], "started_ago": 1800},
]
CUTOVER_JOBS: list[dict[str, Any]] = [
    # Compared about half an hour ago; the full phase ended a minute ago: the comparisons prove nothing.
    {"id": "compared-early", "objects": {"table": 5}, "speed": 100, "comparisons": CUTOVER_COMPARISONS}
    | {"health": {"full_transfer_done_ago": 60}},
    # The full phase ended two hours ago, before the comparisons.
    {"id": "compared-after", "objects": {"table": 5}, "speed": 100, "comparisons": CUTOVER_COMPARISONS}
    | {"health": {"full_transfer_done_ago": 7200}},
]


def test_the_cutover_rules_in_a_real_prometheus_see_the_full_phase_end(simulate: Any, tmp_path: Path) -> None:
    sim = simulate(CUTOVER_JOBS)
    (tmp_path / "exporter").mkdir()
    cfg = sim_config(sim, ["compared-early", "compared-after"], comparisons=True, compare_refresh_interval=1)
    exporter = Exporter(cfg, tmp_path / "exporter")
    prom: Service | None = None
    try:
        port = free_port()
        prom_config = tmp_path / "prometheus.yml"
        rules = Path(__file__).resolve().parent.parent / "alerts" / "recording_rules.yaml"
        prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [
                        {
                            "job_name": "huaweicloud-drs-exporter",
                            "static_configs": [{"targets": [exporter.url.removeprefix("http://")]}],
                        }
                    ],
                }
            )
        )
        prom = Service(
            [
                "prometheus",
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            tmp_path / "prometheus.log",
            f"http://127.0.0.1:{port}/-/ready",
        )
        query = 'job_id_reason:huaweicloud_drs_cutover_blocked:bool{reason="comparison_stale"}'

        def stale() -> dict[str, float] | None:
            body = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=30).json()
            found = {r["metric"]["job_id"]: float(r["value"][1]) for r in body["data"]["result"]}
            return found if found.get("compared-early") == 1 else None

        # At first (before the exporter's first reading of the details) nothing tells the rules when
        # the full phase ended: the early comparison blocks once the series is there.
        verdict = wait_for(stale, 60, interval=0.5)
        assert verdict == {"compared-early": 1.0, "compared-after": 0.0}
    finally:
        if prom is not None:
            prom.stop()
        exporter.stop()
