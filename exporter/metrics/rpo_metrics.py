"""Metric families of the DR jobs' RPO and RTO (v3 ``batch-rpo-and-rto``), and their source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..sources.index import Index
from ..sources.projects import max_staleness
from ..sources.rpo import RpoRtoReader, RpoRtoSnapshot
from .source import Exposed, SourceContext


def rpo_rto_families(snapshot: RpoRtoSnapshot) -> Iterator[Metric]:
    """Every RPO/RTO family, in a fixed order; none at all while no DR job is read."""
    if not snapshot.jobs:
        return
    up = GaugeMetricFamily(
        "huaweicloud_drs_rpo_rto_up",
        "1 if the last reading of the DR job's RPO and RTO succeeded (its entry of batch-rpo-and-rto had no error).",
        labels=["job_id"],
    )
    success = GaugeMetricFamily(
        "huaweicloud_drs_rpo_rto_last_success_timestamp_seconds",
        "Unix time the RPO and RTO shown were read (kept after a failed reading while younger than max_staleness).",
        labels=["job_id"],
    )
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
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        data = job.data
        if data is None:
            continue
        if job.read_at is not None:
            success.add_metric([job_id], job.read_at)
        if data.rpo_seconds is not None:
            rpo.add_metric([job_id], data.rpo_seconds)
        if data.rto_seconds is not None:
            rto.add_metric([job_id], data.rto_seconds)
    yield from (up, success, rpo, rto)


@dataclass
class RpoRtoMetrics:
    """A snapshot's families as a collector."""

    snapshot: RpoRtoSnapshot

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from rpo_rto_families(self.snapshot)


class RpoRtoSource:
    """RPO and RTO of the DR jobs with ``rpo_rto`` on (the default), read in the background (never waited for).

    A few series per DR job: encoded live with each scrape.
    """

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self.default = config.rpo_rto
        interval = config.rpo_rto_refresh_interval
        # Values are kept until max_staleness, but never dropped before the next reading can have ended.
        bound = max(max_staleness(config), interval + config.refresh_timeout)
        self.reader = RpoRtoReader(interval, config.refresh_timeout, bound, on_error=context.stats.error)

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest RPO and RTO; starts a background read of the projects that are due."""
        jobs = {
            j: o.project.client
            for j, o in index.owners.items()
            if j in index.dr_jobs and o.setting("rpo_rto", self.default)
        }
        return Exposed(RpoRtoMetrics(self.reader.want(jobs)))

    def snapshot(self) -> RpoRtoSnapshot:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read (it depends on the project alone)."""
        if isinstance(previous, RpoRtoSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
