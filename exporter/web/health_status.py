"""What /status.json and the status page show of a job's replication health (issue 24), per source.

Each source read job by job (on :class:`~exporter.sources.perjob.PerJobReader`) has a status
dataclass here and a function from the reader's per-job state to it; ``status.py`` puts it into
:class:`~exporter.web.status.JobStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sources.health_compare import JobHealthComparisons
from ..sources.monitor import JobMonitor


@dataclass(frozen=True)
class EndpointStatus:
    """One side of a job (its source or target database) as DRS's monitor data shows it."""

    up: bool | None
    delay_seconds: float | None
    requests_per_second: float | None


@dataclass(frozen=True)
class MonitorStatus:
    """A job's monitor data (issue 24), as last read in the background; data null once older than max_staleness."""

    up: bool  # the last reading succeeded
    error_code: str | None
    last_success_timestamp_seconds: float | None  # when the data shown was read
    data_timestamp_seconds: float | None  # DRS's update_time
    source: EndpointStatus | None
    target: EndpointStatus | None
    transferred_rows: float | None
    transferred_bytes: float | None


def monitor_status(job: JobMonitor) -> MonitorStatus:
    """A job's monitor data as the status page shows it."""
    data = job.data
    if data is None:
        return MonitorStatus(job.up, job.error_code, None, None, None, None, None, None)
    sides = {
        name: EndpointStatus(side.up, side.delay_seconds, side.requests_per_second)
        for name, side in data.endpoints().items()
    }
    return MonitorStatus(
        job.up,
        job.error_code,
        job.read_at,
        data.updated_at,
        sides["source"],
        sides["target"],
        data.transferred_rows,
        data.transferred_bytes,
    )


@dataclass(frozen=True)
class HealthCompareTypeStatus:
    """The latest scheduled comparison of one type (object_comparison, lines, account)."""

    compare_type: str
    compare_job_id: str | None  # of the latest run; None when only a finished one is known
    status: str | None  # as DRS reports it (RUNNING, SUCCESSFUL, FAILED, ...)
    start_timestamp_seconds: float | None
    end_timestamp_seconds: float | None
    progress_ratio: float | None  # of the full comparison, while it runs (compare-progress)
    last_finished_compare_job_id: str | None
    last_finished_timestamp_seconds: float | None


@dataclass(frozen=True)
class ComparePolicyStatus:
    """The schedule of a job's health comparisons (compare-policy)."""

    status: str  # OPEN, CLOSED, NO_SUPPORT, UNKNOWN
    next_run_timestamp_seconds: float | None
    interval_seconds: float | None
    compare_types: list[str]


@dataclass(frozen=True)
class HealthCompareStatus:
    """A job's scheduled ("health") comparisons (issue 24), as last read; data null once older than max_staleness."""

    up: bool  # the last reading succeeded
    error_code: str | None
    last_success_timestamp_seconds: float | None  # when the data shown was read
    policy: ComparePolicyStatus | None
    types: list[HealthCompareTypeStatus]
    inconsistent_object_types: list[str]  # of the latest finished object comparison


def health_compare_status(job: JobHealthComparisons) -> HealthCompareStatus:
    """A job's health comparisons as the status page shows them."""
    data = job.data
    if data is None:
        return HealthCompareStatus(job.up, job.error_code, None, None, [], [])
    policy = data.policy
    types = []
    for kind in sorted(set(data.latest) | set(data.latest_finished)):
        run, done = data.latest.get(kind), data.latest_finished.get(kind)
        progress = data.progress.get(run.id) if run is not None and run.running else None
        types.append(
            HealthCompareTypeStatus(
                kind,
                run.id if run is not None else None,
                run.status if run is not None else None,
                run.start_time if run is not None else None,
                run.end_time if run is not None else None,
                progress.full_ratio if progress is not None else None,
                done.id if done is not None else None,
                (done.end_time if done.end_time is not None else done.start_time) if done is not None else None,
            )
        )
    return HealthCompareStatus(
        job.up,
        job.error_code,
        job.read_at,
        ComparePolicyStatus(
            policy.status,
            policy.next_compare_time if policy.enabled else None,
            policy.interval_hours * 3600.0 if policy.interval_hours is not None else None,
            list(policy.compare_types),
        )
        if policy is not None
        else None,
        types,
        [o.object_type for o in data.objects.objects if o.status == "inconsistent"] if data.objects else [],
    )
