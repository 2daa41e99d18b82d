"""The seam every data source beside progress data plugs into (see docs/architecture.md).

A source reads one DRS API area in the background (on :class:`~exporter.sources.reader.BackgroundReader`)
and, on each scrape, exposes what it has as metric families: :meth:`Source.expose` is given the
scrape's :class:`~exporter.sources.index.Index` (the jobs and their owners) and its deadline. A
source is registered in ``app.SOURCES`` with, optionally, a cached rendering; one without is
encoded live with every scrape, after the cached ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..config import Config
from ..drs.telemetry import ApiStats
from ..sources.index import Index
from ..sources.perjob import JobsSnapshot, PerJobReader
from ..sources.projects import Project, max_staleness
from ..sources.reader import ErrorCounter
from .collector import Collects


@dataclass(frozen=True)
class Exposed:
    """What a source exposes in one scrape.

    ``families`` are built fresh from ``state``: they are the reference a cached rendering must
    equal. ``state`` is the immutable state they are made of, a new object whenever they change
    (compared by identity); a source with a cached rendering sets it, the renderer keeps the
    state's bytes for as long as it lives.
    """

    families: Collects
    state: object | None = None


@dataclass(frozen=True)
class SourceContext:
    """What a source is built from."""

    config: Config
    projects: Sequence[Project]
    stats: ApiStats  # ``stats.error`` counts what no HTTP attempt counted
    on_change: Callable[[Exposed], None]  # a new state was read: the renderer renders it ahead (reader's thread)


class Source(Protocol):
    """A data source: read in the background, exposed as families on every scrape."""

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """What this scrape shows of the jobs of ``index``; waits until ``deadline`` at most."""

    def adopt(self, previous: Source) -> None:
        """Start from what ``previous`` (the same source before a reload) knows."""

    def close(self) -> None:
        """Stop background work."""


T = TypeVar("T")


class ReaderOf(Protocol[T]):
    """How a per-job reader is built: (interval, refresh_timeout, max_staleness, on_error)."""

    def __call__(
        self, interval: float, refresh_timeout: float, max_staleness: float, *, on_error: ErrorCounter | None = None
    ) -> PerJobReader[T]:
        """A reader."""


def staleness_bound(config: Config, interval: float) -> float:
    """How long a per-job source keeps its last good data: ``max_staleness``, but never less than
    one interval and reading (else good data would be dropped before the next reading can have ended)."""
    return max(max_staleness(config), interval + config.refresh_timeout)


def reading_families(
    snapshot: JobsSnapshot[T], name: str, what: str, parts: str = ""
) -> tuple[GaugeMetricFamily, GaugeMetricFamily, list[tuple[str, T]]]:
    """A per-job source's own health, ``huaweicloud_drs_<name>_up`` and ``…_last_success_timestamp_seconds``,
    filled from ``snapshot``; and the (job_id, data) of the jobs that have data, in job order."""
    up = GaugeMetricFamily(
        f"huaweicloud_drs_{name}_up",
        f"1 if the last reading of the job's {what}{parts} succeeded.",
        labels=["job_id"],
    )
    success = GaugeMetricFamily(
        f"huaweicloud_drs_{name}_last_success_timestamp_seconds",
        f"Unix time the {what} shown was read (kept after a failed reading while younger than max_staleness).",
        labels=["job_id"],
    )
    with_data = []
    for job_id, job in sorted(snapshot.jobs.items()):
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        if job.data is None:
            continue
        if job.read_at is not None:
            success.add_metric([job_id], job.read_at)
        with_data.append((job_id, job.data))
    return up, success, with_data


@dataclass
class SnapshotFamilies(Generic[T]):
    """A snapshot's families as a collector (the ``collect()`` prometheus_client's encoders expect)."""

    snapshot: JobsSnapshot[T]
    build: Callable[[JobsSnapshot[T]], Iterator[Metric]]

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from self.build(self.snapshot)


class PerJobSource(Generic[T]):
    """A source read job by job (on a :class:`~exporter.sources.perjob.PerJobReader`) for the jobs whose
    switch ``setting`` is on; a few series per job: encoded live with each scrape."""

    def __init__(
        self,
        context: SourceContext,
        reader: ReaderOf[T],
        setting: str,  # the per-job switch: a global key, a job's and a discovery's
        interval: float,
        families: Callable[[JobsSnapshot[T]], Iterator[Metric]],
    ) -> None:
        config = context.config
        bound = staleness_bound(config, interval)
        self.reader = reader(interval, config.refresh_timeout, bound, on_error=context.stats.error)
        self.setting = setting
        self.default = bool(getattr(config, setting))
        self.families = families

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest data; starts a background reading of the jobs that are due."""
        jobs = {j: o.project.client for j, o in index.owners.items() if o.setting(self.setting, self.default)}
        return Exposed(SnapshotFamilies(self.reader.want(jobs), self.families))

    def snapshot(self) -> JobsSnapshot[T]:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read (it depends on the project alone)."""
        if type(previous) is type(self) and isinstance(previous, PerJobSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
