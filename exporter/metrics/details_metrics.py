"""Metric families of why a job failed and when its full phase ended (batch-status, batch-detail), and their source."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from ..sources.details import Details, DetailsSnapshot, JobDetailsReader
from ..sources.projects import max_staleness
from .perjob import PerJobSource, health_families
from .source import SourceContext


def details_families(snapshot: DetailsSnapshot) -> Iterator[Metric]:
    """Every job-details family, in a fixed order; none at all while no job has job details on."""
    if not snapshot.jobs:
        return
    up, success = health_families(
        "huaweicloud_drs_job_details", "status and details", snapshot, " (batch-status, batch-detail)"
    )
    error = GaugeMetricFamily(
        "huaweicloud_drs_job_error_info",
        "The error code DRS reports for the job (batch-status error_code), value 1; the reason in words is on "
        "the status page.",
        labels=["job_id", "error_code"],
    )
    full_done = GaugeMetricFamily(
        "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds",
        "Unix time the job's full phase ended, as DRS reports it (batch-detail full_transfer_complete_time).",
        labels=["job_id"],
    )
    expiry = GaugeMetricFamily(
        "huaweicloud_drs_job_failed_expiry_timestamp_seconds",
        "Unix time a failed job ends by itself and can no longer be resumed (an estimate: failure time + "
        "expired_days, 14 when DRS does not say; the failure time is the job's last update_time, early if "
        "anything, or without one when this exporter first saw it failed, late and reset by a restart).",
        labels=["job_id"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        data = job.data
        if data is None:
            continue
        if data.status.error_code is not None:
            error.add_metric([job_id, data.status.error_code], 1.0)
        if data.full_transfer_completed is not None:
            full_done.add_metric([job_id], data.full_transfer_completed)
        if data.failed_expiry is not None:
            expiry.add_metric([job_id], data.failed_expiry)
    yield from (up, success, error, full_done, expiry)


class JobDetailsSource(PerJobSource[Details]):
    """Status, failure reason and phase times of the jobs with ``job_details`` on, read in the background."""

    SWITCH = "job_details"

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        interval = config.job_details_refresh_interval
        self.default = config.job_details
        # Data is kept until max_staleness, but never dropped before the next reading can have ended
        # (a reading is two calls at most: batch-status, then batch-detail).
        bound = max(max_staleness(config), interval + 2 * config.refresh_timeout)
        self.reader: JobDetailsReader = JobDetailsReader(
            interval, config.refresh_timeout, bound, on_error=context.stats.error
        )

    def families(self, snapshot: DetailsSnapshot) -> Iterator[Metric]:
        """The job-details families."""
        return details_families(snapshot)
