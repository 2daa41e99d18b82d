"""``drs-exporter``: the command line."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable

# Nothing heavy here: main() installs its SIGHUP handler before the rest of the exporter is imported.
from . import __version__, logs

log = logging.getLogger("drs-exporter")

DEFAULT_PORT = 10370
DEFAULT_LISTEN = f":{DEFAULT_PORT}"


class HangUps:
    """SIGHUP's handler from the start: its default action would end the process while it starts.

    A SIGHUP that comes before the reloader exists is remembered and the configuration is
    reloaded once, as soon as it does (the files may have changed since they were read); later
    ones reload at once. Each reload runs in a thread of its own, not in the signal handler.
    """

    def __init__(self) -> None:
        self._reload: Callable[[], object] | None = None
        self._pending = False
        signal.signal(signal.SIGHUP, self._received)

    def _received(self, signum: int, frame: object) -> None:
        # Runs in the main thread, between two bytecodes of it: no lock can be taken here.
        if self._reload is None:
            self._pending = True
        else:
            self._start("received SIGHUP, reloading the configuration")

    def ready(self, reload: Callable[[], object]) -> None:
        """Reload with ``reload`` from now on, and now if a SIGHUP came during start-up."""
        self._reload = reload
        if self._pending:  # a SIGHUP in between has seen _reload set and started its own reload
            self._pending = False
            self._start("received SIGHUP during start-up, reloading the configuration now")

    def _start(self, message: str) -> None:
        def run() -> None:
            log.info(message)
            if self._reload is not None:
                self._reload()

        threading.Thread(target=run, name="reload", daemon=True).start()


def build_parser() -> argparse.ArgumentParser:
    """Prometheus-style flags."""
    from .web.server import MAX_SCRAPE_TIMEOUT

    p = argparse.ArgumentParser(
        prog="drs-exporter",
        description="Prometheus exporter for Huawei Cloud DRS per-object migration progress.",
    )
    p.add_argument("--config.file", dest="config_file", default="drs-exporter.yml", help="configuration file")
    p.add_argument(
        "--web.listen-address", dest="listen", default=DEFAULT_LISTEN, help=f"address to listen on ({DEFAULT_LISTEN})"
    )
    p.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="exporter-toolkit web configuration: TLS and basic auth (default: plain HTTP, no auth)",
    )
    p.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="enable POST /-/reload (SIGHUP reloads either way)",
    )
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default="/metrics", help="path of the metrics")
    p.add_argument(
        "--web.max-scrape-timeout",
        dest="max_scrape_timeout",
        type=float,
        default=MAX_SCRAPE_TIMEOUT,
        help=f"seconds: a longer X-Prometheus-Scrape-Timeout-Seconds is cut to this (default {MAX_SCRAPE_TIMEOUT:g})",
    )
    p.add_argument(
        "--shard",
        default=None,
        help="this process's shard, 0 to --total-shards - 1: it exports only the jobs with crc32(job_id) mod "
        "total shards equal to it (default: the configuration's shard, else 0)",
    )
    p.add_argument(
        "--total-shards",
        dest="total_shards",
        default=None,
        help="how many exporter processes share the jobs (default: the configuration's total_shards, else 1)",
    )
    p.add_argument(
        "--pod",
        default=None,
        help="automatic sharding: this StatefulSet pod's name (from the downward API, e.g. --pod=$(POD_NAME)); "
        "the shard is its ordinal, the number after the last '-'",
    )
    p.add_argument("--log.level", dest="log_level", default="info", choices=sorted(logs.LEVELS))
    p.add_argument("--log.format", dest="log_format", default="logfmt", choices=["logfmt", "json"])
    p.add_argument("--version", action="store_true", help="print the version and exit")
    p.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate --config.file (and --web.config.file) and exit: 0 valid, 2 not",
    )
    p.add_argument(
        "--config.schema",
        dest="config_schema",
        choices=["config", "web"],
        nargs="?",
        const="config",
        help="print the JSON Schema of the configuration file (or of the web configuration: web) and exit",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the exporter until SIGTERM or SIGINT; 2 on bad configuration."""
    hangups = HangUps()  # first: a SIGHUP while starting must not end the process
    from . import config
    from .app import Exporter
    from .reload import Reloader
    from .web import webconfig
    from .web.server import WebApp, parse_listen_address, serve

    args = build_parser().parse_args(argv)
    if args.version:
        print(f"drs-exporter, version {__version__} (python {platform.python_version()})")
        return 0
    if args.config_schema:
        from . import schema  # only here: generating schemas is not part of start-up

        print(
            schema.dump(schema.config_schema() if args.config_schema == "config" else schema.web_config_schema()),
            end="",
        )
        return 0
    logs.setup(args.log_level, args.log_format)
    if not args.telemetry_path.startswith("/") or args.telemetry_path in ("/", "/-/healthy", "/-/ready"):
        log.error("invalid flag: --web.telemetry-path must be a path like /metrics, got %r", args.telemetry_path)
        return 2
    if not 0 < args.max_scrape_timeout <= 86400:
        log.error("invalid flag: --web.max-scrape-timeout must be seconds above 0, got %s", args.max_scrape_timeout)
        return 2
    try:
        overrides = shard_overrides(args.shard, args.total_shards, args.pod)
    except ValueError as exc:
        log.error("invalid flag: %s", exc)
        return 2
    try:
        parse_listen_address(args.listen)
        cfg = config.load(args.config_file, overrides)
    except config.ConfigError as exc:
        if exc.key == "shard" and "shard" in overrides and "total_shards" not in overrides:
            # The shard came from --shard (--pod needs --total-shards), the total from the file or its
            # default: blame the flag, not a key the file may not even have.
            log.error(
                "invalid flag: --shard %s %s (total_shards is the configuration file's, else 1): give --total-shards",
                args.shard,
                str(exc).removeprefix("shard: "),
            )
        else:
            log.error("invalid configuration: %s", exc)
        return 2
    except ValueError as exc:
        log.error("invalid configuration: %s", exc)
        return 2
    try:
        web = webconfig.load(args.web_config_file) if args.web_config_file else webconfig.WebConfig()
    except config.ConfigError as exc:
        log.error("invalid web configuration: %s", exc)
        return 2
    if args.config_check:
        log.info(
            "configuration is valid: %d projects, %d jobs, %d keys", len(cfg.projects), len(cfg.jobs), len(cfg.keys)
        )
        return 0
    exporter = Exporter(cfg)
    app = WebApp(exporter, args.telemetry_path, web, args.max_scrape_timeout)
    try:
        server = serve(app, args.listen)
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.listen, exc.strerror or exc)
        exporter.close()
        return 1

    stopped_at: list[float] = []

    def stop(signum: int, frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopped_at.append(time.monotonic())
        server.stop()

    reloader = Reloader(app, server.apply_web_config, args.config_file, args.web_config_file, overrides)
    if args.enable_lifecycle:
        app.reloader = reloader.reload

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.bind_addr[:2]
    app.ready.set()
    shard = cfg.sharding
    log.info(
        "listening on %s:%s%s (version %s, %d jobs, %d keys%s)",
        host,
        port,
        " with TLS" if web.tls else "",
        __version__,
        sum(1 for job in cfg.jobs if shard.owns(job.id)),  # this shard's configured jobs, not every shard's
        sum(1 for job_id, _ in cfg.keys if shard.owns(job_id)),
        f", shard {cfg.shard} of {cfg.total_shards}" if cfg.total_shards > 1 else "",
    )
    hangups.ready(reloader.reload)  # serving: a SIGHUP during start-up reloads now
    if web.basic_auth_users:
        log.info("basic auth required (%d users)", len(web.basic_auth_users))
        costs = web.costs()
        if len(costs) > 1:
            log.warning(
                "basic auth users have different bcrypt costs (%s): unknown users are answered at cost %d, "
                "so response times tell the others apart; give every user the same cost",
                "; ".join(f"cost {cost}: {', '.join(users)}" for cost, users in sorted(costs.items())),
                web.dummy_cost(),
            )
    try:
        server.serve()
    finally:
        app.exporter.close()  # the one in use: a reload may have replaced the first
    # One grace for the server's drain and the threads left: the answers in flight had part of it.
    _finish_in_flight(SHUTDOWN_GRACE_SECONDS - (time.monotonic() - stopped_at[0]) if stopped_at else 0.0)
    log.info("stopped")
    return 0


def shard_overrides(shard: str | None, total: str | None, pod: str | None) -> dict[str, int]:
    """The configuration keys ``--shard``, ``--total-shards`` and ``--pod`` set; ValueError naming the bad flag."""
    from .base.sharding import Shard, pod_ordinal

    def number(flag: str, value: str, least: int) -> int:
        if not value.isascii() or not value.isdigit() or int(value) < least:
            raise ValueError(f"{flag} must be a whole number from {least}, got {value!r}")
        return int(value)

    overrides: dict[str, int] = {}
    if total is not None:
        overrides["total_shards"] = number("--total-shards", total, 1)
    if pod is not None:
        if shard is not None:
            raise ValueError("--shard and --pod cannot be combined (--pod derives the shard from the pod's ordinal)")
        if total is None:
            raise ValueError("--pod needs --total-shards (the number of the StatefulSet's replicas)")
        try:
            overrides["shard"] = pod_ordinal(pod)
        except ValueError as exc:
            raise ValueError(f"--pod: {exc}") from None
        flag = f"--pod {pod!r} (ordinal {overrides['shard']})"
    elif shard is not None:
        overrides["shard"] = number("--shard", shard, 0)
        flag = f"--shard {overrides['shard']}"
    if "shard" in overrides and "total_shards" in overrides:
        try:
            Shard(overrides["shard"], overrides["total_shards"])
        except ValueError:
            raise ValueError(
                f"{flag} must be below --total-shards {overrides['total_shards']} (shards count from 0)"
            ) from None
    return overrides


# After SIGTERM, scrapes and API requests still running get this long before the process exits
# without them (Prometheus simply scrapes again); exporters are expected to stop promptly.
SHUTDOWN_GRACE_SECONDS = 2.0


def _finish_in_flight(grace: float) -> None:
    deadline = time.monotonic() + grace
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    for thread in others:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t for t in others if t.is_alive()]
    if left:
        log.info("stopped; %d requests still in flight are abandoned", len(left))
        logging.shutdown()
        # Thread pools would otherwise be joined at interpreter exit, however long their requests take.
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
