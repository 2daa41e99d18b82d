"""A background reader of one API area read job by job: one reading per job per interval.

Monitor data and health comparisons are read this way. Scrapes never wait for these reads: they
show the latest state. A job whose reading failed is marked down with the error code and keeps its
last good data while that is younger than the reader's ``max_staleness``; older data is dropped,
never shown as current. HTTP attempts count their own failures in
``huaweicloud_drs_api_errors_total``; an exception nobody expected is counted here as
``internal_error``.

:class:`JobsSnapshot` is the typed, immutable view the metrics and the status page read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import wait
from dataclasses import dataclass, replace
from typing import Generic, NamedTuple, TypeVar

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.errors import DRSAPIError
from .reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class JobData(Generic[T]):
    """One job's data as last read: whether that reading worked, and the last good data."""

    job_id: str
    up: bool
    error_code: str | None  # of the last reading, when it failed
    data: T | None  # the last good data, None once older than max_staleness
    read_at: float | None  # Unix time ``data`` was read


@dataclass(frozen=True, eq=False)
class JobsSnapshot(Generic[T]):
    """Every job's data at one moment; a new object whenever anything changed (compared by identity)."""

    jobs: Mapping[str, JobData[T]]


# (client, job_id, deadline, the job's last good data) -> the job's data; raises DRSAPIError.
Fetch = Callable[[DRSClient, str, Deadline, "T | None"], T]


class _Failed(NamedTuple):
    code: str


class PerJobReader(BackgroundReader, Generic[T]):
    """Keeps the data of the jobs asked for, each read again once ``interval`` has passed.

    What it knows depends on the project alone: a reload hands it over (:meth:`handover`).
    """

    def __init__(
        self,
        name: str,
        fetch: Fetch[T],
        operation: str,  # what an unexpected failure is counted as
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[JobsSnapshot[T]], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            name,
            interval=interval,
            refresh_timeout=refresh_timeout,
            max_staleness=max_staleness,
            on_error=on_error,
            pool_name=f"{name}-job",
        )
        self.fetch = fetch
        self.operation = operation
        self.on_change = on_change
        self._snapshot: JobsSnapshot[T] = JobsSnapshot({})
        self._read_at: dict[str, float] = {}  # job_id -> monotonic start of its last reading
        self._wanted: dict[str, DRSClient] = {}

    def handover(self) -> tuple[JobsSnapshot[T], dict[str, float]]:
        """The data read and when each job was read (a reload keeps both)."""
        return self._snapshot, dict(self._read_at)

    def take_over(self, state: tuple[JobsSnapshot[T], dict[str, float]]) -> None:
        """Start from a predecessor's data; its jobs are read again when due, not at once."""
        self._snapshot, self._read_at = state[0], {**state[1], **self._read_at}

    def snapshot(self) -> JobsSnapshot[T]:
        """The latest state (never waits)."""
        with self._lock:
            return self._snapshot

    def want(self, jobs: Mapping[str, DRSClient]) -> JobsSnapshot[T]:
        """Track ``jobs`` (job_id -> client); start a background reading of those due. Returns the state as of now.

        Jobs no longer asked for are dropped, and data older than ``max_staleness`` with them.
        """
        now, clock = time.time(), time.monotonic()
        with self._lock:
            self._wanted = dict(jobs)
            self._read_at = {j: t for j, t in self._read_at.items() if j in jobs}
            self._set({j: self._aged(s, now) for j, s in self._snapshot.jobs.items() if j in jobs})
            due = [j for j in jobs if self.is_due(self._read_at.get(j), clock)]
            if due and self._running is None:
                for job_id in due:
                    self._read_at[job_id] = clock
                self.start(self._refresh, due)
            return self._snapshot

    def _aged(self, state: JobData[T], now: float) -> JobData[T]:
        if state.data is None or state.read_at is None or self.fresh(state.read_at, now):
            return state
        return replace(state, data=None)

    def _set(self, jobs: dict[str, JobData[T]]) -> bool:
        """Make ``jobs`` the state (lock held); True when that changed it."""
        if jobs == dict(self._snapshot.jobs):
            return False
        self._snapshot = JobsSnapshot(jobs)
        return True

    def _refresh(self, due: list[str]) -> None:
        calls = {job_id: self._pool.submit(self._job, job_id) for job_id in due}
        # Each reading has its own deadline; this bound only guards against a bug, with room for
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
                if isinstance(result, _Failed):
                    before = jobs.get(job_id)
                    data, read_at = (before.data, before.read_at) if before is not None else (None, None)
                    jobs[job_id] = self._aged(JobData(job_id, False, result.code, data, read_at), now)
                else:
                    jobs[job_id] = JobData(job_id, True, None, result[0], now)
            changed = self._set(jobs)
            snapshot = self._snapshot
        if changed and self.on_change is not None:
            self.on_change(snapshot)

    def _job(self, job_id: str) -> tuple[T] | _Failed | None:
        """The job's data, or the error code of the failed reading; None for a job no longer wanted."""
        with self._lock:
            client = self._wanted.get(job_id)
            before = self._snapshot.jobs.get(job_id)
        if client is None:
            return None
        try:
            last = before.data if before is not None else None
            return (self.fetch(client, job_id, Deadline.after(self.refresh_timeout), last),)
        except DRSAPIError as err:  # counted by the transport (HTTP failures and answers of the wrong shape)
            log.warning("%s of job %s failed: %s", self.operation, job_id, err)
            return _Failed(err.error_code)
        except Exception as exc:  # a bug must not stop later readings, nor pass unseen
            log.error(
                "%s of job %s failed unexpectedly: %s",
                self.operation,
                job_id,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            self.count(self.operation, job_id, INTERNAL_ERROR)
            return _Failed(INTERNAL_ERROR)
