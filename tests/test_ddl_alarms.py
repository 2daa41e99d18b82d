"""DDL alarms (issue 24 item 5, v5 ``ddl?status=1``, opt-in) of the exporter process against the simulator.

The DDL text is customer SQL: at default settings it appears nowhere the exporter writes (logs,
``/metrics``, ``/``, ``/status.json``); with ``ddl_text_on_status_page`` the page and
``/status.json`` show its cut start, escaped.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules
from exporter import app, config
from exporter.drs.ddl import TEXT_LIMIT, parse_ddl_page
from exporter.metrics.ddl_metrics import DdlSource
from exporter.render.exposition import TEXT
from exporter.sources.perjob import JobRead, JobsSnapshot
from exporter.web.health_status import ddl_status

from .procs import Simulator, samples, sim_config, value, wait_for
from .test_replication_health import job_status, opt_in_health_calls, promtool_clean, scrape_until

MARKER = "secret_marker_ddl"  # in the DDL text of the simulator's --health-demo job demo-ddl
HOSTILE = "ALTER TABLE t COMMENT '<script>alert(1)</script> & \"x\"' " + "y" * 300 + " hostile_tail_ddl"
DDL_JOBS: list[dict[str, Any]] = [
    {
        "id": "ddl-a",
        "objects": {"table": 5},
        "health": {
            "ddl": [
                {"text": "ALTER TABLE a ADD COLUMN c INT", "exe_result": False, "ago": 300},
                {"text": "CREATE INDEX i ON a (c)", "exe_result": True, "ago": 120},
                {"text": "DROP TABLE cleared", "status": 0, "ago": 60},  # no longer an alarm
            ]
        },
    },
    {"id": "ddl-none", "objects": {"table": 5}},
    {"id": "ddl-off", "objects": {"table": 5}, "health": {"ddl": [{"text": "ALTER TABLE off ADD x INT"}]}},
    {"id": "ddl-odd", "objects": {"table": 5}, "health_answers": {"list_ddl_alarms": "error_body"}},
    {"id": "ddl-html", "objects": {"table": 5}, "health": {"ddl": [{"text": HOSTILE, "exe_result": False}]}},
]


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    """Start a simulator with the given jobs, or with its --health-demo scenario; stopped after the test."""
    started: list[Simulator] = []

    def begin(jobs: list[dict[str, Any]] | None) -> Simulator:
        if jobs is None:
            started.append(Simulator("--health-demo"))
        else:
            path = tmp_path / "scenario.yaml"
            path.write_text(yaml.safe_dump({"jobs": jobs}))
            started.append(Simulator("--scenario", str(path)))
        return started[-1]

    yield begin
    for sim in started:
        sim.stop()


def ddl_errors(text: str, job_id: str) -> dict[str, float]:
    return {
        dict(k)["error_code"]: v
        for k, v in samples(text, "huaweicloud_drs_api_errors_total").items()
        if dict(k).get("operation") == "list_ddl_alarms" and dict(k).get("job_id") == job_id
    }


def test_ddl_alarms_are_off_by_default(simulate: Any, start: Any) -> None:
    sim = simulate(DDL_JOBS)
    exp = start(sim_config(sim, ["ddl-a"], cache_ttl=1))
    text = scrape_until(exp, lambda t: sim.stats()["requests"].get("batch_progress", 0) >= 2)
    assert "huaweicloud_drs_ddl" not in text
    assert not opt_in_health_calls(sim), "no DDL call"
    assert job_status(exp, "ddl-a")["ddl"] is None


def test_ddl_alarm_values_source_health_error_codes_and_status(simulate: Any, start: Any) -> None:
    sim = simulate(DDL_JOBS)
    jobs = ["ddl-a", "ddl-none", {"id": "ddl-off", "ddl_alarms": False}, "ddl-odd"]
    exp = start(sim_config(sim, jobs, retries=0, ddl_alarms=True, ddl_refresh_interval=600))
    text = scrape_until(
        exp, lambda t: "huaweicloud_drs_ddl_alarms{" in t and ddl_errors(t, "ddl-odd").get("DRS.10000024") == 1
    )
    assert value(text, "huaweicloud_drs_ddl_data_up", job_id="ddl-a") == 1
    assert value(text, "huaweicloud_drs_ddl_alarms", job_id="ddl-a") == 2, "the cleared alarm is not active"
    assert value(text, "huaweicloud_drs_ddl_failed", job_id="ddl-a") == 1
    latest = value(text, "huaweicloud_drs_ddl_latest_alarm_timestamp_seconds", job_id="ddl-a")
    assert latest is not None and abs(latest - (time.time() - 120)) < 60, "the newest active alarm's time"
    read = value(text, "huaweicloud_drs_ddl_data_last_success_timestamp_seconds", job_id="ddl-a")
    assert read is not None and read <= time.time()
    # No alarm: zeros (the cut-over rules read a present 0 as "no alarm"), and no latest time.
    assert value(text, "huaweicloud_drs_ddl_alarms", job_id="ddl-none") == 0
    assert value(text, "huaweicloud_drs_ddl_failed", job_id="ddl-none") == 0
    assert value(text, "huaweicloud_drs_ddl_latest_alarm_timestamp_seconds", job_id="ddl-none") is None
    # An error body in a 200 answer: down for that job, the answer's own code counted once.
    assert value(text, "huaweicloud_drs_ddl_data_up", job_id="ddl-odd") == 0
    assert value(text, "huaweicloud_drs_ddl_alarms", job_id="ddl-odd") is None
    assert ddl_errors(text, "ddl-odd") == {"DRS.10000024": 1}
    # A job with ddl_alarms off has no series and costs no call; one call per job with it on.
    assert not any(dict(k)["job_id"] == "ddl-off" for k in samples(text, "huaweicloud_drs_ddl_data_up"))
    health = sim.stats()["health"]
    assert health.get("ddl-a/list_ddl_alarms") == 1 and health.get("ddl-none/list_ddl_alarms") == 1
    assert "ddl-off/list_ddl_alarms" not in health
    # Only job_id: the series the cut-over rules read (and every DDL family they name) is here, without DDL text.
    assert {k for k in samples(text, "huaweicloud_drs_ddl_alarms")} == {(("job_id", j),) for j in ("ddl-a", "ddl-none")}
    named = set(re.findall(r"huaweicloud_drs_ddl_\w+", rules.render(rules.recording_rules())))
    assert "huaweicloud_drs_ddl_alarms" in named and all(f"{n}{{" in text for n in named), named
    assert "ALTER TABLE" not in text
    promtool_clean(text)
    status = job_status(exp, "ddl-a")["ddl"]
    assert (status["up"], status["error_code"], status["active"], status["failed"]) == (True, None, 2, 1)
    assert status["latest_alarm_timestamp_seconds"] == latest
    assert [(a["seqno"], a["exe_result"], a["text"]) for a in status["alarms"]] == [(2, True, None), (1, False, None)]
    assert abs(status["alarms"][0]["timestamp_seconds"] - latest) < 1e-3
    odd = job_status(exp, "ddl-odd")["ddl"]
    assert odd["up"] is False and odd["error_code"] == "DRS.10000024" and odd["active"] is None
    assert job_status(exp, "ddl-off")["ddl"] is None
    page = exp.get("/").text
    assert "DDL alarms" in page and "2 active, 1 failed on the target" in page and "#1 " in page
    assert "DRS.10000024" in page and "ALTER TABLE" not in page


def test_ddl_alarms_kept_within_max_staleness_after_a_fault(simulate: Any, start: Any) -> None:
    sim = simulate(DDL_JOBS[:1])
    exp = start(
        sim_config(
            sim, ["ddl-a"], retries=0, ddl_alarms=True, ddl_refresh_interval=1, refresh_timeout=2, max_staleness=6
        )
    )
    alarms = "huaweicloud_drs_ddl_alarms"
    wait_for(lambda: value(exp.metrics(), alarms, job_id="ddl-a") == 2, 15)
    sim.admin("jobs/ddl-a", {"health_fault": "status:503"})
    text = scrape_until(exp, lambda t: value(t, "huaweicloud_drs_ddl_data_up", job_id="ddl-a") == 0)
    failed_at = time.time()
    codes = ddl_errors(text, "ddl-a")
    assert codes and all(v >= 1 for v in codes.values()), "the failed reads are counted"
    read = value(text, "huaweicloud_drs_ddl_data_last_success_timestamp_seconds", job_id="ddl-a")
    assert read is not None, "the last good data is still shown, with the time it was read"
    assert value(text, alarms, job_id="ddl-a") == 2
    assert job_status(exp, "ddl-a")["ddl"]["error_code"] in codes
    # Older than max_staleness: the data goes, the source stays down.
    text = scrape_until(exp, lambda t: value(t, alarms, job_id="ddl-a") is None, 20)
    assert time.time() - read > 6 - 0.5 and time.time() - failed_at < 20
    assert value(text, "huaweicloud_drs_ddl_data_up", job_id="ddl-a") == 0
    assert value(text, "huaweicloud_drs_ddl_data_last_success_timestamp_seconds", job_id="ddl-a") is None
    assert job_status(exp, "ddl-a")["ddl"]["active"] is None
    # The alarm is cleared while the API is down: once it answers again the job shows none.
    sim.admin("jobs/ddl-a", {"health_fault": None, "health": {"ddl": []}})
    wait_for(lambda: value(exp.metrics(), alarms, job_id="ddl-a") == 0, 15)
    assert value(exp.metrics(), "huaweicloud_drs_ddl_data_up", job_id="ddl-a") == 1


@pytest.mark.parametrize("log_args", [(), ("--log.level", "info")], ids=["default", "info"])
def test_the_ddl_text_leaves_nowhere_at_default_settings(simulate: Any, start: Any, log_args: tuple[str, ...]) -> None:
    sim = simulate(None)
    exp = start(sim_config(sim, ["demo-ddl", "demo-dr"], retries=0, ddl_alarms=True, ddl_refresh_interval=1), *log_args)
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_ddl_alarms", job_id="demo-ddl") == 1, 15)
    status = exp.get("/status.json").text
    ddl = job_status(exp, "demo-ddl")["ddl"]
    assert ddl["active"] == 1 and ddl["alarms"][0]["seqno"] == 1 and ddl["alarms"][0]["text"] is None
    assert ddl["alarms"][0]["exe_result"] is False and ddl["alarms"][0]["timestamp_seconds"] > 0
    page = exp.get("/").text
    assert "DDL alarms" in page and "#1 " in page
    # A failing read too: what its warning says must not carry the text either.
    sim.admin("jobs/demo-ddl", {"health_answers": {"list_ddl_alarms": "not_list"}})
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_ddl_data_up", job_id="demo-ddl") == 0, 15)
    assert "demo-ddl" in exp.log(), "the failed reading is logged"
    for where, body in (
        ("/metrics", exp.metrics()),
        ("/", page + exp.get("/").text),
        ("/status.json", status + exp.get("/status.json").text),
        ("log", exp.log()),
    ):
        assert MARKER not in body, f"the DDL text is in {where}"
        assert "ADD COLUMN note" not in body, f"part of the DDL text is in {where}"


def test_the_ddl_text_shown_when_asked_is_cut_and_escaped(simulate: Any, start: Any) -> None:
    sim = simulate(DDL_JOBS)
    exp = start(sim_config(sim, ["ddl-html"], ddl_alarms=True, ddl_text_on_status_page=True))
    wait_for(lambda: value(exp.metrics(), "huaweicloud_drs_ddl_alarms", job_id="ddl-html") == 1, 15)
    text = job_status(exp, "ddl-html")["ddl"]["alarms"][0]["text"]
    assert text.startswith("ALTER TABLE t COMMENT '<script>alert(1)</script> & \"x\"' yyy") and text.endswith("…")
    assert len(text) == TEXT_LIMIT + 1 and "hostile_tail_ddl" not in text, "cut to TEXT_LIMIT characters and …"
    page = exp.get("/").text
    assert "ALTER TABLE t COMMENT &#x27;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot;&#x27; yyy" in page
    assert "<script>alert" not in page and "hostile_tail_ddl" not in page
    shown = re.search(r"<code>(?:<bdi>)?(ALTER TABLE t COMMENT [^<]*)(?:</bdi>)?</code>", page)
    assert shown is not None and shown.group(1).count("y") == TEXT_LIMIT - len(HOSTILE.split("yyy")[0])
    assert "hostile_tail_ddl" not in exp.get("/status.json").text and "hostile_tail_ddl" not in exp.log()
    assert MARKER not in exp.metrics() and "ALTER TABLE" not in exp.metrics()


def test_a_reload_keeps_the_ddl_alarms_read(simulate: Any) -> None:
    sim = simulate(DDL_JOBS[:1])
    cfg = config.parse(sim_config(sim, ["ddl-a"], ddl_alarms=True, ddl_refresh_interval=600))
    old = app.Exporter(cfg)
    new: app.Exporter | None = None
    try:
        source = old.source(DdlSource)
        wait_for(lambda: old.scrape(10, TEXT, compress=False) and "ddl-a" in source.snapshot().jobs, 15)
        kept = source.snapshot().jobs["ddl-a"]
        assert kept.up and kept.data is not None
        new = app.Exporter(cfg, previous=old)
        assert new.source(DdlSource).snapshot().jobs["ddl-a"] == kept
        body = b"".join(new.scrape(10, TEXT, compress=False)).decode()
        assert value(body, "huaweicloud_drs_ddl_alarms", job_id="ddl-a") == 2
        assert sim.stats()["health"].get("ddl-a/list_ddl_alarms") == 1, "not read again at once"
    finally:
        for exporter in (old, new):
            if exporter is not None:
                exporter.close()


def test_the_status_json_ddl_field_is_documented() -> None:
    doc = Path(__file__).resolve().parent.parent.joinpath("docs", "metrics.md").read_text()
    assert re.search(r"^\s+ddl \(null when", doc, re.M), "docs/metrics.md lists /status.json's ddl field"
    assert json.dumps("ddl_text_on_status_page")[1:-1] in doc


def test_no_repr_carries_the_ddl_text() -> None:
    alarms = parse_ddl_page({"count": 1, "ddl_list": [{"seqno": 1, "status": 1, "ddl_text": MARKER}]}, "j")
    job = JobRead("j", True, None, alarms, 1.0)
    shown = ddl_status(job, with_text=True)
    assert shown.alarms[0].text == MARKER, "shown when asked"
    assert MARKER not in repr(shown) and MARKER not in repr(job) and MARKER not in repr(JobsSnapshot({"j": job}))
    assert ddl_status(job, with_text=False).alarms[0].text is None


def test_a_ddl_listing_over_its_page_cap_is_counted_once_per_reading(simulate: Any, start: Any) -> None:
    jobs = [
        {
            "id": "j-endless",
            "objects": {"table": 3},
            "health": {"ddl": [{"text": "ALTER TABLE t ADD c INT"}]},
            "health_answers": {"list_ddl_alarms": "endless"},
        }
    ]
    sim = simulate(jobs)
    exp = start(sim_config(sim, ["j-endless"], retries=0, ddl_alarms=True, ddl_refresh_interval=600))
    text = wait_for(
        lambda: t if value(t := exp.metrics(), "huaweicloud_drs_ddl_data_up", job_id="j-endless") == 0 else None, 20
    )
    assert text and ddl_errors(text, "j-endless") == {"page_cap_exceeded": 1}
