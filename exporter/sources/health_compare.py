"""Scheduled ("health") comparisons (v5 ``health-compare-jobs``, ``compare-policy``, ``compare-progress``)
of the jobs that have them on, read in the background.

Per job and ``health_compare_refresh_interval``: the list and the policy (2 calls), the overview of
a newly finished object comparison (one call, once: its result never changes) and the progress of
each running comparison (one call each, at most one per type). On
:class:`~exporter.sources.perjob.PerJobReader` (what a failed reading leaves, and for how long).
"""

from __future__ import annotations

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.health_compare import LIST, HealthComparisons
from ..drs.health_job_client import fetch_health_comparisons
from .perjob import JobRead, JobsSnapshot, PerJobReader

JobHealthComparisons = JobRead[HealthComparisons]
HealthCompareSnapshot = JobsSnapshot[HealthComparisons]


class HealthCompareReader(PerJobReader[HealthComparisons]):
    """Keeps the health comparisons of the jobs asked for, each read again once ``interval`` has passed."""

    NAME = "drs-health-compare"
    OPERATION = LIST
    WHAT = "health comparisons"

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> HealthComparisons:
        """One job's health comparisons; an object comparison's result already read is not read again."""
        before = self._last(job_id)
        return fetch_health_comparisons(client, job_id, deadline, known=before.objects if before is not None else None)
