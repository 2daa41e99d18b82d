"""What the sources of one value per job (monitor data, RPO/RTO, DDL alarms, ...) share: health families, plumbing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..config import Config
from ..sources.index import Index
from ..sources.perjob import JobsSnapshot, PerJobReader
from ..sources.projects import max_staleness
from ..sources.reader import ErrorCounter
from .source import Exposed, SourceContext

T = TypeVar("T")


class ReaderOf(Protocol[T]):
    """How a per-job reader is built: (interval, refresh_timeout, max_staleness, on_error)."""

    def __call__(
        self, interval: float, refresh_timeout: float, max_staleness: float, *, on_error: ErrorCounter | None = None
    ) -> PerJobReader[T]:
        """A reader."""


def kept_for(config: Config, interval: float) -> float:
    """How long a reader read every ``interval`` keeps a value: max_staleness, never less than one reading's span."""
    return max(max_staleness(config), interval + config.refresh_timeout)


def health_families(
    prefix: str, what: str, snapshot: JobsSnapshot[T], parts: str = ""
) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    """``<prefix>_up`` of every job and ``<prefix>_last_success_timestamp_seconds`` of those with a value shown."""
    up = GaugeMetricFamily(
        f"{prefix}_up", f"1 if the last reading of the job's {what}{parts} succeeded.", labels=["job_id"]
    )
    success = GaugeMetricFamily(
        f"{prefix}_last_success_timestamp_seconds",
        f"Unix time the {what} shown was read (kept after a failed reading while younger than max_staleness).",
        labels=["job_id"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        if job.data is not None and job.read_at is not None:
            success.add_metric([job_id], job.read_at)
    return up, success


@dataclass
class SnapshotMetrics(Generic[T]):
    """A snapshot's families as a collector."""

    snapshot: JobsSnapshot[T]
    families: Callable[[JobsSnapshot[T]], Iterator[Metric]]

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from self.families(self.snapshot)


class PerJobSource(Generic[T]):
    """A source on a :class:`PerJobReader`: the jobs with its switch on, the status page's view, reload and close.

    A subclass builds its reader and sets ``default`` (the global switch), or has :meth:`build` do
    both from the configuration (the reader keeping values for :func:`kept_for`); the default
    :meth:`expose` reads the jobs whose per-job setting :attr:`SWITCH` is on and builds
    :meth:`families` from the snapshot. A source that chooses its jobs otherwise (DR jobs only)
    overrides :meth:`expose`.
    """

    SWITCH = ""  # the per-job switch: a field of JobConfig, DiscoveryConfig and Config
    reader: PerJobReader[T]
    default: bool

    def build(self, context: SourceContext, reader: ReaderOf[T], interval: float) -> None:
        """Build the reader (read every ``interval``) and read the global switch :attr:`SWITCH`."""
        config = context.config
        self.reader = reader(interval, config.refresh_timeout, kept_for(config, interval), on_error=context.stats.error)
        self.default = bool(getattr(config, self.SWITCH))

    def families(self, snapshot: JobsSnapshot[T]) -> Iterator[Metric]:
        """The source's families from a snapshot."""
        raise NotImplementedError

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest data; starts a background read of the jobs that are due (never waits for it)."""
        jobs = {j: o.project.client for j, o in index.owners.items() if o.setting(self.SWITCH, self.default)}
        return Exposed(SnapshotMetrics(self.reader.want(jobs), self.families))

    def snapshot(self) -> JobsSnapshot[T]:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read (it depends on the project alone)."""
        if type(previous) is type(self):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
