"""The compose stack's files: structure, Prometheus and Alertmanager configs as their containers see them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from alerts import rules, timing
from dashboards import generate
from exporter import config as exporter_config
from exporter.config import credentials
from exporter.simulator.server import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def mounts(service: str) -> list[tuple[Path, str]]:
    """(host path, container path) of every bind mount of ``service``."""
    out = []
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out.append(((COMPOSE_DIR / source).resolve(), target))
    return out


def container_fs(service: str, tmp: Path) -> Path:
    """A scratch directory laid out like ``service``'s filesystem, from its bind mounts."""
    root = tmp / service
    for host, target in mounts(service):
        dest = root / target.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if host.is_dir():
            shutil.copytree(host, dest)
        else:
            shutil.copy2(host, dest)
    return root


def test_services_and_images() -> None:
    assert set(SERVICES) == {"simulator", "exporter", "prometheus", "alertmanager", "grafana"}
    for name, service in SERVICES.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: publish on loopback only"
    for name in ("simulator", "exporter"):
        assert SERVICES[name]["build"]["context"] == "../.."
        assert (COMPOSE_DIR / "../../Dockerfile").exists()
        assert SERVICES[name]["read_only"] is True


def test_every_bind_mount_exists() -> None:
    for name in SERVICES:
        for host, _ in mounts(name):
            assert host.exists(), f"{name}: {host} does not exist"


def test_simulator_command_parses() -> None:
    service = SERVICES["simulator"]
    assert service["entrypoint"] == ["drs-simulator"]
    args = build_parser().parse_args(service["command"])
    assert args.host == "0.0.0.0" and args.port == 8080  # noqa: S104 - inside the compose network


def test_exporter_config_points_at_the_simulator() -> None:
    host, target = mounts("exporter")[0]
    assert target == "/etc/drs-exporter/drs-exporter.yml"
    assert SERVICES["exporter"]["command"] == [f"--config.file={target}"]
    parsed = exporter_config.load(host)
    url = urlsplit(parsed.endpoint)
    assert url.hostname == "simulator" and url.port == 8080
    defaults = build_parser().parse_args([])
    assert parsed.project_id == "0123456789abcdef0123456789abcdef"
    creds = parsed.credentials
    assert isinstance(creds, credentials.AkSkCredentials)
    assert creds.access_key.get() == defaults.access_key and creds.secret_key.get() == defaults.secret_key
    assert {job.id for job in parsed.jobs} == {"job-0001", "job-0002", "job-0003"}


def test_promtool_check_config_as_the_container_sees_it(tmp_path: Path) -> None:
    root = container_fs("prometheus", tmp_path)
    config = root / "etc/prometheus/prometheus.yml"
    result = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in rules.files():
        assert f"rules/{name}" in result.stdout, result.stdout
    scrape = yaml.safe_load(config.read_text())["scrape_configs"][0]
    assert scrape["job_name"] == "huaweicloud-drs-exporter"
    assert scrape["static_configs"][0]["targets"] == ["exporter:10370"]


def test_amtool_check_config(tmp_path: Path) -> None:
    root = container_fs("alertmanager", tmp_path)
    result = subprocess.run(
        ["amtool", "check-config", str(root / "etc/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(generate.DASHBOARDS))
def test_grafana_provisioning_finds_the_dashboards(tmp_path: Path, name: str) -> None:
    root = container_fs("grafana", tmp_path)
    providers = yaml.safe_load((root / "etc/grafana/provisioning/dashboards/drs.yml").read_text())["providers"]
    path = root / providers[0]["options"]["path"].lstrip("/")
    assert (path / name).read_text() == generate.files()[name]
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (root / home.lstrip("/")).exists()
    datasource = yaml.safe_load((root / "etc/grafana/provisioning/datasources/prometheus.yml").read_text())
    url = urlsplit(datasource["datasources"][0]["url"])
    assert url.hostname == "prometheus" and url.port == 9090
    assert datasource["datasources"][0]["type"] == "prometheus"


def test_timings_fit_together() -> None:
    """refresh_timeout < scrape_timeout < scrape_interval <= cache_ttl (README "Timings")."""
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())["global"]
    exporter = yaml.safe_load((COMPOSE_DIR / "exporter.yml").read_text())
    found = timing.Timing(
        interval=float(prometheus["scrape_interval"].rstrip("s")),
        scrape_timeout=float(prometheus["scrape_timeout"].rstrip("s")),
        cache_ttl=exporter["cache_ttl"],
        refresh_timeout=exporter["refresh_timeout"],
    )
    assert found == timing.DEFAULT and not found.problems()


def test_alertmanager_has_the_shipped_inhibit_rules() -> None:
    config = yaml.safe_load((COMPOSE_DIR / "alertmanager" / "alertmanager.yml").read_text())
    assert config["inhibit_rules"] == rules.inhibit_rules()


def test_prometheus_labels_its_alerts_with_a_cluster() -> None:
    """The inhibit rules mute by an installation's own causes only when its alerts carry a `cluster`
    (review of issue 21): the compose Prometheus sets one, and the rules that need it ask for it."""
    prometheus = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())["global"]
    assert prometheus["external_labels"]["cluster"]
    assert any('cluster=~".+"' in rule["source_matchers"] for rule in rules.inhibit_rules())


def test_timing_problems_are_named() -> None:
    assert timing.Timing(interval=60, scrape_timeout=30, cache_ttl=30, refresh_timeout=60).problems() == [
        "refresh_timeout (60s) must be below the scrape timeout",
        "cache_ttl (30s) must be at least the interval (60s)",
    ]
    assert timing.Timing(interval=60, scrape_timeout=60, cache_ttl=60, refresh_timeout=50).problems() == [
        "the scrape timeout (60s) must be below the interval"
    ]
