"""Scheduled ("health") comparisons of a job: their runs, the policy that schedules them, a run's progress (v5).

- ``GET …/jobs/{job_id}/health-compare-jobs`` (paged, ``offset``/``limit`` 1-1000, optional
  ``status``): ``{"count", "compare_jobs": [{id, type, status, start_time, end_time,
  compute_type, database_info}]}``; ``type`` is ``object_comparison``, ``lines`` or ``account``;
  ``status`` the comparison-task states of the data-level comparisons (RUNNING, SUCCESSFUL, …).
  Runs are read with :func:`exporter.drs.compare.parse_run` into the same
  :class:`~exporter.drs.compare.CompareRun` (and :func:`~exporter.drs.compare.latest` picks the
  latest per type), so health runs sit next to the on-demand ones.
- ``GET …/health-compare-jobs/object/{compare_job_id}``: ``{"compare_result": [{type,
  source_count, target_count, status}]}``, read with
  :func:`exporter.drs.compare.parse_object_overview`.
- ``GET …/compare-policy``: ``{status: OPEN|CLOSED|NO_SUPPORT, next_compare_time (UTC ISO),
  compare_type: [...], interval_hour, period, begin_time, end_time, compare_policy}``.
- ``GET …/compare-progress/{compare_job_id}``: ``{full_info: {progress (percent), src_speed,
  recheck_entities}, incre_info: {delay, src_speed, rps, log_point, recheck_entities},
  global_info}``. ``incre_info.delay`` has no documented unit (0: all incremental data
  compared): a bare number is read as seconds, a string with a unit as written. ``src_speed``
  (unit undocumented) is not read.

Public API: :class:`ComparePolicy`, :class:`CompareProgress`, :class:`HealthComparisons`,
:func:`parse_policy`, :func:`parse_progress`, :data:`HEALTH_TYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .compare import CompareRun, ObjectOverview, timestamp
from .fields import count, first, invalid, json_object, non_negative, seconds, text

LIST = "list_health_compare_jobs"
OBJECTS = "show_health_object_compare"
POLICY = "show_compare_policy"
PROGRESS = "show_compare_progress"
ITEMS_KEYS = ("compare_jobs",)
HEALTH_TYPES = ("object_comparison", "lines", "account")
POLICY_STATUSES = ("OPEN", "CLOSED", "NO_SUPPORT")


@dataclass(frozen=True)
class ComparePolicy:
    """The schedule of a job's health comparisons."""

    status: str  # OPEN, CLOSED, NO_SUPPORT, or UNKNOWN for anything else
    next_compare_time: float | None
    compare_types: tuple[str, ...]
    interval_hours: int | None
    period: str  # as written (its format is not documented), cut

    @property
    def enabled(self) -> bool:
        """True when DRS runs the comparisons on schedule."""
        return self.status == "OPEN"


@dataclass(frozen=True)
class CompareProgress:
    """Progress of one running comparison."""

    compare_job_id: str
    full_ratio: float | None  # share of the full comparison done, 0-1
    incremental_delay_seconds: float | None
    rows_per_second: float | None
    recheck_rows: int | None  # rows with differences waiting to be checked again (full and incremental)


@dataclass(frozen=True)
class HealthComparisons:
    """Everything read about a job's health comparisons in one refresh."""

    job_id: str
    policy: ComparePolicy | None  # None when not asked for
    runs: tuple[CompareRun, ...]
    latest: Mapping[str, CompareRun] = field(default_factory=lambda: MappingProxyType({}))  # type -> newest run
    latest_finished: Mapping[str, CompareRun] = field(default_factory=lambda: MappingProxyType({}))
    objects: ObjectOverview | None = None  # result of the latest finished object comparison
    progress: Mapping[str, CompareProgress] = field(default_factory=lambda: MappingProxyType({}))  # running ones


def parse_policy(body: Any, operation: str = POLICY) -> ComparePolicy:
    """The compare-policy answer; ``invalid_response`` without a ``status`` string."""
    answer = json_object(body, operation)
    raw = answer.get("status")
    if not isinstance(raw, str) or not raw.strip():
        raise invalid("compare policy has no status", operation, answer)
    status = raw.strip().upper()
    types = answer.get("compare_type")
    if isinstance(types, str):  # one type written as a string, or a comma-separated list
        types = types.split(",")
    hours = count(answer.get("interval_hour"))
    return ComparePolicy(
        status=status if status in POLICY_STATUSES else "UNKNOWN",
        next_compare_time=timestamp(answer.get("next_compare_time")),
        compare_types=tuple(dict.fromkeys(t.strip() for t in types if isinstance(t, str) and t.strip() in HEALTH_TYPES))
        if isinstance(types, list)
        else (),
        interval_hours=hours,
        period=text(answer.get("period"), 64),
    )


def parse_progress(body: Any, compare_job_id: str, operation: str = PROGRESS) -> CompareProgress:
    """The compare-progress answer; ``invalid_response`` when it has neither ``full_info`` nor ``incre_info``."""
    answer = json_object(body, operation)
    full, incre = answer.get("full_info"), answer.get("incre_info")
    if not isinstance(full, dict) and not isinstance(incre, dict):
        raise invalid("compare progress has neither full_info nor incre_info", operation, answer)
    full = full if isinstance(full, dict) else {}
    incre = incre if isinstance(incre, dict) else {}
    done = non_negative(full.get("progress"), percent=True)
    rechecks = [n for n in (count(full.get("recheck_entities")), count(incre.get("recheck_entities"))) if n is not None]
    return CompareProgress(
        compare_job_id=compare_job_id,
        full_ratio=min(done, 100.0) / 100 if done is not None else None,
        incremental_delay_seconds=seconds(incre.get("delay")),
        rows_per_second=non_negative(first(incre, "rps")),
        recheck_rows=sum(rechecks) if rechecks else None,
    )
