"""The status model behind ``/`` and ``/status.json``: what the exporter knows, from cached state only.

Nothing here refreshes a key, lists jobs or calls an API: it reads the snapshot cache, the job
directories and the job-progress readers as they are. Per-key summaries (counts, the least
advanced objects) are computed once per snapshot, so that a page over 100k objects costs a
walk over a few summaries, not over the objects.
"""

from __future__ import annotations

import heapq
import json
import operator
import threading
import time
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from .. import __version__
from ..app import Exporter, Project
from ..base.secrets import scrub
from ..config.credentials import AkSkCredentials, TokenCredentials
from ..drs.compare import COMPARE_TYPES, CompareRun
from ..drs.joblist import JobMeta
from ..drs.progress import ProgressData
from ..metrics.ddl_metrics import DdlSource
from ..metrics.details_metrics import JobDetailsSource
from ..metrics.dirty_metrics import DirtySource
from ..metrics.health_compare_metrics import HealthCompareSource
from ..metrics.monitor_metrics import MonitorSource
from ..metrics.rpo_metrics import RpoRtoSource
from ..sources.cache import Key, Snapshot
from ..sources.comparisons import JobComparisons, TypeState
from .cutover import Cutover, judge
from .details_status import JobDetailsStatus, job_details_status
from .health_status import (
    DdlStatus,
    DirtyStatus,
    HealthCompareStatus,
    MonitorStatus,
    RpoRtoStatus,
    ddl_status,
    dirty_status,
    health_compare_status,
    monitor_status,
    rpo_rto_status,
)

SCHEMA_VERSION = 1
LEAST_ADVANCED = 10
# Key states: the last refresh succeeded (and is recent) / failed / succeeded too long ago / none yet.
OK, FAILING, STALE, PENDING = "ok", "failing", "stale", "pending"


@dataclass(frozen=True)
class ObjectStatus:
    """One object that is not complete yet."""

    object_type: str
    src_db: str
    src_tb: str
    dst_db: str
    dst_tb: str
    progress_ratio: float


@dataclass(frozen=True)
class KeyStatus:
    """One (job, object type): the state of its last refresh and what it found."""

    object_type: str
    state: str  # ok, failing, stale or pending
    objects: int | None  # the API's count (None without data)
    objects_completed: int | None
    refreshed_timestamp_seconds: float | None
    last_success_timestamp_seconds: float | None
    last_success_age_seconds: float | None
    refresh_duration_seconds: float | None
    refreshing: bool  # a refresh is running now
    error_code: str | None
    error_message: str | None  # the API's message, secrets redacted, at most ~300 characters


@dataclass(frozen=True)
class ComparisonTypeStatus:
    """The latest comparison of one type (``lines``: row counts, ``contents``: values) of a job, and its verdict."""

    compare_type: str
    # running: DRS is comparing; consistent / inconsistent: the latest comparison finished and its
    # results say so; unread: finished, results not read yet; failed: it ended otherwise (see status).
    verdict: str
    compare_job_id: str
    status: str  # as DRS says: RUNNING, SUCCESSFUL, FAILED, CANCELLED, ...
    start_timestamp_seconds: float | None
    end_timestamp_seconds: float | None
    finished_compare_job_id: str | None  # the latest finished comparison, whose results are counted
    finished_end_timestamp_seconds: float | None
    finished_age_seconds: float | None
    tables: int | None  # tables in the latest finished comparison (None until its results are read)
    table_counts: dict[str, int]  # tables per status there, statuses with none left out


@dataclass(frozen=True)
class ComparisonStatus:
    """The data-consistency comparisons of a job (issue 13), as last read in the background."""

    up: bool  # the last reading succeeded
    error_code: str | None
    checked_timestamp_seconds: float | None  # the last successful listing
    types: list[ComparisonTypeStatus]


@dataclass(frozen=True)
class JobStatus:
    """One DRS job: what the job lists and DRS's job progress say, and each of its keys."""

    job_id: str
    name: str
    status: str
    job_type: str
    engine_type: str
    objects: int  # over the keys with data
    objects_completed: int
    completion_ratio: float | None  # objects_completed / objects; None with no objects
    drs_progress_ratio: float | None  # DRS's own job progress, 0-1
    incremental_delay_seconds: float | None
    remaining_seconds: float | None
    keys: list[KeyStatus]
    least_advanced: list[ObjectStatus]  # up to 10 incomplete objects, least progress first
    # None when the job's comparisons are not exported (or not read yet).
    comparison: ComparisonStatus | None = None
    # Ready for cut-over, as the exporter's latest readings tell (cutover.py); None without comparisons.
    cutover: Cutover | None = None
    # None when the job's monitor data is off (or not read yet).
    monitor: MonitorStatus | None = None
    # None for a job that is no DR job, or has rpo_rto off (or not read yet).
    rpo_rto: RpoRtoStatus | None = None
    # None when the job's details are off (or not read yet).
    job_details: JobDetailsStatus | None = None
    # None when the job's abnormal rows are off (or not read yet).
    dirty_rows: DirtyStatus | None = None
    # None when the job's DDL alarms are off (or not read yet).
    ddl: DdlStatus | None = None
    # None when the job's health comparisons are off (or not read yet).
    health_comparisons: HealthCompareStatus | None = None


@dataclass(frozen=True)
class DiscoveryStatus:
    """Job discovery of one project."""

    up: bool
    job_types: list[str]
    jobs: int
    last_listing_timestamp_seconds: float | None  # the last successful listing
    last_listing_age_seconds: float | None
    duration_seconds: float
    list_api: str  # "v5", or "v3" where the v5 list is missing
    error_code: str | None  # of the last attempt, when it failed
    error_message: str | None  # the API's message, secrets redacted


@dataclass(frozen=True)
class ProjectStatus:
    """One configured project: where, how it authenticates (never a secret), its discovery and jobs."""

    project_id: str
    region: str
    endpoint: str
    auth: str
    discovery: DiscoveryStatus | None
    jobs: list[JobStatus]


@dataclass(frozen=True)
class ShardStatus:
    """This process's shard (issue 26): with several shards behind one Service, whose jobs these are."""

    shard: int
    total_shards: int  # 1 without sharding: this process owns every job
    jobs: int  # the jobs this shard owns (configured and discovered), as listed below


@dataclass(frozen=True)
class Status:
    """Everything the status page shows; ``/status.json`` is this, as JSON."""

    schema_version: int
    exporter_version: str
    generated_timestamp_seconds: float
    cache_ttl_seconds: float
    max_staleness_seconds: float
    shard: ShardStatus
    projects: list[ProjectStatus]

    def to_json(self) -> bytes:
        """UTF-8 JSON of every field (names as in the dataclasses)."""
        try:
            return orjson.dumps(self) + b"\n"  # compact: a third of the size and time of indented JSON
        except orjson.JSONEncodeError:  # text orjson refuses (a lone surrogate from some API answer)
            return json.dumps(asdict(self)).encode() + b"\n"


@dataclass(frozen=True)
class _Summary:
    """What the page needs from one successful snapshot, computed once."""

    objects: int
    completed: int
    least: list[ObjectStatus] = field(default_factory=list)


def _verdict(latest: CompareRun, state: TypeState) -> str:
    if latest.running:
        return "running"
    if not latest.finished:
        return "failed"
    if state.tables is None or state.finished is None or state.finished.id != latest.id:
        return "unread"
    problems = sum(n for name, n in state.table_counts.items() if name not in ("consistent", "empty"))
    return "inconsistent" if problems else "consistent"


def comparison_status(job: JobComparisons, now: float) -> ComparisonStatus:
    """A job's comparison state as the status page shows it: per type the latest run and its verdict."""
    types = []
    # Rows first, then values (the order of COMPARE_TYPES).
    order = {name: i for i, name in enumerate(COMPARE_TYPES)}
    for compare_type, state in sorted(job.types.items(), key=lambda item: (order.get(item[0], 9), item[0])):
        latest = state.latest
        if latest is None:
            continue
        finished = state.finished
        end = finished.end_time if finished is not None else None
        counts = {name: n for name, n in state.table_counts.items() if n}
        types.append(
            ComparisonTypeStatus(
                compare_type=compare_type,
                verdict=_verdict(latest, state),
                compare_job_id=latest.id,
                status=latest.status,
                start_timestamp_seconds=latest.start_time,
                end_timestamp_seconds=latest.end_time,
                finished_compare_job_id=finished.id if finished is not None else None,
                finished_end_timestamp_seconds=end,
                finished_age_seconds=max(0.0, now - end) if end is not None else None,
                tables=sum(state.table_counts.values()) if state.tables is not None else None,
                table_counts=counts,
            )
        )
    return ComparisonStatus(job.up, job.error_code, job.checked_at, types)


def auth_kind(project: Project) -> str:
    """How a project authenticates, in words (no key, user or token)."""
    creds = project.config.credentials
    if isinstance(creds, AkSkCredentials):
        return "AK/SK with a security token" if creds.security_token is not None else "AK/SK"
    if isinstance(creds, TokenCredentials):
        return "static IAM token"
    return "IAM password login"


def summarize(object_type: str, data: ProgressData, limit: int = LEAST_ADVANCED) -> _Summary:
    """Counts and the ``limit`` least advanced incomplete objects of one snapshot's data."""
    rows = data.rows
    progress = rows.progress
    completed = data.completed if data.completed is not None else rows.completed()
    # C-level selection over the progress array; names are decoded only when something is incomplete.
    lowest = heapq.nsmallest(limit, range(len(progress)), key=progress.__getitem__)
    incomplete = [i for i in lowest if progress[i] < 100]
    least: list[ObjectStatus] = []
    if incomplete:
        names = orjson.loads(rows.names)
        for i in incomplete:
            src_db, src_tb, dst_db, dst_tb = names[i]
            least.append(ObjectStatus(object_type, src_db, src_tb, dst_db, dst_tb, progress[i] / 100))
    return _Summary(data.count, completed, least)


class StatusBuilder:
    """Builds :class:`Status` from an exporter's cached state, keeping per-snapshot summaries."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter
        # Weakly: a summary must not keep a replaced snapshot (its rows and rendered bytes) alive.
        self._summaries: dict[Key, tuple[weakref.ref[Snapshot], _Summary]] = {}
        # job_id -> (its keys' summaries, its least advanced objects): the same list while they are the same,
        # so that the page can tell by identity that a job's objects have not changed.
        self._least: dict[str, tuple[list[_Summary | None], list[ObjectStatus]]] = {}
        self._lock = threading.Lock()

    def generation(self) -> tuple[Any, ...]:
        """Changes whenever anything the status is built from changes (but the clock)."""
        e = self.exporter
        return (
            e.cache.refreshes,
            e.cache.in_flight(),  # the page shows which keys are refreshing
            tuple(p.progress.reads for p in e.projects),
            tuple(p.directory.listed_at if p.directory is not None else None for p in e.projects),
            e.comparison_snapshot(),  # compared by identity: a new snapshot whenever anything changed
            e.source(MonitorSource).snapshot(),  # the same
            e.source(RpoRtoSource).snapshot(),  # the same
            e.source(JobDetailsSource).snapshot(),  # the same
            e.source(DirtySource).snapshot(),  # the same
            e.source(DdlSource).snapshot(),  # the same
            e.source(HealthCompareSource).snapshot(),  # the same
        )

    def build(self) -> Status:
        """The status as of now."""
        with self._lock:
            return self._build()

    def _summary(self, key: Key, snap: Snapshot, data: ProgressData) -> _Summary:
        kept = self._summaries.get(key)
        if kept is not None and kept[0]() is snap:
            return kept[1]
        summary = summarize(key[1], data)
        self._summaries[key] = (weakref.ref(snap), summary)
        return summary

    def _build(self) -> Status:
        e = self.exporter
        now = time.time()
        keys = e.keys
        snaps = dict(zip(keys, e.cache.latest(keys), strict=True))
        running = e.cache.refreshing(keys)
        compared = e.comparison_snapshot().jobs
        monitored = e.source(MonitorSource).snapshot().jobs
        recovery = e.source(RpoRtoSource).snapshot().jobs
        detailed = e.source(JobDetailsSource).snapshot().jobs
        dirty = e.source(DirtySource).snapshot().jobs
        ddl_read, ddl_text = e.source(DdlSource).snapshot().jobs, e.config.ddl_text_on_status_page
        health_compared = e.source(HealthCompareSource).snapshot().jobs
        for gone in [k for k in self._summaries if k not in snaps]:
            del self._summaries[gone]
        wanted = {job_id for job_id, _ in keys}
        for gone_job in [j for j in self._least if j not in wanted]:
            del self._least[gone_job]
        by_project: dict[int, dict[str, list[Key]]] = {}
        for key in keys:
            by_project.setdefault(id(e.owner(key[0])), {}).setdefault(key[0], []).append(key)
        projects = []
        for project in e.projects:
            jobs = by_project.get(id(project), {})
            metas = {m.job_id: m for m in project.discovered()}
            readings = project.progress.known(list(jobs))
            job_list = []
            for job_id, job_keys in jobs.items():
                key_list, summaries, objects, completed = [], [], 0, 0
                for key in job_keys:
                    status, summary = self._key(key, snaps[key], key in running, now)
                    key_list.append(status)
                    summaries.append(summary)
                    if summary is not None:
                        objects += summary.objects
                        completed += summary.completed
                reading = readings.get(job_id)
                meta = metas.get(job_id) or JobMeta(job_id, "", reading.status if reading else "", "", "", "")
                delay = reading.delay_seconds if reading else None
                judged = compared.get(job_id)
                cutover = (
                    judge(
                        status=meta.status,
                        objects=objects or None,
                        completed=completed,
                        delay_seconds=delay,
                        comparisons=judged,
                        now=now,
                        unknown_types=[
                            k.object_type for k in key_list if k.error_code is not None or k.state == PENDING
                        ],
                        delay_below=e.config.cutover_delay_seconds,
                        max_age=e.config.cutover_comparison_max_age_seconds,
                    )
                    if judged is not None
                    else None
                )
                job_list.append(
                    JobStatus(
                        job_id=job_id,
                        name=meta.name,
                        status=meta.status,
                        job_type=meta.job_type,
                        engine_type=meta.engine_type,
                        objects=objects,
                        objects_completed=completed,
                        completion_ratio=min(1.0, completed / objects) if objects else None,
                        drs_progress_ratio=reading.progress_ratio if reading else None,
                        incremental_delay_seconds=delay,
                        remaining_seconds=reading.remaining_seconds if reading else None,
                        keys=key_list,
                        least_advanced=self._least_of(job_id, summaries),
                        comparison=comparison_status(judged, now) if judged is not None else None,
                        cutover=cutover,
                        monitor=monitor_status(monitored[job_id]) if job_id in monitored else None,
                        rpo_rto=rpo_rto_status(recovery[job_id]) if job_id in recovery else None,
                        job_details=job_details_status(detailed[job_id]) if job_id in detailed else None,
                        dirty_rows=dirty_status(dirty[job_id]) if job_id in dirty else None,
                        ddl=ddl_status(ddl_read[job_id], ddl_text) if job_id in ddl_read else None,
                        health_comparisons=health_compare_status(health_compared[job_id])
                        if job_id in health_compared
                        else None,
                    )
                )
            projects.append(
                ProjectStatus(
                    project_id=project.config.project_id,
                    region=project.config.region or "",
                    endpoint=project.config.endpoint,
                    auth=auth_kind(project),
                    discovery=self._discovery(project, now),
                    jobs=job_list,
                )
            )
        shard = ShardStatus(e.config.shard, e.config.total_shards, len(wanted))
        return Status(SCHEMA_VERSION, __version__, now, e.config.cache_ttl, e.cache.max_staleness, shard, projects)

    def _least_of(self, job_id: str, summaries: list[_Summary | None]) -> list[ObjectStatus]:
        kept = self._least.get(job_id)
        if kept is not None and len(kept[0]) == len(summaries) and all(map(operator.is_, kept[0], summaries)):
            return kept[1]
        least = [o for s in summaries if s is not None for o in s.least]
        lowest = heapq.nsmallest(LEAST_ADVANCED, least, key=lambda o: o.progress_ratio)
        self._least[job_id] = (summaries, lowest)
        return lowest

    def _key(self, key: Key, snap: Snapshot | None, refreshing: bool, now: float) -> tuple[KeyStatus, _Summary | None]:
        if snap is None:
            return KeyStatus(key[1], PENDING, None, None, None, None, None, None, refreshing, None, None), None
        summary = self._summary(key, snap, snap.data) if snap.data is not None else None
        if summary is None:
            state = FAILING
        else:
            state = OK if now - snap.refreshed_at <= self.exporter.cache.max_staleness else STALE
        # Scrubbed again: a secret read after the failure (a rotated file) is redacted too.
        message = scrub(snap.error_message) if snap.error_code is not None else None
        status = KeyStatus(
            object_type=key[1],
            state=state,
            objects=summary.objects if summary else None,
            objects_completed=summary.completed if summary else None,
            refreshed_timestamp_seconds=snap.refreshed_at,
            last_success_timestamp_seconds=snap.last_success,
            last_success_age_seconds=max(0.0, now - snap.last_success) if snap.last_success is not None else None,
            refresh_duration_seconds=snap.duration,
            refreshing=refreshing,
            error_code=snap.error_code,
            error_message=message,
        )
        return status, summary

    @staticmethod
    def _discovery(project: Project, now: float) -> DiscoveryStatus | None:
        d = project.directory
        if d is None:
            return None
        age = time.monotonic() - d.listed_ok_at if d.listed_ok_at is not None else None
        return DiscoveryStatus(
            up=d.up,
            job_types=list(d.config.job_types),
            jobs=len(d.jobs),
            last_listing_timestamp_seconds=now - age if age is not None else None,
            last_listing_age_seconds=age,
            duration_seconds=d.duration,
            list_api="v3" if d.fallback else "v5",
            error_code=d.error_code,
            error_message=scrub(d.error_message) if d.error_code is not None else None,
        )
