"""Basic auth timing: an unknown user against a known user with a wrong password (a security property).

Runs the exporter as a process with ``basic_auth_users`` hashed at bcrypt cost 10 (htpasswd's
default) and asks ``/-/healthy`` alternately as each, a bounded number of times. If refusing an
unknown user were much faster, timing would tell which user names exist. The ratio of the medians
must stay within 2 (and at least 1/2).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import requests
import yaml

from benchmarks.report import publish
from tests.procs import Exporter

CONFIG = "region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [a]\n"
COST = 10
LIMIT = 2.0


def timed(url: str, user: str, password: str) -> float:
    """Seconds for one refused request."""
    started = time.perf_counter()
    answer = requests.get(url, auth=(user, password), timeout=30)
    elapsed = time.perf_counter() - started
    if answer.status_code != 401:
        raise RuntimeError(f"expected 401, got {answer.status_code}")
    return elapsed


def measure(rounds: int) -> tuple[float, float]:
    """Median seconds to refuse (an unknown user, a known user with a wrong password)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        hashed = bcrypt.hashpw(b"the-right-password", bcrypt.gensalt(rounds=COST)).decode()
        web = workdir / "web.yml"
        web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
        exp = Exporter(CONFIG, workdir, "--web.config.file", str(web))
        try:
            url = exp.url + "/-/healthy"
            timed(url, "warm-up", "x")
            unknown, known = [], []
            for i in range(rounds):
                unknown.append(timed(url, f"nobody-{i}", "wrong"))
                known.append(timed(url, "prometheus", f"wrong-{i}"))
        finally:
            exp.stop()
    return statistics.median(unknown), statistics.median(known)


def main() -> int:
    """Print the report (write it into a Markdown file with --write); exit 1 when the ratio is off."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--write", type=Path, help="Markdown file with an auth-timing section to replace")
    args = parser.parse_args()
    unknown, known = measure(args.rounds)
    ratio = known / unknown
    ok = 1 / LIMIT <= ratio <= LIMIT
    report = (
        f"`python -m benchmarks.auth_timing --rounds {args.rounds}` (bcrypt cost {COST}, medians of "
        f"{args.rounds} refused requests each):\n\n"
        "| refused | median |\n| --- | --- |\n"
        f"| unknown user | {unknown * 1000:.1f} ms |\n"
        f"| known user, wrong password | {known * 1000:.1f} ms |\n\n"
        f"Ratio known/unknown {ratio:.2f} (target: between {1 / LIMIT:g} and {LIMIT:g}): {'met' if ok else 'MISSED'}."
    )
    publish(report, args.write, "auth-timing")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
