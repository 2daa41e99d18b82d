"""`make demo`'s script as a process group: the URLs it prints answer, its alerts fire, and a signal
stops every process it started.

The full demo runs the Debian `prometheus` and `prometheus-alertmanager` binaries (installed by
`make test`) with rule windows of 20 s (`alerts.rules.fast(20)`), so the alerts fire within a minute or two.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .procs import BIN, LineReader, samples, value, wait_for

ROOT = Path(__file__).resolve().parent.parent
# job-0001 carries the demo's comparisons with inconsistent tables (scripts/demo.py).
INCONSISTENT = ("HuaweiCloudDRSTablesInconsistent", "job-0001")
# Its latest row comparison also left tables uncompared (too_large, connection_failed).
NOT_COMPARED = ("HuaweiCloudDRSTablesNotCompared", "job-0001")
# Cut-over readiness (issue 25): job-0002 becomes ready within minutes (an info alert), job-0001 never does.
READY = ("HuaweiCloudDRSJobReadyForCutover", "job-0002")
EXPECTED_ALERTS = {
    ("HuaweiCloudDRSJobStalled", "stalled-job"),
    ("HuaweiCloudDRSRefreshFailing", "failing-job"),
    INCONSISTENT,
    NOT_COMPARED,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def group(pgid: int) -> list[str]:
    """Command lines of the processes still in process group ``pgid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(cmdline)
    return found


class Demo:
    """scripts/demo.py in a process group of its own, as a terminal runs it; ``urls`` are what it printed."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(tmp / "demo"), *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        reader = LineReader(self.proc.stdout)
        self.output: list[str] = []
        self.urls: dict[str, str] = {}
        self.commands: list[str] = []
        try:
            for _ in range(40):
                line = reader.line(120)
                self.output.append(line)
                name, _, rest = line.partition(":")
                if rest.strip().startswith("http"):
                    self.urls[name.strip()] = rest.split()[0]
                elif name.strip() == "or":  # a command line to run instead of a URL to open
                    self.commands.append(rest.strip())
                if not line or line.startswith("Press Ctrl-C"):
                    break
        except Exception:
            self.stop(signal.SIGKILL, whole_group=True)
            raise
        assert "Status page" in self.urls, "".join(self.output)

    def stop(self, sig: int, *, whole_group: bool) -> int:
        """Send ``sig`` (to the group, like Ctrl-C in a terminal, or to the script alone); its exit code."""
        if self.proc.poll() is None:
            if whole_group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def check_nothing_left(self) -> None:
        try:
            wait_for(lambda: not group(self.proc.pid), timeout=20, interval=0.2)
        except TimeoutError:
            left = group(self.proc.pid)
            os.killpg(self.proc.pid, signal.SIGKILL)
            pytest.fail(f"processes left behind: {left}")


# What each printed URL must answer with: every link the demo prints works with the binaries at hand.
CONTENT = {
    "DRS simulator": '"drs-simulator"',
    "Status page": 'data-job-id="stalled-job"',
    "Status JSON": '"schema_version"',
    "Metrics": "huaweicloud_drs_up{",
    "Prometheus": "Prometheus",
    "Prometheus alerts": "HuaweiCloudDRSJobStalled",
    "Alertmanager alerts": "[",
    "Alertmanager": "Alertmanager",
    "Cut-over readiness": '"status":"success"',
}


def check_urls(demo: Demo) -> None:
    """GET every URL the demo printed: 200, with the content the line promises."""
    assert set(demo.urls) <= set(CONTENT), demo.urls
    for name, url in demo.urls.items():
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200, (name, url, answer.status_code)
        assert CONTENT[name] in answer.text, (name, url, answer.text[:500])
        # A web UI link must lead to a web UI, not to Debian's page saying there is none.
        assert "does not include a web application" not in " ".join(answer.text.split()), (name, url)


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:  # whatever a failed test left running
        if group(demo.proc.pid):
            os.killpg(demo.proc.pid, signal.SIGKILL)
        demo.proc.wait(timeout=30)


def test_without_prometheus_the_demo_serves_the_exporter_and_says_how_to_get_the_rest(
    tmp_path: Path, demos: list[Demo]
) -> None:
    env = {**os.environ, "PATH": str(BIN)}  # no prometheus, no prometheus-alertmanager
    port = free_port()
    demo = Demo(tmp_path, "--port", str(port), "--objects", "50", env=env)
    demos.append(demo)
    assert demo.urls["Metrics"] == f"http://127.0.0.1:{port}/metrics"
    assert "Prometheus" not in demo.urls and "Alertmanager" not in demo.urls
    output = "".join(demo.output)
    assert "prometheus-alertmanager" in output and "make test" in output, output
    check_urls(demo)
    # A second demo in the same directory refuses to start, and leaves the first one's files alone.
    config = tmp_path / "demo" / "drs-exporter.yml"
    before = config.read_bytes()
    second = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(tmp_path / "demo"), "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1 and "another demo is running" in second.stderr, second.stderr
    assert "--workdir" in second.stderr and config.read_bytes() == before
    text = requests.get(demo.urls["Metrics"], timeout=30).text
    labels = (("job_id", "job-0001"), ("object_type", "view"))
    assert samples(text, "huaweicloud_drs_up")[labels] == 1.0
    assert samples(text, "huaweicloud_drs_up")[(("job_id", "failing-job"), ("object_type", "table"))] == 0.0
    page = requests.get(demo.urls["Status page"], timeout=30).text
    assert 'data-job-id="stalled-job"' in page and "DRS.M05004" in page
    # Job names from the simulator's job list (discovery of the configured jobs).
    assert "billing-sync" in page and "archive-migration" in page and "orders-migration-1" in page
    # A failed job's reason, as DRS gives it, once its details are read (in the background).
    wait_for(
        lambda: "access denied for the DRS account" in requests.get(demo.urls["Status page"], timeout=30).text,
        timeout=30,
        interval=0.5,
    )
    # Comparisons are read in the background: the first job's inconsistent table shows up within seconds.
    inconsistent = scraped(
        demo, "huaweicloud_drs_comparison_tables", job_id="job-0001", compare_type="lines", status="inconsistent"
    )
    assert inconsistent is not None and inconsistent >= 1.0
    # The DR job's RPO and RTO (on by default), read in the background.
    rpo = wait_for(
        lambda: value(requests.get(demo.urls["Metrics"], timeout=15).text, "huaweicloud_drs_job_rpo_seconds"),
        timeout=30,
        interval=0.5,
    )
    text = requests.get(demo.urls["Metrics"], timeout=30).text
    assert rpo == 1.5 and value(text, "huaweicloud_drs_job_rto_seconds", job_id="demo-dr") == 0.8
    # Abnormal rows (issue 24), read in the background for the job that has them on.
    dirty = scraped(demo, "huaweicloud_drs_dirty_rows", job_id="demo-dirty", phase="incremental")
    assert dirty == 4.0
    assert "Abnormal rows in the last" in requests.get(demo.urls["Status page"], timeout=30).text
    # The job with an active DDL alarm (read in the background), listed on the page without its SQL.
    ddl = wait_for(
        lambda: value(
            requests.get(demo.urls["Metrics"], timeout=15).text, "huaweicloud_drs_ddl_alarms", job_id="demo-ddl"
        ),
        timeout=30,
        interval=0.5,
    )
    assert ddl == 1.0
    page = requests.get(demo.urls["Status page"], timeout=30).text
    assert 'data-job-id="demo-ddl"' in page and "DDL alarms" in page and "secret_marker_ddl" not in page
    # The DR job's scheduled (health) comparisons, read in the background too.
    rows = wait_for(
        lambda: value(
            requests.get(demo.urls["Metrics"], timeout=15).text,
            "huaweicloud_drs_health_compare_info",
            job_id="demo-dr",
            compare_type="lines",
            compare_job_id="demo-health-rows",
            status="SUCCESSFUL",
        ),
        timeout=30,
        interval=0.5,
    )
    assert rows == 1.0
    assert "Scheduled comparisons" in requests.get(demo.urls["Status page"], timeout=30).text
    # SIGTERM to the script alone: it stops what it started.
    assert demo.stop(signal.SIGTERM, whole_group=False) == 0
    demo.check_nothing_left()


def scraped(demo: Demo, name: str, **labels: str) -> float | None:
    """The first non-zero sample of ``name`` with ``labels`` that the demo's exporter shows, polling up to 30 s."""
    found: float | None = wait_for(
        lambda: value(requests.get(demo.urls["Metrics"], timeout=15).text, name, **labels), timeout=30, interval=0.5
    )
    return found


def alerts(url: str) -> set[tuple[str, str]]:
    answer = requests.get(f"{url}/api/v2/alerts", timeout=10)
    answer.raise_for_status()
    return {(a["labels"]["alertname"], a["labels"].get("job_id", "")) for a in answer.json()}


def test_the_demo_fires_the_stalled_and_failing_alerts_and_ctrl_c_stops_everything(
    tmp_path: Path, demos: list[Demo]
) -> None:
    ports: list[Any] = []
    for flag in ("--port", "--prometheus-port", "--alertmanager-port"):
        ports += [flag, str(free_port())]
    demo = Demo(tmp_path, *ports, "--objects", "200", "--rule-seconds", "20", "--scrape-interval", "2")
    demos.append(demo)
    # Debian's Alertmanager has no web UI: the demo points at its API (and amtool) instead.
    alertmanager = (demo.urls.get("Alertmanager") or demo.urls["Alertmanager alerts"]).split("/#")[0]
    alertmanager = alertmanager.removesuffix("/api/v2/alerts")
    assert {"Prometheus", "Prometheus alerts", "Status page", "Metrics"} <= set(demo.urls), demo.urls
    check_urls(demo)
    try:
        wait_for(lambda: alerts(alertmanager) >= EXPECTED_ALERTS, timeout=240, interval=2)
    except TimeoutError:
        pytest.fail(f"alerts in Alertmanager: {sorted(alerts(alertmanager))}, expected {EXPECTED_ALERTS}")
    healthy = alerts(alertmanager) - {INCONSISTENT, NOT_COMPARED, READY}
    assert not [a for a in healthy if a[1].startswith("job-")], f"a healthy job alerted: {sorted(healthy)}"
    # Cut-over readiness in Prometheus and on the status page: job-0002 ready, job-0001 not, with its reason.

    def verdicts() -> dict[tuple[str, str], str]:
        found = requests.get(demo.urls["Cut-over readiness"], timeout=30).json()["data"]["result"]
        return {
            (r["metric"]["job_id"], r["metric"].get("reason", "")): r["value"][1]
            for r in found
            if r["metric"]["job_id"] in ("job-0001", "job-0002")
        }

    try:
        wait_for(lambda: verdicts().get(("job-0002", "")) == "1", timeout=240, interval=2)
    except TimeoutError:
        pytest.fail(f"job-0002 did not become ready: {verdicts()}")
    recorded = verdicts()
    assert recorded[("job-0001", "")] == "0" and recorded[("job-0001", "tables_not_consistent")] == "1", recorded
    assert not [k for k in recorded if k[0] == "job-0002" and k[1]], recorded
    jobs = {
        j["job_id"]: j for p in requests.get(demo.urls["Status JSON"], timeout=30).json()["projects"] for j in p["jobs"]
    }
    assert jobs["job-0002"]["cutover"]["ready"] is True, jobs["job-0002"]["cutover"]
    assert "tables_not_consistent" in [r["reason"] for r in jobs["job-0001"]["cutover"]["reasons"]]
    wait_for(lambda: READY in alerts(alertmanager), timeout=60, interval=2)
    # The firing alerts where the printed links show them: Prometheus's alerts page, amtool's query.
    firing = requests.get(demo.urls["Prometheus alerts"], timeout=30).text
    assert "firing" in firing.lower() and "stalled-job" in firing
    for command in demo.commands:
        shown = subprocess.run(command.split(), capture_output=True, text=True, timeout=60, check=False)
        assert shown.returncode == 0 and "HuaweiCloudDRSJobStalled" in shown.stdout, (command, shown)
    # Ctrl-C in a terminal: SIGINT to the whole process group.
    assert demo.stop(signal.SIGINT, whole_group=True) == 0
    demo.check_nothing_left()


def test_the_demo_takes_its_documented_port_although_a_closed_connection_lingers() -> None:
    """A connection the server closed first stays in TIME_WAIT; the servers bind with SO_REUSEADDR, so may the check."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import demo as script  # scripts/demo.py
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server side closes first: its end lingers in TIME_WAIT
            client.recv(1)
    assert script.port_or_free(port) == port
