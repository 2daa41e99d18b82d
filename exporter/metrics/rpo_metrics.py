"""Metric families of the DR jobs' RPO and RTO (v3 ``batch-rpo-and-rto``), and their source."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..drs.rpo import RpoRto
from ..sources.index import Index
from ..sources.rpo import RpoRtoReader, RpoRtoSnapshot
from .perjob import PerJobSource, SnapshotMetrics, health_families, kept_for
from .source import Exposed, SourceContext


def rpo_rto_families(snapshot: RpoRtoSnapshot) -> Iterator[Metric]:
    """Every RPO/RTO family, in a fixed order; none at all while no DR job is read."""
    if not snapshot.jobs:
        return
    up, success = health_families("huaweicloud_drs_rpo_rto", "RPO/RTO", snapshot)
    rpo = GaugeMetricFamily(
        "huaweicloud_drs_job_rpo_seconds",
        "Recovery point objective of the DR job: delay from the business database to DRS (rpo_info.delay).",
        labels=["job_id"],
    )
    rto = GaugeMetricFamily(
        "huaweicloud_drs_job_rto_seconds",
        "Recovery time objective of the DR job: delay from DRS to the DR database (rto_info.delay).",
        labels=["job_id"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        data = job.data
        if data is None:
            continue
        if data.rpo_seconds is not None:
            rpo.add_metric([job_id], data.rpo_seconds)
        if data.rto_seconds is not None:
            rto.add_metric([job_id], data.rto_seconds)
    yield from (up, success, rpo, rto)


class RpoRtoSource(PerJobSource[RpoRto]):
    """RPO and RTO of the DR jobs with ``rpo_rto`` on (the default), read in the background (never waited for).

    A few series per DR job: encoded live with each scrape.
    """

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self.default = config.rpo_rto
        interval = config.rpo_rto_refresh_interval
        # Values are kept until max_staleness, but never dropped before the next reading can have ended.
        self.reader: RpoRtoReader = RpoRtoReader(
            interval, config.refresh_timeout, kept_for(config, interval), on_error=context.stats.error
        )

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest RPO and RTO; starts a background read of the projects that are due."""
        jobs = {
            j: o.project.client
            for j, o in index.owners.items()
            if j in index.dr_jobs and o.setting("rpo_rto", self.default)
        }
        return Exposed(SnapshotMetrics(self.reader.want(jobs), rpo_rto_families))
