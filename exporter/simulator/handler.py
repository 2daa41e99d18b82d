"""The simulator's request handler: routing API requests to the mixins of each API area."""

from __future__ import annotations

import logging
import re
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from .. import __version__
from .admin import AdminMixin
from .base import ApiError
from .compare_api import CompareMixin, compare_route
from .faults import Faults
from .health_api import HealthMixin, health_route
from .iam import IamMixin
from .jobs_api import JobsMixin
from .misbehave import MisbehaveMixin
from .progress_api import ProgressMixin

log = logging.getLogger("drs-simulator")

PROGRESS_PATH = re.compile(r"^/v5/([^/]+)/jobs/([^/]+)/progress-data/([^/]+)/?$")
V5_JOBS = re.compile(r"^/v5/([^/]+)/jobs/?$")
V5_JOB = re.compile(r"^/v5/([^/]+)/jobs/([^/]+)/?$")
V3_JOBS = re.compile(r"^/v3/([^/]+)/jobs/?$")
V3_BATCH = re.compile(r"^/v3/([^/]+)/jobs/batch-progress/?$")


class Handler(AdminMixin, IamMixin, JobsMixin, ProgressMixin, CompareMixin, HealthMixin, MisbehaveMixin):
    """Routes API and admin requests."""

    server_version = f"drs-simulator/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms
        # to every answer that fits in one segment (real gateways set it too).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch("POST")

    # --- plumbing -------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        try:
            if parts.path.startswith("/_sim/") or parts.path == "/":
                self._admin(method, parts.path, body)
                return
            self._api(method, parts.path, parts.query, body)
        except ApiError as err:
            self._json(err.status, {"error_code": err.code, "error_msg": err.msg}, err.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _api(self, method: str, path: str, query: str, body: bytes) -> None:
        sim = self.server
        faults: Faults = sim.scenario.faults
        operation = "iam_token" if path.startswith("/v3/auth/tokens") else "other"
        match = PROGRESS_PATH.match(path)
        if match:
            operation = "show_progress_data"
        elif V3_BATCH.match(path):
            operation = "batch_progress"
        elif V5_JOBS.match(path) or V3_JOBS.match(path):
            operation = "list_jobs_" + path.split("/")[1]
        compare = compare_route(path)
        if compare is not None:
            operation = compare[0]
        health = health_route(path)
        if health is not None:
            operation = health.operation
        with sim.lock:
            sim.stats[operation] += 1
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000.0)
        if operation == "iam_token" and method == "POST":
            if faults.iam_slow_headers:
                self._slow_headers()
                return
            if sim.take_iam_error():
                raise ApiError(503, "APIGW.0613", "IAM is unavailable.")
            self._iam_login(body)
            return
        if match and "offset=0" not in query:
            job = sim.scenario.jobs.get(match.group(2))
            if job is not None and job.fault == "expire_token_mid_paging" and not job.fault_fired:
                job.fault_fired = True
                with sim.creds.lock:
                    for token in sim.creds.issued:
                        sim.creds.issued[token] = 0.0
        self._check_auth(method, path, query, body)
        if sim.take_throttle() or sim.chance(faults.rate_429):
            raise ApiError(
                429, "APIGW.0308", "The throttling threshold has been reached", {"Retry-After": faults.retry_after}
            )
        if sim.chance(faults.rate_5xx):
            raise ApiError(500, "DRS.M00004", "Service abnormal.")
        if match and method == "GET":
            job = sim.scenario.jobs.get(match.group(2))
            if job is not None and job.fault and self._transport_fault(job.fault):
                return
            payload = self._progress(match.group(1), match.group(2), match.group(3), query)
        elif compare is not None and method == "GET":
            job = sim.scenario.jobs.get(compare[1].group(2))
            if job is not None and job.compare_fault and self._transport_fault(job.compare_fault):
                return
            payload = self._compare(compare[0], compare[1], query)
        elif health is not None:
            jobs = self._health_jobs(health, body)
            job_fault = next((j.health_fault for j in jobs if j.health_fault), None)
            if job_fault and self._transport_fault(job_fault):
                return
            payload = self._health(health, method, query, body)
        elif path.rstrip("/") == "/v3/projects" and method == "GET":
            payload = self._projects(query)
        elif operation.startswith("list_jobs") and faults.list_slow_headers:
            self._slow_headers()
            return
        elif (operation.startswith("list_jobs") and sim.chance(faults.rate_list_error)) or (
            faults.job_progress_error and (V3_BATCH.match(path) or (V5_JOB.match(path) and "type=progress" in query))
        ):
            raise ApiError(500, "DRS.M00004", "Service abnormal.")
        elif (m := V5_JOBS.match(path)) and method == "GET":
            payload = self._v5_list(m.group(1), query)
        elif (m := V3_BATCH.match(path)) and method == "POST":
            payload = self._batch_progress(m.group(1), body)
        elif (m := V3_JOBS.match(path)) and method == "POST":
            payload = self._v3_list(m.group(1), body)
        elif (m := V5_JOB.match(path)) and method == "GET":
            payload = self._v5_job(m.group(1), m.group(2), query)
        else:
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        fault = None
        if match and (job := sim.scenario.jobs.get(match.group(2))) is not None:
            fault = job.fault
        elif compare is not None and (job := sim.scenario.jobs.get(compare[1].group(2))) is not None:
            fault = job.compare_fault
        elif health is not None:
            fault = next((j.health_fault for j in self._health_jobs(health, body) if j.health_fault), None)
        if sim.chance(faults.rate_malformed) or fault == "malformed":
            self._send(200, payload[: max(1, len(payload) // 2)])
            return
        if fault == "trickle":
            self._trickle(payload)
            return
        if fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) + 1000))
            self.end_headers()
            self.wfile.write(payload)
            self.close_connection = True
            return
        self._send(200, payload)
