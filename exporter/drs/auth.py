"""Authentication for DRS requests: AK/SK signing, static tokens and IAM password tokens."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from ..base.deadline import Deadline
from ..base.secrets import Secret, SecretError, register, unregister
from ..base.timeparse import parse_iso8601
from . import signer
from .errors import CREDENTIALS_UNAVAILABLE, DEADLINE_EXCEEDED, INVALID_RESPONSE, DRSAPIError, log_api_error
from .transport import Rejection, Transport

log = logging.getLogger(__name__)

# A header name, not a password.
TOKEN_HEADER = "X-Auth-Token"  # noqa: S105  # nosec B105
MAX_SUSPECTS = 4096  # request paths remembered as rejected for themselves, not for their token
_UNSIGNED = frozenset({"user-agent", "accept-encoding", "accept", "connection", "content-length"})


class AkSkAuth(requests.auth.AuthBase):
    """Signs every request with ``SDK-HMAC-SHA256``; temporary credentials add ``X-Security-Token``."""

    def __init__(
        self, access_key: Secret, secret_key: Secret, project_id: str, security_token: Secret | None = None
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.security_token = security_token
        self.project_id = project_id

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        for name in ("Host", "X-Sdk-Date", "Authorization"):
            # Always derived afresh: a retried request needs a new date and signature.
            r.headers.pop(name, None)
        r.headers["X-Project-Id"] = self.project_id
        if self.security_token is not None:
            r.headers["X-Security-Token"] = self.security_token.get()
        # Transport-level headers that proxies may rewrite are sent but not signed.
        headers = {k: v for k, v in r.headers.items() if k.lower() not in _UNSIGNED}
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        url, signed = signer.sign(
            r.method or "GET", r.url or "", headers, body, self.access_key.get(), self.secret_key.get()
        )
        r.url = url
        r.headers.update(signed)
        return r

    def __repr__(self) -> str:
        return f"AkSkAuth(access_key={self.access_key!r}, secret_key={self.secret_key!r})"


class StaticTokenAuth(requests.auth.AuthBase):
    """Sends a fixed IAM token; a token file is re-read when it changes."""

    def __init__(self, token: Secret) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers[TOKEN_HEADER] = self.token.get()
        return r

    def __repr__(self) -> str:
        return f"StaticTokenAuth(token={self.token!r})"


def parse_expiry(value: object) -> float | None:
    """Unix seconds from an IAM ``expires_at`` like ``2020-01-04T09:05:22.701000Z``."""
    return parse_iso8601(value) if isinstance(value, str) else None


class IamPasswordAuth(requests.auth.AuthBase):
    """Logs in to IAM with a password and sends the project-scoped token.

    The token is renewed when less than a quarter of its lifetime (at most an hour) is left,
    in one background login while every request keeps using the still-valid token. A failed
    login is retried with exponential backoff and jitter; requests fail only once no valid
    token is left. A token the gateway rejects is dropped once and fetched again once, however
    many requests carried it; logins forced by rejections back off exponentially too. A token
    that other requests proved good is not dropped for one request's rejection (DRS refusing one
    job says nothing about the token). Callers wait for a login only as long as their own deadline.
    """

    BACKOFF = 1.0
    BACKOFF_MAX = 300.0

    def __init__(
        self,
        transport: Transport,
        iam_endpoint: str,
        *,
        domain_name: str,
        username: str,
        password: Secret,
        project_id: str,
        login_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.transport = transport
        self.url = iam_endpoint.rstrip("/") + "/v3/auth/tokens"
        self.domain_name = domain_name
        self.username = username
        self.password = password
        self.project_id = project_id
        self.login_timeout = login_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._usable_until = 0.0  # clock time after which the token is not sent any more
        self._login_done: threading.Event | None = None  # set when the login in flight ends
        self._retry_at = 0.0  # monotonic: no login before this after a failure
        self._failures = 0
        self._last_error: DRSAPIError | None = None
        # Logins forced by rejections, each later one after an exponential backoff: a gateway
        # refusing every token, or one job's requests, must not get a login per rejection. The
        # count starts again once such a login is long past.
        self._rejections = 0
        self._forced_at = -float("inf")  # monotonic time of the last forced login
        self._next_forced = 0.0  # monotonic: no forced login before this
        self._proven = False  # a request succeeded with the current token since its last rejection
        # Request paths (one job and object type each) rejected with tokens that others proved
        # good: the rejection is about them, and their next one costs no retry or login.
        self._suspects: set[str] = set()
        self.logins = 0

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._usable_until

    def _start_login(self) -> threading.Event | None:
        """Start the one background login unless one runs or a failure's backoff holds (lock held)."""
        if self._login_done is None and time.monotonic() >= self._retry_at:
            self._login_done = threading.Event()
            threading.Thread(target=self._run_login, args=(self._login_done,), name="iam-login", daemon=True).start()
        return self._login_done

    def ready(self, deadline: Deadline) -> None:
        """Return once a valid token is at hand, waiting for a login at most until ``deadline``."""
        with self._lock:
            if self._valid():
                if self._clock() >= self._renew_at:
                    self._start_login()  # ahead of expiry: the current token goes on serving meanwhile
                return
            done = self._start_login()
            if done is None:
                raise self._unavailable()
        if not done.wait(timeout=deadline.remaining()):
            raise DRSAPIError(DEADLINE_EXCEEDED, "IAM login not done before the deadline", operation="iam_token")
        with self._lock:
            if not self._valid():
                raise self._unavailable()

    def _unavailable(self) -> DRSAPIError:
        err = self._last_error
        if err is None:
            return DRSAPIError(CREDENTIALS_UNAVAILABLE, "no valid IAM token", operation="iam_token")
        # The last login's failure, without starting another one before its backoff ends.
        return DRSAPIError(
            err.error_code,
            err.error_msg,
            status=err.status,
            request_id=err.request_id,
            operation="iam_token",
            from_api=err.from_api,
        )

    def token(self, deadline: Deadline | None = None) -> str:
        """A valid token, logging in first when there is none."""
        self.ready(deadline or Deadline.after(self.login_timeout))
        with self._lock:
            if self._token is None:
                raise self._unavailable()
            return self._token

    def renew_rejected(
        self,
        request: requests.PreparedRequest,
        deadline: Deadline | None = None,
        *,
        retried: bool = False,
        renewed: bool = False,
    ) -> Rejection:
        """Decide about the gateway's rejection of the token ``request`` carried.

        A token requests succeeded with since its last rejection is not dropped: the request is
        sent once more with it (RETRY), and when it is rejected again although others still
        succeed, the rejection is about this request (STANDS). Otherwise the token is dropped
        and fetched again, once for all requests that carried it (RENEWED): at once the first
        time, then after an exponential backoff, waited for within ``deadline``.
        """
        deadline = deadline or Deadline.after(self.login_timeout)
        sent = request.headers.get(TOKEN_HEADER)
        path = urlsplit(request.url or "").path
        for _ in range(3):  # a wait for the backoff, then a look at what others did meanwhile
            with self._lock:
                if sent is None or sent != self._token:
                    break  # dropped already (or renewed): wait for the one login below
                if self._proven:
                    if retried or path in self._suspects:
                        self._suspect(path)
                        return Rejection.STANDS  # good for the others, not for this request
                    self._proven = False  # a second rejection with no success between drops it
                    return Rejection.RETRY
                if renewed:
                    self._suspect(path)
                    return Rejection.STANDS  # the token fetched for this request is rejected too
                now = time.monotonic()
                wait = self._next_forced - now
                if wait <= 0:
                    self._force_login(now)
                    break
            if wait >= deadline.remaining():
                return Rejection.STANDS  # backing off beyond the deadline: the rejection stands
            time.sleep(wait)
        else:
            return Rejection.STANDS
        self.ready(deadline)
        return Rejection.RENEWED

    def _suspect(self, path: str) -> None:
        if len(self._suspects) >= MAX_SUSPECTS:
            self._suspects.clear()  # bounded: forgetting costs one retry and maybe one login each
        self._suspects.add(path)

    def _force_login(self, now: float) -> None:
        """Drop the rejected token and log in again; the next forced login waits a backoff (lock held)."""
        if now - self._forced_at > 2 * self.BACKOFF_MAX:
            self._rejections = 0
        self._rejections += 1
        self._forced_at = now
        ceiling = min(self.BACKOFF_MAX, self.BACKOFF * 2 ** (self._rejections - 1))
        # Jitter spreads the logins of many exporters; it protects nothing.
        wait = random.uniform(ceiling / 2, ceiling)  # noqa: S311  # nosec B311
        self._next_forced = now + wait
        self._token = None
        if self._rejections > 1:
            log.warning(
                "%d IAM tokens in a row rejected by the gateway, next forced login not before %.1fs",
                self._rejections,
                wait,
            )
        else:
            log.info("IAM token rejected by the gateway, logging in again")
        self._start_login()

    def accepted(self, request: requests.PreparedRequest) -> None:
        """A request succeeded with the token it carried: a later rejection may be about a request."""
        if self._suspects:
            with self._lock:
                self._suspects.discard(urlsplit(request.url or "").path)
        if not self._proven and request.headers.get(TOKEN_HEADER) == self._token:
            with self._lock:
                if request.headers.get(TOKEN_HEADER) == self._token:
                    self._proven = True

    def _run_login(self, done: threading.Event) -> None:
        try:
            token, lifetime = self._login()
        except DRSAPIError as err:
            with self._lock:
                self._failures += 1
                self._last_error = err
                ceiling = min(self.BACKOFF_MAX, self.BACKOFF * 2 ** (self._failures - 1))
                # Jitter spreads the logins of many exporters; it protects nothing.
                self._retry_at = time.monotonic() + random.uniform(ceiling / 2, ceiling)  # noqa: S311  # nosec B311
            log_api_error(log, err, "IAM login failed (%d in a row)", self._failures)
        except Exception:  # a bug must not leave waiters hanging
            log.exception("IAM login failed unexpectedly")
        else:
            now = self._clock()
            register(token)
            with self._lock:
                old, self._token = self._token, token
                self._proven = False
                self._usable_until = now + lifetime - min(30.0, lifetime / 10)
                self._renew_at = now + lifetime - min(3600.0, lifetime / 4)
                self._failures = 0
                self._last_error = None
                self.logins += 1
            if old is not None and old != token:
                unregister(old)
            log.info("IAM token obtained, valid for %ds", round(lifetime))
        finally:
            with self._lock:
                self._login_done = None
            done.set()

    def _login(self) -> tuple[str, float]:
        try:
            password = self.password.get()
        except SecretError as exc:  # a failed login like any other: counted, backed off, never a traceback
            raise DRSAPIError(CREDENTIALS_UNAVAILABLE, str(exc), operation="iam_token") from None
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "domain": {"name": self.domain_name},
                            "name": self.username,
                            "password": password,
                        }
                    },
                },
                "scope": {"project": {"id": self.project_id}},
            }
        }
        reply = self.transport.request(
            "POST",
            self.url,
            operation="iam_token",
            project=self.project_id,
            json_body=body,
            deadline=Deadline.after(self.login_timeout),
            expect=(201, 200),
        )
        token = reply.headers.get("X-Subject-Token")
        if not token:
            raise DRSAPIError(INVALID_RESPONSE, "IAM answer has no X-Subject-Token", operation="iam_token")
        info = reply.body.get("token") if isinstance(reply.body, dict) else None
        expires = parse_expiry(info.get("expires_at")) if isinstance(info, dict) else None
        issued = parse_expiry(info.get("issued_at")) if isinstance(info, dict) else None
        # Lifetime from IAM's own two timestamps, so a skewed local clock does not matter.
        if expires is None:
            return token, 24 * 3600.0  # IAM's documented lifetime
        if issued is not None:
            return token, max(0.0, expires - issued)
        return token, max(0.0, expires - self._clock())

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            token = self._token
        if token is None:
            # Normally ready() ran first; a token dropped since then cannot be sent.
            raise SecretError("no IAM token at hand")
        r.headers[TOKEN_HEADER] = token
        return r

    def __repr__(self) -> str:
        return f"IamPasswordAuth(user={self.username!r}, domain={self.domain_name!r}, password={self.password!r})"


def iam_endpoint_for(region: str) -> str:
    """The IAM endpoint of a region (``.eu`` for the EU sovereign region)."""
    suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
    return f"https://iam.{region}.{suffix}"
