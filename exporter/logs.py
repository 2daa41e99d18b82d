"""Log output as logfmt or JSON, with every known secret scrubbed from each line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from .base.secrets import scrub

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _logfmt_value(value: str) -> str:
    if value and not any(ch in value for ch in ' ="\\\n\t') and value.isprintable():
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


class _Formatter(logging.Formatter):
    def __init__(self, fmt: str) -> None:
        super().__init__()
        self.fmt = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": "warn" if record.levelname == "WARNING" else record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.fmt == "json":
            line = json.dumps(fields, ensure_ascii=False)
        else:
            line = " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items())
        # Last line of defence: whatever a message carried, no registered secret leaves here.
        return scrub(line)


def setup(level: str, fmt: str) -> None:
    """Send all logs to stderr in ``fmt`` (``logfmt`` or ``json``) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # urllib3 logs full URLs and headers at debug; our own lines say what matters.
    logging.getLogger("urllib3").setLevel(max(LEVELS[level], logging.INFO))
