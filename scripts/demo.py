"""`make demo`: the DRS simulator and the exporter side by side on loopback."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=10370, help="exporter port on 127.0.0.1 (default 10370)")
    p.add_argument("--jobs", type=int, default=3)
    p.add_argument("--objects", type=int, default=2000)
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: run until Ctrl-C)")
    args = p.parse_args()

    workdir = ROOT / ".demo"
    workdir.mkdir(exist_ok=True)
    sim = subprocess.Popen(
        [
            str(BIN / "drs-simulator"),
            "--jobs",
            str(args.jobs),
            "--objects",
            str(args.objects),
            "--types",
            "table,view",
            "--speed",
            "0.1",
            "--comparisons",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sim.stdout is not None
    info = json.loads(sim.stdout.readline())
    config = workdir / "drs-exporter.yml"
    jobs = "\n".join(f"  - id: {job}\n    object_types: [table, view]" for job in info["jobs"])
    config.write_text(
        f"# Written by `make demo` for the bundled simulator at {info['url']}.\n"
        f"endpoint: {info['url']}\nproject_id: {info['project_id']}\n"
        f"auth:\n  access_key: {info['access_key']}\n  secret_key: {info['secret_key']}\n"
        f"jobs:\n{jobs}\ncache_ttl: 10\ncomparisons: true\ncompare_refresh_interval: 30\n"
    )
    exporter = subprocess.Popen(
        [str(BIN / "drs-exporter"), "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{args.port}"]
    )
    procs: list[subprocess.Popen[Any]] = [exporter, sim]

    def stop(*_: object) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    url = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and exporter.poll() is None:
        try:
            if requests.get(f"{url}/-/ready", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.2)
    if exporter.poll() is not None:
        stop()
        print(f"the exporter did not start (exit code {exporter.returncode})", file=sys.stderr)
        return 1
    print(f"\nDRS simulator:  {info['url']} (project {info['project_id']}, jobs {', '.join(info['jobs'])})")
    print(f"Exporter:       {url}/")
    print(f"Metrics:        {url}/metrics")
    print(f"Config used:    {config}\nPress Ctrl-C to stop.\n", flush=True)
    end = time.monotonic() + args.duration if args.duration else None
    while exporter.poll() is None and sim.poll() is None:
        if end is not None and time.monotonic() > end:
            break
        time.sleep(0.5)
    stop()
    for proc in procs:
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
