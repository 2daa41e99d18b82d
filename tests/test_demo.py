"""`make demo`'s script: simulator and exporter start, and the printed metrics URL answers."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import requests

from .procs import LineReader, value, wait_for

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_demo_serves_metrics() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--port", str(port), "--duration", "20", "--objects", "50"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    reader = LineReader(proc.stdout)
    try:
        url = None
        for _ in range(20):
            line = reader.line(30)
            if line.startswith("Metrics:"):
                url = line.split()[-1]
                break
        assert url == f"http://127.0.0.1:{port}/metrics"
        text = requests.get(url, timeout=15).text
        assert 'huaweicloud_drs_up{job_id="job-0001",object_type="view"} 1.0' in text
        # Comparisons are read in the background: the first job's inconsistent table shows up within seconds.
        inconsistent = wait_for(
            lambda: value(
                requests.get(url, timeout=15).text,
                "huaweicloud_drs_comparison_tables",
                job_id="job-0001",
                compare_type="lines",
                status="inconsistent",
            ),
            timeout=15,
            interval=0.5,
        )
        assert inconsistent == 1.0
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0
        if proc.stdout is not None:
            proc.stdout.close()
