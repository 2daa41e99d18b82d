"""The HTTP side: ``/metrics``, a landing page and health endpoints, and the server that runs them."""

from __future__ import annotations

import dataclasses
import logging
import math
import resource
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import gzip_accepted

from ..app import Exporter
from ..render.exposition import Format, choose
from . import httpwire
from .connections import Limits
from .httpserver import CLIENT_KEY, QUEUED_KEY, Server
from .passwords import PasswordChecks
from .webconfig import Verdict, WebConfig

if TYPE_CHECKING:
    from .statuspage import StatusPages

log = logging.getLogger(__name__)

DEFAULT_SCRAPE_TIMEOUT = 10.0
# A client may ask for a longer scrape (X-Prometheus-Scrape-Timeout-Seconds) up to this; any client
# can send the header, and a longer wait holds a worker for longer (--web.max-scrape-timeout).
MAX_SCRAPE_TIMEOUT = 60.0
StartResponse = Callable[..., Any]


def accepts_gzip(header: str) -> bool:
    """prometheus_client's ``gzip_accepted``; ``gzip;q=0`` means not acceptable (RFC 9110, as Go reads it)."""
    if not gzip_accepted(header):
        return False
    for entry in header.split(","):
        coding, _, params = entry.partition(";")
        if coding.strip().lower() == "gzip":
            q = params.replace(" ", "").lower()
            if q.startswith("q=") and _zero(q[2:]):
                return False
    return True


def _zero(q: str) -> bool:
    try:
        return float(q) == 0
    except ValueError:
        return False


def scrape_budget(header: str | None, maximum: float = MAX_SCRAPE_TIMEOUT) -> float:
    """Seconds a scrape may spend: Prometheus's timeout header (default 10 s, at most ``maximum``) minus a margin."""
    timeout = min(DEFAULT_SCRAPE_TIMEOUT, maximum)
    if header:
        try:
            value = float(header)
            if math.isfinite(value) and value > 0:
                timeout = min(value, maximum)
        except ValueError:
            pass
    # Leave time to render and send the answer before Prometheus gives up.
    return max(0.05, timeout - min(0.5, timeout * 0.2))


class WebApp:
    """WSGI application of the exporter."""

    def __init__(
        self,
        exporter: Exporter,
        telemetry_path: str = "/metrics",
        web: WebConfig | None = None,
        max_scrape_timeout: float = MAX_SCRAPE_TIMEOUT,
    ) -> None:
        self.exporter = exporter
        self.telemetry_path = telemetry_path
        self.web = web or WebConfig()
        self.max_scrape_timeout = max_scrape_timeout
        self.checks = PasswordChecks()  # kept across web configurations
        self.ready = threading.Event()
        # POST /-/reload: None unless --web.enable-lifecycle; returns why a reload failed, or None.
        self.reloader: Callable[[], str | None] | None = None
        self._pages: StatusPages | None = None
        self._pages_lock = threading.Lock()

    def use(self, exporter: Exporter) -> None:
        """Serve ``exporter`` from now on (a reload); scrapes in flight finish with the one they began with."""
        with self._pages_lock:
            self.exporter = exporter
            self._pages = None

    @property
    def pages(self) -> StatusPages:
        """The status pages, made on first use: their modules were a tenth of the start-up time."""
        if self._pages is None:
            with self._pages_lock:
                if self._pages is None:
                    from .statuspage import StatusPages  # deferred on purpose

                    self._pages = StatusPages(self.exporter, self.telemetry_path)
        return self._pages

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._respond(environ, start_response)
        # HEAD: the headers GET would have, no body (the server sends what the application returns).
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _respond(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        web = self.web  # one configuration for the whole request, should it be replaced meanwhile
        start_response = web.with_headers(start_response)
        if not web.allow():
            return self._plain(start_response, "429 Too Many Requests", "Too many requests.\n")
        client = environ.get(CLIENT_KEY) or environ.get("REMOTE_ADDR", "")
        verdict = web.authorize(environ.get("HTTP_AUTHORIZATION"), client, self.checks, environ.get(QUEUED_KEY))
        if verdict is Verdict.BUSY:
            return self._plain(
                start_response, "429 Too Many Requests", "Too many password checks at once.\n", [("Retry-After", "1")]
            )
        if verdict is not Verdict.OK:
            return self._plain(
                start_response,
                "401 Unauthorized",
                "Unauthorized.\n",
                [("WWW-Authenticate", 'Basic realm="drs-exporter", charset="UTF-8"')],
            )
        if path == "/-/reload":
            return self._reload(method, start_response)
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", "Only GET and HEAD are supported.\n", [("Allow", "GET, HEAD")]
            )
        if path == self.telemetry_path:
            try:
                fmt = choose(environ.get("HTTP_ACCEPT", ""))
            except (TypeError, ValueError):  # prometheus_client cannot compare the version asked for
                return self._plain(start_response, "400 Bad Request", "Accept header: unusable version.\n")
            compress = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
            if method == "HEAD":
                # Headers only: no refresh, no rendering, so no Content-Length.
                start_response("200 OK", self._metrics_headers(fmt, compress))
                return []
            return self._metrics(environ, start_response, fmt, compress)
        if path == "/":
            return self._status(start_response, "html", environ)
        if path == "/status.json":
            return self._status(start_response, "json", environ)
        if path == "/-/healthy":
            return self._plain(start_response, "200 OK", "Healthy\n")
        if path == "/-/ready":
            if self.ready.is_set():
                return self._plain(start_response, "200 OK", "Ready\n")
            return self._plain(start_response, "503 Service Unavailable", "Not ready\n")
        return self._plain(start_response, "404 Not Found", "Not found.\n")

    def _reload(self, method: str, start_response: StartResponse) -> list[bytes]:
        """Prometheus's lifecycle endpoint: POST or PUT reloads, when --web.enable-lifecycle allows it."""
        if method not in ("POST", "PUT"):
            return self._plain(
                start_response, "405 Method Not Allowed", "Only POST and PUT are supported.\n", [("Allow", "POST, PUT")]
            )
        if self.reloader is None:
            return self._plain(start_response, "403 Forbidden", "Lifecycle API is not enabled.\n")
        failure = self.reloader()
        if failure is not None:
            return self._plain(start_response, "500 Internal Server Error", f"failed to reload config: {failure}\n")
        return self._plain(start_response, "200 OK", "Reloaded.\n")

    @staticmethod
    def _plain(
        start_response: StartResponse, status: str, text: str, extra: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        body = text.encode()
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *(extra or [])]
        )
        return [body]

    @staticmethod
    def _metrics_headers(fmt: Format, compress: bool) -> list[tuple[str, str]]:
        headers = [("Content-Type", fmt.content_type), ("Vary", "Accept-Encoding, Accept")]
        if compress:
            headers.append(("Content-Encoding", "gzip"))
        return headers

    def _metrics(
        self, environ: dict[str, Any], start_response: StartResponse, fmt: Format, compress: bool
    ) -> list[bytes]:
        budget = scrape_budget(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"), self.max_scrape_timeout)
        started = time.monotonic()
        exporter = self.exporter  # the one a scrape begins with, whatever a reload does meanwhile
        try:
            with exporter.in_use():
                chunks = exporter.scrape(budget, fmt, compress=compress)
        except Exception:
            log.exception("rendering metrics failed")
            return self._plain(start_response, "500 Internal Server Error", "Rendering metrics failed.\n")
        headers = self._metrics_headers(fmt, compress)
        size = sum(len(chunk) for chunk in chunks)
        headers.append(("Content-Length", str(size)))
        log.debug(
            "scrape answered in %.3fs: %d bytes, %s%s",
            time.monotonic() - started,
            size,
            fmt.content_type,
            ", gzip" if compress else "",
        )
        start_response("200 OK", headers)
        # In chunks, as the exporter keeps them: the server sends them without joining them.
        return chunks

    def _status(self, start_response: StartResponse, kind: str, environ: dict[str, Any]) -> list[bytes]:
        """The status page or its JSON, from cached state only: never a refresh or an API call."""
        compress = accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        try:
            body = self.pages.body(kind, compress=compress)
        except Exception:
            log.exception("rendering the status page failed")
            return self._plain(start_response, "500 Internal Server Error", "Rendering the status page failed.\n")
        content_type = "application/json" if kind == "json" else "text/html; charset=utf-8"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), ("Vary", "Accept-Encoding")]
        if compress:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` into a bindable (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address must be [host]:port, got {address!r}")
    host = host.strip("[]")
    # Prometheus convention: ":port" means every interface; give a host to bind one.
    return (host or "0.0.0.0", int(port))  # noqa: S104  # nosec B104


class WebServer(Server):
    """The exporter's server: its WSGI app and TLS side follow the web configuration, which can change live."""

    def __init__(self, app: WebApp, host: str, port: int, limits: Limits | None = None) -> None:
        self.web_app = app
        tls = app.web.tls
        super().__init__(app, host, port, tls.acceptor() if tls is not None else None, limits, self._needs_check)

    def _needs_check(self, request: httpwire.Request) -> bool:
        """Whether the request's credentials need bcrypt: then it runs apart from the workers (on the loop)."""
        return self.web_app.web.needs_check(request.header("AUTHORIZATION"))

    def apply_web_config(self, web: WebConfig) -> None:
        """Serve new connections with ``web`` (users, TLS certificate and key, client CAs, headers, rate limit).

        Connections already open finish with the TLS settings they were accepted with; every request
        from now on is checked against the new users. Raises (and changes nothing) when the TLS
        settings cannot be loaded.
        """
        acceptor = web.tls.acceptor() if web.tls is not None else None
        self.set_acceptor(acceptor)
        self.web_app.web = web


def default_limits() -> Limits:
    """The server's limits, within the process's limit of open files."""
    limits = Limits()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft - 64 < limits.max_connections:
        # Below it, a flood is met by closing waiting connections rather than by failing accept().
        fit = max(32, soft - 64)
        limits = dataclasses.replace(
            limits, max_connections=fit, connections_per_ip=min(limits.connections_per_ip, fit)
        )
    return limits


def serve(app: WebApp, address: str, limits: Limits | None = None) -> WebServer:
    """Bind ``address`` (TLS when the app's web configuration says so); serve() on the result runs it."""
    host, port = parse_listen_address(address)
    return WebServer(app, host, port, limits or default_limits())
