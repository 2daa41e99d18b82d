"""Monitor data (v5 ``monitor-data``) of the jobs that have it on, read in the background.

One call per job per ``monitor_refresh_interval``, a few jobs at a time in the reader's pool;
what a failed read leaves, and for how long, is :mod:`.perjob`'s.
"""

from __future__ import annotations

from typing import TypeAlias

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_job_client import fetch_monitor_data
from ..drs.monitor import OPERATION, MonitorData
from .perjob import JobSnapshot, JobState, PerJobReader

JobMonitor: TypeAlias = JobState[MonitorData]
MonitorSnapshot: TypeAlias = JobSnapshot[MonitorData]


class MonitorReader(PerJobReader[MonitorData]):
    """Keeps the monitor data of the jobs asked for, each read again once ``interval`` has passed."""

    name = "drs-monitor"
    operation = OPERATION
    what = "monitor data"

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> MonitorData:
        """The job's monitor data (one call)."""
        return fetch_monitor_data(client, job_id, deadline)
