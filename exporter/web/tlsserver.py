"""The TLS side of the server: PEM text into an SSL context, and a cheroot adapter that checks client SANs."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any

from cheroot import errors
from cheroot.ssl.builtin import BuiltinSSLAdapter

PIPE_LIMIT = 60 * 1024  # below Linux's 64 KiB pipe buffer, so that writing never blocks


@contextlib.contextmanager
def pem_path(text: str) -> Iterator[str]:
    """A path that reads ``text`` once: a pipe, so that an inline private key never touches the disk."""
    data = text.encode()
    if len(data) > PIPE_LIMIT:
        raise ValueError("is longer than 60 KiB")
    read, write = os.pipe()
    try:
        os.write(write, data)
        os.close(write)
        write = -1
        yield f"/dev/fd/{read}"
    finally:
        os.close(read)
        if write != -1:
            os.close(write)


def load_chain(ctx: ssl.SSLContext, cert: str, key: str, *, inline_cert: bool, inline_key: bool) -> None:
    """``load_cert_chain`` from files or from PEM text given inline (``cert``/``key``)."""
    with contextlib.ExitStack() as stack:
        cert_path = stack.enter_context(pem_path(cert)) if inline_cert else cert
        key_path = stack.enter_context(pem_path(key)) if inline_key else key
        ctx.load_cert_chain(cert_path, key_path)


def sans(peer: dict[str, Any]) -> set[str]:
    """The DNS, e-mail, IP and URI SANs of a certificate from ``getpeercert()``, written as Go writes them."""
    found = set()
    for kind, value in peer.get("subjectAltName", ()):
        if kind in ("DNS", "email", "URI"):
            found.add(value)
        elif kind == "IP Address":
            with contextlib.suppress(ValueError):
                found.add(str(ipaddress.ip_address(value.strip())))
    return found


class TLSAdapter(BuiltinSSLAdapter):
    """cheroot's stdlib adapter on a ready SSL context; drops clients whose certificate lacks an allowed SAN."""

    def __init__(self, context: ssl.SSLContext, allowed_sans: tuple[str, ...] | None = None) -> None:
        # Not BuiltinSSLAdapter.__init__: it reads certificate files, and ours may be inline.
        super(BuiltinSSLAdapter, self).__init__("", "")
        self.context = context
        self.allowed_sans = frozenset(allowed_sans) if allowed_sans is not None else None
        self._server_env: dict[str, str] = {}

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        """The handshake, then (as exporter-toolkit's VerifyPeerCertificate) the SAN check."""
        wrapped, environ = super().wrap(sock)  # type: ignore[no-untyped-call]
        if self.allowed_sans is not None and not sans(wrapped.getpeercert() or {}) & self.allowed_sans:
            with contextlib.suppress(OSError):
                wrapped.close()
            raise errors.FatalSSLAlert("client certificate has none of the client_allowed_sans")
        return wrapped, environ
