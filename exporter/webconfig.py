"""The Prometheus exporter-toolkit web configuration (``--web.config.file``) as typed models: TLS and basic auth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from pathlib import Path
from typing import Annotated

import bcrypt
import msgspec
from cachetools import LRUCache

from .validation import ConfigError, FilePath, Model, doc, fields, key_path, load_yaml, one_of, problem, validate

__all__ = ["ConfigError", "TLSConfig", "WebConfig", "load"]

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


BcryptHash = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": r"^\$2[aby]\$", "writeOnly": True})]


class TLSConfig(Model, frozen=True):
    """``tls_server_config``: serve HTTPS, optionally asking for client certificates."""

    cert_file: Annotated[FilePath, doc("server certificate (PEM), with any intermediates")]
    key_file: Annotated[FilePath, doc("private key of the server certificate (PEM)")]
    client_auth_type: Annotated[
        str, one_of(tuple(CLIENT_AUTH_TYPES), "whether and how client certificates are asked for and verified")
    ] = "NoClientCert"
    client_ca_file: Annotated[FilePath | None, doc("CA certificates (PEM) that sign client certificates")] = None
    min_version: Annotated[str, one_of(tuple(TLS_VERSIONS), "lowest TLS version")] = "TLS12"
    max_version: Annotated[str | None, one_of(tuple(TLS_VERSIONS), "highest TLS version")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.client_auth_type == "RequireAndVerifyClientCert" and self.client_ca_file is None:
            raise problem("is required with RequireAndVerifyClientCert", "client_ca_file")
        try:
            self.context()
        except (ssl.SSLError, OSError) as exc:
            raise problem(f"cannot load the certificate or key: {exc.__class__.__name__}") from None

    def context(self) -> ssl.SSLContext:
        """A server-side SSL context for this configuration."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file is not None:
            ctx.load_verify_locations(cafile=self.client_ca_file)
        return ctx


class HTTPServerConfig(Model, frozen=True):
    """``http_server_config``."""

    http2: Annotated[bool, doc("accepted for compatibility; the exporter serves HTTP/1.1")] = True


class WebConfig(Model, frozen=True):
    """The parsed web configuration; an empty one serves plain HTTP without auth."""

    tls_server_config: Annotated[TLSConfig | None, doc("serve HTTPS (and ask for client certificates)")] = None
    basic_auth_users: Annotated[dict[str, BcryptHash], doc("user names and the bcrypt hashes of their passwords")] = (
        msgspec.field(default_factory=dict)
    )
    http_server_config: Annotated[HTTPServerConfig | None, doc("HTTP server settings")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for user, hashed in self.basic_auth_users.items():
            if not hashed.startswith(BCRYPT_PREFIXES):
                raise problem("must be a bcrypt hash ($2a$, $2b$ or $2y$)", f"basic_auth_users.{user}")
        self.__dict__["hashes"] = {user: hashed.encode() for user, hashed in self.basic_auth_users.items()}
        self.__dict__["verified"] = LRUCache(maxsize=64)
        self.__dict__["lock"] = threading.Lock()

    @property
    def tls(self) -> TLSConfig | None:
        """The TLS settings, or None for plain HTTP."""
        return self.tls_server_config

    def authorized(self, header: str | None) -> bool:
        """True when basic auth is off, or ``header`` carries a configured user and password."""
        if not self.basic_auth_users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        hashed: bytes | None = self.__dict__["hashes"].get(user)
        if not sep or hashed is None:
            # Spend the time a check would, so that timing does not tell which users exist.
            bcrypt.checkpw(b"x", _DUMMY_HASH)
            return False
        # bcrypt is slow on purpose; remember successful checks (by a digest, never the password).
        key = (user, hmac.new(hashed, password.encode(), hashlib.sha256).digest())
        verified: LRUCache[tuple[str, bytes], bool] = self.__dict__["verified"]
        with self.__dict__["lock"]:
            if verified.get(key):
                return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self.__dict__["lock"]:
            verified[key] = True
        return True


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))


def load(path: str | Path) -> WebConfig:
    """Read and validate a web configuration file."""
    raw = load_yaml(path, "web config") or {}
    if not isinstance(raw, dict):
        raise ConfigError("", "the web configuration must be a YAML mapping")
    # An empty (or false) section switches nothing on, as before; YAML reads user names like 123 as numbers.
    raw = {k: v for k, v in raw.items() if k not in FIELDS or v not in (None, {}, "", False)}
    users = raw.get("basic_auth_users")
    if isinstance(users, dict):
        for user, hashed in users.items():
            if not isinstance(hashed, str) or not hashed.startswith(BCRYPT_PREFIXES):
                raise ConfigError(
                    key_path(["basic_auth_users", str(user)]), "must be a bcrypt hash ($2a$, $2b$ or $2y$)"
                )
        raw["basic_auth_users"] = {str(user): hashed for user, hashed in users.items()}
    return validate(WebConfig, raw, Path(path).parent)


FIELDS = frozenset(fields(WebConfig))
