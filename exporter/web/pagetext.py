"""How the status page writes what it shows: names escaped and cut, ages, spans, counts, times."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

# Longest name shown whole: DRS's own names are far shorter; a longer one is cut with an ellipsis.
MAX_NAME = 200
# Text the HTML parser must not see: NUL (a parse error, replaced by browsers anyway).
_UNSAFE = str.maketrans({"\x00": "\ufffd"})


def _text(value: str, limit: int = MAX_NAME) -> str:
    """A name from DRS as safe HTML: cut to ``limit`` characters, NUL replaced, escaped, bidi-isolated."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    if value.isascii() and "\x00" not in value:
        return escape(value)  # no right-to-left letters or bidi controls: nothing to isolate
    return f"<bdi>{escape(value.translate(_UNSAFE))}</bdi>"


def _attr(value: str) -> str:
    return escape(value.translate(_UNSAFE))


def _age(seconds: float | None) -> str:
    """How long ago, to the minute: the page is cached per job until a shown age changes."""
    if seconds is None:
        return "never"
    if seconds < 60:
        return "under 1 min ago"
    if seconds < 7200:
        return f"{seconds // 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _percent(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


def _count(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
