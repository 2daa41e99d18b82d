"""Client certificates asked for but not verified (Go's RequestClientCert and RequireAnyClientCert), on pyOpenSSL.

Python's ssl module verifies every client certificate it asks for and has no verify callback; pyOpenSSL has
one. This path is used only for those two modes; every other mode stays on the stdlib (tlsserver.py).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from .httpwire import HTTPError
from .tlsserver import HandshakeError, WantRead, WantWrite, pem_path

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


PLAIN_HTTP = HTTPError(
    "400 Bad Request", "The client sent a plain HTTP request, but this server only speaks HTTPS on this port."
)


class AnyCertStream:
    """A pyOpenSSL connection for the server's event loop (the socket is non-blocking)."""

    def __init__(self, sock: socket.socket, ctx: SSL.Context) -> None:
        self.sock = sock
        self.conn = SSL.Connection(ctx, sock)
        self.conn.set_accept_state()

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except SSL.WantReadError:
            raise WantRead from None
        except SSL.WantWriteError:
            raise WantWrite from None

    def handshake(self) -> None:
        """One step of the handshake (the client_allowed_sans check is in the verify callback)."""
        try:
            self._call(self.conn.do_handshake)
        except (WantRead, WantWrite):
            raise
        except SSL.Error as exc:
            if "http request" in str(exc):  # answered in plain text, as cheroot did on this path
                raise HandshakeError("plain HTTP request on the TLS port", PLAIN_HTTP.answer()) from None
            raise HandshakeError(f"TLS handshake failed: {exc}") from None
        except Exception as exc:  # OSError, or one a verify callback raised: the client's problem, not ours
            raise HandshakeError(f"TLS handshake failed: {exc.__class__.__name__}") from None

    def recv(self, size: int) -> bytes:
        """Decrypted bytes; b"" at the end of the stream."""
        try:
            return self._call(lambda: self.conn.recv(size))
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError as exc:
            if exc.args[0] == -1:  # the peer closed without close_notify
                return b""
            raise ConnectionError(*exc.args) from None
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def pending(self) -> int:
        """Decrypted bytes OpenSSL holds, which the kernel's socket no longer shows as readable."""
        return self.conn.pending()

    def send(self, data: memoryview) -> int:
        """Encrypt and send some of ``data``."""
        try:
            return self._call(lambda: self.conn.send(data))
        except SSL.SysCallError as exc:
            raise ConnectionError(*exc.args) from None
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {exc}") from None

    def close_notify(self) -> None:
        """Send TLS close_notify if the socket takes it now."""
        with contextlib.suppress(SSL.Error, OSError):
            self.conn.shutdown()

    def environ(self) -> dict[str, str]:
        """WSGI environ entries of a TLS connection."""
        return {
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_PROTOCOL": self.conn.get_protocol_version_name(),
            "SSL_CIPHER": self.conn.get_cipher_name() or "",
        }


class AnyCertAcceptor:
    """Makes pyOpenSSL streams on one context."""

    def __init__(self, ctx: SSL.Context) -> None:
        self.context = ctx

    def wrap(self, sock: socket.socket) -> AnyCertStream:
        """A stream whose handshake is still to be done."""
        return AnyCertStream(sock, self.context)
