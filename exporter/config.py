"""Loading and validating the YAML configuration; every problem names its key."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .progress import OBJECT_TYPES
from .secrets import Secret, SecretError

JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
PROJECT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
REGION = re.compile(r"^[a-z0-9-]{2,40}$")
LANGUAGES = ("en-us", "zh-cn")

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
# A variable name, not a secret.
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105  # nosec B105
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"

AUTH_KEYS = frozenset(
    {
        "access_key",
        "access_key_file",
        "secret_key",
        "secret_key_file",
        "security_token",
        "security_token_file",
        "token",
        "token_file",
        "username",
        "password",
        "password_file",
        "domain_name",
        "iam_endpoint",
    }
)
TOP_KEYS = frozenset(
    {
        "region",
        "endpoint",
        "project_id",
        "auth",
        "jobs",
        "cache_ttl",
        "page_size",
        "request_timeout",
        "refresh_timeout",
        "max_concurrency",
        "max_pages",
        "retries",
        "language",
        "ca_file",
        "insecure_skip_verify",
        "max_response_bytes",
    }
)


class ConfigError(Exception):
    """A configuration problem: ``key: what is wrong``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key


@dataclass(frozen=True)
class AkSkCredentials:
    """Access key, secret key and optional temporary security token."""

    access_key: Secret
    secret_key: Secret
    security_token: Secret | None = None


@dataclass(frozen=True)
class TokenCredentials:
    """A static IAM token (literal or file)."""

    token: Secret


@dataclass(frozen=True)
class PasswordCredentials:
    """IAM user login."""

    domain_name: str
    username: str
    password: Secret
    iam_endpoint: str


Credentials = AkSkCredentials | TokenCredentials | PasswordCredentials


@dataclass(frozen=True)
class JobConfig:
    """A DRS job and the object types to collect for it."""

    id: str
    object_types: tuple[str, ...] = ("table",)


@dataclass(frozen=True)
class Config:
    """The validated configuration."""

    endpoint: str
    project_id: str
    credentials: Credentials
    jobs: tuple[JobConfig, ...]
    region: str | None = None
    cache_ttl: float = 30.0
    page_size: int = 1000
    request_timeout: float = 10.0
    refresh_timeout: float = 60.0
    max_concurrency: int = 8
    max_pages: int = 1000
    retries: int = 3
    language: str = "en-us"
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    max_response_bytes: int = 64 * 1024 * 1024
    keys: tuple[tuple[str, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple((j.id, t) for j in self.jobs for t in j.object_types))


def _number(raw: dict[str, Any], key: str, default: float, *, minimum: float, maximum: float, integer: bool) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(key, f"must be {'a whole number' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(key, f"must be between {minimum:g} and {maximum:g}, got {value!r}")
    return value


def _string(raw: dict[str, Any], key: str, prefix: str = "") -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(prefix + key, "must be a non-empty string")
    return value.strip()


def _url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(key, f"must be a base URL like https://host[:port], got {value!r}")
    if parts.path not in ("", "/"):
        raise ConfigError(key, f"must be a base URL without a path, got {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


def _secret(auth: dict[str, Any], name: str, base: Path) -> Secret | None:
    value = _string(auth, name, "auth.")
    path = _string(auth, name + "_file", "auth.")
    if value is not None and path is not None:
        raise ConfigError(f"auth.{name}", f"give either {name} or {name}_file, not both")
    if path is not None:
        resolved = Path(path) if Path(path).is_absolute() else base / path
        secret = Secret(name, file=str(resolved))
        try:
            secret.get()
        except SecretError as exc:
            raise ConfigError(f"auth.{name}_file", str(exc)) from None
        return secret
    return Secret(name, value=value) if value is not None else None


def _credentials(raw: Any, region: str | None, base: Path) -> Credentials:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("auth", "must be a mapping")
    for key in raw:
        if key not in AUTH_KEYS:
            raise ConfigError(f"auth.{key}", "unknown key")
    ak, sk = _secret(raw, "access_key", base), _secret(raw, "secret_key", base)
    security_token = _secret(raw, "security_token", base)
    token = _secret(raw, "token", base)
    password = _secret(raw, "password", base)
    username = _string(raw, "username", "auth.")
    forms = [
        name
        for name, present in (("access_key", ak or sk), ("token", token), ("username", username or password))
        if present
    ]
    if len(forms) > 1:
        raise ConfigError("auth", f"give exactly one form of credentials, found {' and '.join(forms)}")
    if security_token is not None and forms != ["access_key"]:
        raise ConfigError("auth.security_token", "only goes with access_key and secret_key")
    if token is not None:
        return TokenCredentials(token)
    if username is not None or password is not None:
        domain = _string(raw, "domain_name", "auth.")
        if username is None or password is None or domain is None:
            missing = [
                k for k, v in (("username", username), ("password", password), ("domain_name", domain)) if v is None
            ]
            raise ConfigError(f"auth.{missing[0]}", "is required for IAM password login")
        iam = _string(raw, "iam_endpoint", "auth.") or os.environ.get(ENV_IAM_ENDPOINT)
        if iam is None:
            if region is None:
                raise ConfigError("auth.iam_endpoint", "is required when no region is set")
            suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
            iam = f"https://iam.{region}.{suffix}"
        return PasswordCredentials(domain, username, password, _url(iam, "auth.iam_endpoint"))
    for key in ("domain_name", "iam_endpoint"):
        if key in raw:
            raise ConfigError(f"auth.{key}", "only goes with username and password")
    if ak is None and sk is None:
        ak = Secret.from_env("access_key", ENV_AK)
        sk = Secret.from_env("secret_key", ENV_SK)
        security_token = Secret.from_env("security_token", ENV_SECURITY_TOKEN)
        if ak is None or sk is None:
            raise ConfigError("auth", f"no credentials: configure auth, or set {ENV_AK} and {ENV_SK}")
    if ak is None:
        raise ConfigError("auth.access_key", "is required with secret_key")
    if sk is None:
        raise ConfigError("auth.secret_key", "is required with access_key")
    return AkSkCredentials(ak, sk, security_token)


def _jobs(raw: Any) -> tuple[JobConfig, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("jobs", "must be a non-empty list of jobs")
    jobs: list[JobConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"jobs[{i}]"
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict):
            raise ConfigError(where, "must be a mapping with an id")
        for key in item:
            if key not in ("id", "object_types"):
                raise ConfigError(f"{where}.{key}", "unknown key")
        job_id = item.get("id")
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise ConfigError(f"{where}.id", f"must be letters, digits and '-' only, got {job_id!r}")
        if job_id in seen:
            raise ConfigError(f"{where}.id", f"job {job_id} is listed twice")
        seen.add(job_id)
        types = item.get("object_types", ["table"])
        if not isinstance(types, list) or not types:
            raise ConfigError(f"{where}.object_types", "must be a non-empty list")
        for t in types:
            if t not in OBJECT_TYPES:
                raise ConfigError(
                    f"{where}.object_types", f"unknown object type {t!r}; known: {', '.join(OBJECT_TYPES)}"
                )
        if len(set(types)) != len(types):
            raise ConfigError(f"{where}.object_types", "lists an object type twice")
        jobs.append(JobConfig(job_id, tuple(types)))
    return tuple(jobs)


def parse(raw: Any, base: Path = Path()) -> Config:
    """Validate a parsed YAML document; relative secret file paths are resolved against ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError("", "the configuration must be a YAML mapping")
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(str(key), "unknown key")
    region = _string(raw, "region")
    if region is not None and not REGION.match(region):
        raise ConfigError("region", f"must look like ap-southeast-1, got {region!r}")
    endpoint = _string(raw, "endpoint")
    if endpoint is not None:
        endpoint = _url(endpoint, "endpoint")
    elif region is not None:
        suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
        endpoint = f"https://drs.{region}.{suffix}"
    else:
        raise ConfigError("region", "set region (or endpoint)")
    project_id = raw.get("project_id", os.environ.get(ENV_PROJECT_ID))
    if project_id is None:
        raise ConfigError("project_id", f"is required (or set {ENV_PROJECT_ID})")
    if not isinstance(project_id, str) or not PROJECT_ID.match(project_id):
        raise ConfigError("project_id", f"must be letters and digits, got {project_id!r}")
    language = raw.get("language", "en-us")
    if language not in LANGUAGES:
        raise ConfigError("language", f"must be one of {', '.join(LANGUAGES)}")
    jobs = _jobs(raw.get("jobs"))
    ca_file = _string(raw, "ca_file")
    if ca_file is not None:
        resolved = Path(ca_file) if Path(ca_file).is_absolute() else base / ca_file
        if not resolved.is_file():
            raise ConfigError("ca_file", f"file {resolved} does not exist")
        ca_file = str(resolved)
    insecure = raw.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        raise ConfigError("insecure_skip_verify", "must be true or false")
    if insecure and ca_file is not None:
        raise ConfigError("insecure_skip_verify", "cannot be combined with ca_file")
    return Config(
        endpoint=endpoint,
        project_id=project_id,
        credentials=_credentials(raw.get("auth"), region, base),
        jobs=jobs,
        region=region,
        cache_ttl=float(_number(raw, "cache_ttl", 30, minimum=0, maximum=86400, integer=False)),
        page_size=_number(raw, "page_size", 1000, minimum=1, maximum=1000, integer=True),
        request_timeout=float(_number(raw, "request_timeout", 10, minimum=0.1, maximum=600, integer=False)),
        refresh_timeout=float(_number(raw, "refresh_timeout", 60, minimum=1, maximum=3600, integer=False)),
        max_concurrency=_number(raw, "max_concurrency", 8, minimum=1, maximum=64, integer=True),
        max_pages=_number(raw, "max_pages", 1000, minimum=1, maximum=100000, integer=True),
        retries=_number(raw, "retries", 3, minimum=0, maximum=10, integer=True),
        language=language,
        ca_file=ca_file,
        insecure_skip_verify=insecure,
        max_response_bytes=_number(
            raw, "max_response_bytes", 64 * 1024 * 1024, minimum=1024, maximum=2**31, integer=True
        ),
    )


def load(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file {file}: {exc.__class__.__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("", f"config file {file} is not valid YAML{where}") from None
    return parse(raw, file.parent)
