"""The status of the background replication-health sources (issue 24) in ``/`` and ``/status.json``.

Each is built from a source's per-job state alone; customer data (SQL, DDL text) is never part
of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sources.ddl import JobDdl
from ..sources.dirty_rows import JobDirty
from ..sources.health_compare import JobHealthComparisons
from ..sources.monitor import JobMonitor
from ..sources.rpo import JobRpoRto

DDL_ALARMS_SHOWN = 20  # the newest active DDL alarms listed per job (the count says how many there are)


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
class DirtyPhaseStatus:
    """Abnormal rows of one phase of a job in the look-back window (never their SQL or error messages)."""

    phase: str  # "incremental" or "full"
    rows: int
    exact: bool  # DRS's own count (false: DRS sent none and the listing was capped, a lower bound)
    capped: bool  # the listing stopped at dirty_rows_max_pages: the per-table counts cover only the rows read
    tables: int | None  # tables with abnormal rows (dirty_rows_per_table), else None


@dataclass(frozen=True)
class DirtyStatus:
    """A job's abnormal rows (issue 24), as last read in the background; phases empty once older than max_staleness."""

    up: bool  # the last reading succeeded
    error_code: str | None
    last_success_timestamp_seconds: float | None  # when the data shown was read
    window_seconds: float | None  # how far the counts look back
    phases: list[DirtyPhaseStatus]


def dirty_status(job: JobDirty) -> DirtyStatus:
    """A job's abnormal rows as the status page shows them."""
    if job.data is None:
        return DirtyStatus(job.up, job.error_code, None, None, [])
    phases = job.data.phases
    return DirtyStatus(
        job.up,
        job.error_code,
        job.read_at,
        phases[0].end - phases[0].begin if phases else None,
        [
            DirtyPhaseStatus(r.phase, r.count, r.exact, r.capped, len(r.tables) if r.tables is not None else None)
            for r in phases
        ],
    )


@dataclass(frozen=True)
class RpoRtoStatus:
    """A DR job's RPO and RTO (issue 24), as last read in the background; values null once older than max_staleness."""

    up: bool  # the last reading succeeded (the job's entry carried no error_code)
    error_code: str | None
    last_success_timestamp_seconds: float | None  # when the values shown were read
    rpo_seconds: float | None
    rto_seconds: float | None


def rpo_rto_status(job: JobRpoRto) -> RpoRtoStatus:
    """A DR job's RPO and RTO as the status page shows them."""
    data = job.data
    if data is None:
        return RpoRtoStatus(job.up, job.error_code, None, None, None)
    return RpoRtoStatus(job.up, job.error_code, job.read_at, data.rpo_seconds, data.rto_seconds)


@dataclass(frozen=True)
class DdlAlarmStatus:
    """One active DDL alarm. ``text`` (customer SQL) is null unless ``ddl_text_on_status_page`` is on."""

    seqno: int
    timestamp_seconds: float | None  # when the DDL ran on the source (ddl_timestamp)
    exe_result: bool | None  # False: the DDL failed on the target; null when DRS does not say
    # The DDL's first TEXT_LIMIT characters (cut with "…"), control characters escaped; never in a repr.
    text: str | None = field(repr=False, default=None)


@dataclass(frozen=True)
class DdlStatus:
    """A job's active DDL alarms (issue 24), as last read in the background; data null once older than max_staleness."""

    up: bool  # the last reading succeeded
    error_code: str | None
    last_success_timestamp_seconds: float | None  # when the alarms shown were read
    active: int | None  # active alarms (null without data)
    failed: int | None  # among them, DDL that failed on the target
    latest_alarm_timestamp_seconds: float | None
    alarms: list[DdlAlarmStatus]  # the newest DDL_ALARMS_SHOWN active ones, newest first


def ddl_status(job: JobDdl, with_text: bool) -> DdlStatus:
    """A job's DDL alarms as the status page shows them; the DDL text only ``with_text``."""
    data = job.data
    if data is None:
        return DdlStatus(job.up, job.error_code, None, None, None, None, [])
    shown = [a for a in data.alarms if a.active][:DDL_ALARMS_SHOWN]
    alarms = [DdlAlarmStatus(a.seqno, a.time, a.exe_result, a.text if with_text else None) for a in shown]
    return DdlStatus(job.up, job.error_code, job.read_at, data.active, data.failed, data.latest, alarms)


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
