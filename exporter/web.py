"""The HTTP side: ``/metrics``, a landing page and health endpoints, served by a threaded WSGI server."""

from __future__ import annotations

import html
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from . import __version__
from .app import Exporter
from .exposition import choose

log = logging.getLogger(__name__)

DEFAULT_SCRAPE_TIMEOUT = 10.0
StartResponse = Callable[..., Any]


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

    def __init__(self, exporter: Exporter, telemetry_path: str = "/metrics") -> None:
        self.exporter = exporter
        self.telemetry_path = telemetry_path
        self.ready = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", "Only GET and HEAD are supported.\n", [("Allow", "GET, HEAD")]
            )
        if path == self.telemetry_path:
            return self._metrics(environ, start_response)
        if path == "/":
            return self._landing(start_response)
        if path == "/-/healthy":
            return self._plain(start_response, "200 OK", "Healthy\n")
        if path == "/-/ready":
            if self.ready.is_set():
                return self._plain(start_response, "200 OK", "Ready\n")
            return self._plain(start_response, "503 Service Unavailable", "Not ready\n")
        return self._plain(start_response, "404 Not Found", "Not found.\n")

    @staticmethod
    def _plain(
        start_response: StartResponse, status: str, text: str, extra: list[tuple[str, str]] | None = None
    ) -> list[bytes]:
        body = text.encode()
        start_response(
            status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *(extra or [])]
        )
        return [body]

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        budget = scrape_budget(environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS"))
        fmt = choose(environ.get("HTTP_ACCEPT", ""))
        compress = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        try:
            body = self.exporter.scrape(budget, fmt, compress=compress)
        except Exception:
            log.exception("rendering metrics failed")
            return self._plain(start_response, "500 Internal Server Error", "Rendering metrics failed.\n")
        headers = [("Content-Type", fmt.content_type), ("Vary", "Accept-Encoding, Accept")]
        if compress:
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    def _landing(self, start_response: StartResponse) -> list[bytes]:
        config = self.exporter.config
        rows = "".join(
            f"<tr><td><code>{html.escape(job.id)}</code></td><td>{html.escape(', '.join(job.object_types))}</td></tr>"
            for job in config.jobs
        )
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Huawei Cloud DRS Exporter</title></head>
<body>
<h1>Huawei Cloud DRS Exporter</h1>
<p>Version {html.escape(__version__)}. Per-object migration progress of Huawei Cloud Data Replication Service jobs.</p>
<ul>
<li><a href="{html.escape(self.telemetry_path)}">Metrics</a></li>
<li><a href="/-/healthy">Health</a> and <a href="/-/ready">readiness</a></li>
</ul>
<h2>Configuration</h2>
<p>Endpoint <code>{html.escape(config.endpoint)}</code>, project <code>{html.escape(config.project_id)}</code>,
cache TTL {config.cache_ttl:g}s, page size {config.page_size}, max concurrency {config.max_concurrency}.</p>
<table><tr><th>Job</th><th>Object types</th></tr>{rows}</table>
</body></html>
"""
        body = page.encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)


def parse_listen_address(address: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` into a bindable (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address must be [host]:port, got {address!r}")
    host = host.strip("[]")
    return (host or "0.0.0.0", int(port))  # noqa: S104 - Prometheus convention: ':port' is every interface


def serve(app: WebApp, address: str) -> WSGIServer:
    """Bind ``address`` and return the server (not yet serving)."""
    host, port = parse_listen_address(address)
    server_class = _IPv6Server if ":" in host else _Server
    return make_server(host, port, app, server_class=server_class, handler_class=_QuietHandler)
