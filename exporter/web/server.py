"""The HTTP side: ``/metrics``, a landing page and health endpoints, served by a threaded WSGI server."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from cheroot import wsgi
from prometheus_client.exposition import gzip_accepted

from ..app import Exporter
from ..render.exposition import Format, choose
from .webconfig import WebConfig

if TYPE_CHECKING:
    from .statuspage import StatusPages

log = logging.getLogger(__name__)

DEFAULT_SCRAPE_TIMEOUT = 10.0
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


def scrape_budget(header: str | None) -> float:
    """Seconds a scrape may spend: Prometheus's timeout header (default 10 s) minus a margin."""
    timeout = DEFAULT_SCRAPE_TIMEOUT
    if header:
        try:
            value = float(header)
            if math.isfinite(value) and value > 0:
                timeout = value
        except ValueError:
            pass
    # Leave time to render and send the answer before Prometheus gives up.
    return max(0.05, timeout - min(0.5, timeout * 0.2))


class WebApp:
    """WSGI application of the exporter."""

    def __init__(self, exporter: Exporter, telemetry_path: str = "/metrics", web: WebConfig | None = None) -> None:
        self.exporter = exporter
        self.telemetry_path = telemetry_path
        self.web = web or WebConfig()
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
        # HEAD: the headers GET would have, no body (cheroot sends what the application returns).
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else body

    def _respond(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        start_response = self.web.with_headers(start_response)
        if not self.web.allow():
            return self._plain(start_response, "429 Too Many Requests", "Too many requests.\n")
        if not self.web.authorized(environ.get("HTTP_AUTHORIZATION")):
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
        budget = scrape_budget(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"))
        started = time.monotonic()
        try:
            chunks = self.exporter.scrape(budget, fmt, compress=compress)
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
        # In chunks: cheroot copies what is left of a write on every partial send.
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


# cheroot gives a connection a worker thread as soon as it sends anything, and the worker waits
# for the rest of the request: enough workers that dozens of slow or stuck clients cannot hold
# up a scrape (each is dropped after TIMEOUT seconds of silence); requests are capped in size.
# With TLS, though, cheroot does the handshake on its one accept thread: a client that connects
# and sends nothing delays every other client by up to TIMEOUT (cheroot issue 748).
THREADS = 64
TIMEOUT = 10
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024


def _error_log(msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
    """cheroot's error log through ours (it writes to stderr otherwise, outside the log format)."""
    # A failed TLS handshake, a reset or a timed-out write is the client's business, and anyone can
    # cause one: debug without a traceback, not a warning.
    quiet = any(word in msg for word in ("handshake", "TLS", "SSL", "socket.error", "timed out"))
    log.log(
        logging.DEBUG if quiet else max(level, logging.WARNING), "server: %s", msg, exc_info=traceback and not quiet
    )


class Server(wsgi.Server):
    """cheroot's WSGI server, whose web configuration a reload can replace."""

    def apply_web_config(self, web: WebConfig) -> None:
        """New requests use ``web``'s users, headers and limits; new connections its TLS certificates."""
        if (web.tls is None) != (self.ssl_adapter is None):
            # The listening socket speaks TLS or it does not: that takes a restart.
            raise ValueError("TLS cannot be turned on or off by a reload (tls_server_config); restart the exporter")
        if web.tls is not None:
            self.ssl_adapter = web.tls.adapter(TIMEOUT)
        self.wsgi_app.web = web


def serve(app: WebApp, address: str, web: WebConfig | None = None) -> Server:
    """Bind ``address`` with cheroot (a production WSGI server; TLS when configured); not yet serving."""
    host, port = parse_listen_address(address)
    server = Server(
        (host, port),
        app,
        numthreads=THREADS,
        request_queue_size=128,
        timeout=TIMEOUT,
        shutdown_timeout=5,
        server_name="drs-exporter",
    )
    server.error_log = _error_log  # type: ignore[method-assign]
    server.max_request_header_size = MAX_HEADER_BYTES
    server.max_request_body_size = MAX_BODY_BYTES
    if web is not None and web.tls is not None:
        server.ssl_adapter = web.tls.adapter(TIMEOUT)
    server.prepare()
    return server
