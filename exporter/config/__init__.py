"""The configuration as typed models: validation, the JSON Schema and docs/configuration.md's reference come from them.

Besides the models: the single-project form, secrets from files and the environment, and rules across keys.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ..base.secrets import Secret, SecretError, register
from .credentials import (
    ENV_AK,
    ENV_IAM_ENDPOINT,
    ENV_PROJECT_ID,
    ENV_SECURITY_TOKEN,
    ENV_SK,
    SECRETS,
    AkSkCredentials,
    AuthConfig,
    Credentials,
    PasswordCredentials,
    TokenCredentials,
)
from .jobs import DiscoveryConfig, JobConfig
from .validation import (
    BaseURL,
    ConfigError,
    FilePath,
    Model,
    between,
    context,
    doc,
    fields,
    load_yaml,
    one_of,
    problem,
    validate,
)
from .values import JobId, ProjectId, Region

__all__ = ["Config", "ConfigError", "DiscoveryConfig", "JobConfig", "load", "parse"]


def region_domain(region: str) -> str:
    """The public domain of a region's endpoints."""
    return "myhuaweicloud.eu" if region == "eu-west-101" else "myhuaweicloud.com"


# A bare job id: a plain string to msgspec (a checked type cannot share a union with a struct), checked by
# ProjectConfig in words; the pattern is for the JSON Schema.
BareJobId = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": JobId.json_schema()["pattern"]})]


class ProjectConfig(Model, frozen=True):
    """One project of one region: where, with which credentials, and which jobs."""

    region: Annotated[
        Region | None,
        doc(
            "region such as `ap-southeast-1`; endpoint `https://drs.{region}.myhuaweicloud.com` "
            "(`.eu` for `eu-west-101`)"
        ),
    ] = None
    given_endpoint: Annotated[
        BaseURL | None, doc("base URL of the DRS API (credentials in it are refused); default from `region`")
    ] = msgspec.field(default=None, name="endpoint")
    given_project_id: Annotated[
        ProjectId | None,
        doc("project of the region; required (in the single-project form it may come from the environment)"),
    ] = msgspec.field(default=None, name="project_id")
    auth: Annotated[
        AuthConfig | None, doc("credentials; default AK/SK from `$HUAWEICLOUD_SDK_AK`/`_SK` (+`_SECURITY_TOKEN`)")
    ] = None
    entries: Annotated[
        tuple[BareJobId | JobConfig, ...] | None,
        doc("jobs: ids, or `{id, object_types, aggregate_only}`; required unless `discovery` is set"),
    ] = msgspec.field(default=None, name="jobs")
    discovery: Annotated[DiscoveryConfig | None, doc("find jobs by listing them")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        single = context("single")
        if self.given_project_id is None:
            if not single or not os.environ.get(ENV_PROJECT_ID):
                raise problem(f"is required{f' (or set {ENV_PROJECT_ID})' if single else ''}", "project_id")
            self.__dict__["env_project_id"] = ProjectId.check(os.environ[ENV_PROJECT_ID])
        for i, entry in enumerate(self.entries or ()):
            if isinstance(entry, str):  # a bare id; a mapping's id is checked by its JobConfig
                try:
                    JobId.check(entry)
                except ValueError as exc:
                    raise problem(str(exc), f"jobs.{i}.id") from None
        if not self.entries and self.discovery is None:
            raise problem("must be a non-empty list of jobs (or configure discovery)", "jobs")
        if self.given_endpoint is None and self.region is None:
            raise problem("set region (or endpoint)", "region")
        self.__dict__["credentials"] = self._credentials()

    @property
    def project_id(self) -> str:
        """The project id (from the file or the environment)."""
        return str(self.given_project_id or self.__dict__["env_project_id"])

    @cached_property
    def endpoint(self) -> str:
        """The DRS endpoint: given, or from the region."""
        if self.given_endpoint is not None:
            return str(self.given_endpoint)
        return f"https://drs.{self.region}.{region_domain(str(self.region))}"

    @cached_property
    def jobs(self) -> tuple[JobConfig, ...]:
        """The configured jobs, bare ids expanded."""
        return tuple(JobConfig(id=JobId(j)) if isinstance(j, str) else j for j in self.entries or ())

    def _credentials(self) -> Credentials:
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
            return PasswordCredentials(str(auth.domain_name), str(auth.username), password, BaseURL.check(iam))
        ak, sk, security = auth.secret("access_key"), auth.secret("secret_key"), auth.secret("security_token")
        if ak is None or sk is None:
            ak, sk = Secret.from_env("access_key", ENV_AK), Secret.from_env("secret_key", ENV_SK)
            security = Secret.from_env("security_token", ENV_SECURITY_TOKEN)
            if ak is None or sk is None:
                raise problem(f"no credentials: configure auth, or set {ENV_AK} and {ENV_SK}", "auth")
            for secret, variable in ((ak, ENV_AK), (sk, ENV_SK), (security, ENV_SECURITY_TOKEN)):
                if secret is None:
                    continue
                try:
                    secret.get()
                except SecretError as exc:
                    raise problem(f"{variable}: {exc}", "auth") from None
        return AkSkCredentials(ak, sk, security)

    @property
    def credentials(self) -> Credentials:
        """The project's credentials, with file and environment sources resolved."""
        creds: Credentials = self.__dict__["credentials"]
        return creds


class ObjectFilter(Model, frozen=True):
    """Which objects get a per-object series (aggregates always count every object)."""

    include_src_db: Annotated[re.Pattern[str] | None, doc("only source databases matching this")] = None
    exclude_src_db: Annotated[re.Pattern[str] | None, doc("no source databases matching this")] = None
    include_src_tb: Annotated[re.Pattern[str] | None, doc("only source tables matching this")] = None
    exclude_src_tb: Annotated[re.Pattern[str] | None, doc("no source tables matching this")] = None

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


class Config(Model, frozen=True):
    """The validated configuration: one or more projects and the settings they share."""

    projects: Annotated[
        tuple[ProjectConfig, ...],
        msgspec.Meta(
            description="several projects (regions, accounts) in one exporter", extra_json_schema={"minItems": 1}
        ),
    ]
    cache_ttl: Annotated[
        float,
        between(0, 86400, "seconds a refresh result (success or failure) is reused; `0` = refresh on every scrape"),
    ] = 30.0
    page_size: Annotated[int, between(1, 1000, "items per API page")] = 1000
    request_timeout: Annotated[float, between(0.1, 600, "seconds for one API request")] = 10.0
    refresh_timeout: Annotated[
        float, between(1, 3600, "seconds for one refresh of a job and type, all pages and retries")
    ] = 60.0
    max_concurrency: Annotated[
        int,
        between(
            1,
            64,
            "API requests in flight at once, and refreshes running at once (with several projects, one taking "
            "back its reserved slots adds to it until the requests it lent them to end)",
        ),
    ] = 8
    max_pages: Annotated[int, between(1, 100000, "refuse (`page_cap_exceeded`) a job and type needing more pages")] = (
        1000
    )
    retries: Annotated[int, between(0, 10, "retries of a request after 429, 5xx, timeouts and connection errors")] = 3
    language: Annotated[str, one_of(("en-us", "zh-cn"), "`X-Language` of API error messages")] = "en-us"
    ca_file: Annotated[
        FilePath | None, doc("PEM bundle to verify the DRS and IAM endpoints with (private CAs); default system CAs")
    ] = None
    insecure_skip_verify: Annotated[
        bool, doc("do not verify TLS certificates of the endpoints (logs a warning; never in production)")
    ] = False
    max_response_bytes: Annotated[
        int, between(1024, 2**31, "refuse (`response_too_large`) an API answer larger than this")
    ] = 64 * 1024 * 1024
    max_objects_per_key: Annotated[
        int | None,
        between(
            0,
            10**8,
            "at most this many per-object series per job and type; the rest are counted in "
            "`huaweicloud_drs_objects_not_exported`",
        ),
    ] = None
    object_filters: Annotated[ObjectFilter, doc("regular expressions selecting which objects get a series")] = (
        msgspec.field(default_factory=ObjectFilter)
    )
    comparisons: Annotated[
        bool,
        doc(
            "export DRS comparison results (`huaweicloud_drs_comparison_*`) of every job; "
            "a job or `discovery` may say otherwise"
        ),
    ] = False
    compare_refresh_interval: Annotated[
        float,
        between(
            1,
            86400,
            "seconds between two listings of a job's comparisons (one API call per job; a finished "
            "comparison's results are read once)",
        ),
    ] = 300.0
    cutover_delay_seconds: Annotated[
        int,
        between(
            0,
            86400,
            "the status page's cut-over readiness: the incremental delay must be below this many seconds; the "
            "same as the rules' `cutover_delay_seconds` (the Helm chart sets both from `prometheusRule.settings`)",
        ),
    ] = 60
    cutover_comparison_max_age_seconds: Annotated[
        int,
        between(
            1,
            10**8,
            "the status page's cut-over readiness: the latest row and value comparisons must have finished within "
            "this many seconds; the same as the rules' `cutover_comparison_max_age_seconds` (the Helm chart sets "
            "both from `prometheusRule.settings`)",
        ),
    ] = 86400
    monitor_data: Annotated[
        bool,
        doc(
            "export DRS monitor data (`huaweicloud_drs_endpoint_*`, `huaweicloud_drs_job_transferred_*`, "
            "`huaweicloud_drs_monitor_data_*`) of every job: one API call per job per `monitor_refresh_interval`; "
            "a job or `discovery` may say otherwise"
        ),
    ] = False
    monitor_refresh_interval: Annotated[
        float,
        between(1, 86400, "seconds between two readings of a job's monitor data (one API call per job)"),
    ] = 60.0
    rpo_rto: Annotated[
        bool,
        doc(
            "export the RPO and RTO of every DR (`cloudDataGuard`) job (`huaweicloud_drs_job_rpo_seconds`, "
            "`huaweicloud_drs_job_rto_seconds`, `huaweicloud_drs_rpo_rto_*`): one batched API call per project "
            "(per 50 DR jobs) per `rpo_rto_refresh_interval`; a job or `discovery` may say otherwise"
        ),
    ] = True
    rpo_rto_refresh_interval: Annotated[
        float,
        between(1, 86400, "seconds between two readings of the DR jobs' RPO and RTO (one batched call per project)"),
    ] = 60.0
    job_details: Annotated[
        bool,
        doc(
            "export why jobs failed and when their full phase ended (`huaweicloud_drs_job_error_info`, "
            "`huaweicloud_drs_job_full_transfer_completed_timestamp_seconds`, "
            "`huaweicloud_drs_job_failed_expiry_timestamp_seconds`, `huaweicloud_drs_job_details_*`; the failure "
            "reason on the status page): per project and `job_details_refresh_interval`, one batch-status call "
            "per 50 jobs, and a batch-detail call per 10 jobs whose status changed since their last reading "
            "(none in steady state); a job or `discovery` may say otherwise"
        ),
    ] = True
    job_details_refresh_interval: Annotated[
        float,
        between(
            1,
            86400,
            "seconds between two readings of the jobs' status (one batch-status call per project and 50 jobs; "
            "batch-detail only for jobs whose status changed)",
        ),
    ] = 60.0
    dirty_rows: Annotated[
        bool,
        doc(
            "export abnormal rows (`huaweicloud_drs_dirty_rows`, `huaweicloud_drs_dirty_data_*`; rows DRS failed to "
            "apply) of every job: two API calls per job per `dirty_rows_refresh_interval`; a job or `discovery` may "
            "say otherwise"
        ),
    ] = False
    dirty_rows_refresh_interval: Annotated[float, between(1, 86400, "seconds between readings of abnormal rows")] = 60.0
    dirty_rows_window: Annotated[
        float, between(60, 30 * 86400, "`huaweicloud_drs_dirty_rows` counts the rows of the last this many seconds")
    ] = 3600.0
    dirty_rows_per_table: Annotated[
        bool, doc("also `huaweicloud_drs_table_dirty_rows` per table: one call per 1000 abnormal rows and phase")
    ] = False
    dirty_rows_max_tables: Annotated[
        int,
        between(
            0, 100_000, "per-table series per job and phase; the rest: `huaweicloud_drs_table_dirty_rows_not_exported`"
        ),
    ] = 100
    dirty_rows_max_pages: Annotated[
        int,
        between(
            1, 1000, "pages of 1000 abnormal rows per job, phase and reading (then `huaweicloud_drs_dirty_rows_capped`)"
        ),
    ] = 10
    ddl_alarms: Annotated[
        bool,
        doc(
            "export the active DDL alarms of every job (`huaweicloud_drs_ddl_*`; sequence number, time and "
            "result on the status page): one API call per job per `ddl_refresh_interval`; a job or `discovery` "
            "may say otherwise"
        ),
    ] = False
    ddl_refresh_interval: Annotated[
        float,
        between(1, 86400, "seconds between two readings of a job's DDL alarms (one API call per job)"),
    ] = 60.0
    ddl_text_on_status_page: Annotated[
        bool,
        doc(
            "show the start of each alarmed DDL statement (its first 120 characters, HTML-escaped) on the "
            "status page and in `/status.json`. The DDL text is customer data (table and column names, "
            "literals), and anyone who can reach the exporter's web port sees that page: leave it off "
            "unless they all may read it"
        ),
    ] = False
    health_comparisons: Annotated[
        bool,
        doc(
            'export DRS\'s scheduled ("health") comparisons (`huaweicloud_drs_health_compare_*`, '
            "`huaweicloud_drs_compare_policy_*`) of every job: 2 API calls per job per "
            "`health_compare_refresh_interval` (list and policy), one more for a new finished object comparison and "
            "one per running comparison; a job or `discovery` may say otherwise"
        ),
    ] = False
    health_compare_refresh_interval: Annotated[
        float,
        between(
            1,
            86400,
            "seconds between two readings of a job's health comparisons (DRS schedules them hours apart)",
        ),
    ] = 300.0
    max_staleness: Annotated[
        float | None,
        between(
            0,
            86400,
            "while a refresh is slower than the scrape, the last good result of a job and type is served until "
            "it is this many seconds old (`huaweicloud_drs_last_success_timestamp_seconds` tells its age); "
            "default `2 × cache_ttl + refresh_timeout`",
        ),
    ] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.projects:
            raise problem("must be a non-empty list of projects", "projects")
        if self.insecure_skip_verify and self.ca_file is not None:
            raise problem("cannot be combined with ca_file", "insecure_skip_verify")
        single = context("single")
        seen: set[str] = set()
        for p, project in enumerate(self.projects):
            for j, job in enumerate(project.jobs):
                if job.id in seen:
                    where = "" if single else f"projects.{p}."
                    raise problem(
                        f"job {job.id} is listed twice (job ids are unique across projects)", f"{where}jobs.{j}.id"
                    )
                seen.add(job.id)

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


PROJECT_KEYS = frozenset(fields(ProjectConfig))


def _register_secrets(projects: list[Any]) -> None:
    # Before anything is checked: a secret can stand elsewhere too (a YAML alias), and an error about
    # that other place must not show it.
    for project in projects:
        auth = project.get("auth") if isinstance(project, dict) else None
        if not isinstance(auth, dict):
            continue
        for name in SECRETS:
            if isinstance(value := auth.get(name), str) and value.strip():
                register(value.strip())


def parse(raw: Any, base: Path = Path()) -> Config:
    """Validate a parsed YAML document; relative file paths are resolved against ``base``."""
    if not isinstance(raw, dict):
        raise ConfigError("", "the configuration must be a YAML mapping")
    _register_secrets(raw["projects"] if isinstance(raw.get("projects"), list) else [raw])
    if "projects" in raw:
        inside = sorted(str(k) for k in raw if k in PROJECT_KEYS)
        if inside:
            raise ConfigError(inside[0], "goes inside projects[] when projects is used")
        if not isinstance(raw["projects"], list) or not raw["projects"]:
            raise ConfigError("projects", "must be a non-empty list of projects")
        return validate(Config, raw, base)
    # The single-project form is one project whose keys stand at the top; its errors are named that way.
    project = {k: v for k, v in raw.items() if k in PROJECT_KEYS}
    rest = {k: v for k, v in raw.items() if k not in PROJECT_KEYS}
    return validate(Config, {**rest, "projects": [project]}, base, single=True, strip=("projects", 0))


def load(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    return parse(load_yaml(path, "config"), Path(path).parent)
