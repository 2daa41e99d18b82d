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


# Credentials sent as header values (X-Auth-Token, X-Security-Token, the AK in Authorization).
HEADER_SECRETS = frozenset({"access_key", "security_token", "token"})


def refusal(name: str, value: str) -> str | None:
    """Why ``value`` cannot be the credential ``name`` (never quoting it), or None when it can.

    No credential holds a line break or another control character; one sent in a header must
    be printable ASCII, or http.client refuses it (with the value in its error) or sends bytes
    the API cannot match.
    """
    if name in HEADER_SECRETS:
        if not (value.isascii() and value.isprintable()):
            return "holds a line break, control or non-ASCII character (it is sent in a header)"
        return None
    if not value.isprintable() and any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a line break or control character"
    return None


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
        self._stamp: tuple[int, int, int, int] | None = None
        self._refused: tuple[int, int, int, int] | None = None  # a version whose content was refused
        self._unreadable = False  # the file could not be read, and that was said
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
            why = refusal(self.name, self._literal)
            if why:
                raise SecretError(f"{self.name}: the value {why}")
            return self._literal
        with self._lock:
            try:
                st = os.stat(self.file)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)  # ctime: a chmod too
                if (stamp != self._stamp or self._value is None) and not (
                    stamp == self._refused and self._value is not None
                ):
                    with open(self.file, encoding="utf-8") as fh:
                        value = fh.read(MAX_SECRET_CHARS + 1).strip()
                    why = (
                        "is longer than a secret can be"  # e.g. /dev/zero or the wrong file: never read it all
                        if len(value) > MAX_SECRET_CHARS
                        else "is empty"
                        if not value
                        else refusal(self.name, value)
                    )
                    if why:
                        # This version of the file is refused once and said once; a failed read
                        # (permissions, no file handles) is not a version's fault and is tried again.
                        self._refused = stamp
                        raise SecretError(f"{self.name}: file {self.file} {why}")
                    register(value)
                    if self._value is not None and value != self._value:
                        unregister(self._value)
                        log.info("secret %s: file changed, using the new value", self.name)
                    self._value, self._stamp, self._refused = value, stamp, None
                self._unreadable = False
            except (OSError, UnicodeDecodeError) as exc:
                if self._value is None:
                    raise SecretError(f"{self.name}: cannot read {self.file}: {exc.__class__.__name__}") from None
                # Every request reads the secret: said once until the file is read again, not per request.
                if not self._unreadable:
                    log.warning(
                        "secret %s: file %s unreadable (%s), keeping the last value",
                        self.name,
                        self.file,
                        exc.__class__.__name__,
                    )
                self._unreadable = True
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
