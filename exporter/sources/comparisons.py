"""DRS comparison results kept in the background: one list call per job per interval, details read once.

A finished comparison never changes, so its per-table results are read once and kept until a
newer finished comparison of the same type replaces them: memory holds at most one result set
per job and comparison type, and in steady state each job costs one list call per
``compare_refresh_interval``. Scrapes never wait for these reads; they show the latest state.

``ComparisonSnapshot`` is the typed, immutable view other modules read (the collector, a status page).
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import orjson

from ..base.deadline import Deadline
from ..config import ObjectFilter
from ..drs.compare import COMPARE_TYPES, IN_FLIGHT, TABLE_STATUSES, CompareRun, ObjectOverview, TableResult, latest
from ..drs.compare_client import CONTENT_DETAIL, LINE_DETAIL, LIST, OBJECT_OVERVIEW, CompareClient, ReadError
from ..drs.errors import PAGE_CAP_EXCEEDED, DRSAPIError, log_api_error
from .reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

log = logging.getLogger(__name__)
T = TypeVar("T")
# A comparison too large to read (page_cap_exceeded) stays too large: it is asked for again after
# this many refresh intervals, doubling up to BACKOFF_MAX seconds, not at every interval.
BACKOFF_INTERVALS = 4
BACKOFF_MAX = 6 * 3600.0

# An object-level comparison has no list to watch: its overview is read again when the data-level
# list changes, while it runs, and otherwise at least this often.
OBJECT_MAX_AGE = 3600.0
_STATUS_INDEX = {name: i for i, name in enumerate(TABLE_STATUSES)}


class TableRow(NamedTuple):
    """One table's result as exported; row counts are NaN where the API gave none."""

    src_db: str
    src_tb: str
    dst_db: str
    dst_tb: str
    status: str
    source_rows: float
    target_rows: float


@dataclass(frozen=True)
class TableSet:
    """The per-table results of one finished comparison, compact: names as one JSON string, numbers in arrays.

    ``counts`` covers every table; the rows are only those that get a series (the guards applied).
    """

    compare_job_id: str
    counts: Mapping[str, int]
    not_exported: int
    _names: str = field(repr=False)
    _statuses: bytes = field(repr=False)
    _source: array[float] = field(repr=False)
    _target: array[float] = field(repr=False)

    @classmethod
    def build(
        cls,
        compare_job_id: str,
        tables: list[TableResult],
        *,
        max_objects: int | None,
        object_filter: ObjectFilter,
        aggregate_only: bool,
    ) -> TableSet:
        """Count every table, keep those that pass the guards (as progress data's guards do)."""
        counts = Counter({name: 0 for name in TABLE_STATUSES})
        counts.update(t.status for t in tables)
        kept: list[TableResult] = []
        if not aggregate_only:
            kept = [t for t in tables if object_filter.keeps(t.src_db, t.src_tb)]
            if max_objects is not None:
                kept = kept[:max_objects]
        nan = math.nan
        return cls(
            compare_job_id,
            dict(counts),
            len(tables) - len(kept),
            orjson.dumps([(t.src_db, t.src_tb, t.dst_db, t.dst_tb) for t in kept]).decode(),
            bytes(_STATUS_INDEX.get(t.status, _STATUS_INDEX["unknown"]) for t in kept),
            array("d", (nan if t.source_rows is None else t.source_rows for t in kept)),
            array("d", (nan if t.target_rows is None else t.target_rows for t in kept)),
        )

    def __len__(self) -> int:
        return len(self._statuses)

    def __iter__(self) -> Iterator[TableRow]:
        names = orjson.loads(self._names)
        for (src_db, src_tb, dst_db, dst_tb), status, source, target in zip(
            names, self._statuses, self._source, self._target, strict=True
        ):
            yield TableRow(src_db, src_tb, dst_db, dst_tb, TABLE_STATUSES[status], source, target)


@dataclass(frozen=True)
class TypeState:
    """One comparison type of one job: its latest run, its latest finished run and that run's results."""

    latest: CompareRun | None
    finished: CompareRun | None
    tables: TableSet | None  # results of ``finished``; None until read

    @property
    def table_counts(self) -> Mapping[str, int]:
        """Tables per status in the latest finished comparison (empty until its results are read)."""
        return self.tables.counts if self.tables is not None else {}


@dataclass(frozen=True)
class JobComparisons:
    """The comparison state of one job."""

    job_id: str
    up: bool
    error_code: str | None
    checked_at: float | None  # Unix time of the last successful listing
    types: Mapping[str, TypeState]
    objects: ObjectOverview | None = None
    objects_read_at: float = 0.0  # monotonic


@dataclass(frozen=True, eq=False)
class ComparisonSnapshot:
    """Every job's comparison state at one moment; a new object whenever anything changed.

    Compared by identity: the renderer keeps each snapshot's exposition bytes for as long as it lives.
    """

    jobs: Mapping[str, JobComparisons]

    def table_sets(self) -> list[tuple[str, str, TableSet]]:
        """(job_id, compare_type, results) of every result set, in a fixed order."""
        return [
            (job_id, compare_type, state.tables)
            for job_id, job in sorted(self.jobs.items())
            for compare_type, state in sorted(job.types.items())
            if state.tables is not None
        ]


EMPTY = ComparisonSnapshot({})


@dataclass(frozen=True)
class Guards:
    """The cardinality guards as they apply to per-table comparison series."""

    max_objects: int | None
    object_filter: ObjectFilter


class ComparisonReader(BackgroundReader):
    """Keeps the comparison state of the jobs asked for, refreshed in the background.

    Not handed over on a reload (:meth:`adopt` keeps nothing): the results kept depend on the
    guards and each job's ``aggregate_only``, so a new configuration reads them again.
    """

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        guards: Guards,
        on_change: Callable[[ComparisonSnapshot], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            "drs-compare",
            interval=interval,
            refresh_timeout=refresh_timeout,
            on_error=on_error,
            pool_name="drs-compare-job",
        )
        self.on_change = on_change
        self.guards = guards
        self._snapshot = EMPTY
        self._listed_at: dict[str, float] = {}  # job_id -> monotonic time of its last listing attempt
        # (job_id, compare_job_id) -> (monotonic time of the next attempt, delay) for result sets too large to read
        self._backoff: dict[tuple[str, str], tuple[float, float]] = {}
        self._wanted: dict[str, tuple[CompareClient, bool]] = {}

    def snapshot(self) -> ComparisonSnapshot:
        """The latest state (never waits)."""
        with self._lock:
            return self._snapshot

    def want(self, jobs: Mapping[str, tuple[CompareClient, bool]]) -> ComparisonSnapshot:
        """Track ``jobs`` (job_id -> (client, aggregate_only)); start a background read when one is due.

        Jobs no longer asked for are dropped with their results. Returns the state as of now.
        """
        now = time.monotonic()
        with self._lock:
            self._wanted = dict(jobs)
            if set(self._snapshot.jobs) - set(jobs):
                kept = {j: s for j, s in self._snapshot.jobs.items() if j in jobs}
                self._snapshot = ComparisonSnapshot(kept)
                self._listed_at = {j: t for j, t in self._listed_at.items() if j in jobs}
                self._backoff = {k: v for k, v in self._backoff.items() if k[0] in jobs}
            due = [j for j in jobs if self.is_due(self._listed_at.get(j), now)]
            if due and self._running is None:
                for job_id in due:
                    self._listed_at[job_id] = now
                self.start(self._refresh, due)
            return self._snapshot

    def _refresh(self, due: list[str]) -> None:
        calls = {job_id: self._pool.submit(self._job, job_id) for job_id in due}
        # Each job's reads have deadlines of their own (list, two result sets, objects); this
        # bound only guards against a bug, with room for every job queued behind the workers.
        rounds = -(-len(calls) // self.WORKERS)
        wait(list(calls.values()), timeout=rounds * 4 * self.refresh_timeout + 10)
        fresh: dict[str, JobComparisons] = {}
        for job_id, call in calls.items():
            if not call.done() or call.cancelled():
                continue
            try:
                state = call.result()
            except Exception:  # a bug must not stop later reads, nor pass unseen
                log.exception("comparisons of job %s failed unexpectedly", job_id)
                self.count(LIST, job_id, INTERNAL_ERROR)
                with self._lock:
                    state = _failed(job_id, self._snapshot.jobs.get(job_id), INTERNAL_ERROR)
            if state is not None:
                fresh[job_id] = state
        with self._lock:
            merged = {j: s for j, s in self._snapshot.jobs.items() if j in self._wanted}
            merged.update((j, s) for j, s in fresh.items() if j in self._wanted)
            changed = merged != dict(self._snapshot.jobs)
            if changed:
                self._snapshot = ComparisonSnapshot(merged)
            snapshot = self._snapshot
        if changed and self.on_change is not None:
            self.on_change(snapshot)  # e.g. render it now rather than in the next scrape

    def _call(self, operation: str, job_id: str, read: Callable[..., T], *args: Any) -> T:
        """``read(*args)``; every failure comes out as a DRSAPIError, counted once in ``api_errors_total``.

        HTTP attempts count their own failures; what the comparison client finds itself and any
        exception nobody expected (a bug, a body too deep to decode) are counted here.
        """
        try:
            return read(*args)
        except ReadError as err:
            self.count(err.operation or operation, job_id, err.error_code)
            raise
        except DRSAPIError:
            raise
        except Exception as exc:
            log.error(
                "%s of job %s failed unexpectedly: %s",
                operation,
                job_id,
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            self.count(operation, job_id, INTERNAL_ERROR)
            raise DRSAPIError(INTERNAL_ERROR, type(exc).__name__, operation=operation) from None

    def _job(self, job_id: str) -> JobComparisons | None:
        with self._lock:
            wanted = self._wanted.get(job_id)
            previous = self._snapshot.jobs.get(job_id)
        if wanted is None:
            return None
        client, aggregate_only = wanted
        try:
            runs = self._call(LIST, job_id, client.runs, job_id, Deadline.after(self.refresh_timeout))
        except DRSAPIError as err:
            log_api_error(log, err, "listing the comparisons of job %s failed", job_id)
            return _failed(job_id, previous, err.error_code)
        types: dict[str, TypeState] = {}
        error: str | None = None
        current: set[tuple[str, str]] = set()  # (job_id, compare_job_id) of the finished runs that count
        for compare_type in COMPARE_TYPES:
            newest, finished = latest(runs, compare_type)
            if finished is not None:
                current.add((job_id, finished.id))
            before = previous.types.get(compare_type) if previous is not None else None
            tables = before.tables if before is not None else None
            if finished is not None and (tables is None or tables.compare_job_id != finished.id):
                results = self._results(client, job_id, finished)
                if isinstance(results, str):
                    error = results
                    if before is not None:
                        types[compare_type] = before  # coherent, if old; read again later
                    continue
                tables = TableSet.build(
                    finished.id,
                    results,
                    max_objects=self.guards.max_objects,
                    object_filter=self.guards.object_filter,
                    aggregate_only=aggregate_only,
                )
            types[compare_type] = TypeState(newest, finished, tables if finished is not None else None)
        with self._lock:  # forget backoffs of comparisons replaced by newer ones
            self._backoff = {k: v for k, v in self._backoff.items() if k[0] != job_id or k in current}
        objects, objects_read_at = self._objects(client, job_id, previous, types)
        if isinstance(objects, str):
            error, objects = objects, previous.objects if previous is not None else None
        return JobComparisons(job_id, error is None, error, time.time(), types, objects, objects_read_at)

    def _results(self, client: CompareClient, job_id: str, run: CompareRun) -> list[TableResult] | str:
        """The per-table results of a finished comparison, or the error code that kept them from being read."""
        key = (job_id, run.id)
        now = time.monotonic()
        with self._lock:
            retry_at, delay = self._backoff.get(key, (0.0, 0.0))
        if now < retry_at:
            return PAGE_CAP_EXCEEDED  # still too large: not asked again before retry_at
        operation = LINE_DETAIL if run.compare_type == "lines" else CONTENT_DETAIL
        try:
            results = self._call(operation, job_id, client.tables, job_id, run, Deadline.after(self.refresh_timeout))
        except DRSAPIError as err:
            log_api_error(log, err, "results of comparison %s of job %s failed", run.id, job_id)
            if err.error_code == PAGE_CAP_EXCEEDED:
                delay = min(max(delay * 2, self.interval * BACKOFF_INTERVALS), max(BACKOFF_MAX, self.interval))
                with self._lock:
                    self._backoff[key] = (now + delay, delay)
            return err.error_code
        with self._lock:
            self._backoff.pop(key, None)
        return results

    def _objects(
        self, client: CompareClient, job_id: str, previous: JobComparisons | None, types: Mapping[str, TypeState]
    ) -> tuple[ObjectOverview | str | None, float]:
        """The object-level overview when it is due (else the previous one); an error code when it failed.

        A failed read leaves no read time, so the overview is asked for again at the next interval.
        """
        now = time.monotonic()
        if previous is not None and previous.objects_read_at:
            same_runs = {t: s.latest for t, s in previous.types.items()} == {t: s.latest for t, s in types.items()}
            running = previous.objects is not None and previous.objects.status in IN_FLIGHT
            if same_runs and not running and now - previous.objects_read_at < OBJECT_MAX_AGE:
                return previous.objects, previous.objects_read_at
        try:
            return self._call(
                OBJECT_OVERVIEW, job_id, client.objects, job_id, Deadline.after(self.refresh_timeout)
            ), now
        except DRSAPIError as err:
            log_api_error(log, err, "the object comparison of job %s failed", job_id)
            return err.error_code, 0.0


def _failed(job_id: str, previous: JobComparisons | None, code: str) -> JobComparisons:
    """The previous state of a job, marked down with ``code``."""
    if previous is None:
        return JobComparisons(job_id, False, code, None, {})
    return JobComparisons(
        job_id, False, code, previous.checked_at, previous.types, previous.objects, previous.objects_read_at
    )
