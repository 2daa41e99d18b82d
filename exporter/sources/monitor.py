"""Monitor data (v5 ``monitor-data``) of the jobs that have it on, read in the background.

One call per job per ``monitor_refresh_interval``, a few jobs at a time in the reader's pool.
Scrapes never wait for these reads: they show the latest state. A job whose read failed is
marked down with the error code and keeps its last good data while that is younger than the
reader's ``max_staleness``; older data is dropped, never shown as current. HTTP attempts count
their own failures in ``huaweicloud_drs_api_errors_total``; an exception nobody expected is
counted here as ``internal_error``.

``MonitorSnapshot`` is the typed, immutable view the metrics and the status page read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import wait
from dataclasses import dataclass, replace

from ..base.deadline import Deadline
from ..drs.errors import DRSAPIError
from ..drs.health_job_client import fetch_monitor_data
from ..drs.monitor import OPERATION, MonitorData
from .reader import INTERNAL_ERROR, ErrorCounter, JobsSnapshot, JobStateReader

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobMonitor:
    """One job's monitor data as last read: whether that read worked, and the last good data."""

    job_id: str
    up: bool
    error_code: str | None  # of the last read, when it failed
    data: MonitorData | None  # the last good data, None once older than max_staleness
    read_at: float | None  # Unix time ``data`` was read


class MonitorSnapshot(JobsSnapshot[JobMonitor]):
    """Every job's monitor data at one moment; a new object whenever anything changed (compared by identity)."""


EMPTY = MonitorSnapshot({})


class MonitorReader(JobStateReader[JobMonitor, MonitorSnapshot]):
    """Keeps the monitor data of the jobs asked for, each read again once ``interval`` has passed.

    What it knows depends on the project alone: a reload hands it over (:meth:`handover`).
    """

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
            MonitorSnapshot,
            interval=interval,
            refresh_timeout=refresh_timeout,
            max_staleness=max_staleness,
            on_error=on_error,
            pool_name="drs-monitor-job",
        )
        self.on_change = on_change

    def _aged(self, state: JobMonitor, now: float) -> JobMonitor:
        if state.data is None or state.read_at is None or self.fresh(state.read_at, now):
            return state
        return replace(state, data=None)

    def _refresh(self, due: list[str]) -> None:
        calls = {job_id: self._pool.submit(self._job, job_id) for job_id in due}
        # Each call has its own deadline; this bound only guards against a bug, with room for
        # every job queued behind the workers.
        rounds = -(-len(calls) // self.WORKERS)
        wait(list(calls.values()), timeout=rounds * self.refresh_timeout + 10)
        now = time.time()
        with self._lock:
            jobs = {j: s for j, s in self._snapshot.jobs.items() if j in self._wanted}
            for job_id, call in calls.items():
                result = call.result() if call.done() and not call.cancelled() else None
                if result is None or job_id not in self._wanted:
                    continue
                if isinstance(result, MonitorData):
                    jobs[job_id] = JobMonitor(job_id, True, None, result, now)
                else:
                    before = jobs.get(job_id)
                    data, read_at = (before.data, before.read_at) if before is not None else (None, None)
                    jobs[job_id] = self._aged(JobMonitor(job_id, False, result, data, read_at), now)
            changed = self._set(jobs)
            snapshot = self._snapshot
        if changed and self.on_change is not None:
            self.on_change(snapshot)

    def _job(self, job_id: str) -> MonitorData | str | None:
        """The job's monitor data, or the error code of the failed read; None for a job no longer wanted."""
        with self._lock:
            client = self._wanted.get(job_id)
        if client is None:
            return None
        try:
            return fetch_monitor_data(client, job_id, Deadline.after(self.refresh_timeout))
        except DRSAPIError as err:  # counted by the transport (HTTP failures and answers of the wrong shape)
            log.warning("monitor data of job %s failed: %s", job_id, err)
            return err.error_code
        except Exception as exc:  # a bug must not stop later reads, nor pass unseen
            log.error(
                "monitor data of job %s failed unexpectedly: %s",
                job_id,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            self.count(OPERATION, job_id, INTERNAL_ERROR)
            return INTERNAL_ERROR
