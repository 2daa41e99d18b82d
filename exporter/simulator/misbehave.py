"""Misbehaviour below the JSON level: stalls, resets, odd statuses, redirects, cut bodies."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .base import ApiError, HandlerBase

log = logging.getLogger("drs-simulator")


class RedirectTarget(ThreadingHTTPServer):
    """Where the ``redirect`` fault points: another loopback port that records which credentials arrive."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.seen: list[dict[str, bool]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class RecordingHandler(BaseHTTPRequestHandler):
    """Records the credential headers of each request and answers an empty progress page."""

    protocol_version = "HTTP/1.1"
    server: RedirectTarget

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("redirect target: " + format, *args)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append(
                {name: name in self.headers for name in ("X-Auth-Token", "X-Security-Token", "Authorization")}
            )
        payload = b'{"count": 0, "flow_compare_data": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class MisbehaveMixin(HandlerBase):
    """Sends answers the way a broken server or proxy would."""

    def _trickle(self, payload: bytes) -> None:
        """Send ``payload`` one byte every 0.25 s (for at most 60 s), as a stalling proxy might."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.flush()
        for i in range(min(len(payload), 240)):
            self.wfile.write(payload[i : i + 1])
            self.wfile.flush()
            time.sleep(0.25)
        self.close_connection = True

    def _slow_headers(self) -> None:
        """The status line, then a header byte every 0.25 s (at most 60 s): each read is quick, headers never end."""
        self.close_connection = True
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        for _ in range(240):
            self.wfile.write(b"X")
            self.wfile.flush()
            time.sleep(0.25)

    def _gzip_empty_blocks(self) -> None:
        """A gzip body of empty deflate blocks, one every 0.25 s (for at most 60 s): bytes arrive, no data ever."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Encoding", "gzip")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        self.wfile.flush()
        for _ in range(240):
            self.wfile.write(b"\x00\x00\x00\xff\xff")  # a stored block of length 0, not final
            self.wfile.flush()
            time.sleep(0.25)

    def _transport_fault(self, fault: str) -> bool:
        """Misbehave below the JSON level; True when the answer (or its absence) is done."""
        if fault == "slow_headers":
            self._slow_headers()
            return True
        if fault == "gzip_empty_blocks":
            self._gzip_empty_blocks()
            return True
        if fault == "timeout":
            time.sleep(5)
            return False
        if fault == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True
        if fault.startswith("status:"):
            status = int(fault.split(":")[1])
            code = {500: "DRS.M00004", 502: "APIGW.0201", 503: "APIGW.0613", 504: "APIGW.0201"}[status]
            raise ApiError(status, code, "Simulated failure.")
        if fault.startswith("plain:"):
            self._send(int(fault.split(":")[1]), b"")
            return True
        if fault == "html":
            page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return True
        if fault == "skew":
            raise ApiError(401, "APIGW.0303", "Incorrect app authentication information: X-Sdk-Date skewed")
        if fault == "redirect":
            target = self.server.redirect_target()
            self.send_response(302)
            self.send_header("Location", target.url + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if fault == "garbage_error_code":
            raise ApiError(400, "Something went wrong <b>" + uuid.uuid4().hex + "</b>", "Free text as a code.")
        if fault == "reject_token":
            raise ApiError(403, "DRS.M00100", "Invalid token.")
        if fault in ("deep_json", "huge_create_time"):
            junk = '"junk":' + "[" * 5000 + "]" * 5000 if fault == "deep_json" else '"create_time":' + "9" * 400
            count = 1 if fault == "deep_json" else 0
            self._send(200, (f'{{"count":{count},' + junk + ',"flow_compare_data":[]}').encode())
            return True
        return False
