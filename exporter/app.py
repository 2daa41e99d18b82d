"""Wiring: config → auth → client → cache → collector, in the direction data flows."""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import urllib3

from .base.deadline import Deadline
from .base.fairpool import reserve, share
from .config import Config, ProjectConfig
from .config.credentials import AkSkCredentials, PasswordCredentials, TokenCredentials
from .drs.auth import AkSkAuth, IamPasswordAuth, StaticTokenAuth
from .drs.client import DRSClient
from .drs.compare_client import CompareClient
from .drs.errors import DRSAPIError
from .drs.joblist import JobMeta, JobProgress
from .drs.progress import ProgressData
from .drs.telemetry import ApiStats, ReloadStatus
from .drs.transport import RetryPolicy, Transport
from .metrics.collector import JobMetrics, LiveMetrics, ScrapeView, SelfMetrics
from .metrics.compare_metrics import ComparisonMetrics
from .render.exposition import Format, Renderer
from .sources import guards
from .sources.cache import Key, Snapshot, SnapshotCache
from .sources.comparisons import ComparisonReader, ComparisonSnapshot, Guards
from .sources.jobs import JobDirectory, JobProgressReader

log = logging.getLogger(__name__)


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
    """One configured project: its client, job directory (with discovery) and job progress reader."""

    def __init__(self, config: Config, project: ProjectConfig, transport: Transport) -> None:
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
        self.compare = CompareClient(self.client, max_pages=config.max_pages)
        self.directory = (
            JobDirectory(self.client, project.discovery, refresh_timeout=config.refresh_timeout)
            if project.discovery is not None
            else None
        )
        self.progress = JobProgressReader(
            self.client, config.cache_ttl, refresh_timeout=config.refresh_timeout, max_staleness=max_staleness(config)
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


class Exporter:
    """Everything behind ``/metrics`` for one configuration.

    A reload builds a new one with the ``previous``: it keeps the previous one's counters and
    what it knew of the jobs whose data the new configuration does not change.
    """

    def __init__(self, config: Config, previous: Exporter | None = None) -> None:
        self.config = config
        self._scrapes = 0  # running with this core (see in_use)
        self._scrapes_lock = threading.Lock()
        self.stats: ApiStats = previous.stats if previous is not None else ApiStats()
        self.reloads: ReloadStatus = previous.reloads if previous is not None else ReloadStatus()
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
            projects=len(config.projects),
            observer=self.stats,
            throttle_observer=self.stats.throttled,
            # Long enough to honour any sensible Retry-After, short enough that the project is
            # asked again within one refresh cycle.
            max_throttle=max(config.refresh_timeout, config.cache_ttl),
        )
        self.projects = [Project(config, project, self.transport) for project in config.projects]
        if config.max_concurrency < len(self.projects):
            log.warning(
                "max_concurrency %d is below the number of projects (%d): each project still gets one "
                "request (and refresh) at once when it asks, so up to %d can be in flight; raise it to %d",
                config.max_concurrency,
                len(self.projects),
                config.max_concurrency + len(self.projects) - 1,
                len(self.projects),
            )
        # job_id -> (project, aggregate_only): of the configured jobs, and of every job of the keys
        # last collected (rebuilt from the listings each time: a job no longer listed leaves it).
        self._configured: dict[str, tuple[Project, bool]] = {
            job.id: (project, job.aggregate_only) for project in self.projects for job in project.config.jobs
        }
        self._owners = self._configured
        self._keys: tuple[Key, ...] = ()
        self.renderer = Renderer(config.cache_ttl)
        self.comparisons = ComparisonReader(
            config.compare_refresh_interval,
            config.refresh_timeout,
            Guards(config.max_objects_per_key, config.object_filter),
            on_change=self.renderer.prepare_comparisons,
            on_error=self.stats.error,
        )
        self.cache = SnapshotCache(
            self._fetch,
            ttl=config.cache_ttl,
            max_concurrency=config.max_concurrency,
            refresh_timeout=config.refresh_timeout,
            prepare=self.renderer.prepare,
            max_staleness=max_staleness(config),
            # Projects take turns for the refresh threads, as they do for the transport's slots.
            group=self._project_of,
            group_limit=share(config.max_concurrency, len(config.projects)),
            group_reserve=reserve(config.max_concurrency, len(config.projects)),
        )
        if previous is not None:
            self._adopt(previous)

    def _project_of(self, key: Key) -> str:
        owner = self._owners.get(key[0])
        return owner[0].config.project_id if owner is not None else ""

    def _spec(self, key: Key) -> tuple[object, ...] | None:
        """What the data of ``key`` depends on; None for a key this configuration does not have."""
        owner = self.owner_of(key[0])
        if owner is None:
            return None
        project, aggregate_only = owner
        return (project.where, aggregate_only, self.config.max_objects_per_key, self.config.object_filters)

    def _adopt(self, previous: Exporter) -> None:
        """Keep the previous configuration's snapshots of every key whose data this one leaves alone."""
        for project in self.projects:
            same = next((p for p in previous.projects if p.where == project.where), None)
            if same is not None:
                project.adopt(same)
        keys, self._owners = self._index()
        self.stats.retain_jobs({job_id for job_id, _ in keys})  # the counts are shared with the previous core
        kept = [key for key in keys if self._spec(key) == previous._spec(key)]
        held = previous.cache.kept(kept)
        if previous.config.cache_ttl == self.config.cache_ttl:  # renderings are made with the TTL
            self.renderer.adopt(previous.renderer, [*held.latest.values(), *held.last_data.values()])
            self.cache.adopt(held, carry=lambda snapshot: self.renderer.adopt(previous.renderer, [snapshot]))
        else:
            self.cache.adopt(held)

    def _fetch(self, job_id: str, object_type: str, deadline: Deadline) -> ProgressData:
        owner = self._owners.get(job_id)
        if owner is None:  # dropped while its refresh started: the result would not be kept
            raise DRSAPIError("not_configured", "the job is no longer configured or listed")
        project, aggregate_only = owner
        data = project.client.progress_data(job_id, object_type, deadline=deadline)
        guards.apply(
            data,
            max_objects=self.config.max_objects_per_key,
            object_filter=self.config.object_filter,
            aggregate_only=aggregate_only,
        )
        return data

    def _index(self) -> tuple[tuple[Key, ...], dict[str, tuple[Project, bool]]]:
        """Every key to collect (configured jobs, then discovered ones) and the owner of each job."""
        keys = list(self.config.keys)
        owners = dict(self._configured)
        for project in self.projects:
            discovery = project.config.discovery
            if discovery is None:
                continue
            for job in project.discovered():
                if job.job_id in owners:
                    continue  # configured (here or in another project), or listed by an earlier project
                owners[job.job_id] = (project, discovery.aggregate_only)
                keys.extend((job.job_id, t) for t in discovery.object_types)
        return tuple(dict.fromkeys(keys)), owners

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every (job_id, object_type) to collect: configured jobs, then discovered ones."""
        return self._index()[0]

    def owner_of(self, job_id: str) -> tuple[Project, bool] | None:
        """The project of a job and whether it is aggregate only; None for a job not collected."""
        return self._owners.get(job_id) or self._index()[1].get(job_id)

    def owner(self, job_id: str) -> Project:
        """The project a job of :attr:`keys` belongs to."""
        owner = self.owner_of(job_id)
        if owner is None:
            raise KeyError(job_id)
        return owner[0]

    def snapshots(self, deadline: Deadline) -> list[Snapshot]:
        """Snapshots of every key, waiting at most until ``deadline``.

        Job listings run in their own threads. While one this scrape started (or a project's
        first) runs, the keys already known refresh; the scrape waits for the listing until its
        deadline at most, then collects what it found too.
        """
        listings = [d.start_if_due() for p in self.projects if (d := p.directory) is not None]
        keys = self._use_keys()
        if any(listings):
            self.cache.start(keys)
            for listing in listings:
                if listing is not None:
                    listing.wait(timeout=deadline.remaining())
            keys = self._use_keys()
        return self.cache.get_many(keys, deadline)

    def _use_keys(self) -> tuple[Key, ...]:
        """The keys to collect now; what is kept for keys gone since the last call is dropped."""
        keys, owners = self._index()
        if keys != self._keys:  # jobs came or went
            self.cache.retain(keys)
            self.stats.retain_jobs({job_id for job_id, _ in keys})
            self._keys = keys
        self._owners = owners  # after retain(): a queued refresh of a gone job is dropped, not run ownerless
        return keys

    def _comparison_jobs(self) -> dict[str, tuple[CompareClient, bool]]:
        """Jobs whose comparisons are exported: job_id -> (comparison client, aggregate_only)."""
        out: dict[str, tuple[CompareClient, bool]] = {}
        default = self.config.comparisons
        for project in self.projects:
            for job in project.config.jobs:
                if job.comparisons if job.comparisons is not None else default:
                    out[job.id] = (project.compare, job.aggregate_only)
            discovery = project.config.discovery
            if discovery is None or not (discovery.comparisons if discovery.comparisons is not None else default):
                continue
            for meta in project.discovered():
                owner = self._owners.get(meta.job_id)
                if meta.job_id not in self.config.keys_by_job and owner is not None and owner[0] is project:
                    out.setdefault(meta.job_id, (project.compare, discovery.aggregate_only))
        return out

    def comparison_snapshot(self) -> ComparisonSnapshot:
        """The latest comparison state of every job (typed and immutable; never waits)."""
        return self.comparisons.snapshot()

    def job_metrics(self, deadline: Deadline) -> JobMetrics:
        """Job info, DRS's job-level progress and discovery health, as of now."""
        infos: list[tuple[JobMeta, str, str]] = []
        progress: list[JobProgress] = []
        discovery: list[tuple[str, bool, float, int]] = []
        for project in self.projects:
            region = project.config.region or ""
            found = {job.job_id: job for job in project.discovered()}
            ids = [job.id for job in project.config.jobs] + [i for i in found if i not in self.config.keys_by_job]
            readings = project.progress.read(ids, deadline) if ids else {}
            progress.extend(readings[i] for i in ids if i in readings)
            for job_id in ids:
                meta = found.get(job_id)
                if meta is None:  # configured, not listed: the status is what batch progress says
                    status = readings[job_id].status if job_id in readings else ""
                    meta = JobMeta(job_id, "", status, "", "", "")
                infos.append((meta, project.config.project_id, region))
            if project.directory is not None:
                d = project.directory
                discovery.append((project.config.project_id, d.up, d.duration, len(d.jobs)))
        return JobMetrics(infos, progress, discovery)

    def self_metrics(self) -> SelfMetrics:
        """The exporter's own metrics as of now."""
        return SelfMetrics(self.stats, self.cache.refreshes, self.cache.timeouts, self.cache.stale_served, self.reloads)

    def view(self, budget: float) -> ScrapeView:
        """What a scrape with ``budget`` seconds exposes, as fresh metric families."""
        deadline = Deadline.after(budget)  # one for the whole scrape
        snapshots = self.snapshots(deadline)
        comparisons = self.comparisons.want(self._comparison_jobs())
        live = LiveMetrics(self.job_metrics(deadline), self.self_metrics())
        return ScrapeView(snapshots, self.config.cache_ttl, live, ComparisonMetrics(comparisons))

    def scrape(self, budget: float, fmt: Format, *, compress: bool) -> list[bytes]:
        """The answer to a scrape, in chunks: cached renderings of every key plus live job and self metrics."""
        if not fmt.cached:
            body = fmt.encoder(self.view(budget))
            return [gzip.compress(body, compresslevel=6) if compress else body]
        deadline = Deadline.after(budget)  # one for the whole scrape
        self.renderer.want(fmt)  # before waiting: the refreshes this scrape waits for render its format
        snapshots = self.snapshots(deadline)
        comparisons = self.comparisons.want(self._comparison_jobs())
        live = LiveMetrics(self.job_metrics(deadline), self.self_metrics())
        return self.renderer.render(snapshots, fmt, live, compress=compress, comparisons=comparisons)

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Count a scrape running with this core: a core a reload replaced is closed once it is idle."""
        with self._scrapes_lock:
            self._scrapes += 1
        try:
            yield
        finally:
            with self._scrapes_lock:
                self._scrapes -= 1

    def idle(self) -> bool:
        """No scrape runs with this core, nor a refresh or job listing (which its successor may wait for)."""
        with self._scrapes_lock:
            scraping = self._scrapes > 0
        listing = any(p.directory is not None and p.directory.listing for p in self.projects)
        return not scraping and not listing and self.cache.in_flight() == 0

    def close(self) -> None:
        """Stop background work and close connections."""
        self.cache.close()
        self.comparisons.close()
        for project in self.projects:
            project.close()
