"""`make demo`: the DRS simulator and the exporter on loopback, with Prometheus and Alertmanager when installed.

The simulated project has healthy jobs, one stalled job, one failing key and one failed job (DRS's reason on
the status page); job-0002 becomes ready for cut-over within a few minutes, job-0001 does not (its
comparisons found inconsistent tables). When Debian's
`prometheus` and `prometheus-alertmanager` are on PATH, Prometheus scrapes the exporter with the
project's rules -- built by `alerts.rules.fast()`, every window shortened to --rule-seconds, so
that the stalled job's and the failing key's alerts fire within minutes instead of half an hour --
and sends alerts to Alertmanager. Ctrl-C (or SIGTERM) stops every process the demo started.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for alerts.rules when run as a script

from alerts import rules  # noqa: E402
from exporter.simulator.health_scenario import demo_health_jobs  # noqa: E402
from exporter.simulator.server import demo_comparisons  # noqa: E402

BIN = Path(sys.executable).parent
STALLED, FAILING = "stalled-job", "failing-job"
FAILED = "demo-failed"  # failed in its incremental phase: the status page shows DRS's reason
DIRTY = "demo-dirty"  # replication health (issue 24): rows DRS failed to apply (demo_health_jobs)
DDL_JOB = "demo-ddl"  # the simulator's --health-demo job with an active DDL alarm
DR_JOB = "demo-dr"  # a DR job that DRS compares on a schedule (health comparisons)
NOT_READY, READY = "job-0001", "job-0002"  # for cut-over: inconsistent tables; consistent, and fast
READY_SECONDS = 60
# Every job's verdict and, for the blocked ones, why: one query.
READINESS = "job_id:huaweicloud_drs_cutover_ready:bool%20or%20job_id_reason:huaweicloud_drs_cutover_blocked:bool%3D%3D1"
HINT = (
    "Prometheus and Alertmanager are not installed, so the demo runs without them. Install Debian's\n"
    "`prometheus` and `prometheus-alertmanager` (`make test` does, through scripts/ensure-debian-packages.sh)\n"
    "and run `make demo` again to see the alerts fire and graph the progress."
)


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """SIGTERM, handled like Ctrl-C."""


def _stop(signum: int, frame: object) -> None:
    raise StopRequested


def port_or_free(preferred: int) -> int:
    """``preferred`` if it can be bound on 127.0.0.1, else a free port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            # As the servers bind: a connection of a previous run lingering in TIME_WAIT does not block the port.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            bound: int = s.getsockname()[1]
            return bound
    raise OSError("no free port on 127.0.0.1")


def scenario(jobs: int, objects: int) -> dict[str, Any]:
    """Healthy jobs job-0001…, a stalled job, a job whose one key fails and a failed job."""
    healthy: list[dict[str, Any]] = [
        {
            "id": f"job-{n:04d}",
            "name": f"orders-migration-{n}",
            "objects": {"table": objects, "view": max(1, objects // 20)},
            "speed": 0.2,
            "time_format": ("epoch_ms", "iso")[n % 2],
        }
        for n in range(1, jobs + 1)
    ]
    # Finished row and value comparisons with inconsistent tables, for the data consistency view.
    healthy[0]["comparisons"] = demo_comparisons(objects)
    if len(healthy) > 1:
        # Consistent comparisons and a full copy done within about a minute: ready for cut-over once the
        # delay has stayed low for the rules' window.
        healthy[1]["speed"] = 3.0
        healthy[1]["comparisons"] = [
            {"id": "ready-rows-1", "type": "lines", "tables": objects, "statuses": [], "started_ago": 1800},
            {"id": "ready-values-1", "type": "contents", "tables": objects, "statuses": [], "started_ago": 900},
        ]
    return {
        "jobs": [
            *healthy,
            {"id": STALLED, "name": "billing-sync", "objects": {"table": 40}, "stalled": True},
            {
                "id": FAILING,
                "name": "archive-migration",
                "objects": {"table": 50},
                "error": "DRS.M05004",
                "error_msg": "The task has been deleted or its resources have been released.",
            },
            *demo_health_jobs(),
        ]
    }


def lock(workdir: Path) -> IO[Any]:
    """An exclusive lock on ``workdir`` for as long as the returned file stays open; RuntimeError if held."""
    held = (workdir / ".lock").open("a")
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        held.close()
        raise RuntimeError(
            f"another demo is running in {workdir} (it holds {workdir / '.lock'}): stop it first, "
            "or give this one a directory of its own with --workdir"
        ) from None
    return held


NO_WEB_UI = "does not include a web application"  # Debian's Alertmanager placeholder page


def ui_links(prom_url: str, am_url: str) -> list[str]:
    """Links to the alerts and the graph that work with the binaries at hand.

    Debian's Prometheus 2.42 has only the classic UI (``/alerts`` answers 404, ``/classic/alerts``
    works), and Debian's Alertmanager has no web UI at all: its alerts are shown by its API and amtool.
    """
    graph = "graph?g0.expr=job_id:huaweicloud_drs_completion:ratio&g0.tab=0&g0.range_input=15m"
    prefix = prom_url
    with contextlib.suppress(requests.RequestException):
        if requests.get(f"{prom_url}/alerts", timeout=10).status_code == 404:
            prefix = f"{prom_url}/classic"
    lines = [f"Prometheus:     {prefix}/{graph}", f"Prometheus alerts: {prefix}/alerts"]
    web_ui = False
    with contextlib.suppress(requests.RequestException):
        page = requests.get(f"{am_url}/", timeout=10)
        # Debian's placeholder page breaks its sentence over lines: compare with the whitespace folded.
        web_ui = page.ok and NO_WEB_UI not in " ".join(page.text.split())
    if web_ui:
        lines.append(f"Alertmanager:   {am_url}/#/alerts")
    else:
        lines.append(f"Alertmanager alerts: {am_url}/api/v2/alerts (this Alertmanager has no web UI)")
        amtool = shutil.which("amtool")
        if amtool is not None:
            lines.append(f"  or: {amtool} --alertmanager.url={am_url} alert query")
    return lines


class Demo:
    """The processes the demo started, stopped in reverse order by :meth:`stop`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[Any], IO[Any]]] = []

    def start(self, name: str, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        log = (self.workdir / f"{name}.log").open("w")
        proc = subprocess.Popen(args, stderr=log, **{"stdout": log, **kwargs})
        self.procs.append((name, proc, log))
        return proc

    def wait_ready(self, name: str, url: str) -> None:
        """Until ``url`` answers 200 (at most READY_SECONDS), or the process has exited."""
        proc = next(p for n, p, _ in self.procs if n == name)
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.workdir / (name + '.log')}")
            try:
                if requests.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} was not ready within {READY_SECONDS} s; see {self.workdir / (name + '.log')}")

    def exited(self) -> str | None:
        """The name of a process that has exited, if any."""
        return next((name for name, proc, _ in self.procs if proc.poll() is not None), None)

    def stop(self) -> None:
        """SIGTERM to every process, newest first; SIGKILL to any still there after 10 s."""
        for _, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc, log in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            log.close()


def write_monitoring(workdir: Path, exporter: str, alertmanager: str, interval: int, seconds: int) -> Path:
    """Prometheus's and Alertmanager's configs and the fast rules; returns Prometheus's config."""
    rule_dir = workdir / "rules"
    rule_dir.mkdir(exist_ok=True)
    for name, text in rules.files(rules.fast(seconds)).items():
        (rule_dir / name).write_text(text)
    (workdir / "alertmanager.yml").write_text(
        "# Written by `make demo`: alerts are only shown in the UI, not sent anywhere.\n"
        + yaml.safe_dump(
            {
                "route": {"receiver": "ui-only", "group_wait": "5s", "group_interval": "10s", "repeat_interval": "1h"},
                "receivers": [{"name": "ui-only"}],
                # The shipped inhibit rules (alerts/alertmanager-inhibit.yaml): causes silence consequences.
                "inhibit_rules": rules.inhibit_rules(),
            }
        )
    )
    prometheus = workdir / "prometheus.yml"
    prometheus.write_text(
        f"# Written by `make demo`: rules with windows of {seconds} s (alerts.rules.fast), not the real ones.\n"
        + yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": f"{interval}s",
                    "scrape_timeout": f"{interval}s",
                    "evaluation_interval": f"{interval}s",
                },
                "rule_files": [str(rule_dir / name) for name in sorted(rules.files())],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
                "scrape_configs": [
                    {"job_name": "huaweicloud-drs-exporter", "static_configs": [{"targets": [exporter]}]}
                ],
            }
        )
    )
    return prometheus


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=10370, help="exporter port on 127.0.0.1 (default 10370)")
    p.add_argument("--prometheus-port", type=int, default=19090, help="Prometheus port (default 19090)")
    p.add_argument("--alertmanager-port", type=int, default=19093, help="Alertmanager port (default 19093)")
    p.add_argument("--jobs", type=int, default=3, help="healthy jobs (besides the stalled and the failing one)")
    p.add_argument("--objects", type=int, default=2000, help="tables per healthy job")
    p.add_argument("--rule-seconds", type=int, default=60, help="window of every alerting rule (default 60)")
    p.add_argument("--scrape-interval", type=int, default=5, help="Prometheus scrape interval in seconds")
    p.add_argument("--no-prometheus", action="store_true", help="do not start Prometheus and Alertmanager")
    p.add_argument("--workdir", type=Path, default=ROOT / ".demo", help="configs, logs and data (default .demo)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: run until Ctrl-C)")
    args = p.parse_args()

    signal.signal(signal.SIGTERM, _stop)
    # Even when started with SIGINT ignored (in the background of a script): Ctrl-C must stop the demo.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        held = lock(workdir)  # a second demo must not overwrite this one's configs, logs and data
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    demo = Demo(workdir)
    prometheus_bin = shutil.which("prometheus")
    alertmanager_bin = shutil.which("prometheus-alertmanager")
    monitoring = not args.no_prometheus and prometheus_bin is not None and alertmanager_bin is not None
    try:
        scenario_file = workdir / "scenario.yaml"
        scenario_file.write_text(yaml.safe_dump(scenario(args.jobs, args.objects)))
        sim = demo.start(
            "simulator",
            # --health-demo: a DR job with RPO/RTO, a job with a DDL alarm, one with abnormal rows.
            [str(BIN / "drs-simulator"), "--scenario", str(scenario_file), "--health-demo"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sim.stdout is not None
        info = json.loads(sim.stdout.readline() or "{}")
        if "url" not in info:
            raise RuntimeError(f"the simulator did not start; see {workdir / 'simulator.log'}")
        config = workdir / "drs-exporter.yml"
        jobs: list[dict[str, Any]] = [
            {"id": f"job-{n:04d}", "object_types": ["table", "view"]} for n in range(1, args.jobs + 1)
        ]
        # Comparisons only where the scenario has some: a replicating job without any would fire ComparisonMissing.
        for job in jobs[:2]:
            job["comparisons"] = True
        jobs += [{"id": j, "object_types": ["table"]} for j in (STALLED, FAILING, FAILED)]
        # The replication-health jobs; demo-dr is a DR job: its RPO and RTO are read (rpo_rto is on by default).
        # Abnormal rows are opt-in (two calls per job and interval): on for the job that has some.
        jobs += [
            # demo-dr is also compared by DRS on a schedule: its health comparisons are read.
            {"id": DR_JOB, "job_type": "cloudDataGuard", "object_types": ["table"], "health_comparisons": True},
            # demo-ddl's DDL alarm (its SQL stays off the status page: ddl_text_on_status_page is false).
            {"id": DDL_JOB, "object_types": ["table"], "ddl_alarms": True},
            {"id": DIRTY, "object_types": ["table"], "dirty_rows": True},
        ]
        config.write_text(
            f"# Written by `make demo` for the bundled simulator at {info['url']}.\n"
            + yaml.safe_dump(
                {
                    "endpoint": info["url"],
                    "project_id": info["project_id"],
                    "auth": {"access_key": info["access_key"], "secret_key": info["secret_key"]},
                    "jobs": jobs,
                    # Lists the simulator's jobs for their names (and types) on the status page; every
                    # job is configured above, so discovery adds none.
                    "discovery": {"job_types": ["migration"], "object_types": ["table"]},
                    "cache_ttl": 10,
                    "compare_refresh_interval": 30,
                },
                sort_keys=False,
            )
        )
        port = port_or_free(args.port)
        url = f"http://127.0.0.1:{port}"
        demo.start(
            "exporter",
            [str(BIN / "drs-exporter"), "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"],
        )
        demo.wait_ready("exporter", f"{url}/-/ready")
        lines = [
            f"DRS simulator:  {info['url']} (project {info['project_id']})",
            f"Status page:    {url}/",
            f"Status JSON:    {url}/status.json",
            f"Metrics:        {url}/metrics",
            f"Exporter config: {config}",
            f"DDL alarm:      {DDL_JOB} has one (huaweicloud_drs_ddl_alarms, and on the status page without its SQL)",
        ]
        if monitoring:
            assert prometheus_bin is not None and alertmanager_bin is not None
            am_port = port_or_free(args.alertmanager_port)
            prom_port = port_or_free(args.prometheus_port)
            am_url, prom_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
            prom_config = write_monitoring(
                workdir, f"127.0.0.1:{port}", f"127.0.0.1:{am_port}", args.scrape_interval, args.rule_seconds
            )
            demo.start(
                "alertmanager",
                [
                    alertmanager_bin,
                    f"--config.file={workdir / 'alertmanager.yml'}",
                    f"--storage.path={workdir / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
            )
            demo.start(
                "prometheus",
                [
                    prometheus_bin,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
            )
            demo.wait_ready("alertmanager", f"{am_url}/-/ready")
            demo.wait_ready("prometheus", f"{prom_url}/-/ready")
            lines += ui_links(prom_url, am_url)
            lines += [
                f"Rules: alerts.rules.fast({args.rule_seconds}): windows of {args.rule_seconds} s, not the real ones;",
                f"  expect HuaweiCloudDRSJobStalled ({STALLED}) and HuaweiCloudDRSRefreshFailing ({FAILING})",
                "  in Alertmanager within about two minutes.",
                f"Cut-over readiness: {prom_url}/api/v1/query?query={READINESS}",
                f"  {READY} becomes ready (HuaweiCloudDRSJobReadyForCutover, info) within about three minutes;",
                f"  {NOT_READY} stays not ready (tables_not_consistent). The status page says the same.",
            ]
        else:
            lines.append(HINT)
        lines.append(f"Logs and configs: {workdir}\nPress Ctrl-C to stop.")
        print("\n" + "\n".join(lines) + "\n", flush=True)
        end = time.monotonic() + args.duration if args.duration else None
        next_scrape = 0.0
        while (gone := demo.exited()) is None:
            if end is not None and time.monotonic() > end:
                break
            if not monitoring and time.monotonic() >= next_scrape:
                # No Prometheus: scrape now and then, so that the status page has data to show.
                next_scrape = time.monotonic() + 10
                with contextlib.suppress(requests.RequestException):
                    requests.get(f"{url}/metrics", timeout=30)
            time.sleep(0.5)
        if gone is not None:
            print(f"{gone} exited; see {workdir / (gone + '.log')}", file=sys.stderr)
            return 1
        return 0
    except (KeyboardInterrupt, StopRequested):
        return 0
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.stop()
        held.close()


if __name__ == "__main__":
    sys.exit(main())
