"""HTTP throughput of the exporter's server with Debian's ``wrk``, on `make demo`'s data.

Runs the simulator (3 jobs × 2000 tables and views) and the exporter as processes, warms the
cache (TTL an hour: this measures serving, not the API), then ``wrk -t2 -c8 -d10s`` against
/metrics (identity and gzip) and /-/healthy, over HTTP or (--tls) HTTPS. Run the code of another
commit by pointing PYTHONPATH at a checkout of it. No target: a comparison, recorded in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
import trustme
import yaml

from tests.procs import Exporter, Simulator, sim_config

RUNS = [
    ("/metrics", "identity"),
    ("/metrics", "gzip"),
    ("/-/healthy", "identity"),
]


def wrk(url: str, encoding: str, seconds: int) -> tuple[float, str]:
    """(requests per second, mean latency) of one wrk run."""
    out = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", "-H", f"Accept-Encoding: {encoding}", url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    latency = re.search(r"Latency\s+(\S+)", out)
    if rate is None or latency is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(rate.group(1)), latency.group(1)


def main() -> int:
    """Print one Markdown table row per request kind."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    sim = Simulator("--jobs", "3", "--objects", "2000", "--types", "table,view")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            jobs = [{"id": job, "object_types": ["table", "view"]} for job in sim.info["jobs"]]
            flags: list[str] = []
            verify: bool | str = True
            if args.tls:
                ca = trustme.CA()
                cert = ca.issue_cert("127.0.0.1")
                cert.private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
                ca.cert_pem.write_to_path(str(work / "ca.crt"))
                pem = str(work / "server.pem")
                tls = {"tls_server_config": {"cert_file": pem, "key_file": pem}}
                (work / "web.yml").write_text(yaml.safe_dump(tls))
                flags = ["--web.config.file", str(work / "web.yml")]
                verify = str(work / "ca.crt")
            exp = Exporter(sim_config(sim, jobs, cache_ttl=3600), work, *flags)
            try:
                base = exp.url.replace("http://", "https://") if args.tls else exp.url
                size = len(requests.get(base + "/metrics", verify=verify, timeout=60).content)
                requests.get(base + "/metrics", headers={"Accept-Encoding": "gzip"}, verify=verify, timeout=60)
                print(f"{'HTTPS' if args.tls else 'HTTP'}, /metrics of {size:,} bytes")
                print("| request | requests/s | mean latency |\n|---|---|---|")
                for path, encoding in RUNS:
                    rate, latency = wrk(base + path, encoding, args.seconds)
                    print(f"| {path} ({encoding}) | {rate:,.0f} | {latency} |")
            finally:
                exp.stop()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
