"""Issue 22: job listings run off the scrape's thread, and a failed listing is retried within seconds.

The simulator and the exporter run as real processes on loopback.
"""

from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter import app, config
from exporter.base.deadline import Deadline

from .procs import Exporter, Simulator, samples, value, wait_for

JOBS: list[dict[str, Any]] = [
    {"id": "prod-a", "name": "prod-a", "objects": {"table": 20}, "job_type": "migration"},
    {"id": "prod-b", "name": "prod-b", "objects": {"table": 10}, "job_type": "migration"},
]
DISCOVERY = {"job_types": ["migration"], "refresh_interval": 300}
PROJECT = "f" * 32
AK, SK = "SIMULATORACCESSKEY01", "simulator-secret-key-0123456789"


def simulator(tmp_path: Path, *args: str) -> Simulator:
    path = tmp_path / f"scenario-{len(list(tmp_path.glob('scenario-*')))}.yaml"
    path.write_text(yaml.safe_dump({"jobs": JOBS}))
    return Simulator("--scenario", str(path), "--project-id", PROJECT, "--access-key", AK, "--secret-key", SK, *args)


def project(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint": endpoint, "project_id": PROJECT, "auth": {"access_key": AK, "secret_key": SK}, **extra}


def listed(text: str) -> set[str]:
    return {dict(k)["job_id"] for k in samples(text, "huaweicloud_drs_up")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_jobs_appear_within_seconds_when_the_api_comes_up_after_start_up(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: the API is down when the exporter starts
    exp = Exporter({**project(f"http://127.0.0.1:{port}", discovery=DISCOVERY), "retries": 0}, tmp_path)
    sim = None
    try:
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_discovery_up") == 0 and not listed(text)
        sim = simulator(tmp_path, "--port", str(port))
        # refresh_interval is 300 s: the failed listing must be retried long before that.
        text = wait_for(lambda: (lambda t: t if listed(t) else None)(exp.metrics()), timeout=30, interval=1)
        assert listed(text) == {"prod-a", "prod-b"}
        assert value(text, "huaweicloud_drs_discovery_up") == 1
        assert "trying again in" in exp.log()
    finally:
        exp.stop()
        if sim is not None:
            sim.stop()


RESOLVER = """
    # A resolver that hangs for one name, in the exporter's process (as a stuck DNS server would).
    import socket, time
    _real = socket.getaddrinfo
    def _hanging(host, *args, **kwargs):
        if host == "drs-hang.test":
            time.sleep(20)
            host = "127.0.0.1"
        return _real(host, *args, **kwargs)
    socket.getaddrinfo = _hanging
"""


def test_a_hanging_resolver_does_not_hold_the_first_scrape(tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(RESOLVER))
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    port = sim.url.rsplit(":", 1)[1]
    config = {
        "projects": [
            project(f"http://drs-hang.test:{port}", discovery=DISCOVERY),
            project(sim.url, jobs=["prod-a"]),
        ]
    }
    workdir = tmp_path / "exp"
    workdir.mkdir()
    exp = Exporter(config, workdir, env={**os.environ, "PYTHONPATH": path})
    try:
        # A 3 s budget: answered by then, not when the resolver gives up 20 s later.
        answer = requests.get(f"{exp.url}/metrics", headers={"X-Prometheus-Scrape-Timeout-Seconds": "3"}, timeout=8)
        assert answer.status_code == 200
        assert value(answer.text, "huaweicloud_drs_up", job_id="prod-a") == 1, "the other project's job is served"
    finally:
        exp.stop()
        sim.stop()


def test_a_job_no_longer_listed_leaves_the_owners(tmp_path: Path) -> None:
    sim = simulator(tmp_path)
    exporter = app.Exporter(
        config.parse(project(sim.url, discovery={**DISCOVERY, "name_regex": "^prod-", "refresh_interval": 1}))
    )
    try:

        def collected() -> set[str]:
            return {s.key[0] for s in exporter.snapshots(Deadline.after(5))}

        wait_for(lambda: collected() == {"prod-a", "prod-b"}, timeout=10, interval=0.2)
        sim.admin("jobs/prod-b", {"name": "old-b"})  # no longer matches name_regex
        wait_for(lambda: collected() == {"prod-a"}, timeout=15, interval=0.5)
        assert set(exporter._owners) == {"prod-a"}
    finally:
        exporter.close()
        sim.stop()
