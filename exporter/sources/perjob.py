"""A reader of one per-job DRS API (one call per job per interval), in the background.

One call per job per ``interval``, a few jobs at a time in the reader's pool. Scrapes never wait
for these reads: they show the latest state. A job whose read failed is marked down with the
error code and keeps its last good data while that is younger than the reader's
``max_staleness``; older data is dropped, never shown as current. HTTP attempts count their own
failures in ``huaweicloud_drs_api_errors_total``; an exception nobody expected is counted here as
``internal_error``, and logged with its type only (a message may carry what the API answered).

:class:`PerJobReader` is the base of such readers (monitor data, DDL alarms): a subclass names
itself and gives :meth:`PerJobReader.fetch`. :class:`JobRead` and :class:`PerJobSnapshot` are the
typed, immutable views the metrics and the status page read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import wait
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.errors import DRSAPIError
from .reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class JobRead(Generic[T]):
    """One job's data as last read: whether that read worked, and the last good data."""

    job_id: str
    up: bool
    error_code: str | None  # of the last read, when it failed
    data: T | None  # the last good data, None once older than max_staleness
    read_at: float | None  # Unix time ``data`` was read


@dataclass(frozen=True, eq=False)
class PerJobSnapshot(Generic[T]):
    """Every job's data at one moment; a new object whenever anything changed (compared by identity)."""

    jobs: Mapping[str, JobRead[T]]


class PerJobReader(BackgroundReader, Generic[T]):
    """Keeps the data of the jobs asked for, each read again once ``interval`` has passed.

    What it knows depends on the project alone: a reload hands it over (:meth:`handover`).
    Subclasses set :attr:`NAME`, :attr:`OPERATION` (counted for ``internal_error``) and :attr:`WHAT` (logs).
    """

    NAME = ""  # of the reader's thread; its pool's are NAME-job
    OPERATION = ""
    WHAT = ""

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[PerJobSnapshot[T]], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            self.NAME,
            interval=interval,
            refresh_timeout=refresh_timeout,
            max_staleness=max_staleness,
            on_error=on_error,
            pool_name=f"{self.NAME}-job",
        )
        self.on_change = on_change
        self._snapshot: PerJobSnapshot[T] = PerJobSnapshot({})
        self._read_at: dict[str, float] = {}  # job_id -> monotonic start of its last read
        self._wanted: dict[str, DRSClient] = {}

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> T:
        """One job's data; raises :class:`~exporter.drs.errors.DRSAPIError` when it cannot be read."""
        raise NotImplementedError

    def handover(self) -> tuple[PerJobSnapshot[T], dict[str, float]]:
        """The data read and when each job was read (a reload keeps both)."""
        return self._snapshot, dict(self._read_at)

    def take_over(self, state: tuple[PerJobSnapshot[T], dict[str, float]]) -> None:
        """Start from a predecessor's data; its jobs are read again when due, not at once."""
        self._snapshot, self._read_at = state[0], {**state[1], **self._read_at}

    def snapshot(self) -> PerJobSnapshot[T]:
        """The latest state (never waits)."""
        with self._lock:
            return self._snapshot

    def want(self, jobs: Mapping[str, DRSClient]) -> PerJobSnapshot[T]:
        """Track ``jobs`` (job_id -> client); start a background read of those due. Returns the state as of now.

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

    def _aged(self, state: JobRead[T], now: float) -> JobRead[T]:
        if state.data is None or state.read_at is None or self.fresh(state.read_at, now):
            return state
        return replace(state, data=None)

    def _set(self, jobs: dict[str, JobRead[T]]) -> bool:
        """Make ``jobs`` the state (lock held); True when that changed it."""
        if jobs == dict(self._snapshot.jobs):
            return False
        self._snapshot = PerJobSnapshot(jobs)
        return True

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
                if isinstance(result, _Read):
                    jobs[job_id] = JobRead(job_id, True, None, result.data, now)
                else:
                    before = jobs.get(job_id)
                    data, read_at = (before.data, before.read_at) if before is not None else (None, None)
                    jobs[job_id] = self._aged(JobRead(job_id, False, result, data, read_at), now)
            changed = self._set(jobs)
            snapshot = self._snapshot
        if changed and self.on_change is not None:
            self.on_change(snapshot)

    def _job(self, job_id: str) -> _Read[T] | str | None:
        """The job's data, or the error code of the failed read; None for a job no longer wanted."""
        with self._lock:
            client = self._wanted.get(job_id)
        if client is None:
            return None
        try:
            return _Read(self.fetch(client, job_id, Deadline.after(self.refresh_timeout)))
        except DRSAPIError as err:  # counted by the transport (HTTP failures and answers of the wrong shape)
            log.warning("%s of job %s failed: %s", self.WHAT, job_id, err)
            return err.error_code
        except Exception as exc:  # a bug must not stop later reads, nor pass unseen
            log.error(
                "%s of job %s failed unexpectedly: %s",
                self.WHAT,
                job_id,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            self.count(self.OPERATION, job_id, INTERNAL_ERROR)
            return INTERNAL_ERROR


@dataclass(frozen=True)
class _Read(Generic[T]):
    """What a read gave (wrapped: the data itself could be anything, even a string)."""

    data: T
