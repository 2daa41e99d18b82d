"""The simulated gateway's authentication (tokens, AK/SK signatures) and the IAM endpoints."""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

from ..drs import signer
from .base import ApiError, HandlerBase

MAX_SKEW_SECONDS = 15 * 60


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


class IamMixin(HandlerBase):
    """Checks the credentials of API requests and answers IAM logins and project lookups."""

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

    def _projects(self, query: str) -> bytes:
        names = parse_qs(query).get("name", ["sim-region-1"])
        return json.dumps({"projects": [{"id": self.server.scenario.project_id, "name": names[0]}]}).encode()
