"""The Prometheus exporter-toolkit web configuration (``--web.config.file``) as typed models.

Every key exporter-toolkit knows is here: supported, or refused at start-up saying why (never ignored).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import hmac
import re
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import msgspec
from cachetools import LRUCache

from ..base import secrets
from ..config.validation import (
    ConfigError,
    FilePath,
    Model,
    StrictKeysLoader,
    Text,
    doc,
    each_of,
    fields,
    key_path,
    load_yaml,
    one_of,
    problem,
    shown,
    validate,
)
from .access import (
    BCRYPT,
    DUMMY_HASH,
    MAX_PASSWORD_BYTES,
    NOT_BCRYPT,
    BcryptHash,
    Bucket,
    RateLimit,
    checkpw,
    parse_basic,
)
from .passwords import PasswordChecks
from .tlsserver import Acceptor, StdlibAcceptor, load_chain

__all__ = ["ConfigError", "TLSConfig", "Verdict", "WebConfig", "load"]

VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Asked for and never verified (Go's crypto/tls): served on pyOpenSSL, whose verify callback can accept any
# certificate; the value is whether a certificate is required. RequireClientCert is exporter-toolkit's old alias.
UNVERIFIED_MODES = {"RequestClientCert": False, "RequireAnyClientCert": True, "RequireClientCert": True}
SAN_MODES = ("RequireAnyClientCert", "RequireClientCert", "RequireAndVerifyClientCert")

TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
OLD_TLS = "TLS 1.0 and 1.1 are deprecated (RFC 8996) and disabled in this OpenSSL; use TLS12 or TLS13"
REFUSED_VERSIONS = {"TLS10": OLD_TLS, "TLS11": OLD_TLS}

# Go's tls.CipherSuites() (the secure ones, as exporter-toolkit accepts) and their OpenSSL names.
# Go and OpenSSL both always enable the TLS 1.3 suites: naming them changes nothing, in either.
TLS12_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
TLS13_CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
CURVES = {"CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1", "X25519": "X25519"}


class PEM(Text):
    """PEM text given inline."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """Non-empty text with a PEM header."""
        text = Text.check(value)
        if "-----BEGIN " not in text:
            raise problem("must be PEM text (-----BEGIN ...)")
        return cls(text)


class PrivateKeyPEM(PEM):
    """A private key given inline: a secret, never shown."""

    def __repr__(self) -> str:
        return secrets.REDACTED

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """Write-only text."""
        return {**super().json_schema(), "writeOnly": True}


class TLSConfig(Model, frozen=True):
    """``tls_server_config``: serve HTTPS, optionally asking for client certificates."""

    cert_file: Annotated[FilePath | None, doc("server certificate (PEM), with any intermediates")] = None
    key_file: Annotated[FilePath | None, doc("private key of the server certificate (PEM)")] = None
    cert: Annotated[PEM | None, doc("the server certificate as PEM text, instead of `cert_file`")] = None
    key: Annotated[PrivateKeyPEM | None, doc("the private key as PEM text, instead of `key_file` (a secret)")] = None
    client_auth_type: Annotated[
        str,
        one_of(
            (*VERIFY_MODES, *UNVERIFIED_MODES),
            "whether client certificates are asked for, required and verified, as Go's crypto/tls: "
            "`RequestClientCert` and `RequireAnyClientCert` (old name `RequireClientCert`) never verify them",
        ),
    ] = "NoClientCert"
    client_ca_file: Annotated[
        FilePath | None,
        doc("CA certificates (PEM) that sign client certificates (with the unverified modes: only named to clients)"),
    ] = None
    client_ca: Annotated[PEM | None, doc("the client CA certificates as PEM text, instead of `client_ca_file`")] = None
    client_allowed_sans: Annotated[
        tuple[str, ...] | None,
        msgspec.Meta(
            description="the client certificate must carry one of these SANs (DNS, IP, e-mail or URI), "
            "else it is dropped",
            extra_json_schema={"minItems": 1},
        ),
    ] = None
    min_version: Annotated[str, one_of(tuple(TLS_VERSIONS), "lowest TLS version", REFUSED_VERSIONS)] = "TLS12"
    max_version: Annotated[str, one_of(tuple(TLS_VERSIONS), "highest TLS version", REFUSED_VERSIONS)] = "TLS13"
    cipher_suites: Annotated[
        tuple[Annotated[str, msgspec.Meta(extra_json_schema={"enum": [*TLS12_CIPHERS, *TLS13_CIPHERS]})], ...],
        each_of(
            (*TLS12_CIPHERS, *TLS13_CIPHERS),
            "TLS 1.2 cipher suites by Go's names, in preference order (TLS 1.3 suites are always on)",
        ),
    ] = ()
    prefer_server_cipher_suites: Annotated[
        bool, doc("choose the cipher suite by the order of `cipher_suites` rather than the client's")
    ] = True
    curve_preferences: Annotated[
        tuple[Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(CURVES)})], ...],
        each_of(
            tuple(CURVES),
            "the one elliptic curve for key exchange (a list of several is refused)",
            None,
            {"maxItems": 1},
        ),
    ] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        for inline, file in (("cert", "cert_file"), ("key", "key_file"), ("client_ca", "client_ca_file")):
            if getattr(self, inline) is not None and getattr(self, file) is not None:
                raise problem(f"give {inline} or {file}, not both", inline)
        if self.cert is None and self.cert_file is None:
            raise problem("is required (or cert)", "cert_file")
        if self.key is None and self.key_file is None:
            raise problem("is required (or key)", "key_file")
        if self.key is not None:
            secrets.register(self.key)
        has_ca = self.client_ca_file is not None or self.client_ca is not None
        if has_ca and self.client_auth_type == "NoClientCert":
            raise problem("is set but client_auth_type is NoClientCert", "client_ca_file")
        if self.client_auth_type == "RequireAndVerifyClientCert" and not has_ca:
            # Go would trust the system's CAs here: anyone with a public certificate could connect.
            raise problem("is required with RequireAndVerifyClientCert", "client_ca_file")
        if self.client_allowed_sans is not None:
            if self.client_auth_type not in SAN_MODES:
                raise problem(
                    "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert", "client_allowed_sans"
                )
            if not self.client_allowed_sans:
                raise problem("must list at least one SAN", "client_allowed_sans")
        if TLS_VERSIONS[self.min_version] > TLS_VERSIONS[self.max_version]:
            raise problem(f"is above max_version {self.max_version}", "min_version")
        if len(self.curve_preferences) > 1:
            raise problem(
                "lists of several curves are not supported (Python's ssl module sets one); name one curve",
                "curve_preferences",
            )
        if self.cipher_suites and not self.tls12_ciphers and self.max_version == "TLS12":
            raise problem("names no TLS 1.2 suite while max_version is TLS12", "cipher_suites")
        if self.client_auth_type in UNVERIFIED_MODES and self.curve_preferences[:1] == ("X25519",):
            raise problem(
                f"{self.curve_preferences[0]} is not supported with {self.client_auth_type} "
                "(pyOpenSSL, which serves that mode, cannot select it); name a CurveP curve",
                "curve_preferences",
            )
        try:
            self.acceptor()  # builds every context: what OpenSSL refuses is found at start-up
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise problem(f"cannot load the certificate, key or CAs: {exc.__class__.__name__}") from None

    @property
    def tls12_ciphers(self) -> list[str]:
        """The OpenSSL names of the TLS 1.2 suites of ``cipher_suites``."""
        return [TLS12_CIPHERS[name] for name in self.cipher_suites if name in TLS12_CIPHERS]

    @property
    def chain(self) -> tuple[str, str]:
        """The certificate and key: PEM text when given inline (``inline_cert``/``inline_key``), else paths."""
        return str(self.cert if self.cert is not None else self.cert_file), str(
            self.key if self.key is not None else self.key_file
        )

    def context(self) -> ssl.SSLContext:
        """A server-side SSL context for this configuration."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        ctx.maximum_version = TLS_VERSIONS[self.max_version]
        load_chain(ctx, *self.chain, inline_cert=self.cert is not None, inline_key=self.key is not None)
        if self.cipher_suites:
            if self.tls12_ciphers:
                ctx.set_ciphers(":".join(self.tls12_ciphers))
            else:  # only TLS 1.3 suites named: no TLS 1.2 suite is left, as in Go
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if not self.prefer_server_cipher_suites:
            ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
        if self.curve_preferences:
            ctx.set_ecdh_curve(CURVES[self.curve_preferences[0]])
        ctx.verify_mode = VERIFY_MODES.get(self.client_auth_type, ssl.CERT_NONE)
        if self.client_ca_file is not None:
            ctx.load_verify_locations(cafile=self.client_ca_file)
        elif self.client_ca is not None:
            ctx.load_verify_locations(cadata=str(self.client_ca))
        elif ctx.verify_mode != ssl.CERT_NONE:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # as Go: no client CAs means the system's
        return ctx

    def acceptor(self) -> Acceptor:
        """The server's TLS side: the stdlib's, or pyOpenSSL's for the modes that do not verify certificates."""
        base = self.context()
        if self.client_auth_type not in UNVERIFIED_MODES:
            return StdlibAcceptor(base, self.client_allowed_sans)
        from . import anycert  # pyOpenSSL takes 150 ms to import: only for the modes that need it

        ca = self.client_ca if self.client_ca is not None else self.client_ca_file
        ctx = anycert.context(
            base,
            *self.chain,
            inline_cert=self.cert is not None,
            inline_key=self.key is not None,
            curve=CURVES[self.curve_preferences[0]] if self.curve_preferences else None,
            require=UNVERIFIED_MODES[self.client_auth_type],
            client_ca=str(ca) if ca is not None else None,
            inline_ca=self.client_ca is not None,
            allowed_sans=self.client_allowed_sans,
        )
        return anycert.AnyCertAcceptor(ctx)


FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


class HeaderValue(Text):
    """A response header's value: text or a number (YAML reads ``1`` as one); blank leaves it unset."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """The value as text: visible ASCII, spaces and tabs (RFC 9110), on one line."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise problem("must be text")
        text = str(value).strip()
        if "\r" in text or "\n" in text:
            raise problem("must be one line")
        if not FIELD_VALUE.fullmatch(text):
            # Anything else would fail every answer (headers are sent as Latin-1) or reach clients raw.
            raise problem(f"must be visible ASCII text (RFC 9110), got {shown(text)}")
        return cls(text)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """Text or a number."""
        return {
            "anyOf": [{"type": "string", "pattern": f"^{FIELD_VALUE.pattern}$"}, {"type": "number"}, {"type": "null"}]
        }


class Headers(Model, frozen=True):
    """``http_server_config.headers``: the response headers exporter-toolkit lets one set (and no others)."""

    content_security_policy: Annotated[HeaderValue | None, doc("`Content-Security-Policy`")] = msgspec.field(
        default=None, name="Content-Security-Policy"
    )
    x_frame_options: Annotated[str | None, one_of(("deny", "sameorigin"), "`deny` or `sameorigin`")] = msgspec.field(
        default=None, name="X-Frame-Options"
    )
    x_content_type_options: Annotated[str | None, one_of(("nosniff",), "`nosniff`")] = msgspec.field(
        default=None, name="X-Content-Type-Options"
    )
    x_xss_protection: Annotated[HeaderValue | None, doc("`X-XSS-Protection`")] = msgspec.field(
        default=None, name="X-XSS-Protection"
    )
    strict_transport_security: Annotated[HeaderValue | None, doc("`Strict-Transport-Security`")] = msgspec.field(
        default=None, name="Strict-Transport-Security"
    )

    def items(self) -> list[tuple[str, str]]:
        """(name, value) of every header set, blank ones left out."""
        return [
            (field.encode_name, str(value))
            for field in msgspec.structs.fields(self)
            if (value := getattr(self, field.name))
        ]


class HTTPServerConfig(Model, frozen=True):
    """``http_server_config``."""

    http2: Annotated[bool, doc("accepted; HTTP/2 is not offered, clients speak HTTP/1.1")] = True
    headers: Annotated[Headers | None, doc("headers added to every response")] = None


class WebConfig(Model, frozen=True):
    """The parsed web configuration; an empty one serves plain HTTP without auth."""

    tls_server_config: Annotated[TLSConfig | None, doc("serve HTTPS (and ask for client certificates)")] = None
    basic_auth_users: Annotated[dict[str, BcryptHash], doc("user names and the bcrypt hashes of their passwords")] = (
        msgspec.field(default_factory=dict)
    )
    http_server_config: Annotated[HTTPServerConfig | None, doc("HTTP server settings")] = None
    rate_limit: Annotated[RateLimit | None, doc("limit the rate of requests (answered 429 over it)")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for user, hashed in self.basic_auth_users.items():
            if not BCRYPT.fullmatch(hashed):
                raise problem(NOT_BCRYPT, f"basic_auth_users.{user}")
        state = self.__dict__
        state["hashes"] = {user.encode(): hashed.encode() for user, hashed in self.basic_auth_users.items()}
        state["dummy"] = DUMMY_HASH.format(cost=self.dummy_cost()).encode()
        state["verified"] = LRUCache(maxsize=64)
        state["lock"] = threading.Lock()
        limit = self.rate_limit
        state["bucket"] = Bucket(limit.interval, limit.burst) if limit is not None and limit.interval > 0 else None
        headers = self.http_server_config.headers if self.http_server_config else None
        state["headers"] = headers.items() if headers is not None else []

    @property
    def tls(self) -> TLSConfig | None:
        """The TLS settings, or None for plain HTTP."""
        return self.tls_server_config

    def costs(self) -> dict[int, list[str]]:
        """The users of each bcrypt cost."""
        by_cost: dict[int, list[str]] = {}
        for user, hashed in self.basic_auth_users.items():
            by_cost.setdefault(int(hashed[4:6]), []).append(user)
        return by_cost

    def dummy_cost(self) -> int:
        """The bcrypt cost spent on unknown users: the most common cost of the users (the higher on a tie)."""
        costs = collections.Counter(int(hashed[4:6]) for hashed in self.basic_auth_users.values())
        if not costs:
            return 10
        return max(costs, key=lambda cost: (costs[cost], cost))

    def authorized(self, header: str | None) -> bool:
        """True when basic auth is off, or ``header`` carries a configured user and password."""
        return self.authorize(header) is Verdict.OK

    def _lookup(self, header: str | None) -> tuple[bytes, bytes | None, tuple[bytes, bytes] | None, bool] | None:
        """(password, its user's hash, cache key, verified already) of ``header``; None without credentials."""
        credentials = parse_basic(header)
        if credentials is None:
            return None
        user, password = credentials
        password = password[:MAX_PASSWORD_BYTES]
        hashed: bytes | None = self.__dict__["hashes"].get(user)
        # bcrypt is slow on purpose; remember successful checks (by a digest, never the password).
        key = (user, hmac.new(hashed, password, hashlib.sha256).digest()) if hashed is not None else None
        verified: LRUCache[tuple[bytes, bytes], bool] = self.__dict__["verified"]
        with self.__dict__["lock"]:
            known = key is not None and bool(verified.get(key))
        return password, hashed, key, known

    def needs_check(self, header: str | None) -> bool:
        """Whether authorize() would run bcrypt for ``header``: credentials that are not verified yet (cheap)."""
        if not self.basic_auth_users:
            return False
        found = self._lookup(header)
        return found is not None and not found[3]

    def authorize(
        self, header: str | None, client: str = "", checks: PasswordChecks | None = None, since: float | None = None
    ) -> Verdict:
        """Whether ``header`` gets in; bcrypt runs in a turn of ``checks`` (BUSY when none came in time).

        ``since``: when the request began waiting (time.monotonic()), if before this call.
        """
        if not self.basic_auth_users:
            return Verdict.OK
        found = self._lookup(header)
        if found is None:
            return Verdict.DENIED
        password, hashed, key, known = found
        if known:
            return Verdict.OK
        if checks is not None and not checks.acquire(client, since):
            return Verdict.BUSY  # the same for every user, known or not: it tells nothing about them
        try:
            if hashed is None or key is None:
                # Spend the time a check of a real user would, so that timing does not tell which users exist.
                checkpw(password, self.__dict__["dummy"])
                return Verdict.DENIED
            if not checkpw(password, hashed):
                return Verdict.DENIED
        finally:
            if checks is not None:
                checks.release(client)
        with self.__dict__["lock"]:
            self.__dict__["verified"][key] = True
        return Verdict.OK

    def allow(self) -> bool:
        """False when the rate limit says no to one more request now."""
        bucket: Bucket | None = self.__dict__["bucket"]
        return bucket is None or bucket.take()

    def with_headers(self, start_response: Callable[..., Any]) -> Callable[..., Any]:
        """``start_response`` adding the configured ``http_server_config.headers``."""
        extra: list[tuple[str, str]] = self.__dict__["headers"]
        if not extra:
            return start_response

        def wrapped(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            return start_response(status, [*headers, *extra], *args)

        return wrapped


class Verdict(enum.Enum):
    """What basic auth says of a request."""

    OK = "ok"
    DENIED = "denied"
    BUSY = "busy"  # no turn for a password check in time (passwords.PasswordChecks)


def load(path: str | Path) -> WebConfig:
    """Read and validate a web configuration file."""
    raw = load_yaml(path, "web config", StrictKeysLoader) or {}
    if not isinstance(raw, dict):
        raise ConfigError("", "the web configuration must be a YAML mapping")
    # An empty (or false) section switches nothing on, as before.
    raw = {k: v for k, v in raw.items() if k not in FIELDS or v not in (None, {}, "", False)}
    users = raw.get("basic_auth_users")
    if isinstance(users, dict):
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not BCRYPT.fullmatch(hashed):
                raise ConfigError(key_path(["basic_auth_users", str(user)]), NOT_BCRYPT)
    return validate(WebConfig, raw, Path(path).parent)


FIELDS = frozenset(fields(WebConfig))
