"""Helpers to run the simulator and the exporter as real processes on loopback."""

from __future__ import annotations

import gzip
import json
import os
import queue
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import IO, Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    """The console script ``name`` installed next to this interpreter."""
    path = BIN / name
    if not path.exists():
        raise RuntimeError(f"{name} is not installed in {BIN}: run `make test`, which installs the package")
    return str(path)


class LineReader:
    """Reads a process's text output in a thread, so that waiting for a line can time out.

    (``select`` on a buffered pipe misses lines already read into Python's buffer.)
    """

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put("")

    def line(self, timeout: float) -> str:
        """The next line within ``timeout`` seconds; "" at end of output."""
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError("no output in time") from None


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first line of the process's stdout within ``timeout`` seconds."""
    assert proc.stdout is not None
    line = LineReader(proc.stdout).line(timeout)
    if not line:
        raise RuntimeError(f"process exited with {proc.wait(timeout=5)}")
    return line


def terminate(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s, and reap the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Simulator:
    """``drs-simulator`` as a child process; ``info`` is the JSON line it prints."""

    def __init__(self, *args: str) -> None:
        # A file, not a pipe: nobody drains stderr, and a full pipe would block the simulator.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [command("drs-simulator"), "--host", "127.0.0.1", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
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
        terminate(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


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


def limit_open_files(count: int) -> None:
    """Lower this process's limit of open files (soft and hard) to ``count``."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


LISTENING = re.compile(r"listening on ([0-9.]+):(\d+)")


class Exporter:
    """``drs-exporter`` as a child process with its log in a file; ``url`` is where it listens."""

    def __init__(
        self,
        config: dict[str, Any] | str,
        workdir: Path,
        *args: str,
        env: dict[str, str] | None = None,
        open_files: int | None = None,
    ) -> None:
        self.config_path = workdir / "exporter.yml"
        self.config_path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, allow_unicode=True))
        self.log_path = workdir / "exporter.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                command("drs-exporter"),
                "--config.file",
                str(self.config_path),
                "--web.listen-address",
                "127.0.0.1:0",
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env if env is not None else dict(os.environ),
            # As `ulimit -n`: the limit of open files the exporter starts with.
            preexec_fn=None if open_files is None else lambda: limit_open_files(open_files),
        )
        try:
            match = wait_for(lambda: LISTENING.search(self.log_path.read_text()) or self.proc.poll() is not None, 20)
        except Exception:
            self.stop()
            raise
        if not isinstance(match, re.Match):
            self.stop()
            raise RuntimeError(f"exporter exited early:\n{self.log_path.read_text()}")
        self.url = f"http://{match.group(1)}:{match.group(2)}"

    def get(self, path: str = "/metrics", **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=kwargs.pop("timeout", 15), **kwargs)

    def metrics(self, **kwargs: Any) -> str:
        answer = self.get("/metrics", **kwargs)
        answer.raise_for_status()
        return answer.text

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        terminate(self.proc)
        self._log.close()
        return self.proc.returncode


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of metric ``name`` keyed by their sorted label pairs."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``, or None."""
    found = [v for k, v in samples(text, name).items() if set(labels.items()) <= set(k)]
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} match {labels}")
    return found[0] if found else None


def sim_config(sim: Simulator, jobs: list[Any], **extra: Any) -> dict[str, Any]:
    """An exporter config for ``sim`` with AK/SK credentials."""
    return {
        "endpoint": sim.url,
        "project_id": sim.info["project_id"],
        "auth": {"access_key": sim.info["access_key"], "secret_key": sim.info["secret_key"]},
        "jobs": jobs,
        **extra,
    }


def gunzip_whole(body: bytes) -> bytes:
    """``body`` decompressed, asserting it is one gzip member with nothing after it (what
    single-member readers such as curl and browsers decode) and that ``gzip`` reads the same."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    plain = reader.decompress(body) + reader.flush()
    assert reader.eof and reader.unused_data == b"", "not one whole gzip member"
    assert gzip.decompress(body) == plain
    return plain
