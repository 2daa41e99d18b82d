"""The one exception type for every failed DRS or IAM API call."""

from __future__ import annotations

import logging
import re
from typing import Any

from ..base.secrets import scrub

TIMEOUT = "timeout"
CONNECTION_ERROR = "connection_error"
TLS_ERROR = "tls_error"
INVALID_RESPONSE = "invalid_response"
RESPONSE_TOO_LARGE = "response_too_large"
PAGE_CAP_EXCEEDED = "page_cap_exceeded"
CREDENTIALS_UNAVAILABLE = "credentials_unavailable"
DEADLINE_EXCEEDED = "deadline_exceeded"
HTTP_3XX = "http_3xx"  # a redirect, never followed
THROTTLED = "throttled"  # held back by the project's 429 backoff beyond the deadline
INVALID_ERROR_CODE = "invalid_error_code"  # the API's code did not look like one

# Token rejected as invalid or expired: get a new one and try once more.
TOKEN_REJECTED = frozenset({"APIGW.0301", "APIGW.0307", "APIG.0301", "APIG.0307", "DRS.M00100"})

# The API's codes: a service prefix, a dot, a number or a short word (DRS.M05003, APIGW.0301, IAM.0001).
# Anything else becomes INVALID_ERROR_CODE, so that server text cannot grow label values without bound.
API_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}\.[A-Za-z0-9]{1,16}")

_MAX_MESSAGE = 300


class DRSAPIError(Exception):
    """A failed API call: HTTP status (None without a response), error code, message, request id.

    ``from_api`` marks a message that is the API's own ``error_msg``: DRS may quote the customer's
    SQL or DDL there ("syntax error near 'ALTER TABLE ...'"), so ``str()`` (what log lines and
    exception messages show) leaves it out; it is kept in ``error_msg`` for the status page and
    logged at debug only (:func:`log_api_error`). The exporter's own messages ("more than 100
    pages", "no answer within 5.0s") carry no customer data and stay in ``str()``.
    """

    def __init__(
        self,
        error_code: str,
        error_msg: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
        operation: str = "",
        retry_after: float | None = None,
        from_api: bool = False,
    ) -> None:
        self.from_api = from_api
        self.error_code = error_code
        self.error_msg = _clean(error_msg)
        self.status = status
        self.request_id = request_id
        self.operation = operation
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.operation}: " if self.operation else "", self.error_code]
        if self.status is not None:
            parts.append(f" (HTTP {self.status})")
        if self.error_msg and not self.from_api:
            parts.append(f": {self.error_msg}")
        if self.request_id:
            parts.append(f" [request_id={self.request_id}]")
        return "".join(parts)

    @property
    def retryable(self) -> bool:
        """True for throttling, server errors, timeouts and connection failures."""
        if self.error_code in (TIMEOUT, CONNECTION_ERROR):
            return True
        return self.status is not None and (self.status == 429 or self.status >= 500)


def log_api_error(
    logger: logging.Logger, err: DRSAPIError, message: str, *args: object, level: int = logging.WARNING
) -> None:
    """Log ``message % args`` and ``err`` (operation, code, HTTP status) at ``level``; the API's message at debug."""
    logger.log(level, message + ": %s", *args, err)
    if err.from_api and err.error_msg and logger.isEnabledFor(logging.DEBUG):
        logger.debug(message + ": the API said: %s", *args, err.error_msg)


def _clean(text: str) -> str:
    text = scrub("".join(ch if ch.isprintable() else " " for ch in str(text)))
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "…"


def error_from_body(body: Any) -> tuple[str, str] | None:
    """Extract ``(code, message)`` from any of the error body shapes Huawei gateways use."""
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict):
        # IAM answers {"error": {"code": 401, "message": ..., "title": ...}}.
        inner = body["error"]
        code, msg = inner.get("code"), inner.get("message", "")
        if code is not None and not isinstance(code, int | float):
            return api_code(str(code)), str(msg or "")
    for code_key, msg_key in (("error_code", "error_msg"), ("errorCode", "errorMsg"), ("code", "message")):
        code = body.get(code_key)
        if isinstance(code, str) and code.strip():
            return api_code(code.strip()), str(body.get(msg_key) or "")
    return None


def api_code(text: str) -> str:
    """``text`` if it has the shape of an API error code, else ``invalid_error_code``."""
    return text if API_CODE.fullmatch(text) else INVALID_ERROR_CODE
