"""Wiring: config → auth → client → cache, in the direction data flows."""

from __future__ import annotations

import gzip
import logging
import time

import requests
import urllib3

from .auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from .cache import Key, Snapshot, SnapshotCache
from .client import DRSClient
from .collector import ScrapeView, SelfMetrics
from .config import AkSkCredentials, Config, PasswordCredentials, TokenCredentials
from .exposition import Format, Renderer
from .progress import ProgressData
from .telemetry import ApiStats
from .transport import RetryPolicy, Transport

log = logging.getLogger(__name__)


def build_auth(config: Config, transport: Transport) -> requests.auth.AuthBase:
    """The ``requests`` auth for the configured credentials."""
    creds = config.credentials
    if isinstance(creds, AkSkCredentials):
        return AkSkAuth(creds.access_key, creds.secret_key, config.project_id, creds.security_token)
    if isinstance(creds, TokenCredentials):
        return StaticTokenAuth(creds.token)
    if isinstance(creds, PasswordCredentials):
        return IamPasswordAuth(
            transport,
            creds.iam_endpoint,
            domain_name=creds.domain_name,
            username=creds.username,
            password=creds.password,
            project_id=config.project_id,
            login_timeout=config.request_timeout * (config.retries + 1),
        )
    raise TypeError(f"unsupported credentials {type(creds).__name__}")


class Exporter:
    """Everything behind ``/metrics`` for one configuration."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stats = ApiStats()
        verify: bool | str = True
        if config.insecure_skip_verify:
            log.warning("TLS certificates of the DRS and IAM endpoints are NOT verified (insecure_skip_verify)")
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # said once above, not per request
            verify = False
        elif config.ca_file:
            verify = config.ca_file
        self.transport = Transport(
            verify=verify,
            max_body_bytes=config.max_response_bytes,
            timeout=config.request_timeout,
            retry=RetryPolicy(attempts=config.retries + 1),
            language=config.language,
            max_concurrency=config.max_concurrency,
            observer=self.stats,
        )
        self.client = DRSClient(
            self.transport,
            build_auth(config, self.transport),
            config.endpoint,
            config.project_id,
            page_size=config.page_size,
            max_pages=config.max_pages,
            page_workers=config.max_concurrency,
        )
        self.renderer = Renderer(config.cache_ttl)
        self.cache = SnapshotCache(
            self._fetch,
            ttl=config.cache_ttl,
            max_concurrency=config.max_concurrency,
            refresh_timeout=config.refresh_timeout,
            prepare=self.renderer.prepare,
        )

    def _fetch(self, job_id: str, object_type: str, deadline: float) -> ProgressData:
        return self.client.progress_data(job_id, object_type, deadline=deadline)

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every configured (job_id, object_type)."""
        return self.config.keys

    def snapshots(self, budget: float) -> list[Snapshot]:
        """Snapshots of every key, waiting at most ``budget`` seconds."""
        return self.cache.get_many(self.keys, time.monotonic() + budget)

    def self_metrics(self) -> SelfMetrics:
        """The exporter's own metrics as of now."""
        return SelfMetrics(self.stats, self.cache.refreshes, self.cache.timeouts)

    def view(self, budget: float) -> ScrapeView:
        """What a scrape with ``budget`` seconds exposes, as fresh metric families."""
        return ScrapeView(self.snapshots(budget), self.config.cache_ttl, self.self_metrics())

    def scrape(self, budget: float, fmt: Format, *, compress: bool) -> bytes:
        """The answer to a scrape: cached renderings of every key plus live self-metrics."""
        if not fmt.cached:
            body = fmt.encoder(self.view(budget))
            return gzip.compress(body, compresslevel=6) if compress else body
        snapshots = self.snapshots(budget)
        return self.renderer.render(snapshots, fmt, self.self_metrics(), compress=compress)

    def close(self) -> None:
        """Stop background work and close connections."""
        self.cache.close()
        self.client.close()
