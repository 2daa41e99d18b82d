"""Why a job failed and when its phases ended (v3 ``batch-status`` and ``batch-detail``, many jobs per call).

``POST /v3/{project_id}/jobs/batch-status`` (SDK ``QueryJobStatusResp``): ``results[]`` of
``{id, status, error_code, error_message}``. ``POST /v3/{project_id}/jobs/batch-detail`` (SDK
``QueryJobResp``): ``results[]`` of the whole job, of which these fields are read: ``id``,
``status``, ``failed_reason``, ``actual_start_time``, ``full_transfer_complete_time``,
``update_time``, ``error_code``, ``error_message`` (``error_msg`` accepted too), ``multi_write``,
``job_direction``, ``job_kernel_direction``, ``db_use_type``, and ``expired_days``.

The SDK's ``QueryJobResp`` has no ``expired_days`` (only the job-creation request and the v5
``base_info`` do): it is read when present (top level or under ``base_info``), else DRS's
documented default of 14 days is assumed (``expired_days_assumed``). When a failed job ends by
itself is taken from its last ``update_time``, which is documented as "last update", not as
"failed at": an estimate, documented as such. Times are epoch (milli)seconds, ISO-8601, or
``yyyy-MM-dd HH:mm:ss`` read as UTC; none of their formats is documented.

An entry with ``error_code`` but no ``status`` is that job's failed query (see
:mod:`exporter.drs.batch`); with a ``status`` the code is the job's own error, kept in
``error_code``. ``failed_reason`` is DRS's free text: for the status page, never a label; it is cut.

Public API: :class:`JobStatus`, :class:`JobDetail`, :func:`parse_job_status`, :func:`parse_job_detail`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .batch import Batch, entry_error, parse_batch
from .compare import timestamp
from .fields import boolean, count, excerpt

STATUS_OPERATION = "batch_status"
DETAIL_OPERATION = "batch_detail"
DEFAULT_EXPIRED_DAYS = 14
EXPIRED_DAYS = (14, 100)  # the range DRS allows
_STATUS = re.compile(r"[A-Z][A-Z_]{0,47}")
_WORD = re.compile(r"[A-Za-z][A-Za-z_-]{0,31}")
REASON_LIMIT = 500


def job_status(value: Any) -> str:
    """A job status as DRS spells it (``INCRE_TRANSFER_FAILED`` ...), or ``UNKNOWN`` (bounded label values)."""
    return value.strip() if isinstance(value, str) and _STATUS.fullmatch(value.strip()) else "UNKNOWN"


def _word(value: Any) -> str:
    return value.strip() if isinstance(value, str) and _WORD.fullmatch(value.strip()) else ""


@dataclass(frozen=True)
class JobStatus:
    """A job's status and, when DRS reports one, its error code and message."""

    job_id: str
    status: str
    error_code: str | None
    error_msg: str

    @property
    def failed(self) -> bool:
        """True in any of DRS's ``*_FAILED`` states."""
        return self.status.endswith("_FAILED")


@dataclass(frozen=True)
class JobDetail(JobStatus):
    """What batch-detail says about a job's failure and phases."""

    failed_reason: str = ""  # cut to REASON_LIMIT characters; status page and /status.json only
    actual_start_time: float | None = None
    full_transfer_complete_time: float | None = None
    update_time: float | None = None
    expired_days: int = DEFAULT_EXPIRED_DAYS
    expired_days_assumed: bool = True
    multi_write: bool | None = None
    job_direction: str = ""
    job_kernel_direction: str = ""
    db_use_type: str = ""

    @property
    def failed_expiry(self) -> float | None:
        """Unix time at which a failed job ends by itself (an estimate: last update + ``expired_days``)."""
        if not self.failed or self.update_time is None:
            return None
        return self.update_time + self.expired_days * 86400.0


def _status(job_id: str, item: dict[str, Any]) -> JobStatus:
    error = entry_error(item)
    return JobStatus(job_id, job_status(item.get("status")), error[0] if error else None, error[1] if error else "")


def _expired_days(item: dict[str, Any]) -> int | None:
    """The first usable ``expired_days`` (top level, then ``base_info``): garbage in one does not hide the other."""
    base = item.get("base_info")
    for raw in (item.get("expired_days"), base.get("expired_days") if isinstance(base, dict) else None):
        days = count(raw)
        if days is not None and EXPIRED_DAYS[0] <= days <= EXPIRED_DAYS[1]:
            return days
    return None


def _detail(job_id: str, item: dict[str, Any]) -> JobDetail:
    status = _status(job_id, item)
    days = _expired_days(item)
    return JobDetail(
        job_id=job_id,
        status=status.status,
        error_code=status.error_code,
        error_msg=status.error_msg,
        failed_reason=excerpt(item.get("failed_reason"), REASON_LIMIT),
        actual_start_time=timestamp(item.get("actual_start_time")),
        full_transfer_complete_time=timestamp(item.get("full_transfer_complete_time")),
        update_time=timestamp(item.get("update_time")),
        expired_days=days if days is not None else DEFAULT_EXPIRED_DAYS,
        expired_days_assumed=days is None,
        multi_write=boolean(item.get("multi_write")),
        job_direction=_word(item.get("job_direction")),
        job_kernel_direction=_word(item.get("job_kernel_direction")),
        db_use_type=_word(item.get("db_use_type")),
    )


def parse_job_status(body: Any, asked: list[str], operation: str = STATUS_OPERATION) -> Batch[JobStatus]:
    """Per-job statuses of a batch-status answer."""
    return parse_batch(body, asked, operation, _status, id_keys=("id", "job_id"), data_key="status")


def parse_job_detail(body: Any, asked: list[str], operation: str = DETAIL_OPERATION) -> Batch[JobDetail]:
    """Per-job details of a batch-detail answer."""
    return parse_batch(body, asked, operation, _detail, id_keys=("id", "job_id"), data_key="status")
