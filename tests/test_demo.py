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
EXPECTED_ALERTS = {
    ("HuaweiCloudDRSJobStalled", "stalled-job"),
    ("HuaweiCloudDRSRefreshFailing", "failing-job"),
    INCONSISTENT,
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
        try:
            for _ in range(40):
                line = reader.line(120)
                self.output.append(line)
                name, _, rest = line.partition(":")
                if rest.strip().startswith("http"):
                    self.urls[name.strip()] = rest.split()[0]
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
    text = requests.get(demo.urls["Metrics"], timeout=30).text
    labels = (("job_id", "job-0001"), ("object_type", "view"))
    assert samples(text, "huaweicloud_drs_up")[labels] == 1.0
    assert samples(text, "huaweicloud_drs_up")[(("job_id", "failing-job"), ("object_type", "table"))] == 0.0
    page = requests.get(demo.urls["Status page"], timeout=30).text
    assert 'data-job-id="stalled-job"' in page and "DRS.M05004" in page
    # Comparisons are read in the background: the first job's inconsistent table shows up within seconds.
    inconsistent = wait_for(
        lambda: value(
            requests.get(demo.urls["Metrics"], timeout=15).text,
            "huaweicloud_drs_comparison_tables",
            job_id="job-0001",
            compare_type="lines",
            status="inconsistent",
        ),
        timeout=30,
        interval=0.5,
    )
    assert inconsistent is not None and inconsistent >= 1.0
    # SIGTERM to the script alone: it stops what it started.
    assert demo.stop(signal.SIGTERM, whole_group=False) == 0
    demo.check_nothing_left()


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
    prometheus = demo.urls["Prometheus"].split("/graph")[0]
    alertmanager = demo.urls["Alertmanager"].split("/#")[0]
    for url in (f"{prometheus}/-/ready", f"{alertmanager}/-/ready", demo.urls["Status JSON"]):
        assert requests.get(url, timeout=10).ok, url
    try:
        wait_for(lambda: alerts(alertmanager) >= EXPECTED_ALERTS, timeout=240, interval=2)
    except TimeoutError:
        pytest.fail(f"alerts in Alertmanager: {sorted(alerts(alertmanager))}, expected {EXPECTED_ALERTS}")
    assert not [a for a in alerts(alertmanager) - {INCONSISTENT} if a[1].startswith("job-")], "a healthy job alerted"
    # Ctrl-C in a terminal: SIGINT to the whole process group.
    assert demo.stop(signal.SIGINT, whole_group=True) == 0
    demo.check_nothing_left()
