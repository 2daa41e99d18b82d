"""Client certificates asked for but not verified (Go's RequestClientCert and RequireAnyClientCert), on pyOpenSSL.

Python's ssl module verifies every client certificate it asks for and has no verify callback; pyOpenSSL has
one. This path is used only for those two modes; every other mode stays on the stdlib (tlsserver.py).
"""

from __future__ import annotations

import contextlib
import io
import select
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cheroot import errors
from cheroot.makefile import MakeFile, StreamReader
from cheroot.ssl import Adapter
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from .tlsserver import pem_path

T = TypeVar("T")
# cryptography's curve classes by OpenSSL's names (X25519 is not one: pyOpenSSL cannot select it, and
# webconfig refuses it with these modes).
_CURVES = {"prime256v1": "SECP256R1", "secp384r1": "SECP384R1", "secp521r1": "SECP521R1"}


def cert_sans(cert: x509.Certificate) -> set[str]:
    """The DNS, e-mail, IP and URI SANs of a certificate, written as Go writes them."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    found: set[str] = set()
    for kind in (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier):
        found.update(ext.get_values_for_type(kind))
    found.update(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return found


def context(
    base: ssl.SSLContext,
    cert: str,
    key: str,
    *,
    inline_cert: bool,
    inline_key: bool,
    curve: str | None,
    require: bool,
    client_ca: str | None,
    inline_ca: bool,
    allowed_sans: tuple[str, ...] | None,
) -> SSL.Context:
    """A pyOpenSSL server context with the versions and cipher suites of ``base``, asking for any certificate."""
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    try:
        # TLS version numbers are the protocol's, the same in both libraries.
        ctx.set_min_proto_version(int(base.minimum_version))
        ctx.set_max_proto_version(int(base.maximum_version))
        tls12 = [c["name"] for c in base.get_ciphers() if c["protocol"] == "TLSv1.2"]
        if tls12:
            ctx.set_cipher_list(":".join(tls12).encode())
        options = SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_SINGLE_ECDH_USE
        if base.options & ssl.OP_CIPHER_SERVER_PREFERENCE:
            options |= SSL.OP_CIPHER_SERVER_PREFERENCE
        ctx.set_options(options)
        if curve is not None:
            ctx.set_tmp_ecdh(getattr(ec, _CURVES[curve])())
        with contextlib.ExitStack() as stack:
            ctx.use_certificate_chain_file(stack.enter_context(pem_path(cert)) if inline_cert else cert)
            ctx.use_privatekey_file(stack.enter_context(pem_path(key)) if inline_key else key)
            if client_ca is not None:  # as Go: the CAs' names are sent as a hint, nothing is verified against them
                ctx.load_client_ca((stack.enter_context(pem_path(client_ca)) if inline_ca else client_ca).encode())
        ctx.check_privatekey()
    except SSL.Error as exc:
        raise ValueError(f"OpenSSL: {exc}") from None
    allowed = frozenset(allowed_sans) if allowed_sans is not None else None

    def accept(_conn: SSL.Connection, cert: Any, _error: int, depth: int, _ok: int) -> bool:
        # Every certificate is accepted, as Go does in these modes; exporter-toolkit's client_allowed_sans
        # check (its VerifyPeerCertificate, on the unverified certificate) fails the handshake here too.
        if allowed is None or depth != 0:
            return True
        try:
            return bool(cert_sans(cert.to_cryptography()) & allowed)
        except Exception:  # an unreadable or unsupported SAN (cryptography has several errors): refused
            return False

    mode = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
    ctx.set_verify(mode, accept)
    return ctx


class TLSSocket:
    """A socket-like pyOpenSSL connection for cheroot: every wait is bounded by the socket's timeout."""

    def __init__(self, conn: SSL.Connection, sock: socket.socket, timeout: float) -> None:
        self._conn = conn
        self._sock = sock
        self._timeout = timeout
        self.family = sock.family

    def _retry(self, call: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._timeout
        poller = select.poll()
        fd = self._sock.fileno()
        while True:
            try:
                return call()
            except SSL.WantReadError:
                event = select.POLLIN
            except SSL.WantWriteError:
                event = select.POLLOUT
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            poller.register(fd, event)
            ready = poller.poll(left * 1000)
            poller.unregister(fd)
            if not ready:
                raise TimeoutError("timed out")

    def handshake(self) -> None:
        """The TLS handshake, within the timeout."""
        self._retry(self._conn.do_handshake)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        """Decrypted bytes into ``buffer``; 0 at the end of the stream."""
        try:
            return self._retry(lambda: self._conn.recv_into(buffer, nbytes or None))
        except SSL.ZeroReturnError:
            return 0
        except SSL.SysCallError as exc:
            if exc.args[0] == -1:  # the peer closed without close_notify
                return 0
            raise ConnectionError(*exc.args) from None
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def send(self, data: Any) -> int:
        """Encrypt and send some of ``data``."""
        try:
            return self._retry(lambda: self._conn.send(data))
        except SSL.SysCallError as exc:
            raise ConnectionError(*exc.args) from None
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def sendall(self, data: Any) -> None:
        """Send all of ``data``."""
        view = memoryview(data)
        while view:
            view = view[self.send(view) :]

    def pending(self) -> int:
        """Decrypted bytes OpenSSL holds, which the kernel's socket no longer shows as readable."""
        return self._conn.pending()

    def settimeout(self, timeout: float | None) -> None:
        """Bound every later wait (None keeps the bound given at creation)."""
        if timeout is not None:
            self._timeout = timeout

    def gettimeout(self) -> float:
        """The bound of every wait."""
        return self._timeout

    def fileno(self) -> int:
        """The kernel socket's descriptor (for cheroot's selector)."""
        return self._sock.fileno()

    def shutdown(self, how: int) -> None:
        """Send TLS close_notify if the socket takes it now, then shut the kernel socket down."""
        with contextlib.suppress(SSL.Error):
            self._conn.shutdown()
        self._sock.shutdown(how)

    def close(self) -> None:
        """Close the kernel socket."""
        self._sock.close()

    def getpeername(self) -> Any:
        """The peer's address."""
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        """The local address."""
        return self._sock.getsockname()

    def getsockopt(self, *args: Any) -> Any:
        """The kernel socket's option."""
        return self._sock.getsockopt(*args)

    def setsockopt(self, *args: Any) -> None:
        """Set the kernel socket's option."""
        self._sock.setsockopt(*args)

    def _decref_socketios(self) -> None:
        """socket.SocketIO calls this on close; the socket is closed by cheroot."""


class _Reader(StreamReader):
    def __init__(self, sock: TLSSocket, mode: str, bufsize: int) -> None:
        super().__init__(sock, mode, bufsize)
        self.tls = sock

    def has_data(self) -> bool:
        """Buffered bytes, ours or OpenSSL's (cheroot would otherwise wait on the socket for them)."""
        return bool(super().has_data()) or self.tls.pending() > 0  # type: ignore[no-untyped-call]


class AnyCertAdapter(Adapter):
    """cheroot's TLS adapter on a pyOpenSSL context: the handshake in ``wrap``, bounded by ``timeout``."""

    def __init__(self, ctx: SSL.Context, timeout: float) -> None:
        super().__init__("", "")
        self.context = ctx
        self.timeout = timeout

    def bind(self, sock: socket.socket) -> socket.socket:
        """The listening socket, unchanged."""
        return sock

    def wrap(self, sock: socket.socket) -> tuple[TLSSocket, dict[str, str]]:
        """The handshake (and the client_allowed_sans check); a failed one drops the client."""
        conn = SSL.Connection(self.context, sock)
        conn.set_accept_state()
        tls = TLSSocket(conn, sock, sock.gettimeout() or self.timeout)
        try:
            tls.handshake()
        except SSL.Error as exc:
            if "http request" in str(exc):
                raise errors.NoSSLError from None  # cheroot answers 400 in plain text, as the stdlib path does
            sock.close()
            raise errors.FatalSSLAlert(f"TLS handshake failed: {exc}") from None
        except Exception as exc:  # OSError, or one a verify callback raised: the client's problem, not ours
            sock.close()
            raise errors.FatalSSLAlert(f"TLS handshake failed: {exc.__class__.__name__}") from None
        return tls, self.get_environ(conn)

    def get_environ(self, conn: SSL.Connection | None = None) -> dict[str, str]:
        """WSGI environ entries of a TLS connection."""
        environ = {"wsgi.url_scheme": "https", "HTTPS": "on"}
        if conn is not None:
            environ["SSL_PROTOCOL"] = conn.get_protocol_version_name()
            environ["SSL_CIPHER"] = conn.get_cipher_name() or ""
        return environ

    def makefile(self, sock: TLSSocket, mode: str = "r", bufsize: int = io.DEFAULT_BUFFER_SIZE) -> Any:
        """cheroot's buffered files over the TLS socket."""
        if "r" in mode:
            return _Reader(sock, mode, bufsize)
        return MakeFile(sock, mode, bufsize)
