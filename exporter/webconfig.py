"""The Prometheus exporter-toolkit web configuration (``--web.config.file``): TLS and basic auth."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from cachetools import LRUCache

from .config import ConfigError

CLIENT_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version"}


@dataclass(frozen=True)
class TLSConfig:
    """``tls_server_config``."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str | None = None

    def context(self) -> ssl.SSLContext:
        """A server-side SSL context for this configuration."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = TLS_VERSIONS[self.min_version]
        if self.max_version:
            ctx.maximum_version = TLS_VERSIONS[self.max_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.verify_mode = CLIENT_AUTH_TYPES[self.client_auth_type]
        if self.client_ca_file is not None:
            ctx.load_verify_locations(cafile=str(self.client_ca_file))
        return ctx


@dataclass
class WebConfig:
    """The parsed web configuration; an empty one serves plain HTTP without auth."""

    tls: TLSConfig | None = None
    basic_auth_users: dict[str, bytes] = field(default_factory=dict)
    _verified: LRUCache[tuple[str, bytes], bool] = field(default_factory=lambda: LRUCache(maxsize=64))
    _lock: threading.Lock = field(default_factory=threading.Lock)

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


def _path(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, "must be a file path")
    path = Path(value) if Path(value).is_absolute() else base / value
    if not path.is_file():
        raise ConfigError(key, f"file {path} does not exist")
    return path


def _tls(raw: Any, base: Path) -> TLSConfig:
    if not isinstance(raw, dict):
        raise ConfigError("tls_server_config", "must be a mapping")
    for key in raw:
        if key not in TLS_KEYS:
            raise ConfigError(f"tls_server_config.{key}", "unknown key")
    auth_type = raw.get("client_auth_type", "NoClientCert")
    if auth_type not in CLIENT_AUTH_TYPES:
        raise ConfigError("tls_server_config.client_auth_type", f"must be one of {', '.join(CLIENT_AUTH_TYPES)}")
    for key in ("min_version", "max_version"):
        if key in raw and raw[key] not in TLS_VERSIONS:
            raise ConfigError(f"tls_server_config.{key}", f"must be one of {', '.join(TLS_VERSIONS)}")
    client_ca = raw.get("client_ca_file")
    if auth_type == "RequireAndVerifyClientCert" and not client_ca:
        raise ConfigError("tls_server_config.client_ca_file", "is required with RequireAndVerifyClientCert")
    tls = TLSConfig(
        cert_file=_path(base, raw.get("cert_file"), "tls_server_config.cert_file"),
        key_file=_path(base, raw.get("key_file"), "tls_server_config.key_file"),
        client_auth_type=auth_type,
        client_ca_file=_path(base, client_ca, "tls_server_config.client_ca_file") if client_ca else None,
        min_version=raw.get("min_version", "TLS12"),
        max_version=raw.get("max_version"),
    )
    try:
        tls.context()
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            "tls_server_config", f"cannot load the certificate or key: {exc.__class__.__name__}"
        ) from None
    return tls


def load(path: str | Path) -> WebConfig:
    """Read and validate a web configuration file."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read web config file {file}: {exc.__class__.__name__}") from None
    except yaml.YAMLError:
        raise ConfigError("", f"web config file {file} is not valid YAML") from None
    if not isinstance(raw, dict):
        raise ConfigError("", "the web configuration must be a YAML mapping")
    for key in raw:
        if key not in ("tls_server_config", "basic_auth_users", "http_server_config"):
            raise ConfigError(str(key), "unknown key")
    users: dict[str, bytes] = {}
    for user, hashed in (raw.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"basic_auth_users.{user}", "must be a bcrypt hash ($2a$, $2b$ or $2y$)")
        users[str(user)] = hashed.encode()
    tls = _tls(raw["tls_server_config"], file.parent) if raw.get("tls_server_config") else None
    return WebConfig(tls=tls, basic_auth_users=users)
