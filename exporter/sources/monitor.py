"""Monitor data (v5 ``monitor-data``) of the jobs that have it on, read in the background.

One call per job per ``monitor_refresh_interval`` (:class:`~exporter.sources.perjob.PerJobReader`
says how reads, failures and stale data go). ``MonitorSnapshot`` is the typed, immutable view the
metrics and the status page read.
"""

from __future__ import annotations

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_job_client import fetch_monitor_data
from ..drs.monitor import OPERATION, MonitorData
from .perjob import JobRead, PerJobReader, PerJobSnapshot

JobMonitor = JobRead[MonitorData]
MonitorSnapshot = PerJobSnapshot[MonitorData]


class MonitorReader(PerJobReader[MonitorData]):
    """Keeps the monitor data of the jobs asked for, each read again once ``interval`` has passed."""

    NAME = "drs-monitor"
    OPERATION = OPERATION
    WHAT = "monitor data"

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> MonitorData:
        """One job's monitor data."""
        return fetch_monitor_data(client, job_id, deadline)
