"""A DRS API simulator: progress data with real paging, gateway auth checks, IAM tokens, faults.

Run ``drs-simulator --help``. It binds 127.0.0.1 by default and prints one JSON line with its
URL and the credentials to use. ``/_sim/*`` endpoints let tests inspect and steer it.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import random
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .. import __version__, signer
from ..progress import OBJECT_TYPES
from .scenario import ODD_PROGRESS, Faults, Scenario, SimJob, apply_faults, dump, generated, load_scenario, update_job

log = logging.getLogger("drs-simulator")

PROGRESS_PATH = re.compile(r"^/v5/([^/]+)/jobs/([^/]+)/progress-data/([^/]+)/?$")
V5_JOBS = re.compile(r"^/v5/([^/]+)/jobs/?$")
V5_JOB = re.compile(r"^/v5/([^/]+)/jobs/([^/]+)/?$")
V3_JOBS = re.compile(r"^/v3/([^/]+)/jobs/?$")
V3_BATCH = re.compile(r"^/v3/([^/]+)/jobs/batch-progress/?$")
JOB_ADMIN_PATH = re.compile(r"^/_sim/jobs/([^/]+)$")
MAX_SKEW_SECONDS = 15 * 60


class ApiError(Exception):
    """An error answer in the DRS body format."""

    def __init__(self, status: int, code: str, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status, self.code, self.msg = status, code, msg
        self.headers = headers or {}


class Credentials:
    """What the simulated gateway accepts."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        static_tokens: list[str],
        iam_domain: str,
        iam_user: str,
        iam_password: str,
        token_ttl: float,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.static_tokens = set(static_tokens)
        self.iam_domain = iam_domain
        self.iam_user = iam_user
        self.iam_password = iam_password
        self.token_ttl = token_ttl
        self.issued: dict[str, float] = {}  # token -> expiry (Unix seconds)
        self.revoked: set[str] = set()  # tokens DRS itself rejects (403 DRS.M00100)
        self.lock = threading.Lock()


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


class Handler(BaseHTTPRequestHandler):
    """Routes API and admin requests."""

    protocol_version = "HTTP/1.1"
    server: Simulator
    server_version = f"drs-simulator/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms
        # to every answer that fits in one segment (real gateways set it too).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
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
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers)

    # --- admin ----------------------------------------------------------------------------

    def _admin(self, method: str, path: str, body: bytes) -> None:
        sim = self.server
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raise ApiError(400, "SIM.BADJSON", "body is not JSON") from None
        if path == "/" and method == "GET":
            self._json(
                200, {"simulator": "drs-simulator", "version": __version__, "project_id": sim.scenario.project_id}
            )
        elif path == "/_sim/stats" and method == "GET":
            with sim.lock:
                self._json(200, {"requests": dict(sim.stats), "progress_data": dict(sim.key_stats)})
        elif path == "/_sim/stats/reset" and method == "POST":
            with sim.lock:
                sim.stats.clear()
                sim.key_stats.clear()
            self._json(200, {})
        elif path == "/_sim/jobs" and method == "GET":
            self._send(200, dump(sim.scenario).encode())
        elif path == "/_sim/faults" and method == "POST":
            try:
                sim.scenario.faults = apply_faults(sim.scenario.faults, data)
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "SIM.BADFAULT", str(exc)) from None
            self._json(200, sim.scenario.faults.__dict__)
        elif path == "/_sim/redirected" and method == "GET":
            target = sim.redirect_target()
            with target.lock:
                self._json(200, {"seen": list(target.seen)})
        elif path == "/_sim/order" and method == "GET":
            with sim.lock:
                self._json(200, {"order": list(sim.order)})
        elif path == "/_sim/tokens/revoke" and method == "POST":
            with sim.creds.lock:
                sim.creds.revoked.update(sim.creds.issued)
            self._json(200, {})
        elif path == "/_sim/tokens/expire" and method == "POST":
            with sim.creds.lock:
                for token in sim.creds.issued:
                    sim.creds.issued[token] = 0.0
            self._json(200, {})
        elif (m := JOB_ADMIN_PATH.match(path)) and method == "POST":
            job = sim.scenario.jobs.get(m.group(1))
            if job is None:
                raise ApiError(404, "SIM.NOJOB", "no such job")
            try:
                update_job(job, data, sim.scenario.elapsed())
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "SIM.BADJOB", str(exc)) from None
            self._json(200, {})
        else:
            raise ApiError(404, "SIM.NOTFOUND", f"no admin endpoint {method} {path}")

    # --- API ------------------------------------------------------------------------------

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
        fault = job.fault if match and (job := sim.scenario.jobs.get(match.group(2))) is not None else None
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

    def _check_auth(self, method: str, path: str, query: str, body: bytes) -> None:
        creds = self.server.creds
        token = self.headers.get("X-Auth-Token")
        if token is not None:
            if token in creds.static_tokens:
                return
            with creds.lock:
                expiry = creds.issued.get(token)
                revoked = token in creds.revoked
            if revoked or self.server.scenario.faults.reject_tokens:
                raise ApiError(403, "DRS.M00100", "Invalid token.")
            if expiry is None:
                raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: token invalid")
            if expiry <= time.time():
                raise ApiError(401, "APIGW.0307", "The token must be updated")
            return
        auth = signer.parse_authorization(self.headers.get("Authorization", ""))
        if auth is None:
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: no credentials")
        signed = [name for name in auth["SignedHeaders"].split(";") if name]
        headers = {name: self.headers.get(name) for name in signed}
        if "host" not in signed or "x-sdk-date" not in signed or any(v is None for v in headers.values()):
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: headers not signed")
        try:
            date = datetime.strptime(str(headers["x-sdk-date"]), signer.DATE_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: bad X-Sdk-Date") from None
        if abs(date.timestamp() - time.time()) > MAX_SKEW_SECONDS:
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: X-Sdk-Date skewed")
        if auth["Access"] != creds.access_key:
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: unknown access key")
        canonical = signer.canonical_request(method, path, query, {k: str(v) for k, v in headers.items()}, signed, body)
        expected = signer.signature(creds.secret_key, signer.string_to_sign(canonical, str(headers["x-sdk-date"])))
        if not hmac.compare_digest(expected, auth["Signature"]):
            raise ApiError(401, "APIGW.0301", "Incorrect IAM authentication information: verify aksk signature fail")

    def _iam_login(self, body: bytes) -> None:
        creds = self.server.creds
        try:
            auth = json.loads(body)["auth"]
            user = auth["identity"]["password"]["user"]
            ok = (
                user["name"] == creds.iam_user
                and user["password"] == creds.iam_password
                and user["domain"]["name"] == creds.iam_domain
                and auth["scope"]["project"]["id"] == self.server.scenario.project_id
            )
        except (ValueError, KeyError, TypeError):
            self._json(400, {"error": {"code": 400, "message": "The request body is invalid.", "title": "Bad Request"}})
            return
        if not ok:
            self._json(
                401, {"error": {"code": 401, "message": "The username or password is wrong.", "title": "Unauthorized"}}
            )
            return
        token = "MIIsim" + secrets.token_urlsafe(48)
        now = time.time()
        expires = now + creds.token_ttl
        with creds.lock:
            creds.issued[token] = expires
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        payload = {
            "token": {
                "expires_at": datetime.fromtimestamp(expires, timezone.utc).strftime(fmt),
                "issued_at": datetime.fromtimestamp(now, timezone.utc).strftime(fmt),
                "methods": ["password"],
                "project": {"id": self.server.scenario.project_id},
            }
        }
        self._json(201, payload, {"X-Subject-Token": token})

    def _project(self, project_id: str) -> Scenario:
        if project_id != self.server.scenario.project_id:
            raise ApiError(403, "DRS.M00261", "Invalid project ID.")
        return self.server.scenario

    def _listed(self, scenario: Scenario, job_type: str, statuses: set[str], name: str) -> list[dict[str, Any]]:
        """Listed top-level jobs of ``job_type``, children nested, filtered like the real API."""
        jobs = [j for j in scenario.jobs.values() if j.listed and j.job_type == job_type]
        out: list[dict[str, Any]] = []
        for job in jobs:
            if job.parent is not None or (statuses and job.status not in statuses) or (name and name not in job.name):
                continue
            summary = job.summary()
            summary["children"] = [c.summary() for c in jobs if c.parent == job.id]
            out.append(summary)
        return out

    def _v5_list(self, project_id: str, query: str) -> bytes:
        scenario = self._project(project_id)
        if not scenario.v5_list:
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        params = parse_qs(query)
        job_type = params.get("job_type", [""])[0]
        if job_type not in ("migration", "sync", "cloudDataGuard"):
            raise ApiError(400, "DRS.M00201", "Parameter job_type is empty or invalid.")
        statuses = {s for s in params.get("status", [""])[0].split(",") if s}
        jobs = self._listed(scenario, job_type, statuses, params.get("name", [""])[0])
        offset, limit = int(params.get("offset", ["0"])[0]), int(params.get("limit", ["10"])[0])
        if not 1 <= limit <= 1000 or offset < 0:
            raise ApiError(400, "DRS.M00211", "The page is over the upper limit.")
        return json.dumps({"total_count": len(jobs), "jobs": jobs[offset : offset + limit]}).encode()

    def _v3_list(self, project_id: str, body: bytes) -> bytes:
        scenario = self._project(project_id)
        try:
            request = json.loads(body)
            page, per_page = int(request.get("cur_page", 1)), int(request.get("per_page", 10))
            job_type = str(request.get("db_use_type", "migration"))
        except (ValueError, TypeError, AttributeError):
            raise ApiError(400, "DRS.M00007", "Invalid request parameter.") from None
        if page < 1 or not 1 <= per_page <= 1000:
            raise ApiError(400, "DRS.M00210", "Invalid page value.")
        jobs = self._listed(scenario, job_type, set(), "")
        start = (page - 1) * per_page
        return json.dumps({"total_record": len(jobs), "jobs": jobs[start : start + per_page]}).encode()

    def _job_progress(self, scenario: Scenario, job_id: str) -> dict[str, Any]:
        job = scenario.jobs.get(job_id)
        if job is None or not job.listed:
            return {"job_id": job_id, "error_code": "DRS.M05003", "error_msg": "Task information not found."}
        elapsed = scenario.elapsed()
        mean = job.mean_progress(elapsed)
        speed = job.speed if job.frozen_at is None else 0.0
        remaining = "" if speed <= 0 else str(round((100 - mean) / speed))
        return {
            "job_id": job_id,
            "progress": str(round(mean)),
            "incre_trans_delay": str(int(job.delay)),
            "incr_trans_delay_millis": str(int(job.delay * 1000)),
            "task_mode": job.task_type,
            "transfer_status": job.status,
            "process_time": str(int(elapsed * 1000)),
            "remaining_time": remaining,
        }

    def _batch_progress(self, project_id: str, body: bytes) -> bytes:
        scenario = self._project(project_id)
        if not scenario.batch_progress:
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        try:
            ids = [str(i) for i in json.loads(body)["jobs"]]
        except (ValueError, TypeError, KeyError):
            raise ApiError(400, "DRS.M00007", "Invalid request parameter.") from None
        return json.dumps({"results": [self._job_progress(scenario, i) for i in ids], "count": len(ids)}).encode()

    def _v5_job(self, project_id: str, job_id: str, query: str) -> bytes:
        scenario = self._project(project_id)
        result = self._job_progress(scenario, job_id)
        if "error_code" in result:
            raise ApiError(400, result["error_code"], result["error_msg"])
        info = {
            k: result[k]
            for k in (
                "progress",
                "incr_trans_delay_millis",
                "task_mode",
                "transfer_status",
                "process_time",
                "remaining_time",
            )
        }
        info["incr_trans_delay"] = result["incre_trans_delay"]
        return json.dumps({"job": {"id": job_id, "progress_info": info}}).encode()

    def _projects(self, query: str) -> bytes:
        names = parse_qs(query).get("name", ["sim-region-1"])
        return json.dumps({"projects": [{"id": self.server.scenario.project_id, "name": names[0]}]}).encode()

    def _progress(self, project_id: str, job_id: str, object_type: str, query: str) -> bytes:
        sim = self.server
        if project_id != sim.scenario.project_id:
            raise ApiError(403, "DRS.M00261", "Invalid project ID.")
        job = sim.scenario.jobs.get(job_id)
        if job is None:
            raise ApiError(400, "DRS.M05003", "Task information not found.")
        if not job.listed:
            raise ApiError(400, "DRS.M05004", "The task has been deleted or its resources released.")
        with sim.lock:
            sim.key_stats[f"{job_id}/{object_type}"] += 1
            if len(sim.order) < 5000:
                sim.order.append(f"{job_id}/{parse_qs(query).get('offset', ['0'])[0]}")
        if job.latency_ms:
            time.sleep(job.latency_ms / 1000.0)
        if job.error:
            raise ApiError(400, job.error, job.error_msg)
        if object_type not in OBJECT_TYPES:
            raise ApiError(400, "DRS.M00202", "Invalid parameter value: type.")
        params = parse_qs(query)
        try:
            offset = int(params.get("offset", ["0"])[0])
        except ValueError:
            raise ApiError(400, "DRS.M00210", "Invalid page value.") from None
        try:
            limit = int(params.get("limit", ["10"])[0])
        except ValueError:
            raise ApiError(400, "DRS.M00202", "Invalid parameter value: limit.") from None
        if offset < 0:
            raise ApiError(400, "DRS.M00210", "Invalid page value.")
        if not 1 <= limit <= 1000:
            raise ApiError(400, "DRS.M00211", "The page is over the upper limit.")
        total = job.objects.get(object_type, 0)
        search = params.get("search_name", [""])[0]
        elapsed = sim.scenario.elapsed()
        if search:
            indexes = [i for i in range(total) if search in job.row(object_type, i, 0)["src_tb"]]
            count = len(indexes)
            window: Iterable[int] = indexes[offset : offset + limit]
        else:
            count = total
            window = range(offset, min(total, offset + limit))
        if job.fault:
            return self._odd_progress(job, object_type, offset, limit, count, total, elapsed)
        rows = job.rows_json(object_type, window, elapsed)
        head = json.dumps({"count": count, "create_time": job.create_time(time.time())})[:-1]
        return f'{head}, "flow_compare_data": {rows}}}'.encode()

    def _odd_progress(
        self, job: SimJob, object_type: str, offset: int, limit: int, count: int, total: int, elapsed: float
    ) -> bytes:
        """An answer with the data-level faults of ``job.fault``."""
        fault = job.fault
        start = max(0, offset - 1) if fault == "repeat_rows" and offset > 0 else offset
        rows: list[dict[str, Any]] = [
            job.row(object_type, i, elapsed) for i in range(start, min(total, offset + limit))
        ]
        answer: dict[str, Any] = {"count": count, "create_time": job.create_time(time.time())}
        if fault == "empty_page_once" and offset > 0:
            with self.server.lock:
                self.server.page_asks[f"{job.id}/{object_type}/{offset}"] += 1
                asks = self.server.page_asks[f"{job.id}/{object_type}/{offset}"]
            if asks % 2 == 1:
                rows = []
        elif fault == "short_page" and offset > 0:
            rows = []
        elif fault == "first_page_invalid" and offset == 0:
            for row in rows:
                row["progress"] = None
        elif fault == "count_grows" and offset == 0:
            answer["count"] = max(0, total - 500)
        elif fault == "count_larger":
            answer["count"] = total * 3
        elif fault == "count_smaller":
            answer["count"] = 1
        elif fault == "count_negative":
            answer["count"] = -1
        elif fault == "count_string":
            answer["count"] = "many"
        elif fault == "endless":
            answer["count"] = 10**9
        elif fault == "create_time_garbage":
            answer["create_time"] = "yesterday"
        elif fault == "odd_progress":
            for i, row in enumerate(rows):
                odd = ODD_PROGRESS[i % len(ODD_PROGRESS)]
                if odd == "missing":
                    del row["progress"]
                elif i % 2 == 0:
                    row["progress"] = odd
        elif fault == "missing_keys":
            for i, row in enumerate(rows):
                if i % 3 == 0:
                    del row["src_db"], row["dst_tb"]
        elif fault == "control_chars":
            for i, row in enumerate(rows, start=start):
                row["src_tb"] = f"ctl\x01\x07\t{i}INVALIDUTF8"
        answer["flow_compare_data"] = rows
        body = json.dumps(answer, ensure_ascii=False).encode()
        if fault == "control_chars":
            body = body.replace(b"INVALIDUTF8", b"\xff\xfe")
        if fault == "oversize":
            body = body[:-1] + b', "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'
        return body


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
    p.add_argument("--no-batch-progress", action="store_true", help="answer batch-progress with 404")
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
