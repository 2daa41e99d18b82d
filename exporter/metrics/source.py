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
from typing import Any, Generic, Protocol, TypeVar

from prometheus_client.core import Metric

from ..base.deadline import Deadline
from ..config import Config
from ..drs.telemetry import ApiStats
from ..sources.index import Index
from ..sources.projects import Project
from ..sources.reader import JobsSnapshot, JobStateReader
from .collector import Collects

S = TypeVar("S", bound=JobsSnapshot[Any])


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


@dataclass
class SnapshotFamilies(Generic[S]):
    """A snapshot's families as a collector: fresh from the snapshot on each collect."""

    families: Callable[[S], Iterator[Metric]]
    snapshot: S

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from self.families(self.snapshot)


class JobStateSource(Generic[S]):
    """A source of per-job state kept by a :class:`JobStateReader`, for the jobs whose switch is on.

    ``switch`` names the per-job setting (a field of the global configuration, of a job and of
    ``discovery``); ``default`` is the global value. A few series per job: encoded live with each scrape.
    """

    def __init__(
        self, switch: str, default: bool, reader: JobStateReader[Any, S], families: Callable[[S], Iterator[Metric]]
    ) -> None:
        self.switch = switch
        self.default = default
        self.reader = reader
        self.families = families

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest state; starts a background read of the jobs that are due (never waits for it)."""
        jobs = {j: o.project.client for j, o in index.owners.items() if o.setting(self.switch, self.default)}
        return Exposed(SnapshotFamilies(self.families, self.reader.want(jobs)))

    def snapshot(self) -> S:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read (it depends on the project alone)."""
        if type(previous) is type(self) and isinstance(previous, JobStateSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
