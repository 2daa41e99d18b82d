"""Why a job failed and when its full phase ended (v3 ``batch-status`` and ``batch-detail``), read in the background.

Cost, per project and ``job_details_refresh_interval``: one ``batch-status`` call for every job
with ``job_details`` on (50 jobs per call). ``batch-detail`` (whole job descriptions, 10 per call)
is asked only for the jobs whose status differs from the one their last details were read with:
a job seen for the first time, a job whose phase changed (the full phase ended: its end time is
known from then on and never changes), a job that failed or was resumed. While no job changes
status (the steady state) that is one batched call per project per interval.

A job's state is the status and the details of its last complete read. A read that failed
(the whole call, or the job's own entry) marks the job down with the error code and keeps that
state while it is younger than the reader's ``max_staleness``; older, it is dropped, never shown
as current. HTTP attempts count their own failures in ``huaweicloud_drs_api_errors_total``; an
entry's own ``error_code`` and a missing entry are counted here, once each (the failure of a
whole call is the transport's, see ``EntryError.call_failed``), and so is ``internal_error``.

When a failed job ends by itself is an estimate: DRS reports neither when the job failed nor (in
the SDK's ``QueryJobResp``) ``expired_days``. The failure time is the earlier of the details'
``update_time`` (the job's last update) and the time this exporter first saw the job failed;
``expired_days`` is read when the answer carries it, else DRS's default of 14 days is assumed,
which is also its minimum (14-100). With an ``update_time`` the estimate may come early, never
late. Without one the failure time is when this exporter first saw the job failed: that errs
late (by as long as the job was failed before the exporter looked) and starts again when the
exporter restarts; :attr:`Details.failed_since` says which case applies.

The failure reason and DRS's error message are free text: they are for the status page and
``/status.json`` only, never a label, never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import wait
from dataclasses import dataclass

from ..base.deadline import Deadline
from ..drs.batch import Batch, EntryError
from ..drs.client import DRSClient
from ..drs.errors import DRSAPIError
from ..drs.health_client import fetch_job_details, fetch_job_status
from ..drs.jobstatus import DEFAULT_EXPIRED_DAYS, DETAIL_OPERATION, STATUS_OPERATION, JobDetail, JobStatus
from .perjob import JobRead, JobsSnapshot, PerJobReader
from .reader import INTERNAL_ERROR

log = logging.getLogger(__name__)
DAY = 86400.0


@dataclass(frozen=True)
class Details:
    """A job's status and details as last read completely."""

    status: JobStatus
    detail: JobDetail | None  # read while batch-status said ``status``
    failed_seen: float | None = None  # Unix time the exporter first saw the job in its current failed status

    @property
    def failed_at(self) -> float | None:
        """When the job failed, as far as one can tell (see the module): None unless it is failed now."""
        if not self.status.failed:
            return None
        update = self.detail.update_time if self.detail is not None else None
        known = [t for t in (update, self.failed_seen) if t is not None]
        return min(known) if known else None

    @property
    def failed_since(self) -> str | None:
        """Where :attr:`failed_at` comes from: ``update_time`` (DRS's; errs early) or ``first_seen``
        (this exporter's first sighting of the failure; errs late, and restarts with the exporter)."""
        failed_at = self.failed_at
        if failed_at is None:
            return None
        update = self.detail.update_time if self.detail is not None else None
        return "update_time" if update is not None and update <= failed_at else "first_seen"

    @property
    def failed_expiry(self) -> float | None:
        """Unix time a failed job ends by itself (an estimate, see :attr:`failed_since`); None unless failed."""
        failed_at = self.failed_at
        if failed_at is None:
            return None
        days = self.detail.expired_days if self.detail is not None else DEFAULT_EXPIRED_DAYS
        return failed_at + days * DAY

    @property
    def full_transfer_completed(self) -> float | None:
        """When DRS says the full phase ended (None before, or when it does not say)."""
        return self.detail.full_transfer_complete_time if self.detail is not None else None


# One job's status and details as last read completely (``data``, None without a good read younger
# than max_staleness), and whether the last read worked.
JobDetails = JobRead[Details]
DetailsSnapshot = JobsSnapshot[Details]
EMPTY: DetailsSnapshot = JobsSnapshot({})


@dataclass(frozen=True)
class _Read:
    """What one project's read found: per job, its status and details, or the error code of its failure."""

    good: Mapping[str, tuple[JobStatus, JobDetail | None]]
    failed: Mapping[str, str]


class JobDetailsReader(PerJobReader[Details]):
    """Keeps the status and details of the jobs asked for, read again once ``interval`` has passed.

    One read asks each project for all its due jobs at once. What it knows depends on the project
    alone: a reload hands it over (:meth:`handover`).
    """

    NAME = "drs-details"
    OPERATION = STATUS_OPERATION
    WHAT = "job details"

    def _refresh(self, due: list[str]) -> None:
        known = self.snapshot().jobs
        calls = [self._pool.submit(self._project, client, ids, known) for client, ids in self._by_client(due)]
        # Each call has its own deadline (two calls and their chunks at most); this bound only
        # guards against a bug, with room for every project queued behind the workers.
        rounds = -(-len(calls) // self.WORKERS)
        wait(calls, timeout=rounds * 2 * self.refresh_timeout + 10)
        now = time.time()
        before = self.snapshot().jobs
        values: dict[str, Details] = {}
        errors: dict[str, str] = {}
        for call in calls:
            read = call.result() if call.done() and not call.cancelled() else None
            if read is None:
                continue
            for job_id, (status, detail) in read.good.items():
                values[job_id] = _good(before.get(job_id), status, detail, now)
            errors.update(read.failed)
        self._store(values, errors)

    def _project(self, client: DRSClient, job_ids: list[str], known: Mapping[str, JobDetails]) -> _Read | None:
        """Read one project's jobs; None when the read was abandoned by an unexpected failure (counted)."""
        try:
            return self._read(client, job_ids, known)
        except Exception as exc:  # a bug must not stop later reads, nor pass unseen
            log.error(
                "job details of %d jobs failed unexpectedly: %s",
                len(job_ids),
                type(exc).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            for job_id in job_ids:
                self.count(STATUS_OPERATION, job_id, INTERNAL_ERROR)
            return _Read({}, dict.fromkeys(job_ids, INTERNAL_ERROR))

    def _read(self, client: DRSClient, job_ids: list[str], known: Mapping[str, JobDetails]) -> _Read:
        failed: dict[str, str] = {}
        try:
            statuses = fetch_job_status(client, job_ids, Deadline.after(self.refresh_timeout))
        except DRSAPIError as err:  # every chunk's call failed: counted by the transport
            log.warning("job status of %d jobs failed: %s", len(job_ids), err.error_code)
            return _Read({}, dict.fromkeys(job_ids, err.error_code))
        failed.update(self._entry_errors(STATUS_OPERATION, statuses, logging.DEBUG))
        need = [j for j, s in statuses.values.items() if _needs_detail(known.get(j), s)]
        details: Batch[JobDetail] = Batch()
        if need:
            try:
                details = fetch_job_details(client, need, Deadline.after(self.refresh_timeout))
            except DRSAPIError as err:
                log.warning("job details of %d jobs failed: %s", len(need), err.error_code)
                details = Batch.of({}, {j: EntryError(j, err.error_code, call_failed=True) for j in need})
            failed.update(self._entry_errors(DETAIL_OPERATION, details, logging.DEBUG))
        good = {
            j: (s, details.values.get(j))
            for j, s in statuses.values.items()
            if j not in failed and (j not in need or j in details.values)
        }
        return _Read(good, failed)


def _good(before: JobDetails | None, status: JobStatus, detail: JobDetail | None, now: float) -> Details:
    """The state after a complete read; ``detail`` None: the last details still hold (same status)."""
    last = before.data if before is not None else None
    if detail is None and last is not None:
        detail = last.detail
    seen = None
    if status.failed:
        same = last is not None and last.status.status == status.status
        seen = last.failed_seen if same and last is not None and last.failed_seen is not None else now
    return Details(status, detail, seen)


def _needs_detail(before: JobDetails | None, status: JobStatus) -> bool:
    """Whether a job's details must be read: none yet, or read while batch-status said another status.

    Compared with batch-status's own earlier answer, not with the status in the details: were the
    two APIs to spell a status differently, the details would be read again on every interval.
    """
    last = before.data if before is not None else None
    if last is None or last.detail is None:
        return True
    return last.status.status != status.status
