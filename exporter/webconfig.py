"""The Prometheus exporter-toolkit web configuration (``--web.config.file``) as typed models: TLS and basic auth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from pathlib import Path
from typing import Annotated, Any

import bcrypt
from cachetools import LRUCache
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from .validation import Check, ConfigError, ExistingFile, Model, load_yaml, one_of, problem, validate

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


def _bcrypt_hash(value: Any, info: ValidationInfo) -> bytes:
    if not isinstance(value, str) or not value.startswith(BCRYPT_PREFIXES):
        raise problem("must be a bcrypt hash ($2a$, $2b$ or $2y$)")
    return value.encode()


BcryptHash = Annotated[bytes, Check(_bcrypt_hash, {"type": "string", "pattern": r"^\$2[aby]\$", "writeOnly": True})]


class TLSConfig(Model):
    """``tls_server_config``: serve HTTPS, optionally asking for client certificates."""

    cert_file: ExistingFile = Field(description="server certificate (PEM), with any intermediates")
    key_file: ExistingFile = Field(description="private key of the server certificate (PEM)")
    client_auth_type: Annotated[str, one_of(tuple(CLIENT_AUTH_TYPES))] = Field(
        "NoClientCert", description="whether and how client certificates are asked for and verified"
    )
    client_ca_file: ExistingFile | None = Field(None, description="CA certificates (PEM) that sign client certificates")
    min_version: Annotated[str, one_of(tuple(TLS_VERSIONS))] = Field("TLS12", description="lowest TLS version")
    max_version: Annotated[str, one_of(tuple(TLS_VERSIONS))] | None = Field(None, description="highest TLS version")

    @model_validator(mode="after")
    def _loadable(self) -> TLSConfig:
        if self.client_auth_type == "RequireAndVerifyClientCert" and self.client_ca_file is None:
            raise problem("is required with RequireAndVerifyClientCert", "client_ca_file")
        try:
            self.context()
        except (ssl.SSLError, OSError) as exc:
            raise problem(f"cannot load the certificate or key: {exc.__class__.__name__}") from None
        return self

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


class HTTPServerConfig(Model):
    """``http_server_config``."""

    http2: bool = Field(True, description="accepted for compatibility; the exporter serves HTTP/1.1")


class WebConfig(Model):
    """The parsed web configuration; an empty one serves plain HTTP without auth."""

    tls_server_config: TLSConfig | None = Field(None, description="serve HTTPS (and ask for client certificates)")
    basic_auth_users: dict[str, BcryptHash] = Field(
        default_factory=dict, description="user names and the bcrypt hashes of their passwords"
    )
    http_server_config: HTTPServerConfig | None = Field(None, description="HTTP server settings")

    _verified: LRUCache[tuple[str, bytes], bool] = PrivateAttr(default_factory=lambda: LRUCache(maxsize=64))
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_off(cls, data: Any) -> Any:
        # As in exporter-toolkit, an empty section switches nothing on.
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items() if k not in cls.model_fields or v not in (None, {})}

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
        hashed = self.basic_auth_users.get(user)
        if not sep or hashed is None:
            # Spend the time a check would, so that timing does not tell which users exist.
            bcrypt.checkpw(b"x", _DUMMY_HASH)
            return False
        # bcrypt is slow on purpose; remember successful checks (by a digest, never the password).
        key = (user, hmac.new(hashed, password.encode(), hashlib.sha256).digest())
        with self._lock:
            if self._verified.get(key):
                return True
        if not bcrypt.checkpw(password.encode(), hashed):
            return False
        with self._lock:
            self._verified[key] = True
        return True


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=4))


def load(path: str | Path) -> WebConfig:
    """Read and validate a web configuration file."""
    raw = load_yaml(path, "web config") or {}
    if not isinstance(raw, dict):
        raise ConfigError("", "the web configuration must be a YAML mapping")
    return validate(WebConfig, raw, Path(path).parent)
