"""Start-up time: from launching ``drs-exporter`` to its "listening" log line, against an earlier revision.

The earlier revision's ``exporter`` package is exported with ``git archive`` and put first on
PYTHONPATH, so both run with the same interpreter and libraries. Runs alternate between the two
(the machine's load hits both alike); the median of each is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from tests.procs import LineReader

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [job-1, job-2]\n"


def one_start(source: Path, config: Path) -> float:
    """Seconds from exec to the "listening" line (nothing is scraped, so no API call is made)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    code = "import sys; from exporter.cli import main; sys.exit(main())"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--config.file", str(config), "--web.listen-address", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    reader = LineReader(proc.stderr)
    try:
        for _ in range(50):
            line = reader.line(timeout=30)
            if "listening" in line:
                return time.perf_counter() - started
            if not line:
                break
        raise RuntimeError("the exporter did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    """Measure and print (or with --write, record) the start-up times."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default="d97131a", help="git revision to compare with")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--write", type=Path, help="record the result in this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        git = ["git", "archive", args.baseline, "exporter"]
        archive = subprocess.run(git, cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        config = Path(tmp) / "c.yml"
        config.write_text(CONFIG)
        times: dict[str, list[float]] = {"baseline": [], "current": []}
        for _ in range(args.runs):
            times["baseline"].append(one_start(old, config))
            times["current"].append(one_start(ROOT, config))
    median = {k: statistics.median(v) for k, v in times.items()}
    delta_ms = (median["current"] - median["baseline"]) * 1000
    text = (
        f'Start-up to the "listening" line, median of {args.runs} alternating runs '
        f"(`python -m benchmarks.startup --baseline {args.baseline}`):\n\n"
        "| revision | median | min | max |\n| --- | --- | --- | --- |\n"
        + "".join(
            f"| {name} | {median[name] * 1000:.0f} ms | {min(t) * 1000:.0f} ms | {max(t) * 1000:.0f} ms |\n"
            for name, t in times.items()
        )
        + f"\nDifference: {delta_ms:+.0f} ms (target: at most +100 ms)."
    )
    print(text)
    if args.write:
        write_section(args.write, "startup", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
