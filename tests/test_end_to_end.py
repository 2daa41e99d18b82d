"""simulator → drs-exporter → Prometheus (the project's rules) → Alertmanager → a webhook, all real.

The rules are built by the same code as the committed files (`alerts/rules.py`) with every
window shortened to seconds (`rules.fast()`), so that alerts can fire within a test run; their
timing at the real windows is proved by `promtool test rules` (tests/test_rules.py).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from alerts import cutover, rules
from dashboards import generate

from .procs import Exporter, Simulator, sim_config, wait_for

ROOT = Path(__file__).resolve().parent.parent
BIG = "big-job"  # many objects: the query-cost check compares it with a small job
HEALTHY = ["healthy-a", "healthy-b", BIG]
STALLED = "stalled-job"
FAILING = "failing-job"
JOBS = [*HEALTHY, STALLED, FAILING]
BIG_OBJECTS = 2000
RELEASE = {"namespace": "drs", "service": "drs-exporter"}


def comparison(tables: int, statuses: list[int]) -> dict[str, Any]:
    """A finished row comparison of ``tables`` tables, the first with ``statuses`` (0: inconsistent)."""
    return {"id": "rows-1", "type": "lines", "status": "SUCCESSFUL", "tables": tables, "statuses": statuses}


# Comparisons (data consistency): consistent for two healthy jobs (the big one with as many tables
# as objects, for the query-cost check; healthy-a with rows and values, so ready for cut-over), two
# inconsistent tables and one missing on the stalled job.
SCENARIO = {
    "jobs": [
        {
            "id": "healthy-a",
            "objects": {"table": 40},
            "speed": 2.0,
            # Row and value comparisons, consistent: ready for cut-over once its objects are complete.
            "comparisons": [comparison(40, []), {**comparison(40, []), "id": "values-1", "type": "contents"}],
        },
        {"id": "healthy-b", "objects": {"table": 30, "view": 10}, "speed": 0.7, "time_format": "iso"},
        {
            "id": BIG,
            "objects": {"table": BIG_OBJECTS},
            "speed": 1.0,
            "comparisons": [comparison(BIG_OBJECTS, [])],
        },
        {
            "id": STALLED,
            "objects": {"table": 20},
            "stalled": True,
            "comparisons": [comparison(20, [0, 0, 3])],
            "object_comparison": {"status": "SUCCESSFUL", "objects": {"DB": [2, 2], "TABLE": [20, 19]}},
        },
        {"id": FAILING, "objects": {"table": 5}, "error": "DRS.M05004"},
    ]
}
COMPARED = ["healthy-a", BIG, STALLED]
# The simulator's --health-demo jobs (a DR job, a DDL alarm, abnormal rows, a failed job), every
# replication-health source on and read every second: each panel of the replication health dashboard
# has data.
HEALTH_JOBS: list[dict[str, Any]] = [
    {"id": "demo-dr", "job_type": "cloudDataGuard"},
    {"id": "demo-ddl"},
    {"id": "demo-dirty"},
    {"id": "demo-failed"},
]
SELECTED = [*JOBS, *(job["id"] for job in HEALTH_JOBS)]  # the dashboards' job_id variable
HEALTH_SOURCES = {
    **{
        switch: True
        for switch in ("monitor_data", "rpo_rto", "job_details", "ddl_alarms", "dirty_rows", "health_comparisons")
    },
    **{
        f"{source}_refresh_interval": 1
        for source in ("monitor", "rpo_rto", "job_details", "ddl", "dirty_rows", "health_compare")
    },
}
EXPECTED_ALERTS = {
    ("HuaweiCloudDRSJobStalled", STALLED),
    ("HuaweiCloudDRSRefreshFailing", FAILING),
    ("HuaweiCloudDRSTablesInconsistent", STALLED),
}
READY_ALERT = "HuaweiCloudDRSJobReadyForCutover"
# Firing in Prometheus, but silenced by the job-level alert above (the shipped inhibit rules).
INHIBITED = ("HuaweiCloudDRSObjectsStalled", STALLED)
# What a 100k-object installation may spend on one query (Prometheus's default limit is 50M).
SAMPLE_BUDGET = 10_000_000
AT_SCALE = 100_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Webhook(ThreadingHTTPServer):
    """Alertmanager's webhook receiver: keeps every alert it is sent."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.alerts.extend(body["alerts"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def received(self) -> set[tuple[str, str]]:
        with self.lock:
            return {(a["labels"]["alertname"], a["labels"].get("job_id", "")) for a in self.alerts}


class Service:
    """A Debian binary (Prometheus, Alertmanager) on loopback, logging to a file."""

    def __init__(self, args: list[str], log: Path, ready_url: str) -> None:
        self._log = log.open("w")
        self.log = log
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self._ready(ready_url), timeout=60, interval=0.2)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{args[0]} did not become ready:\n{log.read_text()[-3000:]}") from None

    def _ready(self, url: str) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(url, timeout=1).ok
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


class Stack:
    """Everything running, and what the test needs to reach it."""

    def __init__(self, tmp: Path) -> None:
        self.started = time.time()
        self.cleanup: list[Any] = []
        scenario = tmp / "scenario.yaml"
        scenario.write_text(yaml.safe_dump(SCENARIO))
        # --health-demo: the replication-health jobs the replication health dashboard shows.
        self.sim = Simulator("--scenario", str(scenario), "--health-demo")
        self.cleanup.append(self.sim.stop)
        (tmp / "exporter").mkdir()
        jobs = [{"id": job, "comparisons": True} if job in COMPARED else job for job in JOBS]
        self.exporter = Exporter(
            sim_config(self.sim, [*jobs, *HEALTH_JOBS], cache_ttl=1, compare_refresh_interval=1, **HEALTH_SOURCES),
            tmp / "exporter",
        )
        self.cleanup.append(self.exporter.stop)
        self.instance = self.exporter.url.removeprefix("http://")

        self.webhook = Webhook()
        threading.Thread(target=self.webhook.serve_forever, daemon=True).start()
        self.cleanup.append(self.webhook.shutdown)

        am_port = free_port()
        am_config = tmp / "alertmanager.yml"
        am_config.write_text(
            yaml.safe_dump(
                {
                    # The inhibit rules shipped next to the alerts, as they are.
                    **yaml.safe_load((ROOT / "alerts" / rules.INHIBIT_FILE).read_text()),
                    "route": {
                        "receiver": "hook",
                        "group_by": ["alertname", "job_id"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "hook",
                            "webhook_configs": [
                                {"url": f"http://127.0.0.1:{self.webhook.server_address[1]}/", "send_resolved": False}
                            ],
                        }
                    ],
                }
            )
        )
        am = Service(
            [
                "prometheus-alertmanager",
                f"--config.file={am_config}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp / "alertmanager.log",
            f"http://127.0.0.1:{am_port}/-/ready",
        )
        self.cleanup.append(am.stop)

        rule_dir = tmp / "rules"
        rule_dir.mkdir()
        for name, text in rules.files(rules.fast()).items():
            (rule_dir / name).write_text(text)
        prom_port = free_port()
        self.am = f"http://127.0.0.1:{am_port}"
        self.prom_config = tmp / "prometheus.yml"
        self.rule_files = [str(rule_dir / name) for name in sorted(rules.files())]
        self.write_prometheus_config([self.instance])
        prom = Service(
            [
                "prometheus",
                f"--config.file={self.prom_config}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--web.enable-lifecycle",
            ],
            tmp / "prometheus.log",
            f"http://127.0.0.1:{prom_port}/-/ready",
        )
        self.cleanup.append(prom.stop)
        self.prometheus = f"http://127.0.0.1:{prom_port}"

    def write_prometheus_config(self, targets: list[str]) -> None:
        self.prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": self.rule_files,
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [self.am.split("//")[1]]}]}]},
                    "scrape_configs": [
                        {
                            "job_name": "huaweicloud-drs-exporter",
                            # As a ServiceMonitor's targets have them: the dashboards select on them.
                            "static_configs": [{"targets": targets, "labels": RELEASE}],
                        }
                    ],
                }
            )
        )

    def query_range(self, expr: str) -> list[Any]:
        answer = requests.get(
            f"{self.prometheus}/api/v1/query_range",
            timeout=30,
            params={"query": expr, "start": str(self.started), "end": str(time.time()), "step": "1"},
        )
        body = answer.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        result: list[Any] = body["data"]["result"]
        return result

    def samples(self, expr: str, *, instant: bool, hours: float = 6) -> int:
        """Samples Prometheus loaded for ``expr`` (query stats): instant now, or over the last ``hours``
        with Grafana's step for that range on a 1000-pixel panel."""
        now = time.time()
        if instant:
            url, params = "query", {"query": expr, "time": str(now)}
        else:
            step = max(1, round(hours * 3600 / 1000))
            params = {"query": expr, "start": str(now - hours * 3600), "end": str(now), "step": str(step)}
            url = "query_range"
        body = requests.get(f"{self.prometheus}/api/v1/{url}", params={**params, "stats": "all"}, timeout=60).json()
        assert body.get("status") == "success", f"{expr}: {body}"
        total: int = body["data"]["stats"]["samples"]["totalQueryableSamples"]
        return total

    def stop(self) -> None:
        for step in reversed(self.cleanup):
            step()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("e2e"))
    try:
        yield s
    finally:
        s.stop()


def test_alerts_fire_through_alertmanager_for_the_broken_jobs_only(stack: Stack) -> None:
    try:
        wait_for(lambda: stack.webhook.received() >= EXPECTED_ALERTS, timeout=150, interval=1)
    except TimeoutError:
        pytest.fail(f"alerts received: {sorted(stack.webhook.received())}, expected at least {EXPECTED_ALERTS}")
    received = stack.webhook.received()
    # The one alert a healthy job may raise: the information that it is ready for cut-over.
    problems = [a for a in received if a[1] in HEALTHY and a[0] != READY_ALERT]
    assert not problems, f"healthy jobs alerted: {received}"
    assert not [a for a in received if a[0] == "HuaweiCloudDRSExporterDown"]

    def page() -> list[dict[str, Any]]:
        with stack.webhook.lock:
            return [
                a
                for a in stack.webhook.alerts
                if a["labels"]["alertname"] == "HuaweiCloudDRSJobStalled" and a["labels"]["severity"] == "critical"
            ]

    # Warn early, page late: the critical JobStalled follows its warning (fast(): 40 s of no movement).
    alert = wait_for(page, timeout=90, interval=1)[0]
    assert alert["annotations"]["runbook_url"].endswith("#huaweiclouddrsjobstalled")
    assert STALLED in alert["annotations"]["description"]

    def object_alert() -> list[dict[str, Any]]:
        return [a for a in am_alerts(stack, INHIBITED[0]) if a["labels"]["job_id"] == STALLED]

    # The job-level stall inhibits the object-level alert of the same job: Alertmanager has it,
    # suppressed by JobStalled (which fires first: a shorter `for`).
    found = wait_for(object_alert, timeout=60, interval=1)
    assert found[0]["status"]["state"] == "suppressed" and found[0]["status"]["inhibitedBy"], found
    assert "Least advanced: table db_0000." in found[0]["annotations"]["description"]


def test_recording_rules_produce_values(stack: Stack) -> None:
    for group in rules.recording_rules()["groups"]:
        # Cut-over readiness is judged for the jobs with comparisons on.
        expected = set(COMPARED) if "cutover" in group["name"] else set(HEALTHY)
        for rule in group["rules"]:
            found = wait_for(lambda name=rule["record"]: stack.query_range(name), timeout=60, interval=1)
            jobs = {series["metric"]["job_id"] for series in found}
            assert expected <= jobs, f"{rule['record']}: {jobs}"


def test_cutover_readiness_is_recorded_with_its_reasons(stack: Stack) -> None:
    """healthy-a (consistent comparisons, fast) becomes ready and says so through Alertmanager; the stalled
    job is not ready, for the reasons it has."""

    def now(expr: str) -> dict[str, str]:
        answer = requests.get(f"{stack.prometheus}/api/v1/query", params={"query": expr}, timeout=30).json()
        return {
            r["metric"]["job_id"] + "/" + r["metric"].get("reason", ""): r["value"][1] for r in answer["data"]["result"]
        }

    try:
        wait_for(lambda: now(cutover.READY).get("healthy-a/") == "1", timeout=180, interval=1)
    except TimeoutError:
        pytest.fail(f"healthy-a not ready: {now(cutover.BLOCKED + ' == 1')}")
    assert now(cutover.READY)[f"{STALLED}/"] == "0"
    blocked = {k for k in now(cutover.BLOCKED + " == 1") if k.startswith(STALLED)}
    # Its objects never complete, its row comparison found differences, it has no value comparison.
    assert {f"{STALLED}/{r}" for r in ("full_incomplete", "tables_not_consistent", "comparison_missing")} <= blocked
    assert not {f"{STALLED}/{r}" for r in ("not_incremental", "delay", "comparison_failed")} & blocked, blocked
    assert len(now(f'{cutover.BLOCKED}{{job_id="{STALLED}"}}')) == len(cutover.REASONS)
    wait_for(lambda: (READY_ALERT, "healthy-a") in stack.webhook.received(), timeout=60, interval=1)


def substitute(expr: str, stack: Stack, jobs: list[str] = SELECTED) -> str:
    """The query as Grafana sends it with ``jobs`` selected (multi-value as a regex group).

    Windows of 30 minutes become 15 seconds, as the rules' windows do in `rules.fast()`: the
    stack is younger than 30 minutes, and the queries' logic is what is checked here. The rules'
    3-minute lookback becomes fast()'s too: at this stack's 1 s scrape it would hold 180 samples
    per series (3 at the real 60 s interval), so the query-cost check would grow with the stack's age.
    """
    values = {
        "$job_id": "(" + "|".join(jobs) + ")",
        "$job": "huaweicloud-drs-exporter",
        "$namespace": RELEASE["namespace"],
        "$service": RELEASE["service"],
        # Regex-escaped, then escaped again for the PromQL string, as Grafana does.
        "$instance": re.escape(stack.instance).replace("\\", "\\\\"),
        "$object_type": ".+",
        "$src_db": ".+",
        "$__rate_interval": "5s",
        "offset 30m": "offset 15s",
        f"[{rules.DEFAULT.lookback}]": f"[{rules.fast().lookback}]",
    }
    for name, value in values.items():  # longest names first: $job is a prefix of $job_id
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def panel_queries() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(dashboard file, panel, target) of every panel query."""
    for name, text in generate.files().items():
        for panel in json.loads(text)["panels"]:
            for target in panel.get("targets", []):
                yield name, panel, target


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # Let the rules and the healthy jobs' progress run for a while before judging the panels.
    wait_for(lambda: time.time() - stack.started > 25, timeout=60, interval=1)
    # Every query polled in each round, within one bound: several empty panels are all listed
    # (one wait per panel ran into the test's timeout before naming them).
    empty = {
        f"{name} / {panel['title']}: {substitute(target['expr'], stack)}": substitute(target["expr"], stack)
        for name, panel, target in panel_queries()
    }
    checked = len(empty)

    def all_have_data() -> bool:
        for where, expr in list(empty.items()):
            if stack.query_range(expr):
                del empty[where]
        return not empty

    with contextlib.suppress(TimeoutError):  # the assertion below names what is still empty
        wait_for(all_have_data, timeout=60, interval=1)
    assert checked >= 35
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_dashboard_variables_resolve(stack: Stack) -> None:
    found: dict[str, set[str]] = {}
    for text in generate.files().values():
        for var in json.loads(text)["templating"]["list"]:
            if var["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
            assert match, var["query"]
            selector = substitute(match.group(1).replace('=~"$instance"', '=~".+"'), stack)
            answer = requests.get(
                f"{stack.prometheus}/api/v1/label/{match.group(2)}/values", params={"match[]": selector}, timeout=10
            ).json()
            assert answer["data"], f"variable {var['name']} has no values"
            found[var["name"]] = set(answer["data"])
    # The failing job has no progress data, so no recorded series: it is not offered.
    assert {*HEALTHY, STALLED} <= found["job_id"]
    assert "table" in found["object_type"]
    assert "db_0000" in found["src_db"]


def raw_objects(expr: str) -> bool:
    """Whether ``expr`` reads per-object series (not a recorded series of them) or per-table comparison series."""
    pattern = r"(?<![:\w])huaweicloud_drs_(object_progress_ratio|comparison_(table_status|source_rows|target_rows))\b"
    return re.search(pattern, expr) is not None


def test_query_cost_is_bounded_by_jobs_not_objects(stack: Stack) -> None:
    """No panel or rule query may read more than 10M samples at 100k objects (docs/performance.md).

    Panels: each query runs for the big job (2000 objects) and for a small one (40), over the
    dashboard's default range. A query that does not read per-object series must cost the same for
    both (it reads recorded job-level series); one that does is instant and bounded (`bottomk`),
    and its samples per object, times 100k, must stay within the budget. Rules: Prometheus
    evaluates them every second here with the fast windows, which hold more samples per object
    (5 s at a 1 s scrape) than the real ones at the default 60 s interval (3 minutes); their
    samples per object, times 100k, must stay within the budget.
    """
    wait_for(lambda: stack.query_range(f'job_id:huaweicloud_drs_objects:sum{{job_id="{BIG}"}}'), timeout=60)
    objects = int(stack.query_range("count(huaweicloud_drs_object_progress_ratio)")[0]["values"][-1][1])
    assert objects > BIG_OBJECTS
    report: list[str] = []
    over: list[str] = []
    for name, panel, target in panel_queries():
        instant = bool(target.get("instant"))
        big = stack.samples(substitute(target["expr"], stack, [BIG]), instant=instant)
        small = stack.samples(substitute(target["expr"], stack, ["healthy-a"]), instant=instant)
        where = f"{name} / {panel['title']} ({target['refId']})"
        if raw_objects(target["expr"]):
            projected = big * AT_SCALE // BIG_OBJECTS
            report.append(f"{where}: {big} samples for {BIG_OBJECTS} objects, {projected} at 100k")
            if not instant or projected > SAMPLE_BUDGET:
                over.append(where)
        else:
            report.append(f"{where}: {big} samples (big job) vs {small} (small job)")
            if big > 2 * small + 2000:
                over.append(f"{where}: grows with objects ({small} -> {big})")
    for group in rules.recording_groups(rules.fast()) + rules.alert_groups(rules.fast()):
        for rule in group["rules"]:
            used = stack.samples(rule["expr"], instant=True)
            projected = used * AT_SCALE // objects
            report.append(
                f"rule {rule.get('record') or rule.get('alert')}: {used} samples, at most {projected} at 100k"
            )
            if projected > SAMPLE_BUDGET:
                over.append(f"rule {rule.get('record') or rule.get('alert')}: {projected}")
    print("\n".join(report))
    assert not over, "queries over budget:\n" + "\n".join(over)


def am_alerts(stack: Stack, name: str) -> list[dict[str, Any]]:
    answer: list[dict[str, Any]] = requests.get(
        f"{stack.am}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=10
    ).json()
    return answer


def test_a_dead_replica_hides_nothing(stack: Stack) -> None:
    """A second exporter target of the same service that cannot be scraped (a replica down): the
    warning ExporterReplicaDown fires, not ExporterDown, and the alerts the live replica reports stay
    active in Alertmanager (issue 21: a down pod muted what the other still reported). Last: it
    changes the stack."""
    wait_for(lambda: stack.webhook.received() >= EXPECTED_ALERTS, timeout=150, interval=1)
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    stack.write_prometheus_config([stack.instance, dead])
    requests.post(f"{stack.prometheus}/-/reload", timeout=30).raise_for_status()
    try:
        wait_for(lambda: ("HuaweiCloudDRSExporterReplicaDown", "") in stack.webhook.received(), timeout=90, interval=1)
    except TimeoutError:
        pytest.fail(f"ExporterReplicaDown not received: {sorted(stack.webhook.received())}")
    down = am_alerts(stack, "HuaweiCloudDRSExporterReplicaDown")
    assert [a["labels"]["instance"] for a in down] == [dead]
    assert down[0]["status"]["state"] == "active"
    assert not am_alerts(stack, "HuaweiCloudDRSExporterDown")
    for name, job_id in EXPECTED_ALERTS:
        found = [a for a in am_alerts(stack, name) if a["labels"].get("job_id") == job_id]
        assert found and any(a["status"]["state"] == "active" for a in found), (name, found)
