"""The job lists (v5, or v3 where v5 is missing) and job-level progress answers, parsed."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from ..config.values import JobId
from .errors import INVALID_RESPONSE, DRSAPIError
from .progress import safe_text

log = logging.getLogger(__name__)
_SKIPPED: set[str] = set()  # listed job ids already warned about
# Answers meaning "this API does not exist here" (the v5 list and batch progress exist only in some regions).
NOT_AVAILABLE = frozenset({"APIGW.0101", "APIG.0101", "http_404", "DRS.M00304"})
MILLIS_KEYS = ("incre_trans_delay_millis", "incr_trans_delay_millis")  # the delay in ms, both spellings


@dataclass(frozen=True)
class JobMeta:
    """A DRS job as the job lists describe it."""

    job_id: str
    name: str
    status: str
    engine_type: str
    job_type: str
    task_type: str


@dataclass(frozen=True)
class JobProgress:
    """Job-level progress: ratio 0-1, incremental replication delay and remaining time, each if known."""

    job_id: str
    status: str
    progress_ratio: float | None
    delay_seconds: float | None
    remaining_seconds: float | None


def _text(value: Any) -> str:
    # Label values of huaweicloud_drs_job_info: a lone surrogate here would fail every scrape.
    return safe_text(value) if isinstance(value, str) else "" if value is None else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def parse_jobs(items: Any, operation: str) -> list[JobMeta]:
    """Jobs of a list answer, children of parent jobs included."""
    if not isinstance(items, list):
        raise DRSAPIError(INVALID_RESPONSE, "jobs is not a list", status=200, operation=operation)
    out: list[JobMeta] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            continue
        if JobId.pattern.fullmatch(item["id"]):
            out.append(
                JobMeta(*(_text(item.get(k)) for k in ("id", "name", "status", "engine_type", "job_type", "task_type")))
            )
        else:
            # It would go into request paths ("..", "a?b", "a#b" ask for other resources); a DRS
            # job id is letters, digits and '-', as the configuration requires of its own.
            shown = safe_text(item["id"])[:80]
            # Said once per id (the listing repeats every refresh_interval), then at debug level.
            if shown in _SKIPPED or len(_SKIPPED) >= 1000:
                log.debug("listed job id %r skipped: not letters, digits and '-'", shown)
            else:
                _SKIPPED.add(shown)
                log.warning("listed job id %r skipped: not letters, digits and '-'", shown)
        out.extend(parse_jobs(item.get("children") or [], operation))
    return out


def parse_job_progress(job_id: str, item: dict[str, Any], delay_key: str) -> JobProgress:
    """Job-level progress from a batch-progress result or a job's progress_info (``delay_key`` differs).

    Without the delay in seconds, the delay in milliseconds is read under either spelling:
    ``incre_trans_delay_millis`` (the SDK's batch-progress field) or ``incr_trans_delay_millis``
    (the v5 job's, and what the simulator sends in both).
    """
    progress = _number(item.get("progress"))
    delay = _number(item.get(delay_key))
    if delay is None:
        millis = next((m for k in MILLIS_KEYS if (m := _number(item.get(k))) is not None), None)
        delay = millis / 1000 if millis is not None else None
    return JobProgress(
        job_id=job_id,
        status=_text(item.get("transfer_status")),
        progress_ratio=min(progress, 100.0) / 100 if progress is not None else None,
        delay_seconds=delay,
        remaining_seconds=_number(item.get("remaining_time")),
    )
