"""Issue 12: the refresh path under real failures, each case through the simulator and exporter as processes.

Deadlines end to end, stale-while-revalidate, token renewal, redirects, paging integrity,
fairness, project-wide 429 backoff and bounded state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .procs import Exporter, Simulator, samples, sim_config, value, wait_for

BUDGET_1S = {"X-Prometheus-Scrape-Timeout-Seconds": "1"}


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Any]:
    """Start a simulator for a scenario, then exporters for it; all stopped after the test."""
    stops: list[Any] = []

    def simulator(jobs: list[dict[str, Any]], *args: str, **scenario: Any) -> Simulator:
        path = tmp_path / f"scenario-{len(stops)}.yaml"
        path.write_text(yaml.safe_dump({"jobs": jobs, **scenario}))
        sim = Simulator("--scenario", str(path), *args)
        stops.append(sim.stop)
        return sim

    def exporter(config: dict[str, Any]) -> Exporter:
        workdir = tmp_path / f"exp{len(stops)}"
        workdir.mkdir()
        exp = Exporter(config, workdir)
        stops.append(exp.stop)
        return exp

    yield simulator, exporter
    for stop in reversed(stops):
        stop()


def iam_config(sim: Simulator, jobs: list[Any], **extra: Any) -> dict[str, Any]:
    iam = sim.info["iam"]
    return {
        **sim_config(sim, jobs, **extra),
        "auth": {
            "username": iam["username"],
            "password": iam["password"],
            "domain_name": iam["domain_name"],
            "iam_endpoint": iam["endpoint"],
        },
    }


def series(text: str, job: str) -> int:
    return len([k for k in samples(text, "huaweicloud_drs_object_progress_ratio") if dict(k)["job_id"] == job])


def errors_of(text: str, job: str) -> dict[str, float]:
    return {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k)["job_id"] == job
    }


# --- 1. deadlines ------------------------------------------------------------------------


def test_1a_waiting_for_a_slot_is_neither_timeout_nor_latency(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [{"id": f"q{i}", "objects": {"table": 30}, "latency_ms": 600} for i in range(3)]
    sim = simulator(jobs)
    # Two slots, four threads asking (two refreshing first pages, two fetching later pages):
    # requests queue for a slot, then answer in 0.6 s, well within their own 1.5 s.
    config = sim_config(sim, [j["id"] for j in jobs], max_concurrency=2, page_size=10, request_timeout=1.5, retries=0)
    exp = exporter(config)
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "20"})
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1, errors_of(text, job["id"])
    histogram = samples(text, "huaweicloud_drs_api_request_duration_seconds_bucket")
    total = value(text, "huaweicloud_drs_api_request_duration_seconds_count", operation="show_progress_data")
    under_1s = histogram[(("le", "1.0"), ("operation", "show_progress_data"))]
    assert total == 9
    assert under_1s == 9, "the queue before the slot was counted as request time"


def test_1b_a_trickling_body_is_cut_at_the_deadline(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "trickle", "objects": {"table": 250}, "fault": "trickle"}, {"id": "ok"}])
    exp = exporter(sim_config(sim, ["trickle", "ok"], request_timeout=1.5, retries=0, refresh_timeout=5))
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    assert value(text, "huaweicloud_drs_up", job_id="ok") == 1
    info = {dict(k)["error_code"] for k in samples(text, "huaweicloud_drs_refresh_error_info")}
    assert value(text, "huaweicloud_drs_refresh_error_info", job_id="trickle", error_code="timeout") == 1, info
    assert errors_of(text, "trickle") == {"timeout": 1}
    # Cut at 1.5 s, not read for the minute the body would trickle (generous bound: this is the point).
    seconds = value(text, "huaweicloud_drs_api_request_duration_seconds_sum", operation="show_progress_data")
    assert seconds is not None and seconds < 5


def test_1d_job_progress_is_read_in_the_background_and_kept_when_a_call_fails(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "a", "objects": {"table": 5}}, {"id": "b", "objects": {"table": 5}}], "--no-batch-progress")
    exp = exporter(sim_config(sim, ["a", "b"], cache_ttl=1, max_staleness=60))
    first = wait_for(lambda: (t := exp.metrics()) and value(t, "huaweicloud_drs_job_progress_ratio", job_id="b") and t)
    assert value(first, "huaweicloud_drs_job_progress_ratio", job_id="a") is not None
    sim.admin("faults", {"job_progress_error": True})
    calls = sim.stats()["requests"].get("other", 0)  # GET /v5/{project}/jobs/{id} counts as "other"
    texts: list[str] = []

    def scrape() -> int:
        texts.append(exp.metrics(headers=BUDGET_1S))
        return int(sim.stats()["requests"].get("other", 0))

    # Over several TTLs every job-level call fails: the last good values stay.
    wait_for(lambda: scrape() >= calls + 6, timeout=30, interval=0.3)
    for text in texts:
        assert value(text, "huaweicloud_drs_job_progress_ratio", job_id="a") is not None
        assert value(text, "huaweicloud_drs_job_progress_ratio", job_id="b") is not None


# --- 2. stale-while-revalidate -----------------------------------------------------------


def test_2_a_slow_key_keeps_its_series_across_three_ttl_expiries(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "slow", "objects": {"table": 20}, "latency_ms": 1500}, {"id": "fast"}])
    exp = exporter(sim_config(sim, ["slow", "fast"], cache_ttl=1, refresh_timeout=10, request_timeout=5))
    first = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "10"})
    assert value(first, "huaweicloud_drs_up", job_id="slow") == 1
    successes = {value(first, "huaweicloud_drs_last_success_timestamp_seconds", job_id="slow")}
    # Each scrape has a 0.8 s budget, shorter than the slow key's 1.5 s refresh. Stale answers come
    # back at once, so the loop is bounded by time (and count), not by a number of fast scrapes.
    deadline = time.monotonic() + 45
    for _ in range(600):
        if len(successes) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
        text = exp.metrics(headers=BUDGET_1S)
        assert value(text, "huaweicloud_drs_up", job_id="slow") == 1, "flapped to up 0 at a TTL expiry"
        assert series(text, "slow") == 20
        assert value(text, "huaweicloud_drs_refresh_error_info", job_id="slow") is None
        successes.add(value(text, "huaweicloud_drs_last_success_timestamp_seconds", job_id="slow"))
    assert len(successes) >= 4, "three refreshes after the first were seen, each served stale meanwhile"
    last = exp.metrics(headers=BUDGET_1S)
    assert value(last, "huaweicloud_drs_scrape_timeouts_total") == 0
    stale = value(last, "huaweicloud_drs_stale_serves_total")
    assert stale is not None and stale >= 3


def test_2_past_max_staleness_the_key_goes_down(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "slow", "objects": {"table": 5}}])
    exp = exporter(sim_config(sim, ["slow"], cache_ttl=1, max_staleness=1, refresh_timeout=20, request_timeout=10))
    assert value(exp.metrics(), "huaweicloud_drs_up", job_id="slow") == 1
    sim.admin("jobs/slow", {"latency_ms": 4000})
    text = wait_for(
        lambda: (t := exp.metrics(headers=BUDGET_1S)) and value(t, "huaweicloud_drs_up", job_id="slow") == 0 and t,
        timeout=15,
        interval=0.2,
    )
    assert value(text, "huaweicloud_drs_refresh_error_info", job_id="slow", error_code="scrape_timeout") == 1
    assert series(text, "slow") == 0


# --- 3. token lifecycle ------------------------------------------------------------------


def test_3_failed_renewal_keeps_the_valid_token_and_backs_off(run: Any) -> None:
    simulator, exporter = run
    # 16 s tokens: renewal is due after 12 s, the token is used until 14.4 s.
    sim = simulator([{"id": "j", "objects": {"table": 5}}], "--token-ttl", "16")
    exp = exporter(iam_config(sim, ["j"], cache_ttl=0))
    assert value(exp.metrics(), "huaweicloud_drs_up", job_id="j") == 1
    sim.admin("faults", {"iam_error_next": 1000})
    # Scrape until the renewal has been tried (and failed), then on while the old token is valid.
    wait_for(
        lambda: (value(exp.metrics(), "huaweicloud_drs_api_requests_total", operation="iam_token") or 0) >= 2,
        timeout=20,
        interval=0.25,
    )
    for _ in range(5):
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_up", job_id="j") == 1, "a failed renewal failed requests"
    logins = value(text, "huaweicloud_drs_api_requests_total", operation="iam_token")
    assert logins is not None and logins <= 4, f"{logins} logins: one per request, not backed off"
    assert errors_of(text, "j") == {}


def test_3_a_rejected_token_is_fetched_again_once_for_all_requests(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [{"id": f"r{i}", "objects": {"table": 5}} for i in range(6)]
    sim = simulator(jobs)
    exp = exporter(iam_config(sim, [j["id"] for j in jobs], cache_ttl=0, max_concurrency=6))
    assert value(exp.metrics(), "huaweicloud_drs_api_requests_total", operation="iam_token") == 1
    sim.admin("tokens/expire", {})
    text = exp.metrics()
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1
    assert value(text, "huaweicloud_drs_api_requests_total", operation="iam_token") == 2
    # DRS itself calling the token invalid (403 DRS.M00100) is handled alike.
    sim.admin("tokens/revoke", {})
    text = exp.metrics()
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1, errors_of(text, job["id"])
    assert value(text, "huaweicloud_drs_api_requests_total", operation="iam_token") == 3


def test_3_a_job_drs_rejects_costs_no_login_storm_while_other_jobs_prove_the_token(run: Any) -> None:
    simulator, exporter = run
    # DRS answers 403 DRS.M00100 "invalid token" for one job whatever the token; the others work.
    jobs: list[dict[str, Any]] = [{"id": f"t{i}", "objects": {"table": 5}} for i in range(4)]
    jobs[0]["fault"] = "reject_token"
    sim = simulator(jobs)
    config = iam_config(sim, [j["id"] for j in jobs], cache_ttl=1, refresh_timeout=5, request_timeout=2, retries=0)
    exp = exporter(config)
    scrapes = 0
    started = time.monotonic()
    # About ten seconds of scrapes, each refreshing every key.
    while time.monotonic() - started < 10 and scrapes < 25:
        scrapes += 1
        text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
        time.sleep(0.5)
    assert value(text, "huaweicloud_drs_refresh_error_info", job_id="t0", error_code="DRS.M00100") == 1
    for job in jobs[1:]:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1, errors_of(text, job["id"])
    logins = sim.stats()["requests"].get("iam_token", 0)
    # The first login, at most one forced by the job's first rejections; none after that.
    assert 1 <= logins <= 2, f"{logins} logins in {scrapes} scrapes: one job's rejections renew the token"


# --- 4. redirects ------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["token", "aksk_security_token"])
def test_4_credentials_never_follow_a_redirect(run: Any, auth: str) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "moved", "objects": {"table": 5}, "fault": "redirect"}], "--token", "static-token-0001")
    config = sim_config(sim, ["moved"], retries=1)
    if auth == "token":
        config["auth"] = {"token": "static-token-0001"}
    else:
        config["auth"] = {**config["auth"], "security_token": "temporary-security-token"}
    exp = exporter(config)
    text = exp.metrics()
    assert value(text, "huaweicloud_drs_up", job_id="moved") == 0
    assert value(text, "huaweicloud_drs_refresh_error_info", job_id="moved", error_code="http_3xx") == 1
    assert sim_get(sim, "redirected")["seen"] == [], "the redirect target got a request"


def sim_get(sim: Simulator, path: str) -> Any:
    return requests.get(f"{sim.url}/_sim/{path}", timeout=5).json()


# --- 5. paging integrity -----------------------------------------------------------------


def test_5_paging_trusts_items_not_the_first_page(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [
        {"id": "invalid-first", "objects": {"table": 250}, "fault": "first_page_invalid"},
        {"id": "grows", "objects": {"table": 2500}, "fault": "count_grows"},
        {"id": "blip", "objects": {"table": 250}, "fault": "empty_page_once"},
        {"id": "short", "objects": {"table": 250}, "fault": "short_page"},
    ]
    sim = simulator(jobs)
    exp = exporter(sim_config(sim, [j["id"] for j in jobs], page_size=100, max_pages=50))
    text = exp.metrics()
    listed = {j["id"]: value(text, "huaweicloud_drs_objects_listed", job_id=j["id"]) for j in jobs}
    objects = {j["id"]: value(text, "huaweicloud_drs_objects", job_id=j["id"]) for j in jobs}
    # (a) the first page's rows are all invalid: the other pages are still fetched.
    assert series(text, "invalid-first") == 150 and listed["invalid-first"] == 250
    assert value(text, "huaweicloud_drs_skipped_rows", job_id="invalid-first") == 100
    # (b) count grows from 2000 to 2500 between pages: paging follows it.
    assert series(text, "grows") == 2500 and objects["grows"] == 2500
    # (c) one transient empty page is asked again: every object, up 1.
    assert series(text, "blip") == 250 and listed["blip"] == objects["blip"] == 250
    # An empty page that stays empty ends the listing: still up, the shortfall visible.
    assert value(text, "huaweicloud_drs_up", job_id="short") == 1
    assert listed["short"] == 100 and objects["short"] == 250
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1


# --- 6. fairness -------------------------------------------------------------------------


def test_6_a_small_key_is_not_queued_behind_a_big_one(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [
        {"id": "big", "objects": {"table": 4000}, "latency_ms": 50},
        {"id": "small", "objects": {"table": 200}, "latency_ms": 300},
    ]
    sim = simulator(jobs)
    exp = exporter(sim_config(sim, ["big", "small"], page_size=100, max_concurrency=2, refresh_timeout=30))
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "30"})
    assert value(text, "huaweicloud_drs_up", job_id="small") == 1
    assert value(text, "huaweicloud_drs_up", job_id="big") == 1
    order = sim_get(sim, "order")["order"]
    small_second = order.index("small/100")
    big_pages_before = len([o for o in order[:small_second] if o.startswith("big/")])
    # FIFO would serve all 39 queued big pages first; taking turns serves the small page within a few.
    assert big_pages_before <= 10, f"{big_pages_before} big pages were served before the small key's second page"


# --- 7. project-wide 429 backoff ----------------------------------------------------------


def test_7_a_429_holds_back_every_worker_of_the_project(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [{"id": f"t{i:02d}", "objects": {"table": 5}, "latency_ms": 50} for i in range(16)]
    sim = simulator(jobs, "--retry-after", "2")
    exp = exporter(sim_config(sim, [j["id"] for j in jobs], max_concurrency=4, refresh_timeout=20))
    sim.admin("faults", {"throttle_next": 1})
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "20"})
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1
    during = sim.stats()["requests"].get("during_throttle", 0)
    # Only requests already on their way when the 429 was sent may arrive during its Retry-After.
    assert during <= 3, f"{during} requests arrived while the project was told to wait"
    throttled = value(text, "huaweicloud_drs_api_throttled_seconds_total", project_id=sim.info["project_id"])
    assert throttled is not None and throttled >= 2


# --- 8. bounded state --------------------------------------------------------------------


def test_8_state_of_a_gone_job_is_dropped_and_codes_are_checked(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [
        {"id": "stays", "objects": {"table": 5}},
        {"id": "goes", "objects": {"table": 5}, "error": "DRS.M00004"},
        {"id": "garbage", "objects": {"table": 5}, "fault": "garbage_error_code"},
    ]
    sim = simulator(jobs)
    config = sim_config(sim, [], retries=0, cache_ttl=0)
    del config["jobs"]
    config["discovery"] = {"job_types": ["migration"], "refresh_interval": 1}
    exp = exporter(config)
    text = exp.metrics()
    assert errors_of(text, "goes") == {"DRS.M00004": 1}
    assert value(text, "huaweicloud_drs_refresh_error_info", job_id="garbage", error_code="invalid_error_code") == 1
    assert errors_of(text, "garbage") == {"invalid_error_code": 1}
    sim.admin("jobs/goes", {"listed": False})
    text = wait_for(
        lambda: (t := exp.metrics()) and value(t, "huaweicloud_drs_up", job_id="goes") is None and t,
        timeout=10,
        interval=0.3,
    )
    assert errors_of(text, "goes") == {}, "the error counts of a job no longer listed stay forever"
    assert value(text, "huaweicloud_drs_up", job_id="stays") == 1


# --- review of issue 12: the deadline bounds the whole exchange, not each read -------------


def test_1e_iam_dripping_headers_is_cut_and_recovers_when_iam_is_healthy(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "j", "objects": {"table": 5}}], faults={"iam_slow_headers": True})
    exp = exporter(iam_config(sim, ["j"], request_timeout=1, retries=0, refresh_timeout=3, cache_ttl=1))
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"})
    assert value(text, "huaweicloud_drs_up", job_id="j") == 0
    # The login was cut at its deadline as a timeout, so the login thread is free for the next one.
    wait_for(
        lambda: (
            (
                value(
                    exp.metrics(headers=BUDGET_1S),
                    "huaweicloud_drs_api_errors_total",
                    error_code="timeout",
                    job_id="",
                    operation="iam_token",
                )
                or 0
            )
            >= 1
        ),
        timeout=20,
        interval=0.5,
    )
    sim.admin("faults", {"iam_slow_headers": False})
    text = wait_for(
        lambda: (t := exp.metrics(headers=BUDGET_1S)) and value(t, "huaweicloud_drs_up", job_id="j") == 1 and t,
        timeout=40,
        interval=0.5,
    )
    assert series(text, "j") == 5


def test_1e_a_healthy_project_stays_up_while_another_drips(run: Any) -> None:
    simulator, exporter = run
    good = simulator([{"id": "good", "objects": {"table": 10}}])
    bad_jobs: list[dict[str, Any]] = [
        {"id": "hdr1", "objects": {"table": 5}, "fault": "slow_headers"},
        {"id": "hdr2", "objects": {"table": 5}, "fault": "slow_headers"},
        {"id": "gz", "objects": {"table": 5}, "fault": "gzip_empty_blocks"},
    ]
    bad = simulator(bad_jobs, "--project-id", "b" * 32)
    keys = ("endpoint", "project_id", "auth", "jobs")
    config = {
        "projects": [
            {k: v for k, v in sim_config(bad, [j["id"] for j in bad_jobs]).items() if k in keys},
            {k: v for k, v in sim_config(good, ["good"]).items() if k in keys},
        ],
        "request_timeout": 1,
        "retries": 0,
        "refresh_timeout": 2,
        "cache_ttl": 1,
        "max_concurrency": 2,
    }
    exp = exporter(config)
    for _ in range(5):
        text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
        assert value(text, "huaweicloud_drs_up", job_id="good") == 1, "stuck exchanges held every slot"
        time.sleep(1.5)  # the next scrape after the cache TTL
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
    for job in bad_jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 0
        codes = errors_of(text, job["id"])
        assert set(codes) == {"timeout"}, codes
        assert value(text, "huaweicloud_drs_refresh_error_info", job_id=job["id"], error_code="timeout") == 1


def test_1e_discovery_against_dripping_headers_answers_within_the_budget(run: Any) -> None:
    simulator, exporter = run
    sim = simulator([{"id": "a", "objects": {"table": 5}}], faults={"list_slow_headers": True})
    config = sim_config(sim, [], request_timeout=1, retries=0)
    del config["jobs"]
    config["discovery"] = {"job_types": ["migration"], "refresh_interval": 60}
    exp = exporter(config)
    # The reader has its own, much longer timeout: an exchange cut per read only would take 60 s.
    text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "2"}, timeout=30)
    project = sim.info["project_id"]
    assert value(text, "huaweicloud_drs_discovery_up", project_id=project) == 0
    seconds = value(text, "huaweicloud_drs_discovery_duration_seconds", project_id=project)
    # Cut at the 1 s request timeout, not read for the minute the headers would drip (generous bound).
    assert seconds is not None and seconds < 10
    errors = samples(text, "huaweicloud_drs_api_errors_total")
    assert {dict(k)["error_code"] for k in errors} == {"timeout"}


def test_3_a_gateway_rejecting_every_token_gets_logins_with_backoff_not_a_storm(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [{"id": f"x{i}", "objects": {"table": 5}} for i in range(5)]
    sim = simulator(jobs, faults={"reject_tokens": True})
    exp = exporter(
        iam_config(sim, [j["id"] for j in jobs], request_timeout=2, retries=0, refresh_timeout=5, cache_ttl=1)
    )
    scrapes = 0
    started = time.monotonic()
    # About eight seconds of scrapes, each refreshing every key with a rejected token.
    while time.monotonic() - started < 8 and scrapes < 20:
        scrapes += 1
        text = exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"})
        assert value(text, "huaweicloud_drs_up", job_id="x0") == 0
        time.sleep(1)
    logins = sim.stats()["requests"].get("iam_token", 0)
    # One login, one at once after the first rejection, then 0.5-1 s, 1-2 s, 2-4 s, ... apart.
    assert 2 <= logins <= 8, f"{logins} logins in {scrapes} scrapes: a login storm"
    assert "IAM tokens in a row rejected by the gateway" in exp.log()
    # Once the gateway accepts tokens again, the next login after the backoff brings the keys back.
    sim.admin("faults", {"reject_tokens": False})
    text = wait_for(
        lambda: (t := exp.metrics(headers=BUDGET_1S)) and value(t, "huaweicloud_drs_up", job_id="x0") == 1 and t,
        timeout=40,
        interval=0.5,
    )
    for job in jobs:
        assert value(text, "huaweicloud_drs_up", job_id=job["id"]) == 1


def test_7_a_huge_retry_after_is_cut_to_the_longest_project_backoff(run: Any) -> None:
    simulator, exporter = run
    jobs: list[dict[str, Any]] = [{"id": f"h{i}", "objects": {"table": 5}} for i in range(4)]
    sim = simulator(jobs, faults={"throttle_next": 1, "retry_after": "100000"})
    # The cap is max(refresh_timeout, cache_ttl): 3 s here, instead of urllib3's 6 hours.
    config = sim_config(sim, [j["id"] for j in jobs], cache_ttl=1, refresh_timeout=3, request_timeout=2, retries=0)
    exp = exporter(config)
    text = wait_for(
        lambda: (
            (t := exp.metrics(headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"}))
            and all(value(t, "huaweicloud_drs_up", job_id=j["id"]) == 1 for j in jobs)
            and t
        ),
        timeout=40,
        interval=0.5,
    )
    throttled = value(text, "huaweicloud_drs_api_throttled_seconds_total", project_id=sim.info["project_id"])
    assert throttled is not None and 0 < throttled <= 3
    # urllib3 reads at most 21600 s from the header; the exporter cuts that to its cap and says so.
    assert "Retry-After of 21600s from project" in exp.log() and "cut to 3s" in exp.log()
