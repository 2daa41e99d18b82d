"""The comparison source's cached rendering: per-table families in batches, reused while the results stay."""

from __future__ import annotations

from ..metrics.collector import Collects
from ..metrics.compare_metrics import comparison_families, table_families
from ..sources.comparisons import ComparisonSnapshot, TableSet
from .parts import Format, Part, encode, samples
from .sources import SourceRendering

COMPARISON_BATCH = 10_000  # per-table comparison samples encoded at a time


class ComparisonRendering(SourceRendering[ComparisonSnapshot]):
    """A snapshot's comparison families: the small ones, then the per-table ones.

    The per-table families are rendered again only when a result set changed (a new finished
    comparison): a snapshot changes at every listing, its per-table results rarely.
    """

    def __init__(self) -> None:
        super().__init__()
        # Per format: the result sets last rendered and their per-table part.
        self._table_parts: dict[tuple[str, ...], tuple[list[tuple[str, str, TableSet]], Part]] = {}

    def render(self, state: ComparisonSnapshot, families: Collects, fmt: Format) -> list[Part]:
        """The small families in one part, the per-table ones in another; none without comparison jobs."""
        if not state.jobs:
            return []
        sets = state.table_sets()
        with self._lock:
            cached = self._table_parts.get(fmt.key)
        reused = cached is not None and _same_sets(cached[0], sets)
        tables = cached[1] if cached is not None and reused else self._table_part(state, sets, fmt)
        return [Part(encode(fmt, comparison_families(state, per_table=False))), tables]

    def _table_part(self, snapshot: ComparisonSnapshot, sets: list[tuple[str, str, TableSet]], fmt: Format) -> Part:
        """The per-table families, encoded in batches (bounded memory); shared with a format whose bytes are equal."""
        blobs: list[bytes] = []
        for batches in table_families(snapshot, batch=COMPARISON_BATCH):
            for index, family in enumerate(batches):
                blob = encode(fmt, [family])
                blobs.append(blob if index == 0 else samples(blob))
        tables = Part(b"".join(blobs))
        del blobs
        with self._lock:
            for other_sets, other in self._table_parts.values():
                if _same_sets(other_sets, sets) and other.plain == tables.plain:
                    tables = other
                    break
            self._table_parts[fmt.key] = (sets, tables)
        return tables


def _same_sets(a: list[tuple[str, str, TableSet]], b: list[tuple[str, str, TableSet]]) -> bool:
    """The same result set objects for the same jobs and types."""
    return len(a) == len(b) and all(x[:2] == y[:2] and x[2] is y[2] for x, y in zip(a, b, strict=True))
