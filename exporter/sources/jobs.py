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
from ..drs.errors import DRSAPIError
from ..drs.joblist import NOT_AVAILABLE, JobMeta, JobProgress, parse_job_progress, parse_jobs

log = logging.getLogger(__name__)

LIST_PAGE = 100
BATCH = 50


class JobDirectory:
    """The discovered jobs of one project, listed at most every ``refresh_interval`` seconds.

    A failed listing keeps the last known jobs (and reports ``up`` False). Callers in parallel
    share one listing.
    """

    def __init__(self, client: DRSClient, config: DiscoveryConfig) -> None:
        self.client = client
        self.config = config
        self.jobs: list[JobMeta] = []
        self.up = False
        self.duration = 0.0
        self.listed_at: float | None = None  # monotonic, of the last attempt
        self.listed_ok_at: float | None = None  # monotonic, of the last successful listing
        self.error_code: str | None = None  # of the last attempt, when it failed
        self.error_message = ""
        self.fallback = False  # the v5 list is not available: v3 is used
        self._lock = threading.Lock()

    def refresh_if_due(self, deadline: Deadline) -> None:
        """List the jobs again when the interval has passed (or never listed), within ``deadline``."""
        if not self._lock.acquire(blocking=False):
            return  # another scrape is listing: use what is known
        try:
            due = self.listed_at is None or time.monotonic() - self.listed_at >= self.config.refresh_interval
            if not due:
                return
            started = time.monotonic()
            try:
                jobs = self._list(deadline)
            except DRSAPIError as err:
                self.up = False
                self.error_code, self.error_message = err.error_code, err.error_msg
                log.warning(
                    "job discovery in project %s failed, keeping %d known jobs: %s",
                    self.client.project_id,
                    len(self.jobs),
                    err,
                )
            else:
                self.jobs = [j for j in jobs if self.config.wants(j.name)]
                self.up = True
                self.error_code, self.error_message = None, ""
                self.listed_ok_at = time.monotonic()
            self.duration = time.monotonic() - started
            self.listed_at = time.monotonic()
        finally:
            self._lock.release()

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


class JobProgressReader:
    """Job-level progress of one project's jobs: batch progress, or one call per job where it is missing.

    Read in the background, at most once per TTL: a scrape gets the last good value of each job
    while it is younger than ``max_staleness`` and waits (until its deadline) only when there is
    none yet. A job whose call failed keeps its last value within that bound; a job no longer
    asked for is dropped.
    """

    PER_JOB_WORKERS = 4

    def __init__(self, client: DRSClient, ttl: float, *, refresh_timeout: float = 60.0, max_staleness: float) -> None:
        self.client = client
        self.ttl = ttl
        self.refresh_timeout = refresh_timeout
        self.max_staleness = max_staleness
        self.batch = True
        self.reads = 0  # completed reads: what the status page's cache goes by
        self._values: dict[str, tuple[JobProgress, float]] = {}  # job_id -> (progress, Unix time read)
        self._read_at: float | None = None  # monotonic start of the last read
        self._ids: tuple[str, ...] = ()
        self._running: threading.Event | None = None  # set when the read in flight ends
        self._lock = threading.Lock()
        # Kept for the reader's life: a thread per read would make the thread count churn.
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="drs-job-progress")
        self._per_job = ThreadPoolExecutor(self.PER_JOB_WORKERS, thread_name_prefix="drs-job")

    def close(self) -> None:
        """Stop the background reads."""
        self._reader.shutdown(wait=False, cancel_futures=True)
        self._per_job.shutdown(wait=False, cancel_futures=True)

    def read(self, job_ids: list[str], deadline: Deadline) -> dict[str, JobProgress]:
        """Progress of ``job_ids`` as last read; jobs without a recent value are left out."""
        ids = tuple(sorted(job_ids))
        with self._lock:
            due = self._read_at is None or time.monotonic() - self._read_at >= self.ttl or ids != self._ids
            if due and self._running is None:
                self._read_at, self._ids = time.monotonic(), ids
                self._running = threading.Event()
                try:
                    self._reader.submit(self._refresh, list(ids), self._running)
                except RuntimeError:  # closed
                    self._running = None
            running = self._running
            known = any(i in self._values for i in ids)
        if running is not None and not known:
            running.wait(timeout=deadline.remaining())  # nothing to show yet: wait, within the scrape's deadline
        return self.known(list(ids))

    def known(self, job_ids: list[str]) -> dict[str, JobProgress]:
        """Progress of ``job_ids`` as last read, younger than ``max_staleness``; never starts a read."""
        now = time.time()
        with self._lock:
            entries = [(i, self._values.get(i)) for i in job_ids]
        return {i: e[0] for i, e in entries if e is not None and now - e[1] <= self.max_staleness}

    def _refresh(self, ids: list[str], done: threading.Event) -> None:
        try:
            fresh = self._fetch(ids, Deadline.after(self.refresh_timeout))
        except Exception:  # a bug must not stop later reads
            log.exception("job progress in project %s failed unexpectedly", self.client.project_id)
            fresh = {}
        now = time.time()
        wanted = set(ids)
        with self._lock:
            # Per-job state goes with the job; a failed call keeps the job's last value.
            self._values = {i: v for i, v in self._values.items() if i in wanted}
            self._values.update((i, (p, now)) for i, p in fresh.items())
            self._running = None
            self.reads += 1
        done.set()

    def _fetch(self, ids: list[str], deadline: Deadline) -> dict[str, JobProgress]:
        out: dict[str, JobProgress] = {}
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
                        log.warning("batch progress in project %s failed: %s", self.client.project_id, err)
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
                            out[item["job_id"]] = parse_job_progress(item["job_id"], item, "incre_trans_delay")
                    continue
            # One call per job, a few at a time rather than one after the other.
            calls = [self._per_job.submit(self._one, job_id, deadline) for job_id in chunk]
            wait(calls, timeout=deadline.remaining())
            for job_id, call in zip(chunk, calls, strict=True):
                progress = call.result() if call.done() and not call.cancelled() else None
                if progress is not None:
                    out[job_id] = progress
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
            log.warning("progress of job %s failed: %s", job_id, err)
            return None
        job = body.get("job") if isinstance(body, dict) else None
        info = job.get("progress_info") if isinstance(job, dict) else None
        return parse_job_progress(job_id, info, "incr_trans_delay") if isinstance(info, dict) else None
