"""Metric families of DRS comparison results, built from a ``ComparisonSnapshot``, and their source."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..drs.compare import TABLE_STATUSES, CompareRun
from ..drs.compare_client import CompareClient
from ..sources.comparisons import ComparisonReader, ComparisonSnapshot, Guards
from ..sources.index import Index
from .source import Exposed, SourceContext

TYPE_LABELS = ["job_id", "compare_type"]
TABLE_LABELS = ["job_id", "src_db", "src_tb", "dst_db", "dst_tb"]


def comparison_families(
    snapshot: ComparisonSnapshot, *, small: bool = True, per_table: bool = True
) -> Iterator[Metric]:
    """Every comparison family, in a fixed order; none at all while no job has comparisons configured.

    The per-table families come last: ``small=False`` gives only them, ``per_table=False`` all the others
    (the per-table part changes only with a new finished comparison, so it is rendered apart).
    """
    if not snapshot.jobs:
        return
    up = GaugeMetricFamily(
        "huaweicloud_drs_comparison_up",
        "1 if the last reading of the job's comparisons (list, new results, object overview) succeeded.",
        labels=["job_id"],
    )
    checked = GaugeMetricFamily(
        "huaweicloud_drs_comparison_last_success_timestamp_seconds",
        "Unix time of the last successful listing of the job's comparisons.",
        labels=["job_id"],
    )
    info = GaugeMetricFamily(
        "huaweicloud_drs_comparison_info",
        "1 for the latest comparison of each type (lines: row counts, contents: values, objects: object level), "
        "with its id and status as DRS reports it (RUNNING, SUCCESSFUL, FAILED, CANCELLED, TIMEOUT_INTERRUPT, ...).",
        labels=[*TYPE_LABELS, "compare_job_id", "status"],
    )
    start = GaugeMetricFamily(
        "huaweicloud_drs_comparison_start_timestamp_seconds",
        "Start of the latest comparison of each type, as Unix time.",
        labels=TYPE_LABELS,
    )
    end = GaugeMetricFamily(
        "huaweicloud_drs_comparison_end_timestamp_seconds",
        "End of the latest comparison of each type, as Unix time (absent while it runs).",
        labels=TYPE_LABELS,
    )
    finished = GaugeMetricFamily(
        "huaweicloud_drs_comparison_last_finished_timestamp_seconds",
        "End (else start) of the latest successfully finished comparison of each type, whose results the "
        "per-table series show, as Unix time.",
        labels=[*TYPE_LABELS, "compare_job_id"],
    )
    tables = GaugeMetricFamily(
        "huaweicloud_drs_comparison_tables",
        "Tables per status in the latest finished comparison of each type; counts every table, whatever gets a "
        "per-table series.",
        labels=[*TYPE_LABELS, "status"],
    )
    not_exported = GaugeMetricFamily(
        "huaweicloud_drs_comparison_tables_not_exported",
        "Tables of the latest finished comparison without per-table series: filtered out, over "
        "max_objects_per_key, or aggregate_only.",
        labels=TYPE_LABELS,
    )
    objects = GaugeMetricFamily(
        "huaweicloud_drs_comparison_objects",
        "Objects of each type on the source and destination side in the latest object-level comparison.",
        labels=["job_id", "object_type", "side"],
    )
    object_status = GaugeMetricFamily(
        "huaweicloud_drs_comparison_object_status",
        "1 with the verdict of each object type in the latest object-level comparison "
        "(consistent, inconsistent, comparing, unknown).",
        labels=["job_id", "object_type", "status"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        up.add_metric([job_id], 1.0 if job.up else 0.0)
        if job.checked_at is not None:
            checked.add_metric([job_id], job.checked_at)
        for compare_type, state in sorted(job.types.items()):
            key = [job_id, compare_type]
            run = state.latest
            if run is not None:
                add_run(key, run, info, start, end)
            done = state.finished
            when = (done.end_time if done.end_time is not None else done.start_time) if done is not None else None
            if done is not None and when is not None:
                finished.add_metric([*key, done.id], when)
            if state.tables is None:
                continue
            for status in TABLE_STATUSES:
                tables.add_metric([*key, status], state.tables.counts.get(status, 0))
            not_exported.add_metric(key, state.tables.not_exported)
        overview = job.objects
        if overview is not None:
            key = [job_id, "objects"]
            info.add_metric([*key, overview.compare_job_id, overview.status], 1.0)
            if overview.start_time is not None:
                start.add_metric(key, overview.start_time)
            for count in overview.objects:
                for side, value in (("source", count.source), ("target", count.target)):
                    if value is not None:
                        objects.add_metric([job_id, count.object_type, side], value)
                object_status.add_metric([job_id, count.object_type, count.status], 1.0)
    if small:
        yield from (up, checked, info, start, end, finished, tables, not_exported, objects, object_status)
    if per_table:
        for batches in table_families(snapshot, batch=None):
            yield from batches


def add_run(
    key: list[str], run: CompareRun, info: GaugeMetricFamily, start: GaugeMetricFamily, end: GaugeMetricFamily
) -> None:
    """A comparison run's samples: 1 with its id and status, its start, and its end once it has one."""
    info.add_metric([*key, run.id, run.status], 1.0)
    if run.start_time is not None:
        start.add_metric(key, run.start_time)
    if run.end_time is not None:
        end.add_metric(key, run.end_time)


_PER_TABLE = (
    (
        "huaweicloud_drs_comparison_source_rows",
        "Rows of the source table in the latest finished row comparison.",
        TABLE_LABELS,
    ),
    (
        "huaweicloud_drs_comparison_target_rows",
        "Rows of the destination table in the latest finished row comparison.",
        TABLE_LABELS,
    ),
    (
        "huaweicloud_drs_comparison_table_status",
        "1 with the table's verdict in the latest finished comparison of each type: " + ", ".join(TABLE_STATUSES) + ".",
        [*TYPE_LABELS, "src_db", "src_tb", "dst_db", "dst_tb", "status"],
    ),
)


def _samples(snapshot: ComparisonSnapshot, which: int) -> Iterator[tuple[list[str], float]]:
    """Labels and value of every sample of per-table family ``which``, in exposition order."""
    for job_id, compare_type, tables in snapshot.table_sets():
        if which < 2 and compare_type != "lines":
            continue
        for row in tables:
            names = [row.src_db, row.src_tb, row.dst_db, row.dst_tb]
            if which == 2:
                yield [job_id, compare_type, *names, row.status], 1.0
                continue
            number = row.source_rows if which == 0 else row.target_rows
            if not math.isnan(number):
                yield [job_id, *names], number


def table_families(snapshot: ComparisonSnapshot, *, batch: int | None) -> Iterator[Iterator[GaugeMetricFamily]]:
    """The per-table families, each as families of at most ``batch`` samples (one family when None).

    Rendering 100k tables at once holds a sample object per table; in batches, memory stays bounded.
    """
    for which, (name, text, labels) in enumerate(_PER_TABLE):
        yield _batches(snapshot, which, name, text, labels, batch)


def _batches(
    snapshot: ComparisonSnapshot, which: int, name: str, text: str, labels: list[str], batch: int | None
) -> Iterator[GaugeMetricFamily]:
    family = GaugeMetricFamily(name, text, labels=labels)
    yielded = False
    for count, (values, number) in enumerate(_samples(snapshot, which), start=1):
        family.add_metric(values, number)
        if batch is not None and count % batch == 0:
            yield family
            yielded = True
            family = GaugeMetricFamily(name, text, labels=labels)
    if family.samples or not yielded:  # an empty family still has its header
        yield family


@dataclass
class ComparisonMetrics:
    """A snapshot's families as a collector (the ``collect()`` prometheus_client's encoders expect)."""

    snapshot: ComparisonSnapshot

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the snapshot."""
        yield from comparison_families(self.snapshot)


class ComparisonSource:
    """DRS comparison results of the jobs with ``comparisons`` on, read in the background (never waited for)."""

    def __init__(self, context: SourceContext) -> None:
        config = context.config
        self.default = config.comparisons
        self.clients = {
            project: CompareClient(project.client, max_pages=config.max_pages) for project in context.projects
        }
        self.projects = context.projects
        self.reader = ComparisonReader(
            config.compare_refresh_interval,
            config.refresh_timeout,
            Guards(config.max_objects_per_key, config.object_filter),
            on_change=lambda snapshot: context.on_change(self._exposed(snapshot)),
            on_error=context.stats.error,
        )

    @staticmethod
    def _exposed(snapshot: ComparisonSnapshot) -> Exposed:
        return Exposed(ComparisonMetrics(snapshot), snapshot)

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """The latest comparison state; starts a background read of the jobs whose listing is due."""
        wanted = {
            job_id: (self.clients[project], owner.aggregate_only)
            for project in self.projects
            for job_id, owner in index.jobs(project)
            if owner.setting("comparisons", self.default)
        }
        return self._exposed(self.reader.want(wanted))

    def snapshot(self) -> ComparisonSnapshot:
        """The latest state (never waits)."""
        return self.reader.snapshot()

    def adopt(self, previous: object) -> None:
        """Nothing is kept (see :class:`~exporter.sources.comparisons.ComparisonReader`): read again."""
        if isinstance(previous, ComparisonSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        """Stop the background reads."""
        self.reader.close()
