"""Who may ask and how often: the bcrypt hashes and Basic credentials of ``basic_auth_users``, and ``rate_limit``."""

from __future__ import annotations

import base64
import re
import threading
import time
from typing import Annotated, Any

import bcrypt
import msgspec

from ..config.validation import Model, doc, problem, shown

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_WHOLE = re.compile(f"(?:{_PART.pattern})+")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(float):
    """A Go duration such as ``1s``, ``250ms`` or ``1m30s``, in seconds; ``0`` alone needs no unit."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """Seconds."""
        if value in (0, "0") and not isinstance(value, bool):
            return cls(0.0)
        if not isinstance(value, str) or not _WHOLE.fullmatch(value):
            raise problem(f"must be a duration with a unit like 1s or 500ms, got {shown(value)}")
        return cls(sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(value)))

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A Go duration, or 0."""
        return {"anyOf": [{"const": 0}, {"type": "string", "pattern": f"^{_WHOLE.pattern}$"}]}


class RateLimit(Model, frozen=True):
    """``rate_limit``: a token bucket for every request; over it, 429."""

    interval: Annotated[Duration, doc("time for one more request to be allowed (a Go duration); 0 turns it off")] = 0.0  # type: ignore[assignment]  # a plain float, so that the schema can show it
    burst: Annotated[
        int,
        msgspec.Meta(
            description="requests allowed at once; 0 refuses every request while the limit is on",
            extra_json_schema={"minimum": 0},
        ),
    ] = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.burst < 0:
            raise problem(f"must not be negative, got {self.burst}", "burst")


BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
NOT_BCRYPT = "must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)"
BcryptHash = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": f"^{BCRYPT.pattern}$", "writeOnly": True})]
# A well-formed hash no password is known to match (OpenBSD's test vector); only its cost is changed.
DUMMY_HASH = "$2b${cost:02d}$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
# bcrypt reads the first 72 bytes of a password. Go's CompareHashAndPassword checks a longer one by
# those (only hashing refuses it); bcrypt 5 raises instead, so the password is cut here as Go's cipher does.
MAX_PASSWORD_BYTES = 72


def parse_basic(header: str | None) -> tuple[bytes, bytes] | None:
    """(user, password) of a ``Basic`` Authorization header, as Go's ``Request.BasicAuth`` reads it."""
    # The scheme is case-insensitive; user and password are bytes (Go does not ask for UTF-8).
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        raw = base64.b64decode(header[6:], validate=True)
    except ValueError:  # bad base64, or characters outside ASCII
        return None
    user, sep, password = raw.partition(b":")
    return (user, password) if sep else None


def checkpw(password: bytes, hashed: bytes) -> bool:
    """bcrypt's check; False for what no password can be."""
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:  # e.g. a NUL byte: not a password anyone has
        return False


class Bucket:
    """A token bucket like Go's ``rate.Limiter``: ``burst`` tokens, one more every ``interval`` seconds."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval = interval
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        """Take a token if there is one."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) / self.interval)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False
