"""The seam every data source beside progress data plugs into (see docs/architecture.md).

A source reads one DRS API area in the background (on :class:`~exporter.sources.reader.BackgroundReader`)
and, on each scrape, exposes what it has as metric families: :meth:`Source.expose` is given the
scrape's :class:`~exporter.sources.index.Index` (the jobs and their owners) and its deadline. A
source is registered in ``app.SOURCES`` with, optionally, a cached rendering; one without is
encoded live with every scrape, after the cached ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..base.deadline import Deadline
from ..config import Config
from ..drs.telemetry import ApiStats
from ..sources.index import Index
from ..sources.projects import Project
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
