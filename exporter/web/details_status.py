"""A job's status and details (issue 24 item 4) as the status page and ``/status.json`` show them."""

from __future__ import annotations

from dataclasses import dataclass

from ..sources.details import JobDetails


@dataclass(frozen=True)
class JobDetailsStatus:
    """Why a job failed and when its full phase ended (issue 24), as last read in the background.

    ``failed_reason`` and ``error_message`` are DRS's free text (cut; never a label): the page escapes them.
    """

    up: bool  # the last reading succeeded
    error_code: str | None  # of the last reading, when it failed
    last_success_timestamp_seconds: float | None  # when the state shown was last read
    status: str | None  # DRS's status; null (and all below) without a reading younger than max_staleness
    job_error_code: str | None  # DRS's error code of the job
    error_message: str | None
    failed_reason: str | None
    full_transfer_completed_timestamp_seconds: float | None
    failed_timestamp_seconds: float | None  # estimated (see sources/details.py)
    failed_expiry_timestamp_seconds: float | None  # estimated from failed_timestamp_seconds
    expired_days: int | None
    expired_days_assumed: bool | None  # DRS did not say: its default (and minimum), 14
    # Where failed_timestamp_seconds comes from: "update_time" (DRS's, errs early) or "first_seen"
    # (when this exporter first saw the job failed: errs late, restarts with the exporter)
    failed_since: str | None = None


def job_details_status(job: JobDetails) -> JobDetailsStatus:
    """A job's status and details as the status page shows them."""
    data = job.data
    if data is None:
        return JobDetailsStatus(job.up, job.error_code, None, None, None, None, None, None, None, None, None, None)
    status, detail = data.status, data.detail
    return JobDetailsStatus(
        job.up,
        job.error_code,
        job.read_at,
        status.status,
        status.error_code,
        status.error_msg or None,
        detail.failed_reason or None if detail is not None else None,
        data.full_transfer_completed,
        data.failed_at,
        data.failed_expiry,
        detail.expired_days if detail is not None and status.failed else None,
        detail.expired_days_assumed if detail is not None and status.failed else None,
        data.failed_since,
    )
