"""simulator → drs-exporter → Prometheus (the project's rules) → Alertmanager → a webhook, all real.

The rules are built by the same code as the committed files (`alerts/rules.py`) with every
window shortened to seconds (`rules.fast()`), so that alerts can fire within a test run; their
timing at the real windows is proved by `promtool test rules` (tests/test_rules.py).
"""

from __future__ import annotations

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

from alerts import rules
from dashboards import generate

from .procs import Exporter, Simulator, sim_config, wait_for

HEALTHY = ["healthy-a", "healthy-b"]
STALLED = "stalled-job"
FAILING = "failing-job"
JOBS = [*HEALTHY, STALLED, FAILING]
SCENARIO = {
    "jobs": [
        {"id": "healthy-a", "objects": {"table": 40}, "speed": 2.0},
        {"id": "healthy-b", "objects": {"table": 30, "view": 10}, "speed": 0.7, "time_format": "iso"},
        {"id": STALLED, "objects": {"table": 20}, "stalled": True},
        {"id": FAILING, "objects": {"table": 5}, "error": "DRS.M05004"},
    ]
}
EXPECTED_ALERTS = {
    ("HuaweiCloudDRSObjectStalled", STALLED),
    ("HuaweiCloudDRSJobStalled", STALLED),
    ("HuaweiCloudDRSRefreshFailing", FAILING),
}


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
        self.sim = Simulator("--scenario", str(scenario))
        self.cleanup.append(self.sim.stop)
        (tmp / "exporter").mkdir()
        self.exporter = Exporter(sim_config(self.sim, JOBS, cache_ttl=1), tmp / "exporter")
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
        prom_config = tmp / "prometheus.yml"
        prom_config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rule_dir / name) for name in sorted(rules.files())],
                    "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                    "scrape_configs": [
                        {"job_name": "huaweicloud-drs-exporter", "static_configs": [{"targets": [self.instance]}]}
                    ],
                }
            )
        )
        prom = Service(
            [
                "prometheus",
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp / "prometheus.log",
            f"http://127.0.0.1:{prom_port}/-/ready",
        )
        self.cleanup.append(prom.stop)
        self.prometheus = f"http://127.0.0.1:{prom_port}"

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
    assert not [a for a in received if a[1] in HEALTHY], f"healthy jobs alerted: {received}"
    assert not [a for a in received if a[0] == "HuaweiCloudDRSExporterDown"]
    with stack.webhook.lock:
        alert = next(a for a in stack.webhook.alerts if a["labels"]["alertname"] == "HuaweiCloudDRSJobStalled")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#huaweiclouddrsjobstalled")
    assert STALLED in alert["annotations"]["description"]


def test_recording_rules_produce_values(stack: Stack) -> None:
    for group in rules.recording_rules()["groups"]:
        for rule in group["rules"]:
            found = wait_for(lambda name=rule["record"]: stack.query_range(name), timeout=60, interval=1)
            jobs = {series["metric"]["job_id"] for series in found}
            assert set(HEALTHY) <= jobs, f"{rule['record']}: {jobs}"


def substitute(expr: str, stack: Stack) -> str:
    """The query as Grafana sends it with every job selected (multi-value as a regex group)."""
    values = {
        "$job_id": "(" + "|".join(JOBS) + ")",
        "$job": "huaweicloud-drs-exporter",
        # Regex-escaped, then escaped again for the PromQL string, as Grafana does.
        "$instance": re.escape(stack.instance).replace("\\", "\\\\"),
        "$__rate_interval": "5s",
    }
    for name, value in values.items():  # longest names first: $job is a prefix of $job_id
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    # Let the rules and the healthy jobs' progress run for a while before judging the panels.
    wait_for(lambda: time.time() - stack.started > 25, timeout=60, interval=1)
    empty: list[str] = []
    checked = 0
    for name, text in generate.files().items():
        dashboard = json.loads(text)
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = substitute(target["expr"], stack)
                checked += 1
                try:
                    wait_for(lambda e=expr: stack.query_range(e), timeout=30, interval=1)
                except TimeoutError:
                    empty.append(f"{name} / {panel['title']}: {expr}")
    assert checked >= 25
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_dashboard_variables_resolve(stack: Stack) -> None:
    variables = json.loads(generate.files()["drs-overview.json"])["templating"]["list"]
    for var in variables:
        if var["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", var["query"])
        assert match, var["query"]
        selector = substitute(match.group(1).replace('=~"$instance"', '=~".+"'), stack)
        answer = requests.get(
            f"{stack.prometheus}/api/v1/label/{match.group(2)}/values", params={"match[]": selector}, timeout=10
        ).json()
        assert answer["data"], f"variable {var['name']} has no values"
    assert set(JOBS) <= set(answer["data"])
