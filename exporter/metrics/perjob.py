"""The source of a per-job DRS API read in the background (monitor data, DDL alarms): the seam's side of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..config import Config
from ..sources.index import Index
from ..sources.perjob import PerJobReader, PerJobSnapshot
from ..sources.projects import max_staleness
from .source import Exposed, Source

T = TypeVar("T")


def staleness_bound(config: Config, interval: float) -> float:
    """How long a job's last good data is kept: ``max_staleness``, never less than one reading can take."""
    return max(max_staleness(config), interval + config.refresh_timeout)


def health_families(snapshot: PerJobSnapshot[T], name: str, what: str) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """``huaweicloud_drs_{name}_up`` and ``…_last_success_timestamp_seconds`` of every job of ``snapshot``.

    ``what`` names the data in their help: "the job's monitor data".
    """
    up = GaugeMetricFamily(
        f"huaweicloud_drs_{name}_up", f"1 if the last reading of {what} succeeded.", labels=["job_id"]
    )
    success = GaugeMetricFamily(
        f"huaweicloud_drs_{name}_last_success_timestamp_seconds",
        f"Unix time of the reading of {what} shown (kept after a failed reading while younger than max_staleness).",
        labels=["job_id"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        if job.data is not None and job.read_at is not None:
            success.add_metric([job_id], job.read_at)
    return up, success


@dataclass(frozen=True)
class PerJobMetrics(Generic[T]):
    """A snapshot's families as a collector."""

    families: Callable[[PerJobSnapshot[T]], Iterator[Metric]]
    snapshot: PerJobSnapshot[T]

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from self.families(self.snapshot)


class PerJobSource(Generic[T]):
    """The jobs with the switch :attr:`SWITCH` on, read in the background (never waited for).

    A few series per job: encoded live with each scrape. A subclass builds its reader and names
    its families.
    """

    SWITCH = ""  # the per-job switch: a field of JobConfig, DiscoveryConfig and Config

    def __init__(
        self, reader: PerJobReader[T], default: bool, families: Callable[[PerJobSnapshot[T]], Iterator[Metric]]
    ) -> None:
        self.reader = reader
        self.default = default
        self.families = families

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest data; starts a background read of the jobs that are due."""
        jobs = {j: o.project.client for j, o in index.owners.items() if o.setting(self.SWITCH, self.default)}
        return Exposed(PerJobMetrics(self.families, self.reader.want(jobs)))

    def snapshot(self) -> PerJobSnapshot[T]:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: Source) -> None:
        """Keep what the previous configuration's source read (it depends on the project alone)."""
        if type(previous) is type(self) and isinstance(previous, PerJobSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
