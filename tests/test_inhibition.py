"""What on-call receives: the alerts promtool fires, through a real Alertmanager with the shipped inhibit rules.

Each scenario of `alerts/tests/incidents_test.yaml` (its input series carry a `scenario` label)
says which alerts fire and with which labels, and promtool checks exactly that
(tests/test_rules.py). Here those alerts, with the external labels a cluster's Prometheus would
add, are posted to Debian's `prometheus-alertmanager` loaded with `alerts/alertmanager-inhibit.yaml`,
and the test asserts which stay active (reach on-call) and which are suppressed.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from alerts import rules

from .procs import terminate, wait_for

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS = ROOT / "alerts" / "tests" / "incidents_test.yaml"
HEALTH = ROOT / "alerts" / "tests" / "health_test.yaml"
BINARY = "prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Alertmanager:
    """``prometheus-alertmanager`` on a free loopback port, with the shipped inhibit rules."""

    def __init__(self, workdir: Path) -> None:
        config = {
            "route": {"receiver": "null", "group_by": ["..."]},
            "receivers": [{"name": "null"}],
            **yaml.safe_load(rules.inhibit_file()),
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = (workdir / "alertmanager.log").open("w")
        binary = shutil.which(BINARY)
        assert binary, f"{BINARY} is not installed: run `make debian-deps`"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(self._ready, timeout=30, interval=0.2)
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{BINARY} exited with {self.proc.returncode}")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def post(self, alerts: list[dict[str, str]]) -> None:
        now = datetime.now(timezone.utc)
        body = [
            {
                "labels": labels,
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(hours=1)).isoformat(),
            }
            for labels in alerts
        ]
        requests.post(f"{self.url}/api/v2/alerts", json=body, timeout=10).raise_for_status()

    def states(self) -> dict[str, str]:
        """Alert name (see :func:`name`) -> active or suppressed."""
        answer: list[dict[str, Any]] = requests.get(f"{self.url}/api/v2/alerts", timeout=10).json()
        return {name(a["labels"]): a["status"]["state"] for a in answer}

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()


def name(labels: dict[str, str]) -> str:
    """A short name for an alert: its name without prefix, its severity when not the usual, and what it is about."""
    what = labels.get("job_id") or labels.get("project_id") or labels.get("instance") or labels.get("cluster", "")
    return f"{labels['alertname'].removeprefix(rules.PREFIX)}/{what}" + (
        f"/{labels['severity']}" if labels["alertname"].endswith("JobStalled") else ""
    )


def firing(scenario: str, eval_time: str, path: Path = INCIDENTS, **external: str) -> list[dict[str, str]]:
    """The alerts promtool fires in ``scenario`` of ``path`` at ``eval_time``, with ``external`` labels."""
    out: list[dict[str, str]] = []
    for test in yaml.safe_load(path.read_text())["tests"]:
        labels = re.search(r'scenario="([^"]+)"', test["input_series"][0]["series"])
        if labels is None or labels.group(1) != scenario:
            continue
        for case in test.get("alert_rule_test", []):
            if case["eval_time"] == eval_time:
                for alert in case["exp_alerts"]:
                    out.append({**external, "alertname": case["alertname"], **alert["exp_labels"]})
    assert out, f"no alerts of scenario {scenario} at {eval_time} in {path.name}"
    return out


def received(am: Alertmanager, alerts: list[dict[str, str]], expected: dict[str, str]) -> dict[str, str]:
    """Post ``alerts`` and wait (bounded) until Alertmanager's states are ``expected``; the states found."""
    am.post(alerts)
    found: dict[str, str] = {}

    def settled() -> bool:
        found.clear()
        found.update(am.states())
        return found == expected

    with contextlib.suppress(TimeoutError):  # the caller's assertion shows what was found instead
        wait_for(settled, timeout=20, interval=0.2)
    return found


@pytest.fixture
def am(tmp_path: Path) -> Iterator[Alertmanager]:
    manager = Alertmanager(tmp_path)
    try:
        yield manager
    finally:
        manager.stop()


def test_one_projects_credentials_do_not_hide_another_projects_stall(am: Alertmanager) -> None:
    """Problem 1: eu's credentials fail while ap's job stalls. ap's JobStalled reaches on-call; eu's
    JobProgressUnavailable is rightly silenced by eu's CredentialsFailing (same project and cluster)."""
    expected = {
        "CredentialsFailing/eu": "active",
        "JobStalled/ap1/warning": "active",
        "JobProgressUnavailable/eu1": "suppressed",
    }
    assert received(am, firing("projects", "40m", cluster="c"), expected) == expected


def test_credentials_without_a_cluster_label_mute_nothing(am: Alertmanager) -> None:
    """Review of issue 21: the same alerts from a Prometheus without a `cluster` external label (compose, a VM).
    Another installation with the same (empty) namespace and service may watch project eu with its own
    credentials: nothing tells them apart, so nothing is muted."""
    expected = {
        "CredentialsFailing/eu": "active",
        "JobStalled/ap1/warning": "active",
        "JobProgressUnavailable/eu1": "active",
    }
    assert received(am, firing("projects", "40m"), expected) == expected


def test_one_replica_down_hides_nothing(am: Alertmanager) -> None:
    """Problem 1: replica b is down, replica a reports JobFailed: both reach on-call."""
    expected = {"ExporterReplicaDown/b:10370": "active", "JobFailed/j1": "active"}
    assert received(am, firing("replicas", "10m"), expected) == expected


def test_one_clusters_absent_exporter_does_not_hide_another_clusters_failure(am: Alertmanager) -> None:
    """Problem 1: one Alertmanager for two clusters; staging's ExporterAbsent, prod's JobFailed."""
    alerts = firing("staging", "21m", cluster="staging") + firing("prod", "21m", cluster="prod")
    expected = {"ExporterAbsent/staging": "active", "JobFailed/j1": "active"}
    assert received(am, alerts, expected) == expected


def test_an_absent_exporter_still_silences_its_own_clusters_alerts(am: Alertmanager) -> None:
    """The near miss of the above: in the same cluster (and scrape job) the inhibition rightly mutes."""
    alerts = firing("staging", "21m", cluster="prod") + firing("prod", "21m", cluster="prod")
    expected = {"ExporterAbsent/prod": "active", "JobFailed/j1": "suppressed"}
    assert received(am, alerts, expected) == expected


def test_an_outage_of_one_projects_api_reaches_on_call_as_few_alerts(am: Alertmanager) -> None:
    """Problem 7: 20 jobs of project eu time out (41 alerts before, none muted). On-call gets at most 3;
    the per-job alerts are suppressed, not lost. Project mx's one failing job still reaches on-call."""
    alerts = firing("outage", "24m", cluster="c")
    assert len(alerts) == 1 + 21 + 20 + 1
    eu = [f"eu{i:02d}" for i in range(20)]
    expected = {
        "ProjectRefreshFailing/eu": "active",
        "APIErrorRatioHigh/c": "active",
        "RefreshFailing/mx1": "active",
        **{f"RefreshFailing/{j}": "suppressed" for j in eu},
        **{f"JobProgressUnavailable/{j}": "suppressed" for j in eu},
    }
    found = received(am, alerts, expected)
    assert found == expected
    outage = [n for n, state in found.items() if state == "active" and not n.endswith("/mx1")]
    assert len(outage) <= 3, outage


def test_the_critical_stall_replaces_its_warning(am: Alertmanager) -> None:
    """Problem 3: warn early, page late; once the page fires, the warning of the same job is silenced."""
    jobs = ("resumed", "retried", "steady")
    expected = {
        **{f"JobStalled/{j}/critical": "active" for j in jobs},
        **{f"JobStalled/{j}/warning": "suppressed" for j in jobs},
    }
    assert received(am, firing("phases", "166m"), expected) == expected


J = "huaweicloud-drs-exporter"


def job_failed(job_id: str, **labels: str) -> dict[str, str]:
    """A critical JobFailed of ``job_id``, with ``labels`` (the target labels as Prometheus gives them)."""
    return {
        "alertname": "HuaweiCloudDRSJobFailed",
        "job": J,
        **labels,
        "job_id": job_id,
        "status": "FULL_TRANSFER_FAILED",
        "severity": "critical",
    }


def test_compose_installation_as_exporter_absent_does_not_mute_another_installation(am: Alertmanager) -> None:
    """Review of issue 21: two docker-compose/VM installations (no namespace or service, no `cluster` external
    label) share one Alertmanager. A's Prometheus lost its exporter target; B's job really failed."""
    alerts = [
        {"alertname": "HuaweiCloudDRSExporterAbsent", "job": J, "severity": "critical"},
        job_failed("b-job", instance="b-prom"),
    ]
    expected = {"ExporterAbsent/": "active", "JobFailed/b-job": "active"}
    assert received(am, alerts, expected) == expected


def test_compose_installation_as_exporter_down_does_not_mute_another_installation(am: Alertmanager) -> None:
    """The same with A's exporter down: B's critical stall and B's credential failure reach on-call."""
    alerts = [
        {"alertname": "HuaweiCloudDRSExporterDown", "job": J, "severity": "critical"},
        {"alertname": "HuaweiCloudDRSJobStalled", "job": J, "job_id": "b-job", "severity": "critical"},
        {"alertname": "HuaweiCloudDRSCredentialsFailing", "job": J, "project_id": "p-b", "severity": "critical"},
    ]
    expected = {"ExporterDown/": "active", "JobStalled/b-job/critical": "active", "CredentialsFailing/p-b": "active"}
    assert received(am, alerts, expected) == expected


def test_two_clusters_with_one_release_name_and_no_cluster_label(am: Alertmanager) -> None:
    """The chart in staging and prod (same namespace and release name), each Prometheus without a `cluster`
    external label. Staging's exporter is down; prod's job failed."""
    svc = {"job": J, "namespace": "monitoring", "service": "drs-huaweicloud-drs-exporter"}
    alerts = [
        {"alertname": "HuaweiCloudDRSExporterDown", **svc, "severity": "critical"},
        job_failed("prod-job", **svc),
    ]
    expected = {"ExporterDown/": "active", "JobFailed/prod-job": "active"}
    assert received(am, alerts, expected) == expected


def test_an_exporter_down_with_its_cluster_still_mutes_its_own_release(am: Alertmanager) -> None:
    """The near miss of the above: with the `cluster` external label each cluster's ExporterDown mutes its own
    release's alerts, and only those."""
    svc = {"job": J, "namespace": "monitoring", "service": "drs-huaweicloud-drs-exporter"}
    alerts = [
        {"alertname": "HuaweiCloudDRSExporterDown", **svc, "cluster": "staging", "severity": "critical"},
        job_failed("stg-job", **svc, cluster="staging"),
        job_failed("prod-job", **svc, cluster="prod"),
    ]
    expected = {"ExporterDown/staging": "active", "JobFailed/stg-job": "suppressed", "JobFailed/prod-job": "active"}
    assert received(am, alerts, expected) == expected


def test_chart_absent_mutes_its_own_release_only(am: Alertmanager) -> None:
    """With the chart's selector ExporterAbsent carries namespace and service: another release is not muted."""
    a = {"job": J, "namespace": "team-a", "service": "a-huaweicloud-drs-exporter", "cluster": "c"}
    b = {**a, "namespace": "team-b", "service": "b-huaweicloud-drs-exporter"}
    alerts = [
        {"alertname": "HuaweiCloudDRSExporterAbsent", **a, "severity": "critical"},
        job_failed("ja", **a),
        job_failed("jb", **b),
    ]
    expected = {"ExporterAbsent/c": "active", "JobFailed/ja": "suppressed", "JobFailed/jb": "active"}
    assert received(am, alerts, expected) == expected


def test_one_projects_outage_does_not_mute_another_projects_stall(am: Alertmanager) -> None:
    """incidents_test.yaml's twoproj at 130m, with APIErrorRatioHigh (per exporter): eu's outage reaches on-call
    as ProjectRefreshFailing, DiscoveryFailing and APIErrorRatioHigh; ap's critical stall reaches it too."""
    alerts = [
        *firing("twoproj", "130m", cluster="c"),
        {"alertname": "HuaweiCloudDRSAPIErrorRatioHigh", "job": "drs", "cluster": "c", "severity": "warning"},
    ]
    expected = {
        "ProjectRefreshFailing/eu": "active",
        "DiscoveryFailing/eu": "active",
        "APIErrorRatioHigh/c": "active",
        "RefreshFailing/eu1": "suppressed",
        "RefreshFailing/eu2": "suppressed",
        "JobStalled/ap1/warning": "suppressed",
        "JobStalled/ap1/critical": "active",
    }
    assert received(am, alerts, expected) == expected
    # The runbooks say what an outage reaches on-call as: every one of eu's outage alerts still active.
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    outage = runbooks.split("- *ProjectRefreshFailing* (", 1)[1].split("\n- ", 1)[0]
    for active in ("DiscoveryFailing", "APIErrorRatioHigh"):
        assert f"*{active}*" in outage, active


def test_an_outage_that_lets_some_jobs_through_still_reaches_on_call_as_one_alert(am: Alertmanager) -> None:
    """Review of issue 21: 3 of 4 and 19 of 20 jobs of a project time out; each project's outage reaches on-call
    as its ProjectRefreshFailing, its per-job alerts are suppressed. The near misses (2 of 4, 3 of 7, 3 deleted
    jobs of 4) have no project alert: their RefreshFailing reach on-call."""
    alerts = firing("partial", "24m", cluster="c")
    outage = {f"eu{i}" for i in range(3)} | {f"big{i}" for i in range(19)}
    near = {"two0", "two1", "few0", "few1", "few2", "gone0", "gone1", "gone2"}
    expected = {
        "ProjectRefreshFailing/eu": "active",
        "ProjectRefreshFailing/big": "active",
        **{f"RefreshFailing/{j}": "suppressed" for j in outage},
        **{f"RefreshFailing/{j}": "active" for j in near},
    }
    assert received(am, alerts, expected) == expected


def test_a_dr_job_with_an_unreachable_database_reaches_on_call_as_its_cause(am: Alertmanager) -> None:
    """Issue 24: health_test.yaml's drjob. dr1's target is unreachable: its RTO and delay grow meanwhile, and
    on-call gets EndpointDown alone. dr2's RPO and delay are the same lag: RPOHigh alone. dr3 has five failing
    things (alarms, a failed DDL, abnormal rows in two phases): one alert per subject, DDLFailed and DirtyRows."""
    expected = {
        "EndpointDown/dr1": "active",
        "RTOHigh/dr1": "suppressed",
        "ReplicationDelayHigh/dr1": "suppressed",
        "RPOHigh/dr2": "active",
        "ReplicationDelayHigh/dr2": "suppressed",
        "DDLFailed/dr3": "active",
        "DirtyRows/dr3": "active",
    }
    assert received(am, firing("drjob", "20m", HEALTH), expected) == expected


def test_an_unreachable_database_mutes_only_its_own_jobs_delays(am: Alertmanager) -> None:
    """The near miss: EndpointDown of one job (or of the same job in another release) silences no other RPO."""
    a = {"job": J, "namespace": "team-a", "service": "a", "cluster": "c"}
    b = {**a, "namespace": "team-b", "service": "b"}
    alerts = [
        {"alertname": "HuaweiCloudDRSEndpointDown", **a, "job_id": "j1", "severity": "warning"},
        {"alertname": "HuaweiCloudDRSRPOHigh", **a, "job_id": "j2", "severity": "warning"},
        {"alertname": "HuaweiCloudDRSRPOHigh", **b, "job_id": "j1", "severity": "warning"},
    ]
    expected = {"EndpointDown/j1": "active", "RPOHigh/j2": "active", "RPOHigh/j1": "active"}
    assert received(am, alerts, expected) == expected


def test_a_projects_outage_mutes_its_jobs_health_data_failing_only(am: Alertmanager) -> None:
    """Issue 24: an outage of project eu's API fails every source of every eu job. On-call gets the project's
    alert; each eu job's HealthDataFailing is suppressed (same project and cluster), ap's reaches on-call. The
    exporter down (another release) mutes nothing of this one."""
    svc = {"job": J, "namespace": "m", "service": "s", "cluster": "c"}
    other = {**svc, "service": "other"}
    alerts = [
        {"alertname": "HuaweiCloudDRSProjectRefreshFailing", **svc, "project_id": "eu", "severity": "warning"},
        *(
            {
                "alertname": "HuaweiCloudDRSHealthDataFailing",
                **svc,
                "job_id": j,
                "project_id": "eu",
                "severity": "warning",
            }
            for j in ("eu1", "eu2")
        ),
        {
            "alertname": "HuaweiCloudDRSHealthDataFailing",
            **svc,
            "job_id": "ap1",
            "project_id": "ap",
            "severity": "warning",
        },
        {"alertname": "HuaweiCloudDRSExporterDown", **other, "severity": "critical"},
        {"alertname": "HuaweiCloudDRSDDLFailed", **other, "job_id": "x1", "severity": "warning"},
    ]
    expected = {
        "ProjectRefreshFailing/eu": "active",
        "HealthDataFailing/eu1": "suppressed",
        "HealthDataFailing/eu2": "suppressed",
        "HealthDataFailing/ap1": "active",
        "ExporterDown/c": "active",
        "DDLFailed/x1": "suppressed",
    }
    assert received(am, alerts, expected) == expected
