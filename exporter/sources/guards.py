"""Cardinality guards: which objects get a per-object series; aggregates always count every object."""

from __future__ import annotations

from ..config import ObjectFilter
from ..drs.progress import CompactRows, ProgressData


def apply(data: ProgressData, *, max_objects: int | None, object_filter: ObjectFilter, aggregate_only: bool) -> None:
    """Count the aggregates over every object, then keep only the objects that get a series (in place)."""
    rows = data.rows
    data.completed = rows.completed()
    data.progress_mean = rows.mean()
    if aggregate_only:
        data.databases = _databases(rows)
        data.not_exported = len(rows)
        data.rows = CompactRows()
        return
    if not object_filter.active and (max_objects is None or len(rows) <= max_objects):
        return
    kept = [row for row in rows if object_filter.keeps(row.src_db, row.src_tb)]
    if max_objects is not None:
        kept = kept[:max_objects]
    data.not_exported = len(rows) - len(kept)
    if data.not_exported:
        # The first N objects in API order are no sample of the databases: completion per source
        # database is counted over every object, as for aggregate_only.
        data.databases = _databases(rows)
    data.rows = CompactRows(kept)


def _databases(rows: CompactRows) -> dict[str, tuple[int, int]]:
    """Objects and completed objects per source database."""
    databases: dict[str, list[int]] = {}
    for row in rows:
        counts = databases.setdefault(row.src_db, [0, 0])
        counts[0] += 1
        counts[1] += row.progress >= 100
    return {db: (n, done) for db, (n, done) in databases.items()}
