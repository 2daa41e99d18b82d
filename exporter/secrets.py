"""Secret values from config, environment or files, never shown in reprs, logs or errors."""

from __future__ import annotations

import logging
import os
import re
import threading

log = logging.getLogger(__name__)

_known: set[str] = set()
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None

REDACTED = "<redacted>"
MAX_SECRET_CHARS = 64 * 1024


def register(value: str) -> None:
    """Remember a secret so that :func:`scrub` removes it from any text."""
    # Very short values would redact ordinary words; such secrets are rejected by config anyway.
    if len(value) < 4:
        return
    with _known_lock:
        if value in _known:
            return
        _known.add(value)
        _compile()


def unregister(value: str) -> None:
    """Forget a secret that is no longer in use (a replaced token), so that the redactor stays small."""
    with _known_lock:
        if value in _known:
            _known.discard(value)
            _compile()


def _compile() -> None:
    global _pattern
    alternatives = sorted(_known, key=len, reverse=True)
    _pattern = re.compile("|".join(re.escape(v) for v in alternatives)) if alternatives else None


def scrub(text: str) -> str:
    """Replace every registered secret in ``text`` with a placeholder."""
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def _has_control(value: str) -> bool:
    """True when ``value`` holds a C0 control character or DEL (none belongs in a credential)."""
    return not value.isprintable() and any(ord(c) < 32 or ord(c) == 127 for c in value)


class SecretError(Exception):
    """A secret could not be read; the message names the source, never the value."""


class Secret:
    """A secret from a literal value or a file.

    A file is re-read when its modification time, size or inode changes, so that a sidecar
    or a Kubernetes secret update can rotate it without a restart. If a rotated file cannot
    be read the last good value is kept.
    """

    def __init__(self, name: str, *, value: str | None = None, file: str | None = None) -> None:
        if (value is None) == (file is None):
            raise ValueError("a secret takes exactly one of value or file")
        self.name = name
        self.file = file
        self._literal = value or ""
        self._value = value
        self._stamp: tuple[int, int, int] | None = None
        self._refused: tuple[int, int, int] | None = None  # a version of the file already refused
        self._lock = threading.Lock()
        if value is not None:
            register(value)

    @classmethod
    def from_env(cls, name: str, variable: str) -> Secret | None:
        """The secret in environment variable ``variable``, or None when unset or empty."""
        value = os.environ.get(variable)
        return cls(name, value=value) if value else None

    def get(self) -> str:
        """The current value, re-reading the file when it changed."""
        if self.file is None:
            if _has_control(self._literal):
                # Sent in a header it would be refused by http.client, with the value in the error.
                raise SecretError(f"{self.name}: the value holds a line break or control character")
            return self._literal
        with self._lock:
            try:
                st = os.stat(self.file)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if (stamp != self._stamp or self._value is None) and not (
                    stamp == self._refused and self._value is not None
                ):
                    self._refused = stamp  # until read whole and valid: refused once, said once
                    with open(self.file, encoding="utf-8") as fh:
                        value = fh.read(MAX_SECRET_CHARS + 1).strip()
                    if len(value) > MAX_SECRET_CHARS:  # e.g. /dev/zero or the wrong file: never read it all
                        raise SecretError(f"{self.name}: file {self.file} is longer than a secret can be")
                    if not value:
                        raise SecretError(f"{self.name}: file {self.file} is empty")
                    if _has_control(value):
                        raise SecretError(f"{self.name}: file {self.file} holds a line break or control character")
                    register(value)
                    if self._value is not None and value != self._value:
                        unregister(self._value)
                        log.info("secret %s: file changed, using the new value", self.name)
                    self._value, self._stamp, self._refused = value, stamp, None
            except (OSError, UnicodeDecodeError) as exc:
                if self._value is None:
                    raise SecretError(f"{self.name}: cannot read {self.file}: {exc.__class__.__name__}") from None
                log.warning("secret %s: file %s unreadable, keeping the last value", self.name, self.file)
            except SecretError as exc:
                if self._value is None:
                    raise
                log.warning("%s; keeping the last value", exc)
            if self._value is None:  # unreachable: every path above sets it or raises
                raise SecretError(f"{self.name}: no value")
            return self._value

    def __repr__(self) -> str:
        source = f"file={self.file!r}" if self.file else "value=" + REDACTED
        return f"Secret({self.name}, {source})"

    __str__ = __repr__
