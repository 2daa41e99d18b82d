"""What every part of the simulator's request handler shares: the error type and the answer plumbing."""

from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from .scenario import Scenario

if TYPE_CHECKING:
    from .server import Simulator


class ApiError(Exception):
    """An error answer in the DRS body format."""

    def __init__(self, status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.msg = status, code, msg
        self.headers = headers or {}


def page_params(params: dict[str, list[str]], *, default_limit: int) -> tuple[int, int]:
    """Item ``offset`` and ``limit`` of a list request, checked as DRS checks them."""
    try:
        offset = int(params.get("offset", ["0"])[0])
    except ValueError:
        raise ApiError(400, "DRS.M00210", "Invalid page value.") from None
    try:
        limit = int(params.get("limit", [str(default_limit)])[0])
    except ValueError:
        raise ApiError(400, "DRS.M00202", "Invalid parameter value: limit.") from None
    if offset < 0:
        raise ApiError(400, "DRS.M00210", "Invalid page value.")
    if not 1 <= limit <= 1000:
        raise ApiError(400, "DRS.M00211", "The page is over the upper limit.")
    return offset, limit


class HandlerBase(BaseHTTPRequestHandler):
    """The answer helpers of the simulator's handler; each API area adds its methods in a mixin."""

    protocol_version = "HTTP/1.1"
    server: Simulator

    def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        try:
            body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: written as \ud800, as a JSON API would
            body = json.dumps(obj).encode("ascii")
        self._send(status, body, headers)

    # --- admin ----------------------------------------------------------------------------
    def _project(self, project_id: str) -> Scenario:
        if project_id != self.server.scenario.project_id:
            raise ApiError(403, "DRS.M00261", "Invalid project ID.")
        return self.server.scenario
