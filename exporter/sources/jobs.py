"""Job discovery and job-level progress: the job lists (v5, or v3 where v5 is missing) and batch progress.

Read here, in the background where it can be; drs.joblist parses the answers.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from ..base.deadline import Deadline
from ..config import DiscoveryConfig
from ..drs.client import DRSClient
from ..drs.errors import DRSAPIError, log_api_error
from ..drs.joblist import NOT_AVAILABLE, JobMeta, JobProgress, parse_job_progress, parse_jobs
from ..drs.throughput import BatchProgress, Throughput, parse_batch_entry
from .reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

log = logging.getLogger(__name__)

LIST_PAGE = 100
BATCH = 50


class JobDirectory:
    """The discovered jobs of one project, listed at most every ``refresh_interval`` seconds.

    Listings run in a thread of their own, never on a scrape's: a hanging resolver or job list
    holds that thread, not the scrape, which waits for the listing until its deadline at most.
    A failed listing keeps the last known jobs (and reports ``up`` False) and is tried again after
    1, 2, 4, 8, then every 15 seconds (never later than the interval) until one succeeds, so that
    jobs appear soon after an API outage rather than ``refresh_interval`` later.
    """

    RETRY_FIRST_SECONDS = 1.0
    RETRY_MAX_SECONDS = 15.0

    def __init__(self, client: DRSClient, config: DiscoveryConfig, *, refresh_timeout: float = 60.0) -> None:
        self.client = client
        self.config = config
        self.refresh_timeout = refresh_timeout
        self.jobs: list[JobMeta] = []
        self.up = False
        self.duration = 0.0
        self.listed_at: float | None = None  # monotonic, of the last attempt
        self.listed_ok_at: float | None = None  # monotonic, of the last successful listing
        self.error_code: str | None = None  # of the last attempt, when it failed
        self.error_message = ""
        self.fallback = False  # the v5 list is not available: v3 is used
        self.failures = 0  # listings failed in a row
        self._running: threading.Event | None = None  # set when the listing in flight ends
        self._successor: JobDirectory | None = None  # a reload's new directory, to hand that listing's result to
        self._lock = threading.Lock()
        # Kept for the directory's life: a thread per listing would make the thread count churn.
        self._lister = ThreadPoolExecutor(1, thread_name_prefix="drs-discovery")

    def close(self) -> None:
        """Stop listing (a listing in flight is abandoned)."""
        self._lister.shutdown(wait=False, cancel_futures=True)

    def adopt(self, other: JobDirectory) -> None:
        """Take over what ``other`` (of the same project and discovery settings) listed: a reload keeps it.

        A listing ``other`` has in flight is taken over, neither lost nor started again: scrapes
        wait for it here, and its result (and the retries after a failure) lands here when it
        ends. A last listing that failed is tried again at once, with what may be new credentials.
        """
        with other._lock:
            state = other._state()
            if other._running is not None:
                other._successor = self
        self._take(state)

    # What a successor takes over: everything known of the listings, and the one in flight.
    _HANDED_OVER = (
        "jobs",
        "up",
        "duration",
        "listed_at",
        "listed_ok_at",
        "failures",
        "error_code",
        "error_message",
        "fallback",
        "_running",
    )

    def _state(self) -> tuple[Any, ...]:
        """What a successor takes over (lock held)."""
        return tuple(getattr(self, name) for name in self._HANDED_OVER)

    def _take(self, state: tuple[Any, ...]) -> None:
        """Take ``state`` from a predecessor, and hand it on to a successor of this one's."""
        with self._lock:
            for name, value in zip(self._HANDED_OVER, state, strict=True):
                setattr(self, name, value)
            if self._running is None and not self.up:
                self.listed_at = None  # failed (or never listed) under the predecessor: due now
            successor = self._successor
            if successor is not None:
                state = self._state()
        if successor is not None:
            successor._take(state)

    def last_listing(self) -> tuple[list[JobMeta], bool, float]:
        """The jobs of the last successful listing, whether the last one succeeded, and its duration: read together."""
        with self._lock:
            return list(self.jobs), self.up, self.duration

    @property
    def listing(self) -> bool:
        """A listing is in flight."""
        with self._lock:
            return self._running is not None

    def retry_delay(self) -> float:
        """Seconds from a failed listing to the next attempt."""
        backoff = self.RETRY_FIRST_SECONDS * float(2 ** min(max(self.failures - 1, 0), 16))
        return min(backoff, self.RETRY_MAX_SECONDS, self.config.refresh_interval)

    def _due(self) -> bool:
        if self.listed_at is None:
            return True
        wait = self.config.refresh_interval if self.failures == 0 else self.retry_delay()
        return time.monotonic() - self.listed_at >= wait

    def start_if_due(self) -> threading.Event | None:
        """Start a listing when due; what to wait for: a listing just started, or the first.

        A listing started earlier is not waited for once one has succeeded: one that hangs
        costs one scrape's wait, not every scrape's.
        """
        started = False
        with self._lock:
            if self._running is None and self._due():
                self._running = threading.Event()
                self.listed_at = time.monotonic()  # an attempt is due again only after this one
                try:
                    self._lister.submit(self._refresh, self._running)
                    started = True
                except RuntimeError:  # closed
                    self._running = None
            running, first = self._running, self.listed_ok_at is None
        return running if running is not None and (started or first) else None

    def refresh_if_due(self, deadline: Deadline) -> None:
        """Start a listing when due, and wait for it (see :meth:`start_if_due`) until ``deadline`` at most."""
        running = self.start_if_due()
        if running is not None:
            running.wait(timeout=deadline.remaining())

    def _refresh(self, done: threading.Event) -> None:
        started = time.monotonic()
        try:
            jobs = self._list(Deadline.after(self.refresh_timeout))
        except Exception as exc:  # a bug must not stop later listings
            code, message = (exc.error_code, exc.error_msg) if isinstance(exc, DRSAPIError) else ("internal_error", "")
            if not isinstance(exc, DRSAPIError):
                log.exception("job discovery in project %s failed unexpectedly", self.client.project_id)
            with self._lock:
                self.up = False
                self.failures += 1
                self.error_code, self.error_message = code, message
                retry = self.retry_delay()
            if isinstance(exc, DRSAPIError):
                log_api_error(
                    log,
                    exc,
                    "job discovery in project %s failed, keeping %d known jobs, trying again in %.0fs",
                    self.client.project_id,
                    len(self.jobs),
                    retry,
                )
        else:
            with self._lock:
                self.jobs = [j for j in jobs if self.config.wants(j.name)]
                self.up = True
                self.failures = 0
                self.error_code, self.error_message = None, ""
                self.listed_ok_at = time.monotonic()
        with self._lock:
            self.duration = time.monotonic() - started
            self.listed_at = time.monotonic()
            self._running = None
            successor, state = self._successor, self._state()
            self._successor = None  # the listing it took over is handed over; later ones are this one's
        if successor is not None:  # before done: a scrape waiting on the successor finds the jobs there
            successor._take(state)
        done.set()

    def _list(self, deadline: Deadline) -> list[JobMeta]:
        jobs: dict[str, JobMeta] = {}
        for job_type in self.config.job_types:
            listed = self._list_v3(job_type, deadline) if self.fallback else None
            if listed is None:
                try:
                    listed = self._list_v5(job_type, deadline)
                except DRSAPIError as err:
                    if err.status != 404 and err.error_code not in NOT_AVAILABLE:
                        raise
                    self.fallback = True
                    log.warning(
                        "the v5 job list is not available in project %s (%s): using the v3 list",
                        self.client.project_id,
                        err.error_code,
                    )
                    listed = self._list_v3(job_type, deadline)
            for job in listed:
                jobs.setdefault(job.job_id, job)
        return list(jobs.values())

    def _list_v5(self, job_type: str, deadline: Deadline) -> list[JobMeta]:
        out: list[JobMeta] = []
        offset = 0
        for _ in range(1000):  # bounded: 100,000 jobs
            params: dict[str, Any] = {"job_type": job_type, "offset": offset, "limit": LIST_PAGE}
            if self.config.status:
                params["status"] = ",".join(self.config.status)
            body = self.client.call("GET", "/jobs", operation="list_jobs", params=params, deadline=deadline)
            items = body.get("jobs") if isinstance(body, dict) else None
            page = parse_jobs(items, "list_jobs")
            out.extend(page)
            offset += len(items or [])
            total = body.get("total_count") if isinstance(body, dict) else None
            if not items or (isinstance(total, int) and offset >= total):
                break
        return out

    def _list_v3(self, job_type: str, deadline: Deadline) -> list[JobMeta]:
        out: list[JobMeta] = []
        for page in range(1, 1001):
            body = self.client.call(
                "POST",
                "/jobs",
                operation="list_jobs",
                version="v3",
                deadline=deadline,
                json_body={"cur_page": page, "per_page": LIST_PAGE, "db_use_type": job_type},
            )
            items = body.get("jobs") if isinstance(body, dict) else None
            out.extend(parse_jobs(items, "list_jobs"))
            total = body.get("total_record") if isinstance(body, dict) else None
            if not items or (isinstance(total, int) and page * LIST_PAGE >= total):
                break
        # The v3 list has no status filter: apply it here.
        return [j for j in out if not self.config.status or j.status in self.config.status]


class JobProgressReader(BackgroundReader):
    """Job-level progress of one project's jobs: batch progress, or one call per job where it is missing.

    Read in the background, at most once per TTL: a scrape gets the last good value of each job
    while it is younger than ``max_staleness`` and waits (until its deadline) only when there is
    none yet. A job whose call failed keeps its last value within that bound; a job no longer
    asked for is dropped. Batch progress also gives each job's apply rates and phase progress
    (:class:`~exporter.drs.throughput.Throughput`), kept with its progress; the one call per job
    where batch progress is missing gives none.
    """

    PER_JOB_WORKERS = BackgroundReader.WORKERS

    def __init__(
        self,
        client: DRSClient,
        ttl: float,
        *,
        refresh_timeout: float = 60.0,
        max_staleness: float,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            "drs-job-progress",
            interval=ttl,
            refresh_timeout=refresh_timeout,
            max_staleness=max_staleness,
            on_error=on_error,
            workers=self.PER_JOB_WORKERS,
            pool_name="drs-job",
        )
        self.client = client
        self.ttl = ttl
        self.batch = True
        self._values: dict[str, tuple[BatchProgress, float]] = {}  # job_id -> (reading, Unix time read)
        self._read_at: float | None = None  # monotonic start of the last read
        self._ids: tuple[str, ...] = ()

    def handover(self) -> dict[str, tuple[BatchProgress, float]]:
        """The values read (a reload keeps them: they depend on the project only)."""
        return dict(self._values)

    def take_over(self, state: dict[str, tuple[BatchProgress, float]]) -> None:
        """Start from a predecessor's values."""
        self._values.update(state)

    def read(self, job_ids: list[str], deadline: Deadline) -> dict[str, BatchProgress]:
        """Progress and throughput of ``job_ids`` as last read; jobs without a recent value are left out."""
        ids = tuple(sorted(job_ids))
        with self._lock:
            now = time.monotonic()
            running = self._running
            if running is None and (self.is_due(self._read_at, now) or ids != self._ids):
                self._read_at, self._ids = now, ids
                running = self.start(self._refresh, list(ids))
            known = any(i in self._values for i in ids)
        if running is not None and not known:
            running.wait(timeout=deadline.remaining())  # nothing to show yet: wait, within the scrape's deadline
        return self._fresh(list(ids))

    def known(self, job_ids: list[str]) -> dict[str, JobProgress]:
        """Progress of ``job_ids`` as last read, younger than ``max_staleness``; never starts a read."""
        return {i: reading.progress for i, reading in self._fresh(job_ids).items()}

    def _fresh(self, job_ids: list[str]) -> dict[str, BatchProgress]:
        now = time.time()
        with self._lock:
            entries = [(i, self._values.get(i)) for i in job_ids]
        return {i: e[0] for i, e in entries if e is not None and self.fresh(e[1], now)}

    def _refresh(self, ids: list[str]) -> None:
        try:
            fresh = self._fetch(ids, Deadline.after(self.refresh_timeout))
        except Exception:  # a bug must not stop later reads
            log.exception("job progress in project %s failed unexpectedly", self.client.project_id)
            operation = "batch_progress" if self.batch else "show_job_progress"
            for job_id in ids:  # no HTTP attempt counted this: api_errors_total, as the comparisons do
                self.count(operation, job_id, INTERNAL_ERROR)
            fresh = {}
        now = time.time()
        wanted = set(ids)
        with self._lock:
            # Per-job state goes with the job; a failed call keeps the job's last value.
            self._values = {i: v for i, v in self._values.items() if i in wanted}
            self._values.update((i, (p, now)) for i, p in fresh.items())

    def _fetch(self, ids: list[str], deadline: Deadline) -> dict[str, BatchProgress]:
        out: dict[str, BatchProgress] = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            if self.batch:
                try:
                    body = self.client.call(
                        "POST",
                        "/jobs/batch-progress",
                        operation="batch_progress",
                        version="v3",
                        json_body={"jobs": chunk},
                        deadline=deadline,
                    )
                except DRSAPIError as err:
                    if err.status != 404 and err.error_code not in NOT_AVAILABLE:
                        log_api_error(log, err, "batch progress in project %s failed", self.client.project_id)
                        continue
                    self.batch = False
                    log.warning(
                        "batch progress is not available in project %s (%s): one call per job",
                        self.client.project_id,
                        err.error_code,
                    )
                else:
                    results = body.get("results") if isinstance(body, dict) else None
                    for item in results if isinstance(results, list) else []:
                        if isinstance(item, dict) and item.get("job_id") in chunk and not item.get("error_code"):
                            out[item["job_id"]] = parse_batch_entry(item["job_id"], item)
                    continue
            # One call per job, a few at a time rather than one after the other.
            calls = [self._pool.submit(self._one, job_id, deadline) for job_id in chunk]
            wait(calls, timeout=deadline.remaining())
            for job_id, call in zip(chunk, calls, strict=True):
                progress = call.result() if call.done() and not call.cancelled() else None
                if progress is not None:
                    out[job_id] = BatchProgress(progress, Throughput(job_id, None, None, ()))
        return out

    def _one(self, job_id: str, deadline: Deadline) -> JobProgress | None:
        try:
            body = self.client.call(
                "GET",
                f"/jobs/{job_id}",
                operation="show_job_progress",
                job_id=job_id,
                params={"type": "progress"},
                deadline=deadline,
            )
        except DRSAPIError as err:
            log_api_error(log, err, "progress of job %s failed", job_id)
            return None
        job = body.get("job") if isinstance(body, dict) else None
        info = job.get("progress_info") if isinstance(job, dict) else None
        return parse_job_progress(job_id, info, "incr_trans_delay") if isinstance(info, dict) else None
