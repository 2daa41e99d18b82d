"""Issue 22: SIGHUP and POST /-/reload reload the configuration, the web configuration and secrets.

The simulator and the exporter run as real processes on loopback; the files are rewritten
between reloads.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import trustme
import yaml

from exporter import app, config
from exporter.base.deadline import Deadline
from exporter.config import DiscoveryConfig
from exporter.drs.errors import DRSAPIError
from exporter.sources.jobs import JobDirectory

from .procs import Exporter, Simulator, command, sim_config, terminate, value, wait_for
from .test_discovery_background import DISCOVERY, listed, project, simulator
from .test_security import server_cert, web_config

OK = "huaweicloud_drs_config_last_reload_successful"
OK_AT = "huaweicloud_drs_config_last_reload_success_timestamp_seconds"
LAST_SUCCESS = "huaweicloud_drs_last_success_timestamp_seconds"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator("--jobs", "3", "--objects", "40")
    yield simulator
    simulator.stop()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    running: list[Exporter] = []

    def run(config: dict[str, Any], *args: str) -> Exporter:
        exp = Exporter(config, tmp_path, *args)
        running.append(exp)
        return exp

    yield run
    for exp in running:
        exp.stop()


def rewrite(exp: Exporter, config: dict[str, Any] | str) -> None:
    exp.config_path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))


def up(exp: Exporter, job: str, **kwargs: Any) -> float | None:
    return value(exp.metrics(**kwargs), "huaweicloud_drs_up", job_id=job)


def reload(exp: Exporter, **kwargs: Any) -> requests.Response:
    return requests.post(f"{exp.url}/-/reload", timeout=15, **kwargs)


def test_sighup_applies_an_added_job_and_keeps_the_unchanged_jobs_snapshots(sim: Simulator, start: Any) -> None:
    first, second = sim.info["jobs"][:2]
    exp = start(sim_config(sim, [first], cache_ttl=600))
    before = exp.metrics()
    assert value(before, "huaweicloud_drs_up", job_id=first) == 1 and value(before, OK) == 1
    started_at = value(before, OK_AT)
    rewrite(exp, sim_config(sim, [first, second], cache_ttl=600))
    exp.proc.send_signal(signal.SIGHUP)
    text = wait_for(lambda: (lambda t: t if value(t, "huaweicloud_drs_up", job_id=second) else None)(exp.metrics()))
    assert exp.proc.poll() is None, "SIGHUP reloads, it does not stop the exporter"
    assert value(text, OK) == 1 and (value(text, OK_AT) or 0) > (started_at or 0)
    # Kept, not refreshed again: the same success time (the TTL is 10 minutes).
    assert value(text, LAST_SUCCESS, job_id=first) == value(before, LAST_SUCCESS, job_id=first)
    assert "configuration reloaded: 1 projects, 2 jobs" in exp.log()


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ("cache_ttl: -5\n", "cache_ttl"),
        ("jobs: [unclosed\n", "exporter.yml"),
    ],
    ids=["invalid-value", "not-yaml"],
)
def test_sighup_with_a_bad_file_keeps_the_running_configuration(
    sim: Simulator, start: Any, bad: str, named: str
) -> None:
    first, second = sim.info["jobs"][:2]
    exp = start(sim_config(sim, [first]))
    assert up(exp, first) == 1
    rewrite(exp, yaml.safe_dump(sim_config(sim, [first, second])) + bad)
    exp.proc.send_signal(signal.SIGHUP)
    text = wait_for(lambda: (lambda t: t if value(t, OK) == 0 else None)(exp.metrics()))
    assert exp.proc.poll() is None
    assert value(text, "huaweicloud_drs_up", job_id=first) == 1, "the running configuration goes on"
    assert value(text, "huaweicloud_drs_up", job_id=second) is None, "nothing of the bad file is applied"
    failed = [line for line in exp.log().splitlines() if "reloading the configuration failed" in line]
    assert len(failed) == 1 and named in failed[0] and str(exp.config_path) in failed[0], exp.log()
    assert sim.info["secret_key"] not in exp.log()
    # Fixed: the next reload works and says so.
    rewrite(exp, sim_config(sim, [first, second]))
    exp.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: (lambda t: value(t, OK) == 1 and value(t, "huaweicloud_drs_up", job_id=second))(exp.metrics()))


def test_reload_endpoint_when_the_lifecycle_api_is_enabled(sim: Simulator, start: Any) -> None:
    first, second = sim.info["jobs"][:2]
    exp = start(sim_config(sim, [first]), "--web.enable-lifecycle")
    assert up(exp, first) == 1
    rewrite(exp, sim_config(sim, [first, second]))
    answer = reload(exp)
    assert answer.status_code == 200, answer.text
    assert up(exp, second) == 1, "applied when the answer comes"
    rewrite(exp, sim_config(sim, [first], page_size=5000))
    answer = reload(exp)
    assert answer.status_code == 500 and "page_size" in answer.text and str(exp.config_path) in answer.text
    text = exp.metrics()
    assert value(text, OK) == 0 and value(text, "huaweicloud_drs_up", job_id=second) == 1
    assert requests.get(f"{exp.url}/-/reload", timeout=5).status_code == 405


def test_reload_endpoint_is_refused_without_the_flag(sim: Simulator, start: Any) -> None:
    first, second = sim.info["jobs"][:2]
    exp = start(sim_config(sim, [first]))
    rewrite(exp, sim_config(sim, [first, second]))
    answer = reload(exp)
    assert answer.status_code == 403 and "Lifecycle API is not enabled" in answer.text
    assert up(exp, second) is None and up(exp, first) == 1


def hashed(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def test_reload_replaces_the_web_users(sim: Simulator, start: Any, tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"alice": hashed("alice-pass")}}))
    exp = start(sim_config(sim, sim.info["jobs"][:1]), "--web.config.file", str(web), "--web.enable-lifecycle")
    alice, bob = ("alice", "alice-pass"), ("bob", "bob-pass")
    assert exp.get(auth=alice).status_code == 200 and exp.get(auth=bob).status_code == 401
    assert reload(exp).status_code == 401, "the lifecycle API takes the same credentials"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"bob": hashed("bob-pass")}}))
    answer = reload(exp, auth=alice)
    assert answer.status_code == 200, answer.text
    assert exp.get(auth=bob).status_code == 200, "a user added by the reload logs in"
    assert exp.get(auth=alice).status_code == 401, "a user removed by the reload does not"
    web.write_text("basic_auth_users: {bob: not-a-bcrypt-hash}\n")
    answer = reload(exp, auth=bob)
    assert answer.status_code == 500 and "basic_auth_users" in answer.text and str(web) in answer.text
    assert exp.get(auth=bob).status_code == 200, "a bad web configuration changes nothing"
    assert value(exp.metrics(auth=bob), OK) == 0


def test_sighup_rotates_the_tls_certificate(sim: Simulator, start: Any, tmp_path: Path) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    for name, ca in (("old", old_ca), ("new", new_ca)):
        (tmp_path / name).mkdir()
        server_cert(ca, tmp_path / name)
    live = tmp_path / "live"
    live.mkdir()

    def install(name: str) -> None:
        for file in ("server.crt", "server.key"):
            shutil.copyfile(tmp_path / name / file, live / file)

    install("old")
    tls = {"cert_file": str(live / "server.crt"), "key_file": str(live / "server.key")}
    web = web_config(tmp_path, {"tls_server_config": tls})
    exp = start(sim_config(sim, sim.info["jobs"][:1]), "--web.config.file", web)
    url = exp.url.replace("http://", "https://") + "/-/healthy"

    def trusted(name: str) -> bool:
        try:
            return requests.get(url, verify=str(tmp_path / name / "ca.crt"), timeout=10).status_code == 200
        except requests.exceptions.SSLError:
            return False

    assert trusted("old") and not trusted("new")
    install("new")
    exp.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: trusted("new"))
    assert not trusted("old"), "new connections get the new certificate"


def test_a_reload_during_the_first_discovery_listing_does_not_postpone_discovery(tmp_path: Path) -> None:
    sim = simulator(tmp_path, "--latency-ms", "3000")  # the first listing takes 3 s
    exp = Exporter(project(sim.url, discovery=DISCOVERY), tmp_path, "--web.enable-lifecycle")
    try:
        exp.get(headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})  # starts the first listing
        assert reload(exp).status_code == 200  # while it runs
        sim.admin("faults", {"latency_ms": 0})
        # refresh_interval is 300 s: the jobs should still appear within seconds
        wait_for(lambda: listed(exp.metrics()) == {"prod-a", "prod-b"}, timeout=30, interval=1)
    finally:
        exp.stop()
        sim.stop()


class GatedList:
    """A DRS client stand-in whose job list answers (or fails) when the test opens the gate."""

    project_id = "0" * 32

    def __init__(self, *names: str) -> None:
        self.gate = threading.Event()
        self.names = names
        self.fail = False
        self.calls = 0

    def call(self, method: str, path: str, *, deadline: Deadline, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.gate.wait(deadline.remaining())
        if self.fail:
            raise DRSAPIError("connection_error", "refused", operation="list_jobs")
        return {"jobs": [{"id": n, "name": n} for n in self.names], "total_count": len(self.names)}


def directory(client: GatedList) -> JobDirectory:
    config = DiscoveryConfig(job_types=("migration",), refresh_interval=300)
    return JobDirectory(client, config, refresh_timeout=10)  # type: ignore[arg-type]  # a stand-in client


def test_a_reload_during_a_periodic_listing_takes_its_result_over() -> None:
    client = GatedList("job-a")
    client.gate.set()
    old, new = directory(client), directory(client)
    try:
        old.refresh_if_due(Deadline.after(5))
        assert [j.job_id for j in old.jobs] == ["job-a"] and client.calls == 1
        client.gate.clear()
        client.names = ("job-a", "job-b")
        old.listed_at = (old.listed_at or 0.0) - 300  # the interval has passed
        running = old.start_if_due()
        assert running is not None, "the periodic listing runs (and hangs) ..."
        wait_for(lambda: client.calls == 2, timeout=5)
        new.adopt(old)  # ... when the reload comes
        assert new.start_if_due() is None, "taken over, not started again (nor waited for: jobs are known)"
        client.gate.set()
        assert running.wait(5)
        assert [j.job_id for j in new.jobs] == ["job-a", "job-b"], "its result is not lost"
        assert new.start_if_due() is None and client.calls == 2, "the next listing is an interval later"
    finally:
        client.gate.set()
        old.close()
        new.close()


def test_a_first_listing_taken_over_by_a_reload_is_retried_when_it_fails() -> None:
    client = GatedList("job-a")
    client.fail = True
    old, new = directory(client), directory(client)
    try:
        running = old.start_if_due()
        assert running is not None
        new.adopt(old)
        assert new.start_if_due() is running, "scrapes of the new core wait for the listing in flight"
        client.gate.set()
        assert running.wait(5)
        assert (new.up, new.failures, new.error_code) == (False, 1, "connection_error")
        client.fail = False
        retried = new.start_if_due()  # failed under the old core: tried again at once
        assert retried is not None and retried.wait(5)
        assert ([j.job_id for j in new.jobs], new.up, client.calls) == (["job-a"], True, 2)
    finally:
        client.gate.set()
        old.close()
        new.close()


def test_a_reload_that_fixes_the_credentials_is_used_at_once(sim: Simulator, start: Any) -> None:
    job = sim.info["jobs"][0]
    bad = sim_config(sim, [job])
    bad["auth"] = {**bad["auth"], "secret_key": "wrong-secret-key-000000000000"}
    exp = start(bad)
    assert up(exp, job) == 0, "rejected credentials"
    rewrite(exp, sim_config(sim, [job]))  # the operator fixes the SK
    exp.proc.send_signal(signal.SIGHUP)
    # cache_ttl is 30 s by default: the fixed credentials are tried well before that
    wait_for(lambda: up(exp, job) == 1, timeout=10, interval=0.5)


def fifo_writer(path: Path) -> int | None:
    """A descriptor writing into FIFO ``path`` once a reader has it open; None before."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: no reader yet
        return None


def test_sighup_during_start_up_does_not_kill_the_exporter(sim: Simulator, tmp_path: Path) -> None:
    # The exporter's configuration file is a FIFO at first: its start-up stops there, before the
    # configuration is read and the port bound, until the test writes the configuration.
    fifo, cfg = tmp_path / "config.fifo", tmp_path / "exporter.yml"
    os.mkfifo(fifo)
    os.link(fifo, cfg)
    body = yaml.safe_dump(sim_config(sim, sim.info["jobs"][:1])).encode()
    log = tmp_path / "exporter.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [command("drs-exporter"), "--config.file", str(cfg), "--web.listen-address", "127.0.0.1:0"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        writer = wait_for(lambda: fifo_writer(fifo), timeout=20, interval=0.01)  # reading its configuration
        proc.send_signal(signal.SIGHUP)  # while it starts
        plain = tmp_path / "plain.yml"
        plain.write_bytes(body)
        os.replace(plain, cfg)  # the reload reads a plain file
        try:
            os.write(writer, body)
        except BrokenPipeError:  # the SIGHUP ended it
            wait_for(lambda: proc.poll() is not None)
        os.close(writer)
        wait_for(lambda: "configuration reloaded" in log.read_text() or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, f"exporter died with {proc.returncode}: {log.read_text()}"
        text = log.read_text()
        assert "listening on" in text and "received SIGHUP during start-up, reloading the configuration now" in text
    finally:
        terminate(proc)


def test_a_reload_during_a_refresh_takes_it_over_rather_than_calling_again(tmp_path: Path) -> None:
    sim = simulator(tmp_path, "--latency-ms", "1500")
    cfg = config.parse(project(sim.url, jobs=["prod-a"]))
    old = app.Exporter(cfg)
    new = None
    try:
        old.cache.start(old.keys)  # a scrape's refresh, running (the API answers in 1.5 s) ...
        wait_for(lambda: old.cache.in_flight() == 1, timeout=5)
        new = app.Exporter(cfg, previous=old)  # ... when the reload comes
        [snapshot] = new.snapshots(Deadline.after(10))
        assert snapshot.up
        assert sim.stats()["requests"].get("show_progress_data") == 1, "one API call, not one per core"
        assert new.snapshots(Deadline.after(10)) == [snapshot], "kept as the new core's own"
    finally:
        old.close()
        if new is not None:
            new.close()
        sim.stop()


def test_a_job_removed_by_a_reload_while_its_call_fails_gets_no_error_series_back(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    jobs = [{"id": "kept", "objects": {"table": 5}}, {"id": "gone", "objects": {"table": 5}, "fault": "timeout"}]
    scenario.write_text(yaml.safe_dump({"jobs": jobs}))
    sim = Simulator("--scenario", str(scenario))
    old = app.Exporter(config.parse(sim_config(sim, ["kept", "gone"], request_timeout=1, retries=0)))
    new = None
    try:
        old.cache.start(old.keys)  # gone's call hangs until its 1 s timeout ...
        wait_for(lambda: sim.stats()["requests"].get("show_progress_data") == 2, timeout=5)
        new = app.Exporter(config.parse(sim_config(sim, ["kept"])), previous=old)  # ... when a reload drops it
        wait_for(lambda: old.cache.in_flight() == 0, timeout=10)  # it timed out in the old core
        assert old.cache.latest([("gone", "table")])[0] is not None, "its call failed after the reload"
        assert [k for k in new.stats.errors if k[1] == "gone"] == [], "no error series for a job gone"
    finally:
        old.close()
        if new is not None:
            new.close()
        sim.stop()


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_a_burst_of_reloads_does_not_pile_up_replaced_cores(sim: Simulator, start: Any) -> None:
    exp = start(sim_config(sim, sim.info["jobs"], cache_ttl=1), "--web.enable-lifecycle")
    exp.metrics()
    before = threads(exp.proc.pid)
    peak = before
    for _ in range(30):
        assert reload(exp).status_code == 200
        exp.metrics()  # each core does some work: its threads start
        peak = max(peak, threads(exp.proc.pid))
    # Each replaced core that lived on would keep its threads for 15 s (30 cores: hundreds).
    assert peak <= 3 * before, (before, peak)
    wait_for(lambda: threads(exp.proc.pid) <= before + 5, timeout=20, interval=0.5)  # idle ones are closed
