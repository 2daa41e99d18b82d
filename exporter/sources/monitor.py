"""Monitor data of the jobs that have it on, read in the background: v5 ``monitor-data``, v3 DR monitoring.

A DR (``cloudDataGuard``) job is read with the batched v3 ``disaster-recovery-monitoring-data``
(ten jobs per call, one project at a time); any other job with one v5 ``monitor-data`` call
per ``monitor_refresh_interval``, a few jobs at a time in the reader's pool. Scrapes never
wait for these reads: they show the latest state. A job whose read failed is marked down with
the error code and keeps its last good data while that is younger than the reader's
``max_staleness``; older data is dropped, never shown as current. HTTP attempts count their own
failures in ``huaweicloud_drs_api_errors_total``; a DR entry's own error and an exception nobody
expected are counted here, once each.

``MonitorSnapshot`` is the typed, immutable view the metrics and the status page read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, wait
from typing import Any

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_client import fetch_dr_monitoring
from ..drs.health_job_client import fetch_monitor_data
from ..drs.monitor import DR_OPERATION, OPERATION, MonitorData
from .perjob import JobRead, JobsSnapshot, PerJobReader
from .reader import ErrorCounter

log = logging.getLogger(__name__)

JobMonitor = JobRead[MonitorData]
MonitorSnapshot = JobsSnapshot[MonitorData]


class MonitorReader(PerJobReader[MonitorData]):
    """Keeps the monitor data of the jobs asked for, each read again once ``interval`` has passed.

    What it knows depends on the project alone: a reload hands it over (:meth:`handover`).
    """

    NAME = "drs-monitor"
    OPERATION = OPERATION
    WHAT = "monitor data"

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[MonitorSnapshot], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(interval, refresh_timeout, max_staleness, on_change=on_change, on_error=on_error)
        self._dr: frozenset[str] = frozenset()

    def want(self, jobs: Mapping[str, DRSClient], dr: Collection[str] = ()) -> MonitorSnapshot:
        """Track ``jobs`` (job_id -> client), of which ``dr`` are DR jobs; start a read of those due."""
        with self._lock:
            self._dr = frozenset(dr)
        return super().want(jobs)

    def _refresh(self, due: list[str]) -> None:
        with self._lock:
            dr = [j for j in due if j in self._dr]
        calls = self._singles([j for j in due if j not in dr])
        batches = self._batches(fetch_dr_monitoring, DR_OPERATION, dr)
        # Each call has its own deadline; this bound only guards against a bug, with room for
        # every call queued behind the workers.
        rounds = -(-(len(calls) + len(batches)) // self.WORKERS)
        futures: list[Future[Any]] = [*calls.values(), *batches]
        wait(futures, timeout=rounds * self.refresh_timeout + 10)
        values: dict[str, MonitorData] = {}
        errors: dict[str, str] = {}
        self._gather_singles(calls, values, errors)
        self._gather(batches, values, errors)
        self._store(values, errors)

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> MonitorData:
        """One (non-DR) job's monitor data."""
        return fetch_monitor_data(client, job_id, deadline)
