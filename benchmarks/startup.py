"""Start-up time: from launching ``drs-exporter`` to its "listening" log line, against an earlier revision.

The earlier revision's ``exporter`` package is exported with ``git archive`` and put first on
PYTHONPATH, so both run with the same interpreter and libraries. The current tree is copied
beside it, and both copies are compiled to bytecode first, as an installed package is (pip and
the Docker image compile it): without that, each start compiled every module from source where
PYTHONDONTWRITEBYTECODE is set (as on this machine), which measured the size of the sources
rather than the start-up. Runs alternate between the two (the machine's load hits both alike); the
median of each is reported.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from benchmarks.report import publish
from tests.procs import LineReader

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [job-1, job-2]\n"


def one_start(source: Path, config: Path) -> tuple[float, float]:
    """Seconds from exec to the "listening" line, and the CPU seconds the process used in all.

    Nothing is scraped, so no API call is made and the process idles after start-up: its CPU time is
    the start-up's, and unlike the wall time it hardly depends on what else the machine runs.
    """
    deps = source / "_deps"  # what the revision needs and this venv no longer has (see missing_deps)
    path = os.pathsep.join([str(source), str(deps)] if deps.is_dir() else [str(source)])
    env = {**os.environ, "PYTHONPATH": path}
    code = "import sys; from exporter.cli import main; sys.exit(main())"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--config.file", str(config), "--web.listen-address", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=config.parent,  # not the repository: `-c` puts the working directory first on sys.path
    )
    assert proc.stderr is not None
    reader = LineReader(proc.stderr)
    wall = None
    try:
        for _ in range(50):
            line = reader.line(timeout=30)
            if "listening" in line:
                wall = time.perf_counter() - started
                break
            if not line:
                break
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    if wall is None:
        raise RuntimeError("the exporter did not start")
    return wall, usage.ru_utime + usage.ru_stime


def missing_deps(revision: str) -> list[str]:
    """The runtime requirements of ``revision`` that this venv lacks (e.g. cheroot, dropped by issue 22).

    Without them the earlier revision cannot start at all; they are installed beside its tree
    only, so the current tree runs with exactly the venv's libraries.
    """
    shown = subprocess.run(["git", "show", f"{revision}:pyproject.toml"], cwd=ROOT, check=True, capture_output=True)
    # The list's strings, read without a TOML parser (tomllib needs Python 3.11; 3.10 is supported).
    block = re.search(r"^dependencies = \[(.*?)^\]", shown.stdout.decode(), re.S | re.M)
    wanted = re.findall(r'^\s*"([^"]+)"', block.group(1), re.M) if block else []
    missing = []
    for requirement in wanted:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


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
        missing = missing_deps(args.baseline)
        if missing:
            pip = [sys.executable, "-m", "pip", "install", "-q", "--target", str(old / "_deps"), *missing]
            subprocess.run(pip, check=True)
        config = Path(tmp) / "c.yml"
        config.write_text(CONFIG)
        new = Path(tmp) / "new"
        shutil.copytree(ROOT / "exporter", new / "exporter", ignore=shutil.ignore_patterns("__pycache__"))
        for tree in (old, new):
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "exporter")], check=True)
        runs: dict[str, list[tuple[float, float]]] = {args.baseline: [], "current": []}
        for _ in range(args.runs):
            runs[args.baseline].append(one_start(old, config))
            runs["current"].append(one_start(new, config))
    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    least = {k: min(c for _, c in v) for k, v in runs.items()}
    delta = {
        "wall": wall["current"] - wall[args.baseline],
        "cpu": cpu["current"] - cpu[args.baseline],
        "least": least["current"] - least[args.baseline],
    }
    text = (
        f'Start-up to the "listening" line, both compiled to bytecode as installed, medians of {args.runs} '
        "alternating runs "
        f"(`python -m benchmarks.startup --baseline {args.baseline} --runs {args.runs}`):\n\n"
        "| revision | wall time | CPU time | least CPU time |\n| --- | --- | --- | --- |\n"
        + "".join(
            f"| {name} | {wall[name] * 1000:.0f} ms | {cpu[name] * 1000:.0f} ms | {least[name] * 1000:.0f} ms |\n"
            for name in runs
        )
        + f"\nDifference: {delta['wall'] * 1000:+.0f} ms wall, {delta['cpu'] * 1000:+.0f} ms CPU "
        f"({delta['least'] * 1000:+.0f} ms least CPU); target: at most +100 ms. Load average "
        f"{os.getloadavg()[0]:.1f} at the end."
    )
    publish(text, args.write, "startup")
    return 0 if max(delta.values()) <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
