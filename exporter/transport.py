"""HTTP transport shared by the DRS and IAM calls: pooling, retries, deadlines, size cap, telemetry.

The retry loop is written here rather than delegated to urllib3's ``Retry`` because each
failed attempt must be counted with the API's own error code (which is in the JSON body),
waits and per-attempt timeouts must be clamped to the caller's deadline, and a rejected IAM
token must be renewed between attempts. urllib3 still parses ``Retry-After`` for us.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, ReadTimeoutError
from urllib3.util.retry import Retry

from . import __version__
from .errors import (
    CONNECTION_ERROR,
    CREDENTIALS_UNAVAILABLE,
    DEADLINE_EXCEEDED,
    INVALID_RESPONSE,
    RESPONSE_TOO_LARGE,
    TIMEOUT,
    TLS_ERROR,
    TOKEN_REJECTED,
    DRSAPIError,
    error_from_body,
)
from .secrets import SecretError

log = logging.getLogger(__name__)

USER_AGENT = f"huaweicloud-drs-exporter/{__version__}"
DEFAULT_MAX_BODY = 64 * 1024 * 1024


@dataclass(frozen=True)
class ApiCall:
    """One HTTP attempt against an API, as reported to the observer."""

    operation: str
    job_id: str
    error_code: str | None  # None on success
    duration: float
    status: int | None


ApiObserver = Callable[[ApiCall], None]


@runtime_checkable
class RenewableAuth(Protocol):
    """An auth that can get a new credential after the gateway rejected the current one."""

    def renew_rejected(self, request: requests.PreparedRequest) -> bool:
        """Renew if ``request`` carried the current credential; True when a retry makes sense."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter."""

    attempts: int = 4
    backoff: float = 0.5
    backoff_max: float = 8.0

    def delay(self, attempt: int) -> float:
        """Wait before retry number ``attempt`` (1-based)."""
        # Jitter spreads retries; it protects nothing, so a predictable generator is fine.
        return random.uniform(0, min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))  # noqa: S311  # nosec B311


@dataclass
class Reply:
    """A successful API answer."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: Any


def decode_json(raw: bytes) -> Any:
    """Parse a JSON body: orjson first (about twice as fast), the standard library for what it refuses.

    orjson rejects invalid UTF-8, lone surrogates and NaN; such answers are still read, with
    invalid bytes replaced, so one odd name does not cost a whole refresh.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8", "replace"))


_retry_after_parser = Retry(0)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), None when absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(_retry_after_parser.parse_retry_after(value.strip())))
    except (InvalidHeader, ValueError, OverflowError):
        return None


def _is_timeout(exc: requests.RequestException) -> bool:
    # requests wraps a read timeout during body streaming in a ConnectionError.
    return isinstance(exc, requests.Timeout) or any(isinstance(arg, ReadTimeoutError) for arg in exc.args)


class Transport:
    """Sends API requests with one pooled session and reports every attempt to an observer."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        language: str = "en-us",
        verify: bool | str = True,
        max_concurrency: int = 8,
        observer: ApiObserver | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_body_bytes = max_body_bytes
        self.verify = verify
        self.observer = observer
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self.session = requests.Session()
        # Proxy settings (HTTPS_PROXY, NO_PROXY, ...) are read per request by requests, which
        # walks the whole environment each time; they are resolved once per host instead.
        self.session.trust_env = False
        self._proxies: dict[str, dict[str, str]] = {}
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max_concurrency + 2, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", "X-Language": language})

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        deadline: float,
        job_id: str = "",
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        auth: requests.auth.AuthBase | None = None,
        expect: tuple[int, ...] = (200,),
        parse: Callable[[Any], Any] | None = None,
    ) -> Reply:
        """Send a request with retries until it succeeds, fails for good or ``deadline`` passes.

        ``deadline`` is a ``time.monotonic()`` value; ``parse`` validates the JSON body within
        the attempt, so that an answer of the wrong shape counts as a failed call. Raises
        :class:`DRSAPIError`.
        """
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DRSAPIError(DEADLINE_EXCEEDED, "no time left for the request", operation=operation)
            prepared = self._prepare(method, url, operation, params, json_body, auth)
            renewable: object = auth  # widened so the protocol check below type-checks
            try:
                return self._attempt(prepared, operation, job_id, expect, min(self.timeout, remaining), parse)
            except DRSAPIError as err:
                if (
                    not renewed
                    and err.error_code in TOKEN_REJECTED
                    and isinstance(renewable, RenewableAuth)
                    and renewable.renew_rejected(prepared)
                ):
                    renewed = True
                    attempt -= 1
                    continue
                if not err.retryable or attempt >= self.retry.attempts:
                    raise
                wait = self.retry.delay(attempt)
                if err.retry_after is not None:
                    wait = max(wait, err.retry_after)
                if time.monotonic() + wait >= deadline:
                    # Waiting would run past the deadline: report the real failure now.
                    raise
                log.debug("retrying %s after %s in %.2fs", operation, err.error_code, wait)
                self._sleep(wait)

    def _prepare(
        self,
        method: str,
        url: str,
        operation: str,
        params: dict[str, Any] | None,
        json_body: Any,
        auth: requests.auth.AuthBase | None,
    ) -> requests.PreparedRequest:
        # Prepared per attempt: a signature or token must be fresh for every send. Prepared
        # without the session's setting merges (cookies, hooks): none are used, and merging
        # them cost a third of the CPU of a request.
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        if params:
            url = f"{url}?{urlencode(params)}"
        headers = {**self.session.headers, "Content-Type": "application/json"}
        try:
            return requests.Request(method, url, data=data, auth=auth, headers=headers).prepare()
        except SecretError as exc:
            raise DRSAPIError(CREDENTIALS_UNAVAILABLE, str(exc), operation=operation) from None

    def _attempt(
        self,
        prepared: requests.PreparedRequest,
        operation: str,
        job_id: str,
        expect: tuple[int, ...],
        timeout: float,
        parse: Callable[[Any], Any] | None = None,
    ) -> Reply:
        started = time.monotonic()
        status: int | None = None
        try:
            with self._slots:
                response = self.session.send(
                    prepared, timeout=timeout, stream=True, verify=self.verify, proxies=self._proxies_for(prepared.url)
                )
                try:
                    status = response.status_code
                    raw = self._read(response, operation, deadline=started + timeout)
                finally:
                    response.close()
            reply = self._interpret(response, raw, operation, expect)
            if parse is not None:
                reply.body = parse(reply.body)
        except DRSAPIError as err:
            self._report(operation, job_id, err.error_code, started, status)
            raise
        except requests.exceptions.SSLError:
            # Not retried: a certificate does not get valid by asking again.
            self._report(operation, job_id, TLS_ERROR, started, status)
            raise DRSAPIError(
                TLS_ERROR, "TLS handshake or certificate verification failed", operation=operation
            ) from None
        except requests.RequestException as exc:
            if _is_timeout(exc):
                self._report(operation, job_id, TIMEOUT, started, status)
                raise DRSAPIError(TIMEOUT, f"no answer within {timeout:.1f}s", operation=operation) from None
            self._report(operation, job_id, CONNECTION_ERROR, started, status)
            raise DRSAPIError(CONNECTION_ERROR, exc.__class__.__name__, operation=operation) from None
        self._report(operation, job_id, None, started, status)
        return reply

    def _proxies_for(self, url: str | None) -> dict[str, str]:
        netloc = urlsplit(url or "").netloc
        proxies = self._proxies.get(netloc)
        if proxies is None:
            proxies = requests.utils.get_environ_proxies(url or "")
            self._proxies[netloc] = proxies
        return proxies

    def _read(self, response: requests.Response, operation: str, deadline: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise DRSAPIError(
                RESPONSE_TOO_LARGE,
                f"body of {declared} bytes is over the {self.max_body_bytes} byte cap",
                status=response.status_code,
                operation=operation,
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=256 * 1024):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise DRSAPIError(
                    RESPONSE_TOO_LARGE,
                    f"body is over the {self.max_body_bytes} byte cap",
                    status=response.status_code,
                    operation=operation,
                )
            if time.monotonic() > deadline:
                # A body trickling in slowly would otherwise defeat the per-read timeout.
                raise requests.Timeout()
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _interpret(response: requests.Response, raw: bytes, operation: str, expect: tuple[int, ...]) -> Reply:
        status = response.status_code
        request_id = response.headers.get("X-Request-Id")
        body: Any = None
        parsed = False
        if raw:
            try:
                body = decode_json(raw)
                parsed = True
            except ValueError:
                parsed = False
        if status in expect:
            if not parsed:
                raise DRSAPIError(
                    INVALID_RESPONSE, "body is not JSON", status=status, request_id=request_id, operation=operation
                )
            return Reply(status, response.headers, body)
        found = error_from_body(body) if parsed else None
        code, msg = found if found else (f"http_{status}", response.reason or "")
        if isinstance(body, dict) and not request_id and isinstance(body.get("request_id"), str):
            request_id = body["request_id"]
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
        raise DRSAPIError(code, msg, status=status, request_id=request_id, operation=operation, retry_after=retry_after)

    def _report(self, operation: str, job_id: str, code: str | None, started: float, status: int | None) -> None:
        if self.observer is None:
            return
        try:
            self.observer(ApiCall(operation, job_id, code, time.monotonic() - started, status))
        except Exception:  # an observer bug must never break an API call
            log.exception("API call observer failed")
