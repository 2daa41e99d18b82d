"""What an answer means: a Reply of an expected status, else the DRSAPIError its status, headers and body say."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from urllib3.exceptions import InvalidHeader, ReadTimeoutError
from urllib3.util.retry import Retry

from ..base.secrets import scrub
from .errors import HTTP_3XX, INVALID_RESPONSE, DRSAPIError, error_from_body


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


def interpret(response: requests.Response, raw: bytes, operation: str, expect: tuple[int, ...]) -> Reply:
    """A Reply when the status is expected and the body JSON; else the DRSAPIError the answer means."""
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
    from_api = found is not None
    if 300 <= status < 400:
        # Never followed: the target would get the credentials. Named by class, whatever the body says.
        # Scrubbed before it is cut: a secret cut in two would no longer be recognised.
        code, msg = HTTP_3XX, f"redirect to {scrub(response.headers.get('Location', '?'))[:100]} not followed"
        from_api = False
    if isinstance(body, dict) and not request_id and isinstance(body.get("request_id"), str):
        request_id = body["request_id"]
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    raise DRSAPIError(
        code, msg, status=status, request_id=request_id, operation=operation, retry_after=retry_after, from_api=from_api
    )


def describe(exc: requests.RequestException) -> str:
    """What went wrong with a connection, for the error message (not just "ConnectionError")."""
    cause: Any = exc.args[0] if exc.args else None
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the real failure
    text = str(cause) if cause is not None else ""
    return text or exc.__class__.__name__


def is_timeout(exc: requests.RequestException) -> bool:
    # requests wraps a read timeout during body streaming in a ConnectionError.
    return isinstance(exc, requests.Timeout) or any(isinstance(arg, ReadTimeoutError) for arg in exc.args)
