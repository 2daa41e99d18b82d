"""A background reader of one value per job: due jobs read again, last good values kept within max staleness.

What every per-job health source (monitor data, RPO/RTO, job details, DDL alarms, abnormal rows,
scheduled comparisons) shares: the state is a :class:`JobsSnapshot` of :class:`JobRead`
(whether the last read of that job worked, its error code, and the last good value with when it
was read). A failed read keeps the last good value while it is younger than ``max_staleness``;
older values are dropped, never shown as current, and the job is then down (``stale``) until a
reading lands. Jobs no longer asked for are dropped. What a
reader knows depends on the project alone: a reload hands it over. A subclass says how due jobs
are read (:meth:`PerJobReader._refresh`) and stores the outcome with :meth:`PerJobReader._store`;
a reader of one call (or a few) per job need only say how one job is read (:meth:`PerJobReader.fetch`,
and the class attributes ``OPERATION`` and ``WHAT``; ``NAME`` names its threads): the default
``_refresh`` reads the due jobs a few at a time in the pool, one job per task under a deadline of
``refresh_timeout``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from ..base.deadline import Deadline
from ..drs.batch import Batch
from ..drs.client import DRSClient
from ..drs.compare_client import ReadError
from ..drs.errors import DEADLINE_EXCEEDED, DRSAPIError, log_api_error
from .reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

log = logging.getLogger(__name__)
T = TypeVar("T")
STALE = "stale"  # error code of a job whose last good value aged out before a new reading landed


@dataclass(frozen=True)
class JobRead(Generic[T]):
    """One job's value as last read: whether that read worked, and the last good value."""

    job_id: str
    up: bool
    error_code: str | None  # of the last read, when it failed
    data: T | None  # the last good value, None once older than max_staleness
    read_at: float | None  # Unix time ``data`` was read


@dataclass(frozen=True, eq=False)
class JobsSnapshot(Generic[T]):
    """Every job's value at one moment; a new object whenever anything changed (compared by identity)."""

    jobs: Mapping[str, JobRead[T]]


class PerJobReader(BackgroundReader, Generic[T]):
    """Keeps a value of each job asked for, each read again once ``interval`` has passed."""

    NAME = ""  # of the reader's thread; its pool's are NAME-job
    OPERATION = ""  # of api_errors_total, for a failure of :meth:`fetch` no HTTP attempt counted
    WHAT = "data"  # in log lines: "<WHAT> of job <id> failed"

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[JobsSnapshot[T]], None] | None = None,
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
        self._snapshot: JobsSnapshot[T] = JobsSnapshot({})
        self._read_at: dict[str, float] = {}  # job_id -> monotonic start of its last read
        self._wanted: dict[str, DRSClient] = {}

    def handover(self) -> tuple[JobsSnapshot[T], dict[str, float]]:
        """The values read and when each job was read (a reload keeps both)."""
        return self._snapshot, dict(self._read_at)

    def take_over(self, state: tuple[JobsSnapshot[T], dict[str, float]]) -> None:
        """Start from a predecessor's values; its jobs are read again when due, not at once."""
        self._snapshot, self._read_at = state[0], {**state[1], **self._read_at}

    def snapshot(self) -> JobsSnapshot[T]:
        """The latest state (never waits)."""
        with self._lock:
            return self._snapshot

    def want(self, jobs: Mapping[str, DRSClient]) -> JobsSnapshot[T]:
        """Track ``jobs`` (job_id -> client); start a background read of those due. Returns the state as of now.

        Jobs no longer asked for are dropped, and values older than ``max_staleness`` with them.
        """
        now, clock = time.time(), time.monotonic()
        with self._lock:
            self._wanted = dict(jobs)
            self._read_at = {j: t for j, t in self._read_at.items() if j in jobs}
            self._set({j: self._aged(s, now) for j, s in self._snapshot.jobs.items() if j in jobs})
            due = self._due([j for j in jobs if self.is_due(self._read_at.get(j), clock)])
            if due and self._running is None:
                for job_id in due:
                    self._read_at[job_id] = clock
                self.start(self._refresh, due)
            return self._snapshot

    def _due(self, due: list[str]) -> list[str]:
        """The jobs to read when ``due`` are due (lock held): those, unless a subclass reads more with them."""
        return due

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> T:
        """One job's value (for the default :meth:`_refresh`); raises DRSAPIError when it cannot be read."""
        raise NotImplementedError

    def _refresh(self, due: list[str]) -> None:
        """Read ``due`` and :meth:`_store` the outcome (in the reader thread): by default each job on its own."""
        calls = self._singles(due)
        # Each call has its own deadline; this bound only guards against a bug, with room for
        # every job queued behind the workers.
        wait(list(calls.values()), timeout=-(-len(calls) // self.WORKERS) * self.refresh_timeout + 10)
        values: dict[str, T] = {}
        errors: dict[str, str] = {}
        self._gather_singles(calls, values, errors)
        self._store(values, errors)

    def _singles(self, job_ids: list[str]) -> dict[str, Future[Read[T] | str | None]]:
        """Start one :meth:`fetch` per job of ``job_ids`` in the pool (see :meth:`_job`)."""
        return {job_id: self._pool.submit(self._job, job_id) for job_id in job_ids}

    @staticmethod
    def _gather_singles(
        calls: Mapping[str, Future[Read[T] | str | None]], values: dict[str, T], errors: dict[str, str]
    ) -> None:
        """Add the outcome of the per-job ``calls`` that ended to ``values`` and ``errors``."""
        for job_id, call in calls.items():
            result = call.result() if call.done() and not call.cancelled() else None
            if isinstance(result, Read):
                values[job_id] = result.data
            elif result is not None:
                errors[job_id] = result

    def _job(self, job_id: str) -> Read[T] | str | None:
        """The job's value, or the error code of the failed read; None for a job no longer wanted."""
        client = self._client(job_id)
        if client is None:
            return None
        try:
            return Read(self.fetch(client, job_id, Deadline.after(self.refresh_timeout)))
        except DRSAPIError as err:
            if not counted(err):
                self.count(err.operation or self.OPERATION, job_id, err.error_code)
            log_api_error(log, err, "%s of job %s failed", self.WHAT, job_id)
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

    def _last(self, job_id: str) -> T | None:
        """The job's last good value (for a :meth:`fetch` that reads only what changed since)."""
        with self._lock:
            before = self._snapshot.jobs.get(job_id)
        return before.data if before is not None else None

    def _client(self, job_id: str) -> DRSClient | None:
        """The client of a job still wanted."""
        with self._lock:
            return self._wanted.get(job_id)

    def _aged(self, state: JobRead[T], now: float) -> JobRead[T]:
        """``state`` without its value once that is older than ``max_staleness``.

        A value aged out (no scrape for longer than that, or readings failing that long) makes the
        job down with :data:`STALE` until the next reading lands: "up, nothing to report" would
        read as a job whose DDL alarms or abnormal rows are gone.
        """
        if state.data is None or state.read_at is None or self.fresh(state.read_at, now):
            return state
        return replace(state, up=False, error_code=state.error_code or STALE, data=None)

    def _set(self, jobs: dict[str, JobRead[T]]) -> bool:
        """Make ``jobs`` the state (lock held); True when that changed it."""
        if jobs == dict(self._snapshot.jobs):
            return False
        self._snapshot = JobsSnapshot(jobs)
        return True

    def _store(self, values: Mapping[str, T], errors: Mapping[str, str]) -> None:
        """Take the outcome of a read: the values read, and the error code of each job whose read failed."""
        now = time.time()
        with self._lock:
            jobs = {j: s for j, s in self._snapshot.jobs.items() if j in self._wanted}
            for job_id, code in errors.items():
                if job_id in self._wanted:
                    before = jobs.get(job_id)
                    data, read_at = (before.data, before.read_at) if before is not None else (None, None)
                    jobs[job_id] = self._aged(JobRead(job_id, False, code, data, read_at), now)
            for job_id, value in values.items():
                if job_id in self._wanted:
                    jobs[job_id] = JobRead(job_id, True, None, value, now)
            changed = self._set(jobs)
            snapshot = self._snapshot
        if changed and self.on_change is not None:
            self.on_change(snapshot)

    def _by_client(self, job_ids: list[str]) -> list[tuple[DRSClient, list[str]]]:
        """``job_ids`` still wanted, grouped by their project's client (one batched read each)."""
        groups: dict[int, tuple[DRSClient, list[str]]] = {}
        with self._lock:
            for job_id in job_ids:
                client = self._wanted.get(job_id)
                if client is not None:
                    groups.setdefault(id(client), (client, []))[1].append(job_id)
        return list(groups.values())

    def _batches(
        self, fetch: Callable[[DRSClient, list[str], Deadline], Batch[T]], operation: str, job_ids: list[str]
    ) -> list[Future[tuple[dict[str, T], dict[str, str]]]]:
        """Start one batched read per project of ``job_ids`` in the pool (see :meth:`_read_batch`)."""
        return [
            self._pool.submit(self._read_batch, fetch, operation, client, ids)
            for client, ids in self._by_client(job_ids)
        ]

    @staticmethod
    def _gather(
        reads: list[Future[tuple[dict[str, T], dict[str, str]]]], values: dict[str, T], errors: dict[str, str]
    ) -> None:
        """Add the outcome of the batched ``reads`` that ended to ``values`` and ``errors``."""
        for read in reads:
            if read.done() and not read.cancelled():
                found, failed = read.result()
                values.update(found)
                errors.update(failed)

    def _read_batch(
        self,
        fetch: Callable[[DRSClient, list[str], Deadline], Batch[T]],
        operation: str,
        client: DRSClient,
        ids: list[str],
    ) -> tuple[dict[str, T], dict[str, str]]:
        """One project's batched read: the values, and each failed job's error code.

        An entry's own error (or a job the answer left out) is counted here, once; a failed call
        was counted by the transport (per attempt), so its jobs are not counted again, unless no
        attempt counted it (:func:`counted`).
        """
        try:
            batch = fetch(client, ids, Deadline.after(self.refresh_timeout))
        except DRSAPIError as err:  # every call of the read failed
            if not counted(err):
                for job_id in ids:
                    self.count(operation, job_id, err.error_code)
            log_api_error(log, err, "%s of %d jobs failed", operation, len(ids))
            return {}, dict.fromkeys(ids, err.error_code)
        except Exception as exc:  # a bug must not stop later reads, nor pass unseen
            log.error(
                "%s failed unexpectedly: %s", operation, type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG)
            )
            for job_id in ids:
                self.count(operation, job_id, INTERNAL_ERROR)
            return {}, dict.fromkeys(ids, INTERNAL_ERROR)
        return dict(batch.values), self._entry_errors(operation, batch)

    def _entry_errors(self, operation: str, batch: Batch[Any], level: int = logging.WARNING) -> dict[str, str]:
        """Each failed job's error code; counts, once, those no HTTP attempt counted (an entry's own, a missing entry).

        A failed call was counted by the transport (per attempt): its jobs are not counted again.
        """
        for error in batch.errors.values():
            if not error.call_failed:
                log.log(level, "%s of job %s failed: %s", operation, error.job_id, error.error_code)
                self.count(operation, error.job_id, error.error_code)
        return {j: e.error_code for j, e in batch.errors.items()}


def counted(err: DRSAPIError) -> bool:
    """Whether the transport counted ``err`` in api_errors_total (an HTTP attempt failed, or its answer was bad).

    What a reading found itself (a :class:`ReadError`: too many pages) and a deadline that ran out
    before a request was sent were no HTTP attempt: the reader counts them, once per reading.
    """
    return not isinstance(err, ReadError) and not (err.error_code == DEADLINE_EXCEEDED and err.status is None)


@dataclass(frozen=True)
class Read(Generic[T]):
    """A job's value as one read got it (a box: the value itself may be any type, even a str)."""

    data: T
