"""HTTP transport shared by the DRS and IAM calls: pooling, retries, deadlines, size cap, telemetry.

The retry loop is written here rather than delegated to urllib3's ``Retry`` because each
failed attempt must be counted with the API's own error code (which is in the JSON body),
waits and per-attempt timeouts must be clamped to the caller's deadline, and a rejected IAM
token must be renewed between attempts. urllib3 still parses ``Retry-After`` for us.
What an answer means is read in ``interpret``; its body, within the deadline and the cap, in ``body``.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from .. import __version__
from ..base.deadline import Deadline
from ..base.fairpool import FairSlots, reserve, share
from ..base.secrets import SecretError
from .body import read_body
from .errors import (
    CONNECTION_ERROR,
    CREDENTIALS_UNAVAILABLE,
    DEADLINE_EXCEEDED,
    INVALID_RESPONSE,
    THROTTLED,
    TIMEOUT,
    TLS_ERROR,
    TOKEN_REJECTED,
    DRSAPIError,
)
from .interpret import Reply, describe, interpret, is_timeout
from .watchdog import Watch, Watchdog

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
ThrottleObserver = Callable[[str, float], None]  # project, seconds added to its backoff


class Rejection(enum.Enum):
    """What to do after the gateway rejected the credential a request carried."""

    STANDS = "stands"  # fail the request with the gateway's code
    RETRY = "retry"  # send it once more with the same credential (others proved it good)
    RENEWED = "renewed"  # send it once more with the new credential now at hand


@runtime_checkable
class RenewableAuth(Protocol):
    """An auth that can get a new credential after the gateway rejected the current one."""

    def renew_rejected(
        self, request: requests.PreparedRequest, deadline: Deadline, *, retried: bool, renewed: bool
    ) -> Rejection:
        """Decide about a rejection of ``request``'s credential, renewing it when that is the cure.

        ``retried``/``renewed``: this request was already sent again with the same / a new credential.
        """

    def accepted(self, request: requests.PreparedRequest) -> None:
        """``request`` succeeded: the credential it carried is good."""


@runtime_checkable
class ReadyAuth(Protocol):
    """An auth that may have to fetch its credential first (within the caller's deadline)."""

    def ready(self, deadline: Deadline) -> None:
        """Return once a credential is at hand; raise :class:`DRSAPIError` when none can be had in time."""


_AUTH_KINDS: dict[type, tuple[bool, bool]] = {}  # a handful of auth classes at most


def _auth_kinds(auth: object) -> tuple[bool, bool]:
    """Whether ``auth`` is a (ReadyAuth, RenewableAuth).

    A runtime-checkable isinstance walks the protocol's members on every call, which showed in
    the profile of a request; the answer depends on the class only.
    """
    kinds = _AUTH_KINDS.get(type(auth))
    if kinds is None:
        kinds = _AUTH_KINDS[type(auth)] = (isinstance(auth, ReadyAuth), isinstance(auth, RenewableAuth))
    return kinds


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


# The exchange of the calling thread, handed to the connection pool so that the watchdog can
# reach the socket it uses (requests offers no hook between taking a connection and reading).
_current = threading.local()


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        watch: Watch | None = getattr(_current, "watch", None)
        if watch is not None:
            watch.conn = conn
            conn._drs_watch = watch  # type: ignore[attr-defined]  # our mark on urllib3's object
        return conn

    def _put_conn(self, conn: Any) -> None:
        # urllib3 puts the connection back as soon as it has read the end of the body, before
        # the exchange is over for the caller; from then on another exchange may take it. The
        # watch is released first, under the watchdog's lock, so no cut can reach the next user.
        watch: Watch | None = getattr(conn, "_drs_watch", None)
        if watch is not None:
            conn._drs_watch = None
            watch.release()
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool, _WatchedHTTPPool):
    pass


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


@functools.lru_cache(maxsize=16384)  # one URL per job and type (and endpoint): bounded all the same
def _normalised(url: str) -> str:
    """``url`` as requests would send it (IDNA host, quoted path), worked out once per URL."""
    probe = requests.PreparedRequest()
    probe.prepare_url(url, None)
    return cast(str, probe.url)


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools tell the current exchange's watch which connection it got."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


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
        projects: int = 1,
        observer: ApiObserver | None = None,
        throttle_observer: ThrottleObserver | None = None,
        max_throttle: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.max_body_bytes = max_body_bytes
        self.verify = verify
        self.observer = observer
        self.throttle_observer = throttle_observer
        # A project-wide backoff holds every request of the project, IAM logins included: one
        # Retry-After of a day must not stop it for a day.
        self.max_throttle = max_throttle
        self._sleep = sleep
        # Shared by the projects, each sure of its reserve: a project whose endpoint hangs must
        # leave slots for the others.
        self._slots = FairSlots(max_concurrency, share(max_concurrency, projects), reserve(max_concurrency, projects))
        # project -> monotonic time until which no request of that project is sent (after a 429).
        self._throttled_until: dict[str, float] = {}
        self._throttle_lock = threading.Lock()
        self.session = requests.Session()
        # Proxy settings (HTTPS_PROXY, NO_PROXY, ...) are read per request by requests, which
        # walks the whole environment each time; they are resolved once per host instead.
        self.session.trust_env = False
        self._proxies: dict[str, dict[str, str]] = {}
        self._watchdog = Watchdog()
        adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=max_concurrency + 2, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json", "X-Language": language})
        # Only gzip is asked for: bodies are decoded here, within the deadline and the size cap.
        self.session.headers["Accept-Encoding"] = "gzip"
        self._headers: dict[str, str] = {
            **{k: str(v) for k, v in self.session.headers.items()},
            "Content-Type": "application/json",
        }
        self._adapter = adapter

    def close(self) -> None:
        """Close pooled connections and stop the watchdog's thread."""
        self.session.close()
        self._watchdog.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        deadline: Deadline | float,
        job_id: str = "",
        project: str = "",
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        auth: requests.auth.AuthBase | None = None,
        expect: tuple[int, ...] = (200,),
        parse: Callable[[Any], Any] | None = None,
        parse_bytes: Callable[[bytes], Any] | None = None,
    ) -> Reply:
        """Send a request with retries until it succeeds, fails for good or ``deadline`` passes.

        ``deadline`` bounds every wait: a 429 backoff of the ``project``, a transport slot,
        the credential, the connection and each read of the body. ``parse`` validates the JSON
        body within the attempt, so that an answer of the wrong shape counts as a failed call;
        ``parse_bytes``, when given, is tried first on the raw body of an expected status and
        stands for both when it returns a value (a typed fast path), else None.
        Raises :class:`DRSAPIError`.
        """
        deadline = Deadline.of(deadline)
        attempt = 0
        retried = renewed = False  # at most once each: a request is sent at most twice more for its credential
        while True:
            attempt += 1
            if deadline.expired:
                raise DRSAPIError(DEADLINE_EXCEEDED, "no time left for the request", operation=operation)
            self._wait_throttle(project, operation, deadline)
            ready, renews = _auth_kinds(auth)
            if ready:
                cast(ReadyAuth, auth).ready(deadline)
            prepared = self._prepare(method, url, operation, params, json_body, auth)
            try:
                reply = self._attempt(prepared, operation, job_id, expect, deadline, parse, parse_bytes, project)
            except DRSAPIError as err:
                if err.status == 429:
                    self._throttle(project, max(self.retry.delay(attempt), err.retry_after or 0.0))
                if err.error_code in TOKEN_REJECTED and renews:
                    outcome = cast(RenewableAuth, auth).renew_rejected(
                        prepared, deadline, retried=retried, renewed=renewed
                    )
                    # Each at most once, whatever the auth says: the loop must end.
                    if (outcome is Rejection.RETRY and not retried) or (outcome is Rejection.RENEWED and not renewed):
                        retried = retried or outcome is Rejection.RETRY
                        renewed = renewed or outcome is Rejection.RENEWED
                        attempt -= 1
                        continue
                if not err.retryable or attempt >= self.retry.attempts:
                    raise
                if err.status == 429:
                    if self._throttled_for(project) >= deadline.remaining():
                        raise  # the backoff outlasts the deadline: report the real failure now
                    continue  # the project-wide backoff is the wait
                wait = self.retry.delay(attempt)
                if err.retry_after is not None:
                    wait = max(wait, err.retry_after)
                if wait >= deadline.remaining():
                    # Waiting would run past the deadline: report the real failure now.
                    raise
                log.debug("retrying %s after %s in %.2fs", operation, err.error_code, wait)
                self._sleep(wait)
            else:
                if renews:
                    cast(RenewableAuth, auth).accepted(prepared)
                return reply

    def _throttled_for(self, project: str) -> float:
        with self._throttle_lock:
            return max(0.0, self._throttled_until.get(project, 0.0) - time.monotonic())

    def _throttle(self, project: str, seconds: float) -> None:
        """Hold back every request of ``project`` for ``seconds`` (a 429 was answered), at most ``max_throttle``."""
        if seconds > self.max_throttle:
            log.warning(
                "Retry-After of %.0fs from project %s cut to %.0fs (the longest project-wide backoff)",
                seconds,
                project,
                self.max_throttle,
            )
            seconds = self.max_throttle
        now = time.monotonic()
        with self._throttle_lock:
            until = self._throttled_until.get(project, 0.0)
            # seconds less what is still held, not (now + seconds) - now: that sum loses the exact value.
            added = max(0.0, seconds - max(0.0, until - now))
            if added > 0:
                self._throttled_until[project] = now + seconds
        if added > 0 and self.throttle_observer is not None:
            self.throttle_observer(project, added)

    def _wait_throttle(self, project: str, operation: str, deadline: Deadline) -> None:
        wait = self._throttled_for(project)
        if wait <= 0:
            return
        if wait >= deadline.remaining():
            raise DRSAPIError(
                THROTTLED, f"the project is backing off after a 429 for {wait:.1f}s more", operation=operation
            )
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
        # Prepared per attempt: a signature or token must be fresh for every send. Built here
        # rather than by requests.Request.prepare, whose URL parsing, body sniffing and hooks were
        # a third of the CPU of a request: the URL is normalised by requests once per URL, and
        # nothing else of it applies (no cookies, hooks or files; the body is bytes or none).
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":")).encode()
        url = _normalised(url)
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        prepared = requests.PreparedRequest()
        prepared.method = method = method.upper()
        prepared.url = url
        prepared.headers = CaseInsensitiveDict(self._headers)
        prepared.body = data
        if data is not None or method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = str(len(data or b""))
        try:
            if auth is not None:
                signed = auth(prepared)
                prepared.__dict__.update(signed.__dict__)  # as requests does with what an auth returns
            return prepared
        except SecretError as exc:
            raise DRSAPIError(CREDENTIALS_UNAVAILABLE, str(exc), operation=operation) from None

    def _attempt(
        self,
        prepared: requests.PreparedRequest,
        operation: str,
        job_id: str,
        expect: tuple[int, ...],
        deadline: Deadline,
        parse: Callable[[Any], Any] | None = None,
        parse_bytes: Callable[[bytes], Any] | None = None,
        project: str = "",
    ) -> Reply:
        if not self._slots.acquire(project, timeout=deadline.remaining()):
            raise DRSAPIError(DEADLINE_EXCEEDED, "no transport slot free before the deadline", operation=operation)
        # Timed from here: the queue before the slot is not the API's latency, nor its timeout.
        started = time.monotonic()
        timeout = deadline.bound(self.timeout)
        status: int | None = None
        # The whole exchange (connect, status line, headers, body) ends by this wall-clock time.
        watch = self._watchdog.watch(deadline.earlier(timeout))
        _current.watch = watch
        try:
            try:
                if timeout <= 0:
                    raise DRSAPIError(DEADLINE_EXCEEDED, "no time left for the request", operation=operation)
                # The adapter itself: the session's send adds hooks and cookies (none used) and
                # follows redirects, which must never be followed (the target would get the credentials).
                try:
                    response = self._adapter.send(
                        prepared,
                        timeout=timeout,
                        stream=True,
                        verify=self.verify,
                        proxies=self._proxies_for(prepared.url),
                    )
                except ValueError as exc:
                    if isinstance(exc, requests.RequestException):  # InvalidURL and the like: as before
                        raise
                    # http.client refuses a header value with a line break or a character outside
                    # Latin-1, and its message holds the value: a credential, possibly. Nothing was sent.
                    raise DRSAPIError(
                        CREDENTIALS_UNAVAILABLE,
                        "a header value cannot be sent (a line break, control or non-Latin-1 character); "
                        "request not sent",
                        operation=operation,
                    ) from None
                _current.watch = None
                try:
                    status = response.status_code
                    raw = read_body(response, operation, deadline.earlier(timeout), watch, self.max_body_bytes)
                finally:
                    response.close()
            finally:
                _current.watch = None
                self._watchdog.release(watch)
                self._slots.release(project)
            try:
                fast = parse_bytes(raw) if parse_bytes is not None and status in expect else None
                if fast is not None:
                    reply = Reply(response.status_code, response.headers, fast)
                else:
                    reply = interpret(response, raw, operation, expect)
                    if parse is not None:
                        reply.body = parse(reply.body)
            except (ValueError, OverflowError, RecursionError) as exc:
                # A hostile body (JSON nested thousands deep, a 400-digit number) is a bad answer
                # like any other, counted as a failed call; not a bug of the exporter.
                raise DRSAPIError(
                    INVALID_RESPONSE,
                    f"body cannot be parsed ({exc.__class__.__name__})",
                    status=status,
                    operation=operation,
                ) from None
        except DRSAPIError as err:
            if err.error_code != DEADLINE_EXCEEDED or status is not None:
                self._report(operation, job_id, err.error_code, started, status)
            raise
        except requests.exceptions.SSLError:
            if watch.fired:
                self._report(operation, job_id, TIMEOUT, started, status)
                raise DRSAPIError(TIMEOUT, f"no answer within {timeout:.1f}s", operation=operation) from None
            # Not retried: a certificate does not get valid by asking again.
            self._report(operation, job_id, TLS_ERROR, started, status)
            raise DRSAPIError(
                TLS_ERROR, "TLS handshake or certificate verification failed", operation=operation
            ) from None
        except requests.RequestException as exc:
            if watch.fired or is_timeout(exc):
                self._report(operation, job_id, TIMEOUT, started, status)
                raise DRSAPIError(TIMEOUT, f"no answer within {timeout:.1f}s", operation=operation) from None
            self._report(operation, job_id, CONNECTION_ERROR, started, status)
            raise DRSAPIError(CONNECTION_ERROR, describe(exc), operation=operation) from None
        self._report(operation, job_id, None, started, status)
        return reply

    def _proxies_for(self, url: str | None) -> dict[str, str]:
        netloc = urlsplit(url or "").netloc
        proxies = self._proxies.get(netloc)
        if proxies is None:
            proxies = requests.utils.get_environ_proxies(url or "")
            self._proxies[netloc] = proxies
        return proxies

    def _report(self, operation: str, job_id: str, code: str | None, started: float, status: int | None) -> None:
        if self.observer is None:
            return
        try:
            self.observer(ApiCall(operation, job_id, code, time.monotonic() - started, status))
        except Exception:  # an observer bug must never break an API call
            log.exception("API call observer failed")
