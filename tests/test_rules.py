"""Rule files: generated from code, accepted by promtool, unit-tested with promtool test rules."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "alerts"
RUNBOOK = re.compile(r"^## (\S+)$", flags=re.MULTILINE)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", sorted(rules.files()))
def test_committed_rules_are_what_the_code_generates(name: str) -> None:
    assert (ALERTS / name).read_text() == rules.files()[name], "alerts/*.yaml are out of date: run `make rules`"


def test_committed_inhibit_rules_are_what_the_code_generates() -> None:
    assert (ALERTS / rules.INHIBIT_FILE).read_text() == rules.inhibit_file(), "run `make rules`"


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", *(str(ALERTS / n) for n in sorted(rules.files())))
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = sum(len(g["rules"]) for g in rules.recording_rules()["groups"])
    assert f"SUCCESS: {recorded} rules found" in result.stdout
    assert f"SUCCESS: {len(rules.alert_names())} rules found" in result.stdout


UNIT_TESTS = sorted((ALERTS / "tests").glob("*_test.yaml"))


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _series(metric: str, job_id: str, values: str, **extra: str) -> dict[str, str]:
    labels = ", ".join(f'{k}="{v}"' for k, v in {"job": "drs", "instance": "a", "job_id": job_id, **extra}.items())
    return {"series": f"{metric}{{{labels}}}", "values": values}


def _obj(job_id: str, n: int, values: str) -> dict[str, str]:
    return _series(
        "huaweicloud_drs_object_progress_ratio",
        job_id,
        values,
        object_type="table",
        src_db="db",
        src_tb=f"t{n:03d}",
        dst_db="db",
        dst_tb=f"t{n:03d}",
    )


def _keys(job_id: str, objects: int, completed: int, mean: float) -> list[dict[str, str]]:
    return [
        _series("huaweicloud_drs_objects", job_id, f"{objects}x50", object_type="table"),
        _series("huaweicloud_drs_objects_listed", job_id, f"{objects}x50", object_type="table"),
        _series("huaweicloud_drs_objects_progress_ratio_mean", job_id, f"{mean}x50", object_type="table"),
        _series("huaweicloud_drs_objects_completed", job_id, f"{completed}x50", object_type="table"),
        _series("huaweicloud_drs_skipped_rows", job_id, "0x50", object_type="table"),
    ]


def test_a_storm_of_objects_gives_one_alert_per_job(tmp_path: Path) -> None:
    """500 tables waiting at 0 % and 3 stuck at 50 % in one job, 500 stuck objects in a paused job:
    one ObjectsStalled (3 objects) and one JobStalled for the first job, nothing for the paused one."""
    series = [*_keys("storm", 503, 0, 1.5 / 503), *_keys("paused", 500, 0, 0.5)]
    series += [_obj("storm", n, "0x50") for n in range(500)]
    series += [_obj("storm", n, "0.5x50") for n in range(500, 503)]
    series += [_obj("paused", n, "0.5x50") for n in range(500)]
    series.append(_series("huaweicloud_drs_job_info", "paused", "1x50", name="p", status="PAUSING"))
    url = f"{rules.RUNBOOK_URL}#huaweiclouddrs"
    test: dict[str, Any] = {
        "rule_files": [str(ALERTS / n) for n in sorted(rules.files())],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "50m",
                        "alertname": "HuaweiCloudDRSObjectsStalled",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "job": "drs", "job_id": "storm"},
                                "exp_annotations": {
                                    "summary": "Objects of a DRS job have stopped making progress.",
                                    "description": "3 started, unfinished objects of DRS job storm have not moved "
                                    "for 30m. Least advanced: table db.t500 at 50%; table db.t501 at 50%; "
                                    "table db.t502 at 50%; ",
                                    "runbook_url": url + "objectsstalled",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "50m",
                        "alertname": "HuaweiCloudDRSJobStalled",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "job": "drs", "job_id": "storm"},
                                "exp_annotations": {
                                    "summary": "A whole DRS job has stopped making progress.",
                                    "description": "DRS job storm has 503 unfinished objects and neither its "
                                    "completed objects, its objects' mean progress, DRS's job progress nor its "
                                    "remaining time has moved for 30m (in the same DRS phase).",
                                    "runbook_url": url + "jobstalled",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "storm_test.yaml"
    path.write_text(yaml.safe_dump(test))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_and_has_a_runbook_section() -> None:
    tests = [test for path in UNIT_TESTS for test in yaml.safe_load(path.read_text())["tests"]]
    fired = {
        (case["alertname"], alert["exp_labels"]["severity"])
        for test in tests
        for case in test.get("alert_rule_test", [])
        for alert in case["exp_alerts"]  # a firing case; the other jobs of the same test are its near misses
    }
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    anchors = {h.lower() for h in RUNBOOK.findall(runbooks)}
    alerts = [r for g in rules.alerting_rules()["groups"] for r in g["rules"]]
    # One name per alert, except a warning and a critical of the same name (warn early, page late).
    assert len(alerts) == len({(a["alert"], a["labels"]["severity"]) for a in alerts}) >= 20
    for alert in alerts:
        name = alert["alert"]
        assert (name, alert["labels"]["severity"]) in fired, f"{name} has no promtool test where it fires"
        assert name.lower() in anchors, f"{name} has no runbook section"
        section = runbooks.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert "```promql" in section, f"{name}'s runbook has no confirming query"
        assert "/d/huaweicloud-drs-" in section, f"{name}'s runbook has no dashboard link"
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert alert["annotations"]["summary"] and "{{" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith(f"docs/runbooks.md#{name.lower()}")


def test_runbook_joins_are_tested_with_duplicated_series() -> None:
    """A runbook query that joins series (``on (…)``) is in a promtool test verbatim: incidents_test.yaml's
    dups scenario gives every series twice (two replicas, two releases), where an undeduplicated join fails
    with many-to-many matching (review of issue 21)."""
    queries = re.findall(r"```promql\n(.*?)\n```", (ROOT / "docs" / "runbooks.md").read_text(), flags=re.DOTALL)
    joins = [q for q in queries if re.search(r"\bon\s*\(", q)]
    tested = {
        case["expr"].strip()
        for path in UNIT_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("promql_expr_test", [])
    }
    assert joins
    for query in joins:
        assert query.strip() in tested, f"runbook query not in a promtool test:\n{query}"
        # each side de-duplicated by the target labels first
        assert "on (cluster, namespace, job, service" in query and query.count("max by (cluster, namespace") >= 2


def test_make_rules_runs_every_promtool_test() -> None:
    """docs/alerting.md: `make rules` runs the promtool tests in alerts/tests/ (all of them, review of issue 21)."""
    dry = subprocess.run(["make", "-n", "rules"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    command = next(line for line in dry.stdout.splitlines() if line.startswith("promtool test rules"))
    assert set(command.split()[3:]) == {str(p.relative_to(ROOT)) for p in UNIT_TESTS}


def test_alert_table_names_the_statuses_the_rules_match() -> None:
    """docs/alerting.md's table says which DRS statuses JobPaused fires on: all the rule matches."""
    row = next(r for r in (ROOT / "docs" / "alerting.md").read_text().splitlines() if "`HuaweiCloudDRSJobPaused`" in r)
    statuses = ("PAUSING", "PAUSED")
    assert all(re.fullmatch(rules.PAUSED, s) for s in statuses)
    assert all(f"`{s}`" in row for s in statuses), row


def test_aggregations_never_keep_instance_or_pod() -> None:
    """A restarted exporter (new instance, new pod) must continue the same alert and recorded series."""
    for group in [*rules.recording_groups(), *rules.alert_groups()]:
        for rule in group["rules"]:
            if rule.get("alert") == "HuaweiCloudDRSExporterDown":
                continue  # about one scrape target: its instance is the point
            if rule.get("record") == "job_id_shard:huaweicloud_drs_job_info:latest":
                # Which shard exported a job is a per-target join (issue 26); the result keeps no instance.
                assert rule["expr"].startswith(f"max by ({rules.labels(rules.DEFAULT, 'job_id', 'shard')}) (")
                continue
            for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
                kept = {x.strip() for x in clause.split(",")}
                assert not kept & {"instance", "pod"}, f"{rule.get('alert') or rule.get('record')}: {clause}"
                if "job_id" in kept or "operation" in kept or "project_id" in kept:
                    # service: two releases in one namespace share the job label (review 16 item 5)
                    assert {"cluster", "namespace", "job", "service"} <= kept, (
                        f"{rule.get('alert') or rule.get('record')}"
                    )


def test_recording_rule_names_follow_the_convention() -> None:
    """level:metric:operations, the metric an exporter metric's name."""
    exported = {
        name
        for module in sorted((ROOT / "exporter" / "metrics").glob("*.py"))
        for name in re.findall(r'"(huaweicloud_drs_\w+)"', module.read_text())
    }
    for rule in rules.recording_rules()["groups"][0]["rules"]:
        level, metric, operations = rule["record"].split(":")
        assert set(level.split("_")) - {"id", "src", "db"} <= {"job", "status", "object", "type", "shard"}, rule[
            "record"
        ]
        assert metric in exported or "_per_" in metric, rule["record"]
        assert re.fullmatch(r"(sum|max|avg|ratio|latest|deriv30m)", operations), rule["record"]


def test_inhibit_rules_name_real_alerts_and_pass_amtool(tmp_path: Path) -> None:
    names = rules.alert_names()
    for rule in rules.inhibit_rules():
        # Every rule is scoped: the same cluster and exporter (a cluster's alert never silences another's).
        assert rule["equal"][:4] == ["cluster", "namespace", "job", "service"], rule
        for matcher in (*rule["source_matchers"], *rule["target_matchers"]):
            if matcher.startswith(("severity=", "cluster=")):
                continue
            match = re.fullmatch(r'alertname(=~|!~|=)"(.*)"', matcher)
            assert match, matcher
            if match.group(1) != "!~":
                assert [n for n in names if re.fullmatch(match.group(2), n)], f"{matcher} matches no alert"
    # One release's outage must not silence another release's alerts in the same namespace.
    exporter_down = rules.inhibit_rules()[0]
    assert {"cluster", "namespace", "job", "service"} <= set(exporter_down["equal"])

    # Which alert silences which (review 16 item 12): credentials silence discovery and throttling;
    # ExporterAbsent (absent() knows only the job label) silences the alerts of its scrape job.
    def matches(matcher: str, name: str) -> bool:
        match = re.fullmatch(r'alertname(=~|!~|=)"(.*)"', matcher)
        if match is None:
            return True  # a severity or cluster matcher: tests/test_inhibition.py checks those with Alertmanager
        return bool(re.fullmatch(match.group(2), name)) != (match.group(1) == "!~")

    def silenced_by(source: str) -> dict[str, list[str]]:
        """Alert name -> the labels that must be equal, for every alert ``source`` inhibits."""
        return {
            name: rule["equal"]
            for rule in rules.inhibit_rules()
            if all(matches(m, source) for m in rule["source_matchers"])
            for name in names
            if all(matches(m, name) for m in rule["target_matchers"])
        }

    # Credentials and a project's outage silence only alerts of the same project, which carry project_id
    # (issue 21): never a stall, nor the exporter-wide API alerts.
    for source in ("HuaweiCloudDRSCredentialsFailing", "HuaweiCloudDRSProjectRefreshFailing"):
        silenced = silenced_by(source)
        assert {"HuaweiCloudDRSRefreshFailing", "HuaweiCloudDRSJobProgressUnavailable"} <= set(silenced)
        assert not {"HuaweiCloudDRSJobStalled", "HuaweiCloudDRSAPIThrottled", "HuaweiCloudDRSAPIErrorRatioHigh"} & set(
            silenced
        )
        assert all("project_id" in equal for equal in silenced.values())
    assert "HuaweiCloudDRSDiscoveryFailing" in silenced_by("HuaweiCloudDRSCredentialsFailing")
    assert "cluster" in silenced_by("HuaweiCloudDRSExporterAbsent")["HuaweiCloudDRSJobStalled"]
    assert not silenced_by("HuaweiCloudDRSExporterReplicaDown")
    # A cause about an installation's own view mutes only with a cluster: a label missing on both sides is
    # equal to Alertmanager, so without one two compose installations would mute each other (review of 21).
    own_view = re.compile(r"HuaweiCloudDRS(Exporter\w+|CredentialsFailing|ProjectRefreshFailing|RefreshFailing)")
    for rule in rules.inhibit_rules():
        source = next(m for m in rule["source_matchers"] if m.startswith("alertname"))
        if any(own_view.fullmatch(n) and matches(source, n) for n in names):
            assert 'cluster=~".+"' in rule["source_matchers"], rule
    config = {"route": {"receiver": "null"}, "receivers": [{"name": "null"}], **yaml.safe_load(rules.inhibit_file())}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fast_settings_keep_their_shape() -> None:
    """Another demo builds rules from fast(): it keeps giving every file, with windows in seconds."""
    fast = rules.fast()
    assert set(rules.files(fast)) == set(rules.files())
    assert fast.stall_window == "20s" and rules.fast(7).stall_window == "7s"
    assert rules.alert_names(fast) == rules.alert_names()
