"""The TLS side of the server: PEM text into an SSL context, and the non-blocking streams of connections."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterator
from typing import Any, Protocol

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


class WantRead(Exception):  # noqa: N818  # a state, not an error
    """The stream can go on once the socket is readable."""


class WantWrite(Exception):  # noqa: N818
    """The stream can go on once the socket is writable."""


class HandshakeError(Exception):
    """The TLS handshake failed; ``answer`` is what to send the client in plain text before closing, if anything."""

    def __init__(self, reason: str, answer: bytes = b"") -> None:
        super().__init__(reason)
        self.answer = answer


class Stream(Protocol):
    """A connection's byte stream for the server's event loop: every call returns at once.

    ``recv`` and ``send`` raise WantRead or WantWrite when they must wait for the socket.
    """

    sock: socket.socket

    def handshake(self) -> None:
        """Go on with the TLS handshake (nothing to do in plain HTTP); HandshakeError ends it."""

    def recv(self, size: int) -> bytes:
        """Bytes received, b"" at the end of the stream."""

    def pending(self) -> int:
        """Decrypted bytes buffered by TLS, which the socket no longer shows as readable."""

    def send(self, data: memoryview) -> int:
        """Send some of ``data``: how much was taken."""

    def close_notify(self) -> None:
        """Tell the peer that nothing more is sent (TLS close_notify, best effort; nothing in plain HTTP)."""

    def environ(self) -> dict[str, str]:
        """WSGI environ entries of this connection."""


class PlainStream:
    """A plain TCP connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def handshake(self) -> None:
        """Nothing to do."""

    def recv(self, size: int) -> bytes:
        """Bytes from the socket."""
        try:
            return self.sock.recv(size)
        except BlockingIOError:
            raise WantRead from None

    def pending(self) -> int:
        """Nothing is buffered."""
        return 0

    def send(self, data: memoryview) -> int:
        """Bytes to the socket."""
        try:
            return self.sock.send(data)
        except BlockingIOError:
            raise WantWrite from None

    def close_notify(self) -> None:
        """Nothing to tell."""

    def environ(self) -> dict[str, str]:
        """Plain HTTP."""
        return {}


class StdlibStream:
    """TLS on Python's ssl module; after the handshake, exporter-toolkit's client_allowed_sans check."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, allowed_sans: frozenset[str] | None) -> None:
        # wrap_socket takes the descriptor over (``sock`` is detached): the SSL socket is the socket now.
        self.tls = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.sock: socket.socket = self.tls
        self.allowed_sans = allowed_sans

    def handshake(self) -> None:
        """One step of the handshake; the SAN check once it is done."""
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            raise WantRead from None
        except ssl.SSLWantWriteError:
            raise WantWrite from None
        except (ssl.SSLError, OSError) as exc:
            # Plain HTTP on the TLS port included: dropped without an answer, as before (cheroot's stdlib adapter).
            raise HandshakeError(f"TLS handshake failed: {exc}") from None
        if self.allowed_sans is not None and not sans(self.tls.getpeercert() or {}) & self.allowed_sans:
            raise HandshakeError("client certificate has none of the client_allowed_sans")

    def recv(self, size: int) -> bytes:
        """Decrypted bytes."""
        try:
            return self.tls.recv(size)
        except ssl.SSLWantReadError:
            raise WantRead from None
        except ssl.SSLWantWriteError:
            raise WantWrite from None
        except ssl.SSLEOFError:
            return b""
        except ssl.SSLError as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def pending(self) -> int:
        """Decrypted bytes held by OpenSSL."""
        return self.tls.pending()

    def send(self, data: memoryview) -> int:
        """Encrypt and send some of ``data``."""
        try:
            return self.tls.send(data)
        except ssl.SSLWantReadError:
            raise WantRead from None
        except ssl.SSLWantWriteError:
            raise WantWrite from None
        except ssl.SSLError as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def close_notify(self) -> None:
        """Send close_notify if the socket takes it now."""
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            self.tls.unwrap()

    def environ(self) -> dict[str, str]:
        """The scheme, TLS version and cipher."""
        cipher = self.tls.cipher()
        return {
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_PROTOCOL": self.tls.version() or "",
            "SSL_CIPHER": cipher[0] if cipher else "",
        }


class Acceptor(Protocol):
    """Makes the stream of an accepted connection (TLS or not)."""

    def wrap(self, sock: socket.socket) -> Stream:
        """The stream of ``sock`` (non-blocking), before any handshake."""


class StdlibAcceptor:
    """TLS with Python's ssl module on a ready SSL context."""

    def __init__(self, context: ssl.SSLContext, allowed_sans: tuple[str, ...] | None = None) -> None:
        self.context = context
        self.allowed_sans = frozenset(allowed_sans) if allowed_sans is not None else None

    def wrap(self, sock: socket.socket) -> Stream:
        """A stream whose handshake is still to be done."""
        return StdlibStream(sock, self.context, self.allowed_sans)
