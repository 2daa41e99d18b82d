"""ISO-8601 timestamps as the DRS and IAM APIs write them, parsed alike on Python 3.10 and later.

``datetime.fromisoformat`` of Python 3.10 refuses ``Z``, fractions other than 3 or 6 digits
and ``+0800``; the forms the APIs use are parsed here instead.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_ISO = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[Tt ](?P<h>\d{2}):(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?"
    r"\s*(?P<z>[Zz]|(?P<sign>[+-])(?P<zh>\d{2})(?::?(?P<zm>\d{2}))?)"
)


def parse_iso8601(text: str) -> float | None:
    """Unix seconds from ``2020-09-01T18:50:20.2Z``, ``…+08:00``, ``…+0800``, ``…+08``; None without a zone."""
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    g = match.group
    fraction = (g("f") or "").ljust(6, "0")[:6]
    offset = timedelta(0)
    if g("sign"):
        offset = timedelta(hours=int(g("zh")), minutes=int(g("zm") or 0))
        if offset >= timedelta(hours=24):
            return None
        if g("sign") == "-":
            offset = -offset
    try:
        parsed = datetime(
            int(g("y")),
            int(g("mo")),
            int(g("d")),
            int(g("h")),
            int(g("mi")),
            int(g("s") or 0),
            int(fraction),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None
    return parsed.timestamp()
