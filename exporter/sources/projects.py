"""The configured projects: each one's API client, job directory and job-level progress reader."""

from __future__ import annotations

import requests

from ..config import Config, ProjectConfig
from ..config.credentials import AkSkCredentials, PasswordCredentials, TokenCredentials
from ..drs.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from ..drs.client import DRSClient
from ..drs.joblist import JobMeta
from ..drs.transport import Transport
from .jobs import JobDirectory, JobProgressReader
from .reader import ErrorCounter


def build_auth(config: Config, transport: Transport, project: ProjectConfig | None = None) -> requests.auth.AuthBase:
    """The ``requests`` auth for a project's credentials (the first project's by default)."""
    project = project or config.projects[0]
    creds = project.credentials
    if isinstance(creds, AkSkCredentials):
        return AkSkAuth(creds.access_key, creds.secret_key, project.project_id, creds.security_token)
    if isinstance(creds, TokenCredentials):
        return StaticTokenAuth(creds.token)
    if isinstance(creds, PasswordCredentials):
        return IamPasswordAuth(
            transport,
            creds.iam_endpoint,
            domain_name=creds.domain_name,
            username=creds.username,
            password=creds.password,
            project_id=project.project_id,
            login_timeout=config.request_timeout * (config.retries + 1),
        )
    raise TypeError(f"unsupported credentials {type(creds).__name__}")


def max_staleness(config: Config) -> float:
    """How old a last good result may get while its successor is fetched."""
    if config.max_staleness is not None:
        return config.max_staleness
    return 2 * config.cache_ttl + config.refresh_timeout


class Project:
    """One configured project: its client, job directory (with discovery) and job-level progress reader."""

    def __init__(
        self, config: Config, project: ProjectConfig, transport: Transport, *, on_error: ErrorCounter | None = None
    ) -> None:
        self.config = project
        self.client = DRSClient(
            transport,
            build_auth(config, transport, project),
            project.endpoint,
            project.project_id,
            page_size=config.page_size,
            max_pages=config.max_pages,
            page_workers=config.max_concurrency,
        )
        self.directory = (
            JobDirectory(self.client, project.discovery, refresh_timeout=config.refresh_timeout)
            if project.discovery is not None
            else None
        )
        self.progress = JobProgressReader(
            self.client,
            config.cache_ttl,
            refresh_timeout=config.refresh_timeout,
            max_staleness=max_staleness(config),
            on_error=on_error,  # what no HTTP attempt counted: api_errors_total
        )

    @property
    def where(self) -> tuple[str, str]:
        """Endpoint and project id: what a job's data depends on, whatever the credentials."""
        return (self.config.endpoint, self.config.project_id)

    def discovered(self) -> list[JobMeta]:
        """The jobs the last successful listing found (none without discovery)."""
        return list(self.directory.jobs) if self.directory is not None else []

    def adopt(self, previous: Project) -> None:
        """Keep what ``previous`` (the same project before a reload) listed and read."""
        self.progress.adopt(previous.progress)
        if (
            self.directory is not None
            and previous.directory is not None
            and self.config.discovery == previous.config.discovery
        ):
            self.directory.adopt(previous.directory)

    def close(self) -> None:
        """Stop background work and close connections."""
        if self.directory is not None:
            self.directory.close()
        self.progress.close()
        self.client.close()
