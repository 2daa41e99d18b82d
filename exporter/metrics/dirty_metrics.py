"""Metric families of DRS abnormal ("dirty") rows, and their source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from ..drs.dirty import DirtyRows
from ..sources.dirty_rows import DirtyReader, DirtySnapshot, JobDirtyRows
from .perjob import PerJobSource, health_families, kept_for
from .source import SourceContext

PHASE_LABELS = ["job_id", "phase"]


def table_series(rows: DirtyRows, max_tables: int) -> tuple[list[tuple[str, str, int]], int]:
    """``(src_db, src_tb, rows)`` of the tables with the most rows, at most ``max_tables``; and how many are left out.

    A schema goes into ``src_tb`` (``schema.table``); tables that end up with the same labels are added up.
    """
    summed: dict[tuple[str, str], int] = {}
    for t in rows.tables or ():
        key = (t.db_name, f"{t.schema_name}.{t.table_name}" if t.schema_name else t.table_name)
        summed[key] = summed.get(key, 0) + t.rows
    ordered = sorted(summed.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(db, tb, n) for (db, tb), n in ordered[:max_tables]], max(0, len(ordered) - max_tables)


def dirty_families(snapshot: DirtySnapshot, max_tables: int) -> Iterator[Metric]:
    """Every abnormal-rows family, in a fixed order; none at all while no job has ``dirty_rows`` on."""
    if not snapshot.jobs:
        return
    up, success = health_families("huaweicloud_drs_dirty_data", "abnormal rows", snapshot)
    count = GaugeMetricFamily(
        "huaweicloud_drs_dirty_rows",
        "Rows DRS failed to apply in the job's phase within the last dirty_rows_window seconds, as DRS counts them.",
        labels=PHASE_LABELS,
    )
    capped = GaugeMetricFamily(
        "huaweicloud_drs_dirty_rows_capped",
        "1 if listing the phase's abnormal rows stopped at dirty_rows_max_pages: the per-table series cover only "
        "the rows read, and huaweicloud_drs_dirty_rows too is a lower bound when DRS sent no count.",
        labels=PHASE_LABELS,
    )
    tables = GaugeMetricFamily(
        "huaweicloud_drs_table_dirty_rows",
        "Abnormal rows per source table in the window (dirty_rows_per_table; at most dirty_rows_max_tables tables).",
        labels=[*PHASE_LABELS, "src_db", "src_tb"],
    )
    not_exported = GaugeMetricFamily(
        "huaweicloud_drs_table_dirty_rows_not_exported",
        "Tables with abnormal rows in the window but no huaweicloud_drs_table_dirty_rows series "
        "(over dirty_rows_max_tables).",
        labels=PHASE_LABELS,
    )
    per_table = False
    for job_id, job in sorted(snapshot.jobs.items()):
        if job.data is None:
            continue
        for rows in job.data.phases:
            key = [job_id, rows.phase]
            count.add_metric(key, rows.count)
            capped.add_metric(key, 1.0 if rows.capped else 0.0)
            if rows.tables is None:
                continue
            per_table = True
            kept, left = table_series(rows, max_tables)
            for db, tb, n in kept:
                tables.add_metric([*key, db, tb], n)
            not_exported.add_metric(key, left)
    yield from (up, success, count, capped)
    if per_table:
        yield from (tables, not_exported)


@dataclass
class DirtyMetrics:
    """A snapshot's families as a collector."""

    snapshot: DirtySnapshot
    max_tables: int

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from dirty_families(self.snapshot, self.max_tables)


class DirtySource(PerJobSource[JobDirtyRows]):
    """Abnormal rows of the jobs with ``dirty_rows`` on, read in the background (never waited for).

    A few series per job (and, with ``dirty_rows_per_table``, at most ``dirty_rows_max_tables``
    per job and phase): encoded live with each scrape.
    """

    SWITCH = "dirty_rows"

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self.default = config.dirty_rows
        self.max_tables = config.dirty_rows_max_tables
        interval = config.dirty_rows_refresh_interval
        self.settings = (config.dirty_rows_window, config.dirty_rows_per_table, config.dirty_rows_max_pages)
        self.reader: DirtyReader = DirtyReader(
            interval,
            config.refresh_timeout,
            kept_for(config, interval),
            window=config.dirty_rows_window,
            per_table=config.dirty_rows_per_table,
            max_pages=config.dirty_rows_max_pages,
            on_error=context.stats.error,
        )

    def families(self, snapshot: DirtySnapshot) -> Iterator[Metric]:
        """The abnormal-rows families."""
        return dirty_families(snapshot, self.max_tables)

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read, unless what a read asks for changed."""
        if isinstance(previous, DirtySource) and previous.settings == self.settings:
            super().adopt(previous)
