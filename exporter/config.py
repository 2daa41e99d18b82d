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
PROJECT_KEYS = frozenset({"region", "endpoint", "project_id", "auth", "jobs", "discovery"})
DISCOVERY_KEYS = frozenset(
    {"job_types", "status", "name_regex", "exclude_regex", "object_types", "refresh_interval", "aggregate_only"}
)
FILTER_KEYS = ("include_src_db", "exclude_src_db", "include_src_tb", "exclude_src_tb")
TOP_KEYS = frozenset(
    {
        "projects",
        "discovery",
        "max_objects_per_key",
        "object_filters",
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
        "max_staleness",
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
    aggregate_only: bool = False  # per source database aggregates instead of per-object series


JOB_TYPES = ("migration", "sync", "cloudDataGuard")


@dataclass(frozen=True)
class DiscoveryConfig:
    """Which jobs of a project to find by listing them."""

    job_types: tuple[str, ...]
    status: tuple[str, ...] = ()
    name_regex: re.Pattern[str] | None = None
    exclude_regex: re.Pattern[str] | None = None
    object_types: tuple[str, ...] = ("table",)
    refresh_interval: float = 300.0
    aggregate_only: bool = False

    def wants(self, name: str) -> bool:
        """True when a job called ``name`` passes the include and exclude patterns."""
        if self.name_regex is not None and not self.name_regex.search(name):
            return False
        return not (self.exclude_regex is not None and self.exclude_regex.search(name))


@dataclass(frozen=True)
class ProjectConfig:
    """One project of one region: where, with which credentials, and which jobs."""

    endpoint: str
    project_id: str
    credentials: Credentials
    jobs: tuple[JobConfig, ...]
    region: str | None = None
    discovery: DiscoveryConfig | None = None


@dataclass(frozen=True)
class ObjectFilter:
    """Which objects get a per-object series (aggregates always count every object)."""

    include_src_db: re.Pattern[str] | None = None
    exclude_src_db: re.Pattern[str] | None = None
    include_src_tb: re.Pattern[str] | None = None
    exclude_src_tb: re.Pattern[str] | None = None

    @property
    def active(self) -> bool:
        """True when any pattern is set."""
        return any((self.include_src_db, self.exclude_src_db, self.include_src_tb, self.exclude_src_tb))

    def keeps(self, src_db: str, src_tb: str) -> bool:
        """True when an object passes every pattern."""
        for pattern, text, include in (
            (self.include_src_db, src_db, True),
            (self.exclude_src_db, src_db, False),
            (self.include_src_tb, src_tb, True),
            (self.exclude_src_tb, src_tb, False),
        ):
            if pattern is not None and bool(pattern.search(text)) != include:
                return False
        return True


@dataclass(frozen=True)
class Config:
    """The validated configuration."""

    projects: tuple[ProjectConfig, ...]
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
    max_objects_per_key: int | None = None
    max_staleness: float | None = None  # None: 2 × cache_ttl + refresh_timeout
    object_filter: ObjectFilter = field(default_factory=ObjectFilter)
    keys: tuple[tuple[str, str], ...] = field(init=False)
    keys_by_job: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple((j.id, t) for j in self.jobs for t in j.object_types))
        object.__setattr__(self, "keys_by_job", frozenset(j.id for j in self.jobs))

    # The single-project view: the first project (the only one unless `projects:` is used).
    @property
    def endpoint(self) -> str:
        """Endpoint of the first project."""
        return self.projects[0].endpoint

    @property
    def project_id(self) -> str:
        """ID of the first project."""
        return self.projects[0].project_id

    @property
    def credentials(self) -> Credentials:
        """Credentials of the first project."""
        return self.projects[0].credentials

    @property
    def region(self) -> str | None:
        """Region of the first project."""
        return self.projects[0].region

    @property
    def jobs(self) -> tuple[JobConfig, ...]:
        """Statically configured jobs of every project."""
        return tuple(job for project in self.projects for job in project.jobs)


def _number(
    raw: dict[str, Any], key: str, default: float, *, minimum: float, maximum: float, integer: bool, prefix: str = ""
) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ConfigError(prefix + key, f"must be {'a whole number' if integer else 'a number'}, got {value!r}")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(prefix + key, f"must be between {minimum:g} and {maximum:g}, got {value!r}")
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


def _secret(auth: dict[str, Any], name: str, base: Path, a: str = "auth.") -> Secret | None:
    value = _string(auth, name, a)
    path = _string(auth, name + "_file", a)
    if value is not None and path is not None:
        raise ConfigError(f"{a}{name}", f"give either {name} or {name}_file, not both")
    if path is not None:
        resolved = Path(path) if Path(path).is_absolute() else base / path
        secret = Secret(name, file=str(resolved))
        try:
            secret.get()
        except SecretError as exc:
            raise ConfigError(f"{a}{name}_file", str(exc)) from None
        return secret
    return Secret(name, value=value) if value is not None else None


def _credentials(raw: Any, region: str | None, base: Path, prefix: str = "") -> Credentials:
    a = prefix + "auth."
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(prefix + "auth", "must be a mapping")
    for key in raw:
        if key not in AUTH_KEYS:
            raise ConfigError(f"{a}{key}", "unknown key")
    ak, sk = _secret(raw, "access_key", base, a), _secret(raw, "secret_key", base, a)
    security_token = _secret(raw, "security_token", base, a)
    token = _secret(raw, "token", base, a)
    password = _secret(raw, "password", base, a)
    username = _string(raw, "username", a)
    forms = [
        name
        for name, present in (("access_key", ak or sk), ("token", token), ("username", username or password))
        if present
    ]
    if len(forms) > 1:
        raise ConfigError(prefix + "auth", f"give exactly one form of credentials, found {' and '.join(forms)}")
    if security_token is not None and forms != ["access_key"]:
        raise ConfigError(a + "security_token", "only goes with access_key and secret_key")
    if token is not None:
        return TokenCredentials(token)
    if username is not None or password is not None:
        domain = _string(raw, "domain_name", a)
        if username is None or password is None or domain is None:
            missing = [
                k for k, v in (("username", username), ("password", password), ("domain_name", domain)) if v is None
            ]
            raise ConfigError(f"{a}{missing[0]}", "is required for IAM password login")
        iam = _string(raw, "iam_endpoint", a) or os.environ.get(ENV_IAM_ENDPOINT)
        if iam is None:
            if region is None:
                raise ConfigError(a + "iam_endpoint", "is required when no region is set")
            suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
            iam = f"https://iam.{region}.{suffix}"
        return PasswordCredentials(domain, username, password, _url(iam, a + "iam_endpoint"))
    for key in ("domain_name", "iam_endpoint"):
        if key in raw:
            raise ConfigError(f"{a}{key}", "only goes with username and password")
    if ak is None and sk is None:
        ak = Secret.from_env("access_key", ENV_AK)
        sk = Secret.from_env("secret_key", ENV_SK)
        security_token = Secret.from_env("security_token", ENV_SECURITY_TOKEN)
        if ak is None or sk is None:
            raise ConfigError(prefix + "auth", f"no credentials: configure auth, or set {ENV_AK} and {ENV_SK}")
    if ak is None:
        raise ConfigError(a + "access_key", "is required with secret_key")
    if sk is None:
        raise ConfigError(a + "secret_key", "is required with access_key")
    return AkSkCredentials(ak, sk, security_token)


def _jobs(raw: Any, prefix: str, seen: set[str], required: bool) -> tuple[JobConfig, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, list) or (required and not raw):
        raise ConfigError(f"{prefix}jobs", "must be a non-empty list of jobs (or configure discovery)")
    jobs: list[JobConfig] = []
    for i, item in enumerate(raw):
        where = f"{prefix}jobs[{i}]"
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict):
            raise ConfigError(where, "must be a mapping with an id")
        for key in item:
            if key not in ("id", "object_types", "aggregate_only"):
                raise ConfigError(f"{where}.{key}", "unknown key")
        job_id = item.get("id")
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise ConfigError(f"{where}.id", f"must be letters, digits and '-' only, got {job_id!r}")
        if job_id in seen:
            raise ConfigError(f"{where}.id", f"job {job_id} is listed twice (job ids are unique across projects)")
        seen.add(job_id)
        types = _object_types(item.get("object_types", ["table"]), f"{where}.object_types")
        jobs.append(JobConfig(job_id, types, _bool(item, "aggregate_only", where + ".")))
    return tuple(jobs)


def _object_types(types: Any, key: str) -> tuple[str, ...]:
    if not isinstance(types, list) or not types:
        raise ConfigError(key, "must be a non-empty list")
    for t in types:
        if t not in OBJECT_TYPES:
            raise ConfigError(key, f"unknown object type {t!r}; known: {', '.join(OBJECT_TYPES)}")
    if len(set(types)) != len(types):
        raise ConfigError(key, "lists an object type twice")
    return tuple(types)


def _bool(raw: dict[str, Any], key: str, prefix: str = "") -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ConfigError(prefix + key, "must be true or false")
    return value


def _regex(raw: dict[str, Any], key: str, prefix: str) -> re.Pattern[str] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(prefix + key, "must be a regular expression")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(prefix + key, f"is not a valid regular expression: {exc}") from None


def _discovery(raw: Any, prefix: str) -> DiscoveryConfig | None:
    if raw is None:
        return None
    where = prefix + "discovery"
    if not isinstance(raw, dict):
        raise ConfigError(where, "must be a mapping")
    for key in raw:
        if key not in DISCOVERY_KEYS:
            raise ConfigError(f"{where}.{key}", "unknown key")
    job_types = raw.get("job_types")
    if not isinstance(job_types, list) or not job_types or any(t not in JOB_TYPES for t in job_types):
        raise ConfigError(f"{where}.job_types", f"is required: a list of {', '.join(JOB_TYPES)}")
    status = raw.get("status", [])
    if not isinstance(status, list) or not all(isinstance(x, str) and x.isupper() for x in status):
        raise ConfigError(f"{where}.status", "must be a list of DRS job statuses like INCRE_TRANSFER_STARTED")
    return DiscoveryConfig(
        job_types=tuple(dict.fromkeys(job_types)),
        status=tuple(status),
        name_regex=_regex(raw, "name_regex", where + "."),
        exclude_regex=_regex(raw, "exclude_regex", where + "."),
        object_types=_object_types(raw.get("object_types", ["table"]), f"{where}.object_types"),
        refresh_interval=float(
            _number(raw, "refresh_interval", 300, minimum=1, maximum=86400, integer=False, prefix=where + ".")
        ),
        aggregate_only=_bool(raw, "aggregate_only", where + "."),
    )


def _project(raw: dict[str, Any], prefix: str, base: Path, seen: set[str]) -> ProjectConfig:
    region = _string(raw, "region", prefix)
    if region is not None and not REGION.match(region):
        raise ConfigError(prefix + "region", f"must look like ap-southeast-1, got {region!r}")
    endpoint = _string(raw, "endpoint", prefix)
    if endpoint is not None:
        endpoint = _url(endpoint, prefix + "endpoint")
    elif region is not None:
        suffix = "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"
        endpoint = f"https://drs.{region}.{suffix}"
    else:
        raise ConfigError(prefix + "region", "set region (or endpoint)")
    project_id = raw.get("project_id", os.environ.get(ENV_PROJECT_ID) if not prefix else None)
    if project_id is None:
        raise ConfigError(prefix + "project_id", f"is required (or set {ENV_PROJECT_ID})")
    if not isinstance(project_id, str) or not PROJECT_ID.match(project_id):
        raise ConfigError(prefix + "project_id", f"must be letters and digits, got {project_id!r}")
    discovery = _discovery(raw.get("discovery"), prefix)
    jobs = _jobs(raw.get("jobs"), prefix, seen, required=discovery is None)
    return ProjectConfig(
        endpoint=endpoint,
        project_id=project_id,
        credentials=_credentials(raw.get("auth"), region, base, prefix),
        jobs=jobs,
        region=region,
        discovery=discovery,
    )


def parse(raw: Any, base: Path = Path()) -> Config:
    """Validate a parsed YAML document; relative secret file paths are resolved against ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError("", "the configuration must be a YAML mapping")
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(str(key), "unknown key")
    seen: set[str] = set()
    if "projects" in raw:
        single = sorted(k for k in raw if k in PROJECT_KEYS)
        if single:
            raise ConfigError(single[0], "goes inside projects[] when projects is used")
        items = raw["projects"]
        if not isinstance(items, list) or not items:
            raise ConfigError("projects", "must be a non-empty list of projects")
        projects: list[ProjectConfig] = []
        for i, item in enumerate(items):
            prefix = f"projects[{i}]."
            if not isinstance(item, dict):
                raise ConfigError(f"projects[{i}]", "must be a mapping")
            for key in item:
                if key not in PROJECT_KEYS:
                    raise ConfigError(prefix + str(key), "unknown key")
            projects.append(_project(item, prefix, base, seen))
    else:
        projects = [_project(raw, "", base, seen)]
    language = raw.get("language", "en-us")
    if language not in LANGUAGES:
        raise ConfigError("language", f"must be one of {', '.join(LANGUAGES)}")
    ca_file = _string(raw, "ca_file")
    if ca_file is not None:
        resolved = Path(ca_file) if Path(ca_file).is_absolute() else base / ca_file
        if not resolved.is_file():
            raise ConfigError("ca_file", f"file {resolved} does not exist")
        ca_file = str(resolved)
    insecure = _bool(raw, "insecure_skip_verify")
    if insecure and ca_file is not None:
        raise ConfigError("insecure_skip_verify", "cannot be combined with ca_file")
    filters = raw.get("object_filters", {})
    if not isinstance(filters, dict):
        raise ConfigError("object_filters", "must be a mapping")
    for key in filters:
        if key not in FILTER_KEYS:
            raise ConfigError(f"object_filters.{key}", "unknown key")
    max_objects = raw.get("max_objects_per_key")
    if max_objects is not None:
        max_objects = _number(raw, "max_objects_per_key", 0, minimum=0, maximum=10**8, integer=True)
    return Config(
        projects=tuple(projects),
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
        max_objects_per_key=max_objects,
        max_staleness=(
            float(_number(raw, "max_staleness", 0, minimum=0, maximum=86400, integer=False))
            if raw.get("max_staleness") is not None
            else None
        ),
        object_filter=ObjectFilter(**{k: _regex(filters, k, "object_filters.") for k in FILTER_KEYS}),
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
