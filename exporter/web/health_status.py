"""Replication health in the status model (issue 24): each per-job source as ``/`` and ``/status.json`` show it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sources.ddl import JobDdl
from ..sources.monitor import JobMonitor

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
