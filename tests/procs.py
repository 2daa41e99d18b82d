"""Helpers to run the simulator and the exporter as real processes on loopback."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    """The console script ``name`` installed next to this interpreter."""
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{name} is not installed in {BIN}: run `make test`, which installs the package")
    return str(path)


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the process's stdout within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("no output in time")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"process exited with {proc.wait(timeout=5)}")
    return line


class Simulator:
    """``drs-simulator`` as a child process; ``info`` is the JSON line it prints."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [command("drs-simulator"), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            self.info: dict[str, Any] = json.loads(read_line(self.proc, 15))
        except Exception:
            self.stop()
            raise
        self.url: str = self.info["url"]

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(f"{self.url}/_sim/stats", timeout=5).json()
        return answer

    def admin(self, path: str, body: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_sim/{path}", json=body, timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)
