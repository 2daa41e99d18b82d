"""DDL alarms (v5 ``ddl?status=1``) of the jobs that have ``ddl_alarms`` on, read in the background.

One call per job per ``ddl_refresh_interval`` (one more per 100 active alarms;
:class:`~exporter.sources.perjob.PerJobReader` says how reads, failures and stale data go).
``DdlSnapshot`` is the typed, immutable view the metrics and the status page read. The DDL text
kept in it is customer SQL, already cut (:data:`~exporter.drs.ddl.TEXT_LIMIT`) and out of every
``repr``: nothing here logs it.
"""

from __future__ import annotations

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.ddl import OPERATION, DdlAlarms
from ..drs.health_job_client import fetch_ddl_alarms
from .perjob import JobRead, JobsSnapshot, PerJobReader

JobDdl = JobRead[DdlAlarms]
DdlSnapshot = JobsSnapshot[DdlAlarms]


class DdlReader(PerJobReader[DdlAlarms]):
    """Keeps the active DDL alarms of the jobs asked for, each read again once ``interval`` has passed."""

    NAME = "drs-ddl"
    OPERATION = OPERATION
    WHAT = "DDL alarms"

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> DdlAlarms:
        """One job's active DDL alarms."""
        return fetch_ddl_alarms(client, job_id, deadline)
