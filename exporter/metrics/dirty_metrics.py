"""Metric families of DRS abnormal ("dirty") rows, and their source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..drs.dirty import DirtyRows
from ..sources.dirty_rows import DirtyReader, DirtySnapshot
from ..sources.index import Index
from ..sources.projects import max_staleness
from .source import Exposed, SourceContext

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
    up = GaugeMetricFamily(
        "huaweicloud_drs_dirty_data_up",
        "1 if the last reading of the job's abnormal rows succeeded.",
        labels=["job_id"],
    )
    success = GaugeMetricFamily(
        "huaweicloud_drs_dirty_data_last_success_timestamp_seconds",
        "Unix time the abnormal rows shown were read (kept after a failed reading while younger than max_staleness).",
        labels=["job_id"],
    )
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
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        if job.data is None:
            continue
        if job.read_at is not None:
            success.add_metric([job_id], job.read_at)
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


class DirtySource:
    """Abnormal rows of the jobs with ``dirty_rows`` on, read in the background (never waited for).

    A few series per job (and, with ``dirty_rows_per_table``, at most ``dirty_rows_max_tables``
    per job and phase): encoded live with each scrape.
    """

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self.default = config.dirty_rows
        self.max_tables = config.dirty_rows_max_tables
        interval = config.dirty_rows_refresh_interval
        # Data is kept until max_staleness, but never dropped before the next reading can have ended.
        bound = max(max_staleness(config), interval + config.refresh_timeout)
        self.settings = (config.dirty_rows_window, config.dirty_rows_per_table, config.dirty_rows_max_pages)
        self.reader = DirtyReader(
            interval,
            config.refresh_timeout,
            bound,
            window=config.dirty_rows_window,
            per_table=config.dirty_rows_per_table,
            max_pages=config.dirty_rows_max_pages,
            on_error=context.stats.error,
        )

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest abnormal rows; starts a background read of the jobs that are due."""
        jobs = {j: o.project.client for j, o in index.owners.items() if o.setting("dirty_rows", self.default)}
        return Exposed(DirtyMetrics(self.reader.want(jobs), self.max_tables))

    def snapshot(self) -> DirtySnapshot:
        """The latest state (never waits): the status page's."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Keep what the previous configuration's source read, unless what a read asks for changed."""
        if isinstance(previous, DirtySource) and previous.settings == self.settings:
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
