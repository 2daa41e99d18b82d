"""Throughput and phase progress from the ``batch-progress`` answer the exporter already fetches.

``POST /v3/{project_id}/jobs/batch-progress`` (SDK ``QueryProgressResp``) carries, beside the
job-level progress that :func:`exporter.drs.joblist.parse_job_progress` reads:

- ``apply_rows_rate`` (int, rows per second of the incremental phase) and ``apply_bytes_rate``
  (int, "network traffic of the incremental phase": bytes per second by its name, the unit is not
  documented). ``-1`` means the job is not in the incremental phase yet: no value, never a
  negative rate.
- ``progress_map``: ``{"structure"|"data"|"index": {"completed": "94%", "remaining_time": ...}}``.
  ``completed`` is a percent string (a bare number is read as percent too); ``remaining_time`` has
  no documented unit: a bare number is read as seconds (as the job-level ``remaining_time``), a
  string with a unit or ``[h:]mm:ss`` as written. ``-1`` in either means "not in this phase yet".
  Other phase names are kept if they are short lowercase words (label values stay bounded).

Public API: :class:`Throughput`, :class:`PhaseProgress`, :class:`BatchProgress`,
:func:`parse_throughput`, :func:`parse_batch_entry`, :func:`parse_batch_progress`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .batch import Batch, parse_batch
from .fields import non_negative, seconds
from .joblist import JobProgress, parse_job_progress

OPERATION = "batch_progress"
PHASES = ("structure", "data", "index")  # the documented ones, in order
_PHASE = re.compile(r"[a-z][a-z_]{0,31}")
_MAX_PHASES = 16


@dataclass(frozen=True)
class PhaseProgress:
    """One phase of a job: share done (0-1) and seconds left, None where not in this phase (or unknown)."""

    phase: str
    ratio: float | None
    remaining_seconds: float | None


@dataclass(frozen=True)
class Throughput:
    """Incremental apply rates and per-phase progress of one job."""

    job_id: str
    apply_rows_per_second: float | None
    apply_bytes_per_second: float | None
    phases: tuple[PhaseProgress, ...]


@dataclass(frozen=True)
class BatchProgress:
    """One job's whole batch-progress entry: the job-level progress and the rest."""

    progress: JobProgress
    throughput: Throughput


def _phase(name: str, value: Any) -> PhaseProgress | None:
    if not isinstance(value, dict):
        return None
    done = non_negative(value.get("completed"), percent=True)
    ratio = min(done, 100.0) / 100 if done is not None else None
    return PhaseProgress(name, ratio, seconds(value.get("remaining_time")))


def parse_throughput(job_id: str, item: dict[str, Any]) -> Throughput:
    """The rates and phases of one batch-progress entry (absent or garbage values are None)."""
    phases: list[PhaseProgress] = []
    raw = item.get("progress_map")
    if isinstance(raw, dict):
        names = [n for n in PHASES if n in raw] + sorted(
            n for n in raw if isinstance(n, str) and n not in PHASES and _PHASE.fullmatch(n)
        )
        phases = [p for n in names[:_MAX_PHASES] if (p := _phase(n, raw[n])) is not None]
    return Throughput(
        job_id=job_id,
        apply_rows_per_second=non_negative(item.get("apply_rows_rate")),
        apply_bytes_per_second=non_negative(item.get("apply_bytes_rate")),
        phases=tuple(phases),
    )


def parse_batch_entry(job_id: str, item: dict[str, Any]) -> BatchProgress:
    """One batch-progress entry: the job-level progress (either delay spelling) and the throughput."""
    return BatchProgress(parse_job_progress(job_id, item, "incre_trans_delay"), parse_throughput(job_id, item))


def parse_batch_progress(body: Any, asked: list[str], operation: str = OPERATION) -> Batch[BatchProgress]:
    """Every entry of a batch-progress answer, job-level progress and throughput together."""
    return parse_batch(body, asked, operation, parse_batch_entry)
