"""A DRS API simulator: progress data with real paging, gateway auth checks, IAM tokens, faults.

Run ``drs-simulator --help``. It binds 127.0.0.1 by default and prints one JSON line with its
URL and the credentials to use. ``/_sim/*`` endpoints let tests inspect and steer it.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import ssl
import sys
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer

from ..base.objecttypes import OBJECT_TYPES
from .compare_scenario import comparisons, object_comparison
from .faults import apply_faults
from .handler import Handler
from .health_scenario import demo_health_jobs
from .iam import Credentials
from .misbehave import RedirectTarget
from .scenario import Scenario, generated, job_from_dict, load_scenario

log = logging.getLogger("drs-simulator")


def demo_comparisons(tables: int) -> list[dict[str, object]]:
    """``--comparisons``: an older row comparison, the latest one (inconsistent tables) and a value comparison."""
    return [
        {"id": "demo-rows-1", "type": "lines", "tables": tables, "statuses": [0, 0, 3], "started_ago": 86400},
        {"id": "demo-rows-2", "type": "lines", "tables": tables, "statuses": [2, 0, 12, 23, 14], "started_ago": 3600},
        {"id": "demo-values-1", "type": "contents", "tables": tables, "statuses": [2, 0], "started_ago": 1800},
    ]


class Simulator(ThreadingHTTPServer):
    """The HTTP server and its state."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], scenario: Scenario, creds: Credentials, seed: int = 0) -> None:
        super().__init__(address, Handler)
        self.scenario = scenario
        self.creds = creds
        # Fault injection, not security: a seeded, repeatable generator is what is wanted.
        self.random = random.Random(seed)  # noqa: S311  # nosec B311
        self.lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.key_stats: Counter[str] = Counter()
        self.compare_stats: Counter[str] = Counter()  # job/compare_job_id (or list, objects)/operation -> requests
        self.health_stats: Counter[str] = Counter()  # job/operation of the replication-health APIs -> requests
        self.job_stats: Counter[str] = Counter()  # job/batch_progress -> times a batch asked for the job
        self.throttled_until = 0.0  # Unix time the last 429's Retry-After ends
        self.page_asks: Counter[str] = Counter()  # job/type/offset -> times asked (empty_page_once)
        self.order: list[str] = []  # job/offset of progress-data requests in arrival order (first 5000)
        self._redirect_target: RedirectTarget | None = None

    def redirect_target(self) -> RedirectTarget:
        """The recording server the ``redirect`` fault points to, started on first use."""
        with self.lock:
            if self._redirect_target is None:
                self._redirect_target = RedirectTarget()
            return self._redirect_target

    tls = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    def take_throttle(self) -> bool:
        """True (and one fewer left) while ``throttle_next`` requests remain to be throttled.

        Requests that arrive while an earlier 429's Retry-After runs are counted
        (``during_throttle``): a client honouring it for every worker sends almost none.
        """
        with self.lock:
            if time.time() < self.throttled_until:
                self.stats["during_throttle"] += 1
            faults = self.scenario.faults
            if faults.throttle_next > 0:
                faults.throttle_next -= 1
                try:
                    wait = float(faults.retry_after)
                except ValueError:
                    wait = 0.0
                self.throttled_until = max(self.throttled_until, time.time() + wait)
                return True
            return False

    def take_iam_error(self) -> bool:
        """True (and one fewer left) while ``iam_error_next`` logins remain to be failed."""
        with self.lock:
            faults = self.scenario.faults
            if faults.iam_error_next > 0:
                faults.iam_error_next -= 1
                return True
            return False

    def chance(self, rate: float) -> bool:
        with self.lock:
            return rate > 0 and self.random.random() < rate


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="drs-simulator", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    p.add_argument("--scenario", help="YAML scenario file (jobs, objects, faults)")
    p.add_argument("--jobs", type=int, default=3, help="generated jobs when there is no scenario")
    p.add_argument("--objects", type=int, default=2500, help="objects per job and type")
    p.add_argument("--types", default="table", help="comma-separated object types")
    p.add_argument("--time-format", default="mixed", choices=["epoch_ms", "iso", "mixed"])
    p.add_argument("--speed", type=float, default=0.2, help="mean progress in percent per second")
    p.add_argument("--project-id", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, help="added latency of every API request")
    p.add_argument("--rate-429", type=float, help="share of requests throttled with 429 APIGW.0308")
    p.add_argument("--retry-after", help="Retry-After value sent with 429 (default 1)")
    p.add_argument("--rate-5xx", type=float, help="share of requests answered 500 DRS.M00004")
    p.add_argument("--rate-malformed", type=float, help="share of answers cut short (malformed JSON)")
    p.add_argument("--access-key", default="SIMULATORACCESSKEY01")
    p.add_argument("--secret-key", default="simulator-secret-key-0123456789")
    p.add_argument("--token", action="append", default=[], help="a static token to accept (repeatable)")
    p.add_argument("--iam-domain", default="sim-domain")
    p.add_argument("--iam-user", default="sim-user")
    p.add_argument("--iam-password", default="sim-password-0123")
    p.add_argument("--token-ttl", type=float, default=24 * 3600, help="lifetime of IAM tokens in seconds")
    p.add_argument("--no-v5-list", action="store_true", help="answer GET /v5/{project_id}/jobs with 404")
    p.add_argument(
        "--comparisons",
        action="store_true",
        help="give the first generated job finished row and value comparisons with inconsistent tables",
    )
    p.add_argument("--no-batch-progress", action="store_true", help="answer batch-progress with 404")
    p.add_argument(
        "--health-demo",
        action="store_true",
        help="add a DR job with RPO/RTO, a job with a DDL alarm and one with abnormal rows (replication health)",
    )
    p.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM, chain included)")
    p.add_argument("--tls-key", help="private key of --tls-cert")
    p.add_argument("--log-level", default="warning")
    return p


def make_server(args: argparse.Namespace) -> Simulator:
    """A simulator for parsed command-line ``args`` (not yet serving)."""
    if args.scenario:
        scenario = load_scenario(args.scenario)
    else:
        types = [t.strip() for t in args.types.split(",") if t.strip()]
        unknown = [t for t in types if t not in OBJECT_TYPES]
        if unknown:
            raise ValueError(f"unknown object types {unknown}; known: {', '.join(OBJECT_TYPES)}")
        scenario = Scenario(jobs=generated(args.jobs, args.objects, types, args.time_format, args.speed))
    if args.comparisons and scenario.jobs:
        job = next(iter(scenario.jobs.values()))
        tables = job.objects.get("table", 0)
        job.comparisons = comparisons(demo_comparisons(tables), job.id)
        job.object_comparison = object_comparison({"objects": {"DB": [2, 2], "TABLE": [tables, tables - 1]}}, job.id)
    if args.health_demo:
        for raw in demo_health_jobs():
            job = job_from_dict(raw)
            scenario.jobs[job.id] = job
    if args.project_id:
        scenario.project_id = args.project_id
    if args.no_v5_list:
        scenario.v5_list = False
    if args.no_batch_progress:
        scenario.batch_progress = False
    flags = {
        "latency_ms": args.latency_ms,
        "rate_429": args.rate_429,
        "retry_after": args.retry_after,
        "rate_5xx": args.rate_5xx,
        "rate_malformed": args.rate_malformed,
    }
    # Flags given on the command line override the scenario file's faults.
    scenario.faults = apply_faults(scenario.faults, {k: v for k, v in flags.items() if v is not None})
    creds = Credentials(
        args.access_key, args.secret_key, args.token, args.iam_domain, args.iam_user, args.iam_password, args.token_ttl
    )
    server = Simulator((args.host, args.port), scenario, creds, seed=args.seed)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.tls = True
    return server


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``drs-simulator``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        server = make_server(args)
    except (OSError, ValueError) as exc:
        print(f"drs-simulator: {exc}", file=sys.stderr)
        return 2
    info = {
        "url": server.url,
        "project_id": server.scenario.project_id,
        "jobs": sorted(server.scenario.jobs),
        "access_key": args.access_key,
        "secret_key": args.secret_key,
        "tokens": args.token,
        "iam": {
            "endpoint": server.url,
            "domain_name": args.iam_domain,
            "username": args.iam_user,
            "password": args.iam_password,
        },
    }
    print(json.dumps(info), flush=True)

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
