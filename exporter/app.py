"""Wiring: the projects, the progress cache and the registered sources; one scrape's path through them.

A new DRS API area is an import and one line of :data:`SOURCES` (see docs/architecture.md).
"""

from __future__ import annotations

import gzip
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import TypeVar

import urllib3

from .base.deadline import Deadline
from .base.fairpool import reserve, share
from .config import Config
from .drs.errors import DRSAPIError
from .drs.progress import ProgressData
from .drs.telemetry import ApiStats, ReloadStatus
from .drs.transport import RetryPolicy, Transport
from .metrics.collector import ScrapeView, SelfMetrics
from .metrics.compare_metrics import ComparisonSource
from .metrics.ddl_metrics import DdlSource
from .metrics.details_metrics import JobDetailsSource
from .metrics.dirty_metrics import DirtySource
from .metrics.health_compare_metrics import HealthCompareSource
from .metrics.jobs import JobSource
from .metrics.monitor_metrics import MonitorSource
from .metrics.rpo_metrics import RpoRtoSource
from .metrics.source import Exposed, Source, SourceContext
from .render.comparisons import ComparisonRendering
from .render.exposition import Format, Renderer
from .render.sources import Registration
from .sources import guards
from .sources.cache import Key, Snapshot, SnapshotCache
from .sources.comparisons import ComparisonSnapshot
from .sources.index import Index, Owner, configured
from .sources.index import build as build_index
from .sources.projects import Project, build_auth, max_staleness

__all__ = ["SOURCES", "Exporter", "Project", "build_auth", "max_staleness"]

log = logging.getLogger(__name__)
S = TypeVar("S")

# Every data source beside progress data: its name, how it is built, and its cached rendering
# (none: encoded live with each scrape). Sources with a cached rendering are written first.
SOURCES: tuple[Registration, ...] = (
    Registration("comparisons", ComparisonSource, ComparisonRendering),
    Registration("jobs", JobSource),
    Registration("job_details", JobDetailsSource),
    Registration("monitor", MonitorSource),
    Registration("rpo_rto", RpoRtoSource),
    Registration("dirty_rows", DirtySource),
    Registration("ddl", DdlSource),
    Registration("health_comparisons", HealthCompareSource),
)


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
        self.projects = [
            Project(config, project, self.transport, on_error=self.stats.error) for project in config.projects
        ]
        if config.max_concurrency < len(self.projects):
            log.warning(
                "max_concurrency %d is below the number of projects (%d): each project still gets one "
                "request (and refresh) at once when it asks, so up to %d can be in flight; raise it to %d",
                config.max_concurrency,
                len(self.projects),
                config.max_concurrency + len(self.projects) - 1,
                len(self.projects),
            )
        # The configured jobs' owners, and the index the last scrape collected (rebuilt from the
        # listings each time: a job no longer listed leaves it). Refreshes find their job's owner in it.
        self._configured = configured(self.projects)
        self._current = Index((), self._configured, {})
        self._keys: tuple[Key, ...] = ()
        registered = sorted(SOURCES, key=lambda r: r.rendering is None)  # cached first: see Renderer.render
        self.renderer = Renderer(
            config.cache_ttl, {r.name: r.rendering() for r in registered if r.rendering is not None}
        )
        self.sources: dict[str, Source] = {
            r.name: r.build(
                SourceContext(config, self.projects, self.stats, partial(self.renderer.prepare_source, r.name))
            )
            for r in registered
        }
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
        owner = self._current.owners.get(key[0])
        return owner.project.config.project_id if owner is not None else ""

    @property
    def _owners(self) -> Mapping[str, Owner]:
        """job_id -> owner, of the configured jobs and of every job the last scrape collected."""
        return self._current.owners

    def _spec(self, key: Key) -> tuple[object, ...] | None:
        """What the data of ``key`` depends on; None for a key this configuration does not have."""
        owner = self.owner_of(key[0])
        if owner is None:
            return None
        return (owner.project.where, owner.aggregate_only, self.config.max_objects_per_key, self.config.object_filters)

    def _adopt(self, previous: Exporter) -> None:
        """Keep the previous configuration's snapshots of every key whose data this one leaves alone."""
        for project in self.projects:
            same = next((p for p in previous.projects if p.where == project.where), None)
            if same is not None:
                project.adopt(same)
        for name, source in self.sources.items():
            if name in previous.sources:
                source.adopt(previous.sources[name])
        self._current = now = self._build_index()
        self.stats.retain_jobs({job_id for job_id, _ in now.keys})  # the counts are shared with the previous core
        kept = [key for key in now.keys if self._spec(key) == previous._spec(key)]
        held = previous.cache.kept(kept)
        if previous.config.cache_ttl == self.config.cache_ttl:  # renderings are made with the TTL
            self.renderer.adopt(previous.renderer, [*held.latest.values(), *held.last_data.values()])
            self.cache.adopt(held, carry=lambda snapshot: self.renderer.adopt(previous.renderer, [snapshot]))
        else:
            self.cache.adopt(held)

    def _fetch(self, job_id: str, object_type: str, deadline: Deadline) -> ProgressData:
        owner = self._current.owners.get(job_id)
        if owner is None:  # dropped while its refresh started: the result would not be kept
            raise DRSAPIError("not_configured", "the job is no longer configured or listed")
        data = owner.project.client.progress_data(job_id, object_type, deadline=deadline)
        guards.apply(
            data,
            max_objects=self.config.max_objects_per_key,
            object_filter=self.config.object_filter,
            aggregate_only=owner.aggregate_only,
        )
        return data

    def _build_index(self) -> Index:
        """Every key to collect (configured jobs, then discovered ones) and the owner of each job, as of now."""
        return build_index(self.config, self.projects, self._configured)

    @property
    def keys(self) -> tuple[Key, ...]:
        """Every (job_id, object_type) to collect: configured jobs, then discovered ones."""
        return self._build_index().keys

    def owner_of(self, job_id: str) -> Owner | None:
        """The owner of a job (its project, ``aggregate_only``, configuration); None for a job not collected."""
        return self._current.owners.get(job_id) or self._build_index().owners.get(job_id)

    def owner(self, job_id: str) -> Project:
        """The project a job of :attr:`keys` belongs to."""
        owner = self.owner_of(job_id)
        if owner is None:
            raise KeyError(job_id)
        return owner.project

    def index(self, deadline: Deadline) -> Index:
        """What a scrape collects, handed to the progress cache and to every source.

        Job listings run in their own threads. While one this scrape started (or a project's
        first) runs, the keys already known refresh; the scrape waits for the listing until its
        deadline at most, then collects what it found too.
        """
        listings = [d.start_if_due() for p in self.projects if (d := p.directory) is not None]
        now = self._use(self._build_index())
        if any(listings):
            self.cache.start(now.keys)
            for listing in listings:
                if listing is not None:
                    listing.wait(timeout=deadline.remaining())
            now = self._use(self._build_index())
        return now

    def _use(self, now: Index) -> Index:
        """Collect ``now`` from here on; what is kept for keys gone since the last call is dropped."""
        if now.keys != self._keys:  # jobs came or went
            self.cache.retain(now.keys)
            self.stats.retain_jobs({job_id for job_id, _ in now.keys})
            self._keys = now.keys
        self._current = now  # after retain(): a queued refresh of a gone job is dropped, not run ownerless
        return now

    def snapshots(self, deadline: Deadline) -> list[Snapshot]:
        """Snapshots of every key of this scrape's index, waiting at most until ``deadline``."""
        return self.cache.get_many(self.index(deadline).keys, deadline)

    def source(self, kind: type[S]) -> S:
        """The registered source of type ``kind``."""
        return next(s for s in self.sources.values() if isinstance(s, kind))

    def comparison_snapshot(self) -> ComparisonSnapshot:
        """The latest comparison state of every job (typed and immutable; never waits): the status page's."""
        return self.source(ComparisonSource).snapshot()

    def self_metrics(self) -> SelfMetrics:
        """The exporter's own metrics as of now."""
        return SelfMetrics(self.stats, self.cache.refreshes, self.cache.timeouts, self.cache.stale_served, self.reloads)

    def _collect(self, deadline: Deadline) -> tuple[list[Snapshot], list[tuple[str, Exposed]]]:
        """One scrape's snapshots and what every source exposes, in the renderer's order."""
        now = self.index(deadline)
        snapshots = self.cache.get_many(now.keys, deadline)
        return snapshots, [(name, source.expose(now, deadline)) for name, source in self.sources.items()]

    def view(self, budget: float) -> ScrapeView:
        """What a scrape with ``budget`` seconds exposes, as fresh metric families."""
        snapshots, exposed = self._collect(Deadline.after(budget))  # one deadline for the whole scrape
        return ScrapeView(snapshots, self.config.cache_ttl, self.self_metrics(), [e.families for _, e in exposed])

    def scrape(self, budget: float, fmt: Format, *, compress: bool) -> list[bytes]:
        """The answer to a scrape, in chunks: cached renderings of every key and source, plus the live ones."""
        if not fmt.cached:
            body = fmt.encoder(self.view(budget))
            return [gzip.compress(body, compresslevel=6) if compress else body]
        self.renderer.want(fmt)  # before waiting: the refreshes this scrape waits for render its format
        snapshots, exposed = self._collect(Deadline.after(budget))  # one deadline for the whole scrape
        return self.renderer.render(snapshots, fmt, self.self_metrics(), compress=compress, sources=exposed)

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
        for source in self.sources.values():
            source.close()
        for project in self.projects:
            project.close()
