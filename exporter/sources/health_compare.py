"""Scheduled ("health") comparisons (v5 ``health-compare-jobs``, ``compare-policy``, ``compare-progress``)
of the jobs that have them on, read in the background.

Per job and ``health_compare_refresh_interval``: the list and the policy (2 calls), the overview of
a newly finished object comparison (one call, once: its result never changes) and the progress of
each running comparison (one call each, at most one per type). On
:class:`~exporter.sources.perjob.PerJobReader` (what a failed reading leaves, and for how long).
"""

from __future__ import annotations

from collections.abc import Callable

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_compare import LIST, HealthComparisons
from ..drs.health_job_client import fetch_health_comparisons
from .perjob import JobData, JobsSnapshot, PerJobReader
from .reader import ErrorCounter

JobHealthComparisons = JobData[HealthComparisons]
HealthCompareSnapshot = JobsSnapshot[HealthComparisons]


def _fetch(client: DRSClient, job_id: str, deadline: Deadline, before: HealthComparisons | None) -> HealthComparisons:
    return fetch_health_comparisons(client, job_id, deadline, known=before.objects if before is not None else None)


class HealthCompareReader(PerJobReader[HealthComparisons]):
    """Keeps the health comparisons of the jobs asked for, each read again once ``interval`` has passed."""

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        on_change: Callable[[HealthCompareSnapshot], None] | None = None,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(
            "drs-health-compare",
            _fetch,
            LIST,
            interval,
            refresh_timeout,
            max_staleness,
            on_change=on_change,
            on_error=on_error,
        )
