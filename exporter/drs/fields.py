"""Field values of the replication-health answers: numbers sent as strings, booleans, durations, texts.

Every reader here returns None for a value it cannot trust (garbage, NaN, a boolean where a
number belongs); refusing a whole answer is the parsers' decision (``invalid``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import INVALID_RESPONSE, DRSAPIError, error_from_body
from .progress import safe_text

_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# A duration with its unit written out ("1500ms", "1.5 s", "2min"): the unit then wins over the default.
_DURATION = re.compile(r"(?P<n>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*(?P<u>ms|s|sec|min|m|h)", re.IGNORECASE)
_HMS = re.compile(r"(?:(?P<h>[0-9]{1,5}):)?(?P<m>[0-9]{1,2}):(?P<s>[0-9]{1,2})")
_UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
DURATION_UNITS = ("s", "ms")  # the readings a parser may be told a bare number is in


def real(value: Any, *, percent: bool = False) -> float | None:
    """A finite number from a JSON number or a numeric string of ASCII digits; None otherwise.

    ``percent``: a trailing ``%`` is allowed (``"94%"``). ``"²"``, ``"1_000"``, ``"NaN"`` and booleans are None.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if percent and text.endswith("%"):
            text = text[:-1].strip()
        if not _NUMERIC.fullmatch(text):
            return None
        value = text
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def non_negative(value: Any, **kw: Any) -> float | None:
    """``real(value)`` when it is at least zero; a negative number (-1: "not yet") is None."""
    number = real(value, **kw)
    return number if number is not None and number >= 0 else None


def count(value: Any) -> int | None:
    """A whole number of at least zero (``7``, ``7.0``, ``"7"``); None otherwise."""
    number = non_negative(value)
    return int(number) if number is not None and number.is_integer() and number < 2**63 else None


def boolean(value: Any) -> bool | None:
    """``true``/``false`` as JSON booleans, strings or the numbers 1/0; None otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    return None


def seconds(value: Any, unit: str = "s") -> float | None:
    """A duration in seconds, at least zero: a bare number is in ``unit`` (``s`` or ``ms``).

    A string with its own unit (``"1500ms"``, ``"2 s"``, ``"3min"``) or ``[h:]mm:ss`` is read as
    written. Negative values (DRS writes -1 for "not in this phase") are None.
    """
    if unit not in DURATION_UNITS:
        raise ValueError(f"unit must be one of {DURATION_UNITS}")
    if isinstance(value, str):
        text = value.strip()
        if (m := _DURATION.fullmatch(text)) is not None:
            number = real(m.group("n"))
            factor = _UNITS[m.group("u").lower()]
            return number * factor if number is not None and number >= 0 else None
        if (m := _HMS.fullmatch(text)) is not None:
            return int(m.group("h") or 0) * 3600.0 + int(m.group("m")) * 60.0 + int(m.group("s"))
    number = non_negative(value)
    if number is None:
        return None
    return number / 1000.0 if unit == "ms" else number


def text(value: Any, limit: int = 200) -> str:
    """A string value (numbers written out) cut to ``limit`` characters, encodable as UTF-8; "" otherwise."""
    if isinstance(value, str):
        out = safe_text(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out = str(value)
    else:
        return ""
    return out if len(out) <= limit else out[:limit] + "…"


def excerpt(value: Any, limit: int = 120) -> str:
    """One line of free text for a status page: control characters escaped (``\\n``), cut to ``limit``.

    Not HTML-escaped: whoever renders it escapes it for its own format.
    """
    raw = value if isinstance(value, str) else ""
    raw = raw[: limit * 4]  # never more than the excerpt needs is looked at (or kept)
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in raw)
    out = safe_text(out)
    return out if len(out) <= limit else out[:limit] + "…"


def first(item: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` present and not null (spellings drift between APIs)."""
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def invalid(why: str, operation: str, body: Any = None) -> DRSAPIError:
    """The error for an answer of the wrong shape: the answer's own error code when it is an error body."""
    found = error_from_body(body)
    if found is not None:
        return DRSAPIError(found[0], found[1], status=200, operation=operation, from_api=True)
    return DRSAPIError(INVALID_RESPONSE, why, status=200, operation=operation)


def json_object(body: Any, operation: str) -> dict[str, Any]:
    """``body`` when it is a JSON object, else ``invalid_response``."""
    if not isinstance(body, dict):
        raise invalid("answer is not a JSON object", operation)
    return body
