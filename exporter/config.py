"""The configuration as typed models: validation, the JSON Schema and the README reference come from them.

Besides the models: the single-project form, secrets from files and the environment, and rules across keys.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from .progress import OBJECT_TYPES
from .secrets import Secret, SecretError
from .validation import (
    BaseURL,
    Check,
    ConfigError,
    ExistingFile,
    Model,
    Regex,
    Text,
    base_url,
    between,
    load_yaml,
    matching,
    one_of,
    problem,
    resolve,
    text,
    validate,
)

__all__ = ["Config", "ConfigError", "load", "parse"]

JOB_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
PROJECT_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
REGION = re.compile(r"^[a-z0-9-]{2,40}$")
JOB_TYPES = ("migration", "sync", "cloudDataGuard")
SECRETS = ("access_key", "secret_key", "security_token", "token", "password")

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
# A variable name, not a secret.
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105  # nosec B105
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"


def _object_types(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise problem("must be a non-empty list")
    for item in value:
        if item not in OBJECT_TYPES:
            raise problem(f"unknown object type {item!r}; known: {', '.join(OBJECT_TYPES)}")
    if len(set(value)) != len(value):
        raise problem("lists an object type twice")
    return tuple(value)


def _job_types(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(t not in JOB_TYPES for t in value):
        raise problem(f"is required: a list of {', '.join(JOB_TYPES)}")
    return tuple(dict.fromkeys(value))


def _statuses(value: Any, info: ValidationInfo) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.isupper() for x in value):
        raise problem("must be a list of DRS job statuses like INCRE_TRANSFER_STARTED")
    return tuple(value)


def _secret(value: Any, info: ValidationInfo) -> Secret:
    return Secret(str(info.field_name), value=text(value))


def _secret_file(value: Any, info: ValidationInfo) -> Secret:
    secret = Secret(str(info.field_name).removesuffix("_file"), file=str(resolve(text(value), info)))
    try:
        secret.get()
    except SecretError as exc:
        raise problem(str(exc)) from None
    return secret


ObjectTypes = Annotated[
    tuple[str, ...],
    Check(_object_types, {"type": "array", "items": {"enum": list(OBJECT_TYPES)}, "minItems": 1, "uniqueItems": True}),
]
JobTypes = Annotated[
    tuple[str, ...], Check(_job_types, {"type": "array", "items": {"enum": list(JOB_TYPES)}, "minItems": 1})
]
Statuses = Annotated[
    tuple[str, ...], Check(_statuses, {"type": "array", "items": {"type": "string", "pattern": "^[A-Z_]+$"}})
]
SecretValue = Annotated[Secret, Check(_secret, {"type": "string", "minLength": 1, "writeOnly": True})]
SecretFile = Annotated[Secret, Check(_secret_file, {"type": "string", "minLength": 1})]


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


def _either(*names: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [name]} for name in names]}


def with_files(*names: str) -> list[str]:
    """Each secret's key and its ``_file`` key."""
    return [key for name in names for key in (name, name + "_file")]


def _auth_schema(schema: dict[str, Any]) -> None:
    """The forms of credentials, for editors (the validator below says the same in words)."""
    schema["allOf"] = [{"not": {"required": [s, s + "_file"]}} for s in SECRETS]
    schema["oneOf"] = [
        {"maxProperties": 0},
        {
            "propertyNames": {"enum": with_files("access_key", "secret_key", "security_token")},
            "allOf": [_either(*with_files("access_key")), _either(*with_files("secret_key"))],
        },
        {"propertyNames": {"enum": with_files("token")}, "minProperties": 1},
        {
            "propertyNames": {"enum": ["username", *with_files("password"), "domain_name", "iam_endpoint"]},
            "required": ["username", "domain_name"],
            **_either(*with_files("password")),
        },
    ]


class AuthConfig(Model):
    """Exactly one form of credentials: AK/SK signing, a static IAM token, or IAM password login."""

    model_config = ConfigDict(json_schema_extra=_auth_schema)

    access_key: SecretValue | None = Field(None, description="AK for AK/SK request signing")
    access_key_file: SecretFile | None = Field(None, description="file holding the AK")
    secret_key: SecretValue | None = Field(None, description="SK for AK/SK request signing")
    secret_key_file: SecretFile | None = Field(None, description="file holding the SK")
    security_token: SecretValue | None = Field(None, description="security token of temporary AK/SK credentials")
    security_token_file: SecretFile | None = Field(None, description="file holding the security token")
    token: SecretValue | None = Field(None, description="a static IAM token")
    token_file: SecretFile | None = Field(None, description="file holding an IAM token")
    username: Text | None = Field(None, description="IAM user for password login")
    password: SecretValue | None = Field(None, description="password of the IAM user")
    password_file: SecretFile | None = Field(None, description="file holding the password of the IAM user")
    domain_name: Text | None = Field(None, description="account (domain) of the IAM user")
    iam_endpoint: BaseURL | None = Field(
        None, description="IAM base URL; default `$HUAWEICLOUD_SDK_IAM_ENDPOINT`, else from `region`"
    )

    def secret(self, name: str) -> Secret | None:
        """The secret ``name``, from its literal value or its file."""
        value: Secret | None = getattr(self, name) or getattr(self, name + "_file")
        return value

    @model_validator(mode="after")
    def _one_form(self) -> AuthConfig:
        for name in SECRETS:
            if getattr(self, name) is not None and getattr(self, name + "_file") is not None:
                raise problem(f"give either {name} or {name}_file, not both", name)
        has = {name: self.secret(name) is not None for name in SECRETS}
        forms = [
            form
            for form, present in (
                ("access_key", has["access_key"] or has["secret_key"]),
                ("token", has["token"]),
                ("username", self.username is not None or has["password"]),
            )
            if present
        ]
        if len(forms) > 1:
            raise problem(f"give exactly one form of credentials, found {' and '.join(forms)}")
        if has["security_token"] and forms != ["access_key"]:
            raise problem("only goes with access_key and secret_key", "security_token")
        if forms == ["username"]:
            for key, present in (
                ("username", self.username),
                ("password", has["password"]),
                ("domain_name", self.domain_name),
            ):
                if not present:
                    raise problem("is required for IAM password login", key)
        for key in ("domain_name", "iam_endpoint"):
            if forms != ["username"] and getattr(self, key) is not None:
                raise problem("only goes with username and password", key)
        if forms == ["access_key"]:
            for given, needed in (("secret_key", "access_key"), ("access_key", "secret_key")):
                if not has[needed]:
                    raise problem(f"is required with {given}", needed)
        return self


def region_domain(region: str) -> str:
    """The public domain of a region's endpoints."""
    return "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"


class JobConfig(Model):
    """A DRS job (or just its id) and what to collect for it."""

    id: Annotated[str, matching(JOB_ID, "letters, digits and '-' only")] = Field(description="DRS job id")
    object_types: ObjectTypes = Field(("table",), description="object types to collect")
    aggregate_only: bool = Field(
        False,
        description="no per-object series: `huaweicloud_drs_database_objects` and `..._completed` per `src_db` "
        "instead (for the largest jobs)",
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_id(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"id": data}
        if not isinstance(data, dict):
            raise problem("must be a mapping with an id")
        return data


class DiscoveryConfig(Model):
    """Which jobs of a project to find by listing them."""

    job_types: JobTypes = Field(description="job types to list (the list API requires them)")
    status: Statuses = Field((), description="only jobs in these statuses, e.g. `INCRE_TRANSFER_STARTED`")
    name_regex: Regex | None = Field(None, description="only jobs whose name matches")
    exclude_regex: Regex | None = Field(None, description="no jobs whose name matches")
    object_types: ObjectTypes = Field(("table",), description="object types to collect for each discovered job")
    refresh_interval: Annotated[float, between(1, 86400)] = Field(300.0, description="seconds between job listings")
    aggregate_only: bool = Field(False, description="`aggregate_only` for every discovered job")

    def wants(self, name: str) -> bool:
        """True when a job called ``name`` passes the include and exclude patterns."""
        if self.name_regex is not None and not self.name_regex.search(name):
            return False
        return not (self.exclude_regex is not None and self.exclude_regex.search(name))


def _jobs(value: Any) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise problem("must be a non-empty list of jobs (or configure discovery)")
    return tuple(value)


def _project_schema(schema: dict[str, Any]) -> None:
    schema["required"].remove("endpoint")  # _required derives it from region
    schema["allOf"] = PROJECT_RULES


# What a project needs, in JSON Schema (for a `projects` item, or the top of the single-project form).
PROJECT_RULES: list[dict[str, Any]] = [
    _either("region", "endpoint"),
    {"anyOf": [{"required": ["discovery"]}, {"required": ["jobs"], "properties": {"jobs": {"minItems": 1}}}]},
]


def _jobs_schema(schema: dict[str, Any]) -> None:
    schema["items"] = {"anyOf": [schema["items"], {"type": "string", "pattern": JOB_ID.pattern}]}


class ProjectConfig(Model):
    """One project of one region: where, with which credentials, and which jobs."""

    model_config = ConfigDict(json_schema_extra=_project_schema)

    region: Annotated[str, matching(REGION, "like ap-southeast-1")] | None = Field(
        None, description="region such as `ap-southeast-1`; endpoint `https://drs.{region}.myhuaweicloud.com`"
    )
    endpoint: BaseURL = Field(description="base URL of the DRS API; default from `region`")
    project_id: Annotated[str, matching(PROJECT_ID, "letters and digits")] = Field(
        description="project of the region; default `$HUAWEICLOUD_SDK_PROJECT_ID` in the single-project form"
    )
    auth: AuthConfig | None = Field(
        None, description="credentials; default AK/SK from `$HUAWEICLOUD_SDK_AK`/`_SK` (+`_SECURITY_TOKEN`)"
    )
    jobs: Annotated[tuple[JobConfig, ...], BeforeValidator(_jobs)] = Field(
        (), description="jobs: ids, or `{id, object_types, aggregate_only}`", json_schema_extra=_jobs_schema
    )
    discovery: DiscoveryConfig | None = Field(None, description="find jobs by listing them")

    _credentials: Credentials = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _required(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            raise problem("must be a mapping")
        single = (info.context or {}).get("single", False)
        if "project_id" not in data:
            if not single or not os.environ.get(ENV_PROJECT_ID):
                raise problem(f"is required{f' (or set {ENV_PROJECT_ID})' if single else ''}", "project_id")
            data = {**data, "project_id": os.environ[ENV_PROJECT_ID]}
        if not data.get("jobs") and data.get("discovery") is None:
            raise problem("must be a non-empty list of jobs (or configure discovery)", "jobs")
        if data.get("endpoint") is None:
            region = data.get("region")
            if region is None:
                raise problem("set region (or endpoint)", "region")
            if isinstance(region, str):  # a wrong type is reported by the region field itself
                data = {**data, "endpoint": f"https://drs.{region.strip()}.{region_domain(region.strip())}"}
        return data

    @model_validator(mode="after")
    def _derive(self) -> ProjectConfig:
        self._credentials = self._resolve_credentials()
        return self

    def _resolve_credentials(self) -> Credentials:
        auth = self.auth or AuthConfig()
        token, password = auth.secret("token"), auth.secret("password")
        if token is not None:
            return TokenCredentials(token)
        if password is not None:
            iam = auth.iam_endpoint or os.environ.get(ENV_IAM_ENDPOINT)
            if iam is None:
                if self.region is None:
                    raise problem("is required when no region is set", "auth.iam_endpoint")
                iam = f"https://iam.{self.region}.{region_domain(self.region)}"
            return PasswordCredentials(str(auth.domain_name), str(auth.username), password, base_url(iam))
        ak, sk, security = auth.secret("access_key"), auth.secret("secret_key"), auth.secret("security_token")
        if ak is None or sk is None:
            ak, sk = Secret.from_env("access_key", ENV_AK), Secret.from_env("secret_key", ENV_SK)
            security = Secret.from_env("security_token", ENV_SECURITY_TOKEN)
            if ak is None or sk is None:
                raise problem(f"no credentials: configure auth, or set {ENV_AK} and {ENV_SK}", "auth")
        return AkSkCredentials(ak, sk, security)

    @property
    def credentials(self) -> Credentials:
        """The project's credentials, with file and environment sources resolved."""
        return self._credentials


class ObjectFilter(Model):
    """Which objects get a per-object series (aggregates always count every object)."""

    include_src_db: Regex | None = Field(None, description="only source databases matching this")
    exclude_src_db: Regex | None = Field(None, description="no source databases matching this")
    include_src_tb: Regex | None = Field(None, description="only source tables matching this")
    exclude_src_tb: Regex | None = Field(None, description="no source tables matching this")

    @property
    def active(self) -> bool:
        """True when any pattern is set."""
        return any((self.include_src_db, self.exclude_src_db, self.include_src_tb, self.exclude_src_tb))

    def keeps(self, src_db: str, src_tb: str) -> bool:
        """True when an object passes every pattern."""
        for pattern, value, include in (
            (self.include_src_db, src_db, True),
            (self.exclude_src_db, src_db, False),
            (self.include_src_tb, src_tb, True),
            (self.exclude_src_tb, src_tb, False),
        ):
            if pattern is not None and bool(pattern.search(value)) != include:
                return False
        return True


class Config(Model):
    """The validated configuration: one or more projects and the settings they share."""

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["ca_file", "insecure_skip_verify"],
                "properties": {"insecure_skip_verify": {"const": True}},
            }
        }
    )

    projects: tuple[ProjectConfig, ...] = Field(
        description="several projects (regions, accounts) in one exporter", json_schema_extra={"minItems": 1}
    )
    cache_ttl: Annotated[float, between(0, 86400)] = Field(
        30.0, description="seconds a refresh result (success or failure) is reused; `0` = refresh on every scrape"
    )
    page_size: Annotated[int, between(1, 1000, whole=True)] = Field(1000, description="items per API page")
    request_timeout: Annotated[float, between(0.1, 600)] = Field(10.0, description="seconds for one API request")
    refresh_timeout: Annotated[float, between(1, 3600)] = Field(
        60.0, description="seconds for one refresh of a job and type, all pages and retries"
    )
    max_concurrency: Annotated[int, between(1, 64, whole=True)] = Field(
        8, description="API requests in flight at once, and refreshes running at once"
    )
    max_pages: Annotated[int, between(1, 100000, whole=True)] = Field(
        1000, description="refuse (`page_cap_exceeded`) a job and type needing more pages"
    )
    retries: Annotated[int, between(0, 10, whole=True)] = Field(
        3, description="retries of a request after 429, 5xx, timeouts and connection errors"
    )
    language: Annotated[str, one_of(("en-us", "zh-cn"))] = Field(
        "en-us", description="`X-Language` of API error messages"
    )
    ca_file: ExistingFile | None = Field(
        None, description="PEM bundle to verify the DRS and IAM endpoints with (private CAs); default system CAs"
    )
    insecure_skip_verify: bool = Field(
        False, description="do not verify TLS certificates of the endpoints (logs a warning; never in production)"
    )
    max_response_bytes: Annotated[int, between(1024, 2**31, whole=True)] = Field(
        64 * 1024 * 1024, description="refuse (`response_too_large`) an API answer larger than this"
    )
    max_objects_per_key: Annotated[int, between(0, 10**8, whole=True)] | None = Field(
        None,
        description="at most this many per-object series per job and type; the rest are counted in "
        "`huaweicloud_drs_objects_not_exported`",
    )
    object_filters: ObjectFilter = Field(
        default_factory=ObjectFilter, description="regular expressions selecting which objects get a series"
    )
    max_staleness: Annotated[float, between(0, 86400)] | None = Field(
        None,
        description="seconds the last good data of a key is served while a slow refresh runs; "
        "default `2 × cache_ttl + refresh_timeout`",
    )

    @model_validator(mode="before")
    @classmethod
    def _projects_list(cls, data: Any) -> Any:
        items = data.get("projects") if isinstance(data, dict) else None
        if not isinstance(items, list) or not items:
            raise problem("must be a non-empty list of projects", "projects")
        return {**data, "projects": tuple(items)}

    @model_validator(mode="after")
    def _across_keys(self, info: ValidationInfo) -> Config:
        if self.insecure_skip_verify and self.ca_file is not None:
            raise problem("cannot be combined with ca_file", "insecure_skip_verify")
        seen: set[str] = set()
        for p, project in enumerate(self.projects):
            for j, job in enumerate(project.jobs):
                if job.id in seen:
                    where = "" if (info.context or {}).get("single") else f"projects.{p}."
                    raise problem(
                        f"job {job.id} is listed twice (job ids are unique across projects)", where + f"jobs.{j}.id"
                    )
                seen.add(job.id)
        return self

    @cached_property
    def keys(self) -> tuple[tuple[str, str], ...]:
        """Every configured (job_id, object_type)."""
        return tuple((j.id, t) for j in self.jobs for t in j.object_types)

    @cached_property
    def keys_by_job(self) -> frozenset[str]:
        """The ids of the configured jobs."""
        return frozenset(j.id for j in self.jobs)

    @property
    def object_filter(self) -> ObjectFilter:
        """The object filters, as the guards call them."""
        return self.object_filters

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


PROJECT_KEYS = frozenset(ProjectConfig.model_fields)


def parse(raw: Any, base: Path = Path()) -> Config:
    """Validate a parsed YAML document; relative file paths are resolved against ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError("", "the configuration must be a YAML mapping")
    if "projects" in raw:
        inside = sorted(str(k) for k in raw if k in PROJECT_KEYS)
        if inside:
            raise ConfigError(inside[0], "goes inside projects[] when projects is used")
        return validate(Config, raw, base)
    # The single-project form is one project whose keys stand at the top; its errors are named that way.
    project = {k: v for k, v in raw.items() if k in PROJECT_KEYS}
    rest = {k: v for k, v in raw.items() if k not in PROJECT_KEYS}
    return validate(Config, {**rest, "projects": [project]}, base, single=True, strip=("projects", 0))


def load(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    return parse(load_yaml(path, "config"), Path(path).parent)
