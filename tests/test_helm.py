"""The Helm chart, rendered by the real Helm engine (Helm's Go SDK via helm-python-sdk)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from alerts import rules, timing
from dashboards import generate
from exporter import config as exporter_config

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "huaweicloud-drs-exporter"
ALL_VALUES = yaml.safe_load((CHART / "ci" / "all-values.yaml").read_text())
# The least a user must give: the exporter's configuration requires a project and jobs (or discovery).
MINIMAL: dict[str, Any] = {"config": {"project_id": "5237e10fe9aa4ad5b16b6a5245248314", "jobs": ["job-1"]}}
KUBERNETES = "1.30.0"
DASHBOARD_UIDS = set(generate.UIDS.values())
CORE_KINDS = {"Deployment", "Service", "ServiceAccount", "ConfigMap", "Secret", "NetworkPolicy"}


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest the chart renders for ``values``."""
    out = chart.render(values, name="drs", namespace="monitoring")
    docs: list[dict[str, Any]] = []
    for name, text in out.items():
        if name.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def test_chart_metadata(chart: helm.Chart) -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == __import__("exporter").__version__


def test_lint_is_clean() -> None:
    result = helm.lint(str(CHART), MINIMAL)
    assert not result["errors"], result
    # Helm severities: 1 info, 2 warning, 3 error. Only the "icon is recommended" info remains.
    assert all(m["severity"] <= 1 for m in result["messages"]), result["messages"]


@pytest.mark.parametrize("values", [MINIMAL, ALL_VALUES], ids=["minimal", "all-values"])
def test_core_manifests_validate_against_kubernetes_schemas(chart: helm.Chart, values: dict[str, Any]) -> None:
    docs = render(chart, values)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ServiceAccount", "ConfigMap", "Secret"} <= kinds
    for doc in docs:
        if doc["kind"] in CORE_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        for key in (
            "helm.sh/chart",
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
        ):
            assert key in doc["metadata"]["labels"], f"{doc['kind']} lacks {key}"


def test_all_values_turn_everything_on(chart: helm.Chart) -> None:
    kinds = [d["kind"] for d in render(chart, ALL_VALUES)]
    for kind in ("ServiceMonitor", "PrometheusRule", "NetworkPolicy"):
        assert kind in kinds
    assert kinds.count("ConfigMap") == 1 + len(generate.DASHBOARDS)


def test_defaults_leave_optional_objects_off(chart: helm.Chart) -> None:
    kinds = {d["kind"] for d in render(chart, MINIMAL)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "NetworkPolicy"}


def test_hardened_pod(chart: helm.Chart) -> None:
    deployment = one(render(chart, MINIMAL), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "resources" not in container, "no resources by default"
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert container["ports"][0]["containerPort"] == 10370


def test_config_change_rolls_the_pod(chart: helm.Chart) -> None:
    def checksum(values: dict[str, Any]) -> str:
        deployment = one(render(chart, values), "Deployment")
        annotation: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return annotation

    assert checksum(ALL_VALUES) != checksum({**ALL_VALUES, "config": {**ALL_VALUES["config"], "cache_ttl": 60}})


def test_aksk_secret_wiring(chart: helm.Chart) -> None:
    docs = render(chart, ALL_VALUES)
    secret = one(docs, "Secret")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        "access_key": "TESTACCESSKEY0001",
        "secret_key": "test-secret-key-value",
        "security_token": "test-security-token-value",
    }
    env = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert env["HUAWEICLOUD_SDK_AK"] == {"name": secret["metadata"]["name"], "key": "access_key"}
    assert env["HUAWEICLOUD_SDK_SK"] == {"name": secret["metadata"]["name"], "key": "secret_key"}
    assert env["HUAWEICLOUD_SDK_SECURITY_TOKEN"]["key"] == "security_token"
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and "drs-exporter.yml" in d["data"])
    assert "secret" not in configmap["data"]["drs-exporter.yml"]


def test_existing_secret_with_a_token_file(chart: helm.Chart) -> None:
    values = {**ALL_VALUES, "credentials": {"type": "token", "existingSecret": "my-drs-token"}}
    docs = render(chart, values)
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret created for an existing one"
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "credentials")
    assert volume["secret"]["secretName"] == "my-drs-token"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "credentials")
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and "drs-exporter.yml" in d["data"])
    rendered = yaml.safe_load(configmap["data"]["drs-exporter.yml"])
    assert rendered["auth"] == {"token_file": f"{mount['mountPath']}/token"}


def test_rendered_config_is_accepted_by_the_exporter(
    chart: helm.Chart, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's file passes the exporter's own validation, with the Secret's env or file."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "TESTACCESSKEY0001")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "test-secret-key-value")
    for credentials in (
        {"type": "aksk"},
        {"type": "password", "existingSecret": "s", "username": "u", "domainName": "d"},
    ):
        docs = render(chart, {**ALL_VALUES, "credentials": {**ALL_VALUES["credentials"], **credentials}})
        configmap = next(d for d in docs if d["kind"] == "ConfigMap" and "drs-exporter.yml" in d["data"])
        raw = yaml.safe_load(configmap["data"]["drs-exporter.yml"])
        if "auth" in raw and "password_file" in raw["auth"]:
            (tmp_path / "password").write_text("pw-from-secret")
            raw["auth"]["password_file"] = str(tmp_path / "password")
        parsed = exporter_config.parse(raw)
        assert parsed.keys == (
            ("163b98e8-6088-46c3-8b86-c18fea6jb502", "table"),
            ("163b98e8-6088-46c3-8b86-c18fea6jb502", "view"),
        )


def rule_groups(s: rules.Settings) -> list[dict[str, Any]]:
    groups = [g for doc in (rules.recording_rules(s), rules.alerting_rules(s)) for g in doc["groups"]]
    return sorted(groups, key=lambda g: g["name"])


# The release's own namespace and Service: what the chart adds to every selector of its rules.
RELEASE_SELECTOR = 'namespace="monitoring", service="drs-huaweicloud-drs-exporter"'


def test_prometheus_rule_is_the_repository_rules(chart: helm.Chart) -> None:
    docs = render(chart, ALL_VALUES)
    rule = one(docs, "PrometheusRule")
    assert one(docs, "Service")["metadata"]["name"] == "drs-huaweicloud-drs-exporter"
    # The chart's default leaves out the informational JobReadyForCutover (issue 25), and only it.
    expected = replace(rules.DEFAULT, selector=RELEASE_SELECTOR, disabled=("JobReadyForCutover",))
    assert sorted(rule["spec"]["groups"], key=lambda g: g["name"]) == rule_groups(expected)
    assert "HuaweiCloudDRSCutoverReadinessLost" in yaml.safe_dump(rule)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # the ruleSelector's label
    for name, text in rules.chart_files().items():
        assert (CHART / "files" / "rules" / name).read_text() == text, "run `make rules`"
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"]
    assert defaults["settings"] == rules.settings_values()
    assert defaults["disabled"] == [] and defaults["cutoverReadyAlert"] is False


def test_notes_ask_for_a_cluster_external_label_with_the_rules(chart: helm.Chart) -> None:
    """The inhibit rules mute by an installation's own causes only with a `cluster` label (review of issue 21),
    which kube-prometheus-stack does not set: the release notes say so when the rules are installed."""
    values = {**MINIMAL, "prometheusRule": {"enabled": True}}
    notes = chart.render(values, name="drs", namespace="monitoring")["huaweicloud-drs-exporter/templates/NOTES.txt"]
    assert "externalLabels.cluster" in notes and "alertmanager-inhibit.yaml" in notes
    without = chart.render(MINIMAL, name="drs", namespace="monitoring")["huaweicloud-drs-exporter/templates/NOTES.txt"]
    assert "externalLabels" not in without


def test_rule_settings_and_disabled_alerts_from_values(chart: helm.Chart) -> None:
    """Thresholds, windows and the runbook URL set in values give the rules rules.py gives for them."""
    changed = {
        "delay_seconds": 600,
        "stall_window": "1h",
        "error_ratio": 0.35,
        "comparison_max_age_seconds": 86400,
        "cutover_delay_seconds": 45,
        "cutover_window": "20m",
        "runbook_url": "https://wiki/drs",
    }
    values = {**ALL_VALUES, "prometheusRule": {"enabled": True, "settings": changed, "disabled": ["JobFinished"]}}
    rule = one(render(chart, values), "PrometheusRule")
    expected = replace(
        rules.DEFAULT,
        **changed,  # type: ignore[arg-type]
        disabled=("JobFinished", "JobReadyForCutover"),
        selector=RELEASE_SELECTOR,
    )
    assert sorted(rule["spec"]["groups"], key=lambda g: g["name"]) == rule_groups(expected)
    text = yaml.safe_dump(rule)
    assert "> 600" in text and "[1h]" in text and "https://wiki/drs#huaweiclouddrsjobstalled" in text
    assert "> 86400" in text
    assert "HuaweiCloudDRSJobFinished" not in text
    # A list of one's own leaves the ready-for-cut-over notice off (review of issue 25): its own value turns it on.
    assert "HuaweiCloudDRSJobReadyForCutover" not in text and ">= 45" in text
    values["prometheusRule"]["cutoverReadyAlert"] = True
    rule = one(render(chart, values), "PrometheusRule")
    expected = replace(expected, disabled=("JobFinished",))
    assert sorted(rule["spec"]["groups"], key=lambda g: g["name"]) == rule_groups(expected)
    text = yaml.safe_dump(rule)
    assert "HuaweiCloudDRSJobReadyForCutover" in text and "HuaweiCloudDRSJobFinished" not in text
    assert re.search(r"incremental_delay_seconds\{[^}]*\}\[20m\]", text)


def _config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    configmap = next(d for d in docs if d["kind"] == "ConfigMap" and "drs-exporter.yml" in d["data"])
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["drs-exporter.yml"])
    return config


def test_cutover_thresholds_feed_the_rules_and_the_exporter(chart: helm.Chart, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status page judges cut-over readiness with the rules' thresholds (review of issue 25): one value each."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "TESTACCESSKEY0001")  # the Secret's env
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "test-secret-key-value")
    assert {k: v for k, v in _config(render(chart, ALL_VALUES)).items() if k.startswith("cutover_")} == {
        "cutover_delay_seconds": rules.DEFAULT.cutover_delay_seconds,
        "cutover_comparison_max_age_seconds": rules.DEFAULT.cutover_comparison_max_age_seconds,
    }
    changed = {"cutover_delay_seconds": 30, "cutover_comparison_max_age_seconds": 21600}
    values = {**ALL_VALUES, "prometheusRule": {"enabled": True, "settings": changed}}
    docs = render(chart, values)
    config = _config(docs)
    assert (config["cutover_delay_seconds"], config["cutover_comparison_max_age_seconds"]) == (30, 21600)
    parsed = exporter_config.parse(config)
    assert (parsed.cutover_delay_seconds, parsed.cutover_comparison_max_age_seconds) == (30, 21600)
    text = yaml.safe_dump(one(docs, "PrometheusRule"))
    assert ">= 30" in text and "> 21600" in text
    # Set where only the exporter reads it, and different: refused, naming the one place to set it.
    clash = {**values, "config": {**ALL_VALUES["config"], "cutover_delay_seconds": 60}}
    with pytest.raises(
        helm.HelmError, match=re.escape("config.cutover_delay_seconds (60) differs from prometheusRule")
    ):
        chart.render(clash, name="drs", namespace="monitoring")
    same = {**values, "config": {**ALL_VALUES["config"], "cutover_delay_seconds": 30}}
    assert _config(render(chart, same))["cutover_delay_seconds"] == 30


def test_every_alert_can_be_disabled_in_values() -> None:
    """The runbooks' advice (`prometheusRule.disabled: [Name]`) must pass the schema for every alert."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    enum = schema["properties"]["prometheusRule"]["properties"]["disabled"]["items"]["enum"]
    assert set(enum) == {n.removeprefix(rules.PREFIX) for n in rules.alert_names()}


def _series(metric: str, values: str, release: str, **extra: str) -> dict[str, str]:
    labels = {
        "job": "huaweicloud-drs-exporter",
        "namespace": f"team-{release}",
        "service": f"drs-{release}-huaweicloud-drs-exporter",
        "instance": f"{release}:10370",
        **extra,
    }
    return {"series": metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def _release(release: str) -> dict[str, str]:
    return {
        "job": "huaweicloud-drs-exporter",
        "namespace": f"team-{release}",
        "service": f"drs-{release}-huaweicloud-drs-exporter",
    }


def test_two_releases_rules_each_judge_only_their_own_exporter(chart: helm.Chart, tmp_path: Path) -> None:
    """Issue 21 problems 4 and 5: two releases with different prometheusRule settings, and promtool over
    the union of their rules with series from both. Both exporters watch the same DRS job.

    - release a: delay threshold 300 s, JobPaused disabled; release b: delay threshold 900 s.
      A 600 s delay fires for a's exporter only (by a's rule), and the paused job fires JobPaused for
      b's exporter only (a disabled it). Unscoped, a's rules judged b's series and b's a's.
    - release b loses its target while a's stays: ExporterAbsent fires for b (absent() per release).
    - replication health (issue 24): an RPO of 600 s fires RPOHigh by a's threshold only (b's is 900 s); a
      target down in both releases' data fires EndpointDown for a only, whose monitor readings work.
    """
    settings = {"a": {"delay_seconds": 300}, "b": {"delay_seconds": 900, "rpo_seconds": 900}}
    disabled = {"a": ["JobPaused"], "b": []}
    files = []
    for release in ("a", "b"):
        values = {
            **ALL_VALUES,
            "prometheusRule": {"enabled": True, "settings": settings[release], "disabled": disabled[release]},
        }
        out = chart.render(values, name=f"drs-{release}", namespace=f"team-{release}")
        docs = [d for name, text in out.items() if not name.endswith(".txt") for d in yaml.safe_load_all(text) if d]
        path = tmp_path / f"{release}.yaml"
        path.write_text(yaml.safe_dump({"groups": one(docs, "PrometheusRule")["spec"]["groups"]}))
        files.append(str(path))
    both = [
        series
        for release in ("a", "b")
        for series in (
            _series("up", "1x70", release),
            _series("huaweicloud_drs_job_incremental_delay_seconds", "600x70", release, job_id="shared"),
            _series("huaweicloud_drs_job_info", "1x70", release, job_id="paused", name="p", status="PAUSING"),
            # Replication health (issue 24): RPO 600 s read by both; the target down in both releases' kept
            # data, but only a's monitor readings work.
            _series("huaweicloud_drs_job_rpo_seconds", "600x70", release, job_id="dr"),
            _series("huaweicloud_drs_rpo_rto_up", "1x70", release, job_id="dr"),
            _series("huaweicloud_drs_endpoint_up", "0x70", release, job_id="dr", endpoint="target"),
            _series("huaweicloud_drs_monitor_data_up", "1x70" if release == "a" else "0x70", release, job_id="dr"),
            _series("huaweicloud_drs_monitor_data_timestamp_seconds", "0+60x70", release, job_id="dr"),
        )
    ]
    runbook = f"{rules.RUNBOOK_URL}#huaweiclouddrs"
    test = {
        "rule_files": files,
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": both,
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "HuaweiCloudDRSReplicationDelayHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", **_release("a"), "job_id": "shared"},
                                "exp_annotations": {
                                    "summary": "A DRS job's incremental replication is falling behind.",
                                    "description": "DRS job shared reports an incremental replication delay of "
                                    "10m 0s (threshold 300s).",
                                    "runbook_url": runbook + "replicationdelayhigh",
                                },
                            }
                        ],
                    },
                    {  # a's threshold (300 s) for a's data only: b's 900 s is not crossed
                        "eval_time": "15m",
                        "alertname": "HuaweiCloudDRSRPOHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", **_release("a"), "job_id": "dr"},
                                "exp_annotations": {
                                    "summary": "A DRS disaster-recovery job's RPO is over its threshold.",
                                    "description": "DRS reports an RPO (business database to DRS) of 10m 0s for job "
                                    "dr (threshold 300s): a failover now would lose that much data.",
                                    "runbook_url": runbook + "rpohigh",
                                },
                            }
                        ],
                    },
                    {  # a's working readings do not vouch for b's kept data
                        "eval_time": "15m",
                        "alertname": "HuaweiCloudDRSEndpointDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", **_release("a"), "job_id": "dr"},
                                "exp_annotations": {
                                    "summary": "DRS cannot reach a database of a job.",
                                    "description": "DRS reports the connection of job dr to its database(s) unhealthy "
                                    "for 5m: target (huaweicloud_drs_endpoint_up); nothing is replicated over it.",
                                    "runbook_url": runbook + "endpointdown",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "65m",
                        "alertname": "HuaweiCloudDRSJobPaused",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    **_release("b"),
                                    "job_id": "paused",
                                    "status": "PAUSING",
                                },
                                "exp_annotations": {
                                    "summary": "A DRS job has been paused for long.",
                                    "description": "DRS job paused has been paused for 1h; its data is not moving.",
                                    "runbook_url": runbook + "jobpaused",
                                },
                            }
                        ],
                    },
                    {"eval_time": "65m", "alertname": "HuaweiCloudDRSExporterAbsent", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": [_series("up", "1x25", "a"), _series("up", "1x5", "b")],
                "alert_rule_test": [
                    {
                        "eval_time": "21m",
                        "alertname": "HuaweiCloudDRSExporterAbsent",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", **_release("b")},
                                "exp_annotations": {
                                    "summary": "Prometheus has no DRS exporter target.",
                                    "description": "No target of scrape job huaweicloud-drs-exporter (matching "
                                    '{job="huaweicloud-drs-exporter", namespace="team-b", '
                                    'service="drs-b-huaweicloud-drs-exporter"}) has existed for 10m: service '
                                    "discovery lost the exporter (ServiceMonitor selector, Service labels, scrape "
                                    "job name).",
                                    "runbook_url": runbook + "exporterabsent",
                                },
                            }
                        ],
                    },
                ],
            },
        ],
    }
    path = tmp_path / "releases_test.yaml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_timings_fit_and_impossible_ones_are_refused(chart: helm.Chart) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert (
        timing.Timing(
            interval=float(values["serviceMonitor"]["interval"].rstrip("s")),
            scrape_timeout=float(values["serviceMonitor"]["scrapeTimeout"].rstrip("s")),
            cache_ttl=values["config"]["cache_ttl"],
            refresh_timeout=values["config"]["refresh_timeout"],
        )
        == timing.DEFAULT
    )
    assert not timing.DEFAULT.problems()
    slow = {**ALL_VALUES, "serviceMonitor": {"interval": "2m", "scrapeTimeout": "1m30s"}}
    with pytest.raises(helm.HelmError, match=re.escape("prometheusRule.settings.lookback (180s) must be at least")):
        chart.render(slow, name="drs", namespace="monitoring")  # one missed scrape would drop series
    assert timing.Timing(interval=120, scrape_timeout=90, lookback=180).problems()
    settings = {**ALL_VALUES["prometheusRule"].get("settings", {}), "lookback": "6m"}
    render(chart, {**slow, "prometheusRule": {**ALL_VALUES["prometheusRule"], "settings": settings}})
    bad: list[tuple[dict[str, dict[str, Any]], str]] = [
        (
            {"config": {"refresh_timeout": 60}},
            "config.refresh_timeout (60s) must be below serviceMonitor.scrapeTimeout",
        ),
        ({"serviceMonitor": {"scrapeTimeout": "1m"}}, "scrapeTimeout (60s) must be below serviceMonitor.interval"),
        ({"config": {"cache_ttl": 30}}, "config.cache_ttl (30s) must be at least serviceMonitor.interval (60s)"),
        ({"config": {"cache_ttl": None, "refresh_timeout": 10}}, "config.cache_ttl (30s)"),  # the exporter's default
    ]
    for change, message in bad:
        merged = {**ALL_VALUES, **{k: {**ALL_VALUES.get(k, {}), **v} for k, v in change.items()}}
        with pytest.raises(helm.HelmError, match=re.escape(message)):
            chart.render(merged, name="drs", namespace="monitoring")
        assert timing.Timing(
            cache_ttl=merged["config"].get("cache_ttl") or 30,
            refresh_timeout=merged["config"].get("refresh_timeout", 50),
            scrape_timeout=60 if "scrapeTimeout" in change.get("serviceMonitor", {}) else 55,
        ).problems(), change


def test_dashboard_configmaps_for_the_sidecar(chart: helm.Chart) -> None:
    docs = render(
        chart,
        {
            **ALL_VALUES,
            "dashboards": {
                "enabled": True,
                "label": "grafana_dashboard",
                "labelValue": "1",
                "namespace": "grafana",
                "uidSuffix": "-zq9",
            },
        },
    )
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(maps) == len(generate.DASHBOARDS)
    shipped = {k: v.replace("-zq9", "") for m in maps for k, v in m["data"].items()}
    assert {k: v.rstrip("\n") for k, v in generate.files().items()} == {k: v.rstrip("\n") for k, v in shipped.items()}
    assert {m["metadata"]["namespace"] for m in maps} == {"grafana"}


def test_service_monitor_follows_the_web_config(chart: helm.Chart) -> None:
    tls = {"ca": {"secret": {"name": "drs-ca", "key": "ca.crt"}}, "serverName": "drs-exporter"}
    auth = {"username": {"name": "s", "key": "user"}, "password": {"name": "s", "key": "password"}}
    values = {
        **ALL_VALUES,
        "webConfig": {"existingSecret": "drs-web", "scheme": "https"},
        "serviceMonitor": {**ALL_VALUES["serviceMonitor"], "tlsConfig": tls, "basicAuth": auth, "sampleLimit": 500000},
    }
    docs = render(chart, values)
    monitor = one(docs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["scheme"], endpoint["tlsConfig"], endpoint["basicAuth"]) == ("https", tls, auth)
    assert monitor["spec"]["sampleLimit"] == 500000
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--web.config.file=/etc/drs-exporter/web/web-config.yml" in container["args"]
    # Basic auth and client certificates guard the health endpoints too: the kubelet probes the port.
    probes = (container["livenessProbe"], container["readinessProbe"])
    assert [p["tcpSocket"] for p in probes] == [{"port": "http-metrics"}] * 2
    assert not any("httpGet" in p for p in probes)
    volumes = one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "web-config", "secret": {"secretName": "drs-web", "defaultMode": 0o440}} in volumes
    plain = one(render(chart, ALL_VALUES), "ServiceMonitor")
    assert plain["spec"]["endpoints"][0]["scheme"] == "http" and "sampleLimit" not in plain["spec"]
    plain_container = one(render(chart, ALL_VALUES), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert plain_container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http-metrics"}
    for change, message in (
        ({"webConfig": {"scheme": "https"}}, "webConfig.scheme https needs webConfig.existingSecret"),
        ({"serviceMonitor": {**ALL_VALUES["serviceMonitor"], "basicAuth": auth}}, "serviceMonitor.basicAuth needs"),
    ):
        with pytest.raises(helm.HelmError, match=re.escape(message)):
            chart.render({**ALL_VALUES, **change}, name="drs", namespace="monitoring")


def test_scrape_timeout_lines_follow_the_service_monitor(chart: helm.Chart) -> None:
    """Review 16 item 12: the health dashboard's scrape-timeout lines were fixed at 55 s."""
    values = {
        **ALL_VALUES,
        "config": {**ALL_VALUES["config"], "refresh_timeout": 30},
        "serviceMonitor": {**ALL_VALUES["serviceMonitor"], "scrapeTimeout": "40s"},
        "dashboards": {"enabled": True},
    }
    maps = [d for d in render(chart, values) if d["kind"] == "ConfigMap" and "drs-exporter-health.json" in d["data"]]
    health = json.loads(maps[0]["data"]["drs-exporter-health.json"])
    lines = {
        p["title"]: p["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
        for p in health["panels"]
        if p["title"] in ("Refresh duration", "Scrape duration")
    }
    assert lines == {"Refresh duration": 40, "Scrape duration": 40}


def test_dashboard_uids_do_not_collide_across_releases(chart: helm.Chart) -> None:
    def uids(release: str) -> dict[str, str]:
        out = chart.render({**ALL_VALUES, "dashboards": {"enabled": True}}, name=release, namespace="monitoring")
        docs = [d for name, text in out.items() if not name.endswith(".txt") for d in yaml.safe_load_all(text) if d]
        maps = [d for d in docs if d["kind"] == "ConfigMap"]
        found = {}
        for m in maps:
            for name, body in m.get("data", {}).items():
                if name.endswith(".json"):
                    model = json.loads(body)
                    found[name] = model["uid"]
                    assert m["metadata"]["annotations"]["grafana_folder"] == "Huawei Cloud DRS"
                    # Links between the dashboards follow the uids.
                    for link in model["links"]:
                        assert link["url"].removeprefix("/d/") in {f"{u}{found[name][-8:]}" for u in DASHBOARD_UIDS}
        return found

    first, second = uids("drs"), uids("drs-eu")
    assert set(first) == set(generate.DASHBOARDS)
    assert not set(first.values()) & set(second.values())
    assert all(len(uid) <= 40 for uid in first.values())


def test_service_monitor(chart: helm.Chart) -> None:
    docs = render(chart, ALL_VALUES)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # jobLabel names a Service label whose value becomes the scrape job the alerts select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "huaweicloud-drs-exporter"
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "two"},
        {"unknownKey": True},
        {"config": {"page_size": 5000}},
        {"config": {"jobs": [{"id": "bad/id"}]}},
        {},
        {"config": {"project_id": "abc"}},
        {"config": {"project_id": "abc", "jobs": ["a"], "cache_ttl": "soon"}},
        {"config": {"project_id": "abc", "jobs": ["a"], "auth": {"token": "abcdefgh"}}},
        {"config": {"project_id": "abc", "jobs": [{"id": "a", "object_types": ["tables"]}]}},
        {"config": {"project_id": "abc", "jobs": ["bad id!"]}},
        {"config": {"project_id": "abc", "discovery": {"job_types": ["copy"]}}},
        {"config": {"project_id": "abc", "jobs": ["a"], "object_filters": {"include_db": "x"}}},
        {"credentials": {"type": "kerberos"}},
        {"serviceMonitor": {"enabled": "yes"}},
        {"service": {"port": 70000}},
    ],
    ids=[
        "wrong-type",
        "unknown-top-level-key",
        "page-size",
        "job-id",
        "no-project",
        "no-jobs-nor-discovery",
        "ttl-type",
        "auth-in-config",
        "object-type",
        "bare-job-id",
        "job-type",
        "unknown-filter-key",
        "credential-type",
        "bool",
        "port",
    ],
)
def test_bad_values_are_refused_by_the_schema(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        chart.render(values, name="drs", namespace="monitoring")


def test_good_values_pass_the_schema(chart: helm.Chart) -> None:
    chart.validate_schema(ALL_VALUES)
    chart.validate_schema({"config": {"project_id": "abc", "discovery": {"job_types": ["migration", "sync"]}}})
    # Helm merges user values into the defaults; a null unsets a key, as the exporter reads it.
    chart.validate_schema({"config": {"project_id": "abc", "jobs": None, "discovery": {"job_types": ["sync"]}}})
    chart.validate_schema({"config": {"project_id": "abc", "jobs": ["a"], "endpoint": " HTTPS://drs.example.com "}})


def test_a_bad_config_fails_lint_and_template_naming_the_key() -> None:
    """helm lint and helm template refuse what the exporter would refuse, before any pod starts."""
    bad = {"config": {**MINIMAL["config"], "page_size": 5000}}
    result = helm.lint(str(CHART), bad)
    assert any("/config/page_size" in e for e in result["errors"]), result["errors"]
    with helm.Chart.load(str(CHART)) as loaded, pytest.raises(helm.HelmError, match="project_id"):
        loaded.render({}, name="drs", namespace="monitoring")


def test_chart_config_schema_is_generated_from_the_models() -> None:
    """values.schema.json's `config` is the exporter's schema (without auth and projects)."""
    import json

    from exporter import schema

    values = json.loads((CHART / "values.schema.json").read_text())
    config, definitions = schema.chart_config_schema()
    assert values["properties"]["config"] == config
    assert {k: v for k, v in values["definitions"].items() if k.startswith("config")} == definitions
