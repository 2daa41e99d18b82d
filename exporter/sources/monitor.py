"""Monitor data (v5 ``monitor-data``) of the jobs that have it on, read in the background.

One call per job per ``monitor_refresh_interval``, a few jobs at a time in the reader's pool, on
:class:`~exporter.sources.perjob.PerJobReader` (what a failed reading leaves, and for how long).
"""

from __future__ import annotations

from collections.abc import Callable

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_job_client import fetch_monitor_data
from ..drs.monitor import OPERATION, MonitorData
from .perjob import JobData, JobsSnapshot, PerJobReader
from .reader import ErrorCounter

JobMonitor = JobData[MonitorData]
MonitorSnapshot = JobsSnapshot[MonitorData]
EMPTY: MonitorSnapshot = JobsSnapshot({})


def _fetch(client: DRSClient, job_id: str, deadline: Deadline, _before: MonitorData | None) -> MonitorData:
    return fetch_monitor_data(client, job_id, deadline)


class MonitorReader(PerJobReader[MonitorData]):
    """Keeps the monitor data of the jobs asked for, each read again once ``interval`` has passed."""

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[MonitorSnapshot], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            "drs-monitor",
            _fetch,
            OPERATION,
            interval,
            refresh_timeout,
            max_staleness,
            on_change=on_change,
            on_error=on_error,
        )
