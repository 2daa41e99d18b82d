"""Authentication for DRS requests: AK/SK signing, static tokens and IAM password tokens."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

import requests

from . import signer
from .errors import INVALID_RESPONSE, DRSAPIError
from .secrets import Secret, register
from .transport import Transport

log = logging.getLogger(__name__)

# A header name, not a password.
TOKEN_HEADER = "X-Auth-Token"  # noqa: S105  # nosec B105
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
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


class IamPasswordAuth(requests.auth.AuthBase):
    """Logs in to IAM with a password and sends the project-scoped token.

    The token is renewed when less than a quarter of its lifetime (at most an hour) is left,
    and once at once when the gateway rejects it. One login runs at a time, however many
    threads ask for the token.
    """

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
        self.logins = 0

    def token(self) -> str:
        """A valid token, logging in first when there is none or it is due for renewal."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= self._renew_at:
                token = self._login()
            return token

    def renew_rejected(self, request: requests.PreparedRequest) -> bool:
        """Drop the token ``request`` was sent with (unless another thread already did) and log in."""
        sent = request.headers.get(TOKEN_HEADER)
        with self._lock:
            if sent is not None and sent == self._token:
                log.info("IAM token rejected by the gateway, logging in again")
                self._token = None
                self._login()
        return True

    def _login(self) -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "domain": {"name": self.domain_name},
                            "name": self.username,
                            "password": self.password.get(),
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
            json_body=body,
            deadline=time.monotonic() + self.login_timeout,
            expect=(201, 200),
        )
        token = reply.headers.get("X-Subject-Token")
        if not token:
            raise DRSAPIError(INVALID_RESPONSE, "IAM answer has no X-Subject-Token", operation="iam_token")
        now = self._clock()
        info = reply.body.get("token") if isinstance(reply.body, dict) else None
        expires = parse_expiry(info.get("expires_at")) if isinstance(info, dict) else None
        issued = parse_expiry(info.get("issued_at")) if isinstance(info, dict) else None
        # Lifetime from IAM's own two timestamps, so a skewed local clock does not matter.
        if expires is None:
            lifetime = 24 * 3600.0  # IAM's documented lifetime
        elif issued is not None:
            lifetime = max(0.0, expires - issued)
        else:
            lifetime = max(0.0, expires - now)
        register(token)
        self._token = token
        self._renew_at = now + lifetime - min(3600.0, lifetime / 4)
        self.logins += 1
        log.info("IAM token obtained, valid for %ds", round(lifetime))
        return token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers[TOKEN_HEADER] = self.token()
        return r

    def __repr__(self) -> str:
        return f"IamPasswordAuth(user={self.username!r}, domain={self.domain_name!r}, password={self.password!r})"


def iam_endpoint_for(region: str) -> str:
    """The IAM endpoint of a region (``.eu`` for the EU sovereign region)."""
    suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
    return f"https://iam.{region}.{suffix}"
