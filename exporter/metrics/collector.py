"""Metric families built fresh, on every scrape, from cached snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from .. import __version__
from ..base.sharding import Shard
from ..drs.telemetry import ApiStats, ReloadStatus
from ..sources.cache import Snapshot

KEY_LABELS = ["job_id", "object_type"]
OBJECT_LABELS = [*KEY_LABELS, "src_db", "src_tb", "dst_db", "dst_tb"]
# Where progress_families puts the per-object family: the renderer finds it there to rebuild only
# its values when a key's objects are unchanged (see exposition.KeyRendering).
PER_OBJECT_FAMILY = 0
OBJECT_FAMILY = "huaweicloud_drs_object_progress_ratio"  # its name (render/lines.py writes its lines)


def _cached(ttl: float) -> str:
    return f" Cached for up to {ttl:g}s." if ttl > 0 else ""


def progress_families(snapshots: Iterable[Snapshot], ttl: float, *, objects_rows: bool = True) -> Iterator[Metric]:
    """Per-key families: object progress, counts, timestamps and refresh health.

    ``objects_rows=False`` leaves the per-object family (at PER_OBJECT_FAMILY) without samples.
    """
    note = _cached(ttl)
    ratio = GaugeMetricFamily(
        OBJECT_FAMILY,
        "Migration progress of one object, the API's progress field (percent) divided by 100." + note,
        labels=OBJECT_LABELS,
    )
    objects = GaugeMetricFamily(
        "huaweicloud_drs_objects", "Objects of the job and type, the API's count field." + note, labels=KEY_LABELS
    )
    listed = GaugeMetricFamily(
        "huaweicloud_drs_objects_listed",
        "Objects of the job and type received in the last listing (distinct rows, invalid ones included); "
        "below huaweicloud_drs_objects when paging ended early." + note,
        labels=KEY_LABELS,
    )
    completed = GaugeMetricFamily(
        "huaweicloud_drs_objects_completed", "Listed objects whose progress is 100 percent." + note, labels=KEY_LABELS
    )
    mean = GaugeMetricFamily(
        "huaweicloud_drs_objects_progress_ratio_mean",
        "Mean progress of the listed valid objects of the job and type, 0-1, counted before object filters, "
        "max_objects_per_key and aggregate_only." + note,
        labels=KEY_LABELS,
    )
    skipped = GaugeMetricFamily(
        "huaweicloud_drs_skipped_rows",
        "Rows of the last refresh left out because a field was invalid (for example progress missing)." + note,
        labels=KEY_LABELS,
    )
    data_ts = GaugeMetricFamily(
        "huaweicloud_drs_progress_data_timestamp_seconds",
        "When DRS generated the progress data, the API's create_time field, as Unix time." + note,
        labels=KEY_LABELS,
    )
    up = GaugeMetricFamily(
        "huaweicloud_drs_up", "1 if the last refresh of this job and type succeeded, else 0." + note, labels=KEY_LABELS
    )
    last_success = GaugeMetricFamily(
        "huaweicloud_drs_last_success_timestamp_seconds",
        "Unix time of the last successful refresh of this job and type.",
        labels=KEY_LABELS,
    )
    duration = GaugeMetricFamily(
        "huaweicloud_drs_collect_duration_seconds",
        "Duration of the last refresh of this job and type, all pages included.",
        labels=KEY_LABELS,
    )
    not_exported = GaugeMetricFamily(
        "huaweicloud_drs_objects_not_exported",
        "Listed objects without a per-object series: filtered out, over max_objects_per_key, or aggregate_only." + note,
        labels=KEY_LABELS,
    )
    db_objects = GaugeMetricFamily(
        "huaweicloud_drs_database_objects",
        "Listed objects per source database, for jobs whose objects are not all exported (aggregate_only, "
        "max_objects_per_key, object_filters)." + note,
        labels=[*KEY_LABELS, "src_db"],
    )
    db_completed = GaugeMetricFamily(
        "huaweicloud_drs_database_objects_completed",
        "Listed objects at 100 percent per source database, for jobs whose objects are not all exported "
        "(aggregate_only, max_objects_per_key, object_filters)." + note,
        labels=[*KEY_LABELS, "src_db"],
    )
    error = GaugeMetricFamily(
        "huaweicloud_drs_refresh_error_info",
        "1 with the error code of the last refresh of this job and type, while it failed "
        "(the API's code, or the exporter's like timeout or invalid_response)." + note,
        labels=[*KEY_LABELS, "error_code"],
    )
    for snap in snapshots:
        key = list(snap.key)
        job_id, object_type = snap.key
        up.add_metric(key, 1.0 if snap.up else 0.0)
        duration.add_metric(key, snap.duration)
        if snap.last_success is not None:
            last_success.add_metric(key, snap.last_success)
        if snap.error_code is not None:
            error.add_metric([*key, snap.error_code], 1.0)
        data = snap.data
        if data is None:
            continue
        for row in data.rows if objects_rows else ():
            ratio.add_metric([job_id, object_type, row.src_db, row.src_tb, row.dst_db, row.dst_tb], row.progress / 100)
        objects.add_metric(key, data.count)
        listed.add_metric(key, data.listed if data.listed is not None else len(data.rows) + data.skipped_rows)
        completed.add_metric(key, data.completed if data.completed is not None else data.rows.completed())
        not_exported.add_metric(key, data.not_exported)
        progress_mean = data.progress_mean if data.progress_mean is not None else data.rows.mean()
        if progress_mean is not None:
            mean.add_metric(key, progress_mean / 100)
        for db, (n, done) in sorted((data.databases or {}).items()):
            db_objects.add_metric([*key, db], n)
            db_completed.add_metric([*key, db], done)
        skipped.add_metric(key, data.skipped_rows)
        if data.create_time is not None:
            data_ts.add_metric(key, data.create_time)
    families = [objects, listed, completed, skipped, data_ts, up, last_success, duration, error, not_exported]
    families.insert(PER_OBJECT_FAMILY, ratio)
    yield from families
    yield from (db_objects, db_completed, mean)


class Collects(Protocol):
    """Anything with the ``collect()`` of a prometheus_client collector."""

    def collect(self) -> Iterator[Metric]:
        """Metric families."""


@dataclass
class ShardStatus:
    """This process's shard and how many jobs it owns as of the last scrape's index."""

    shard: Shard
    jobs: int

    def collect(self) -> Iterator[Metric]:
        """The shard info (its labels let dashboards show each job's shard), the shard count and the jobs owned."""
        info = InfoMetricFamily(
            "huaweicloud_drs_shard",
            "This exporter's shard of the jobs (a job belongs to shard crc32(job_id) mod total_shards); "
            "0 of 1 without sharding.",
        )
        info.add_metric([], {"shard": str(self.shard.index), "total_shards": str(self.shard.total)})
        total = GaugeMetricFamily(
            "huaweicloud_drs_shards", "How many exporter processes share the jobs (total_shards; 1 without sharding)."
        )
        total.add_metric([], self.shard.total)
        jobs = GaugeMetricFamily(
            "huaweicloud_drs_shard_jobs", "DRS jobs this shard owns (configured and discovered) as of the last scrape."
        )
        jobs.add_metric([], self.jobs)
        yield from (info, total, jobs)


@dataclass
class SelfMetrics:
    """The exporter's own metrics, built live on every scrape."""

    stats: ApiStats
    refreshes: int
    timeouts: int
    stale_serves: int = 0
    reload: ReloadStatus | None = None
    shard: ShardStatus | None = None

    def collect(self) -> Iterator[Metric]:
        """API counters, refresh counters, reload status and build info."""
        yield from self.stats.collect()
        if self.reload is not None:
            yield from self.reload.collect()
        if self.shard is not None:
            yield from self.shard.collect()
        refreshes = CounterMetricFamily(
            "huaweicloud_drs_refreshes", "Refreshes of a job and type from the API (all pages), failed ones included."
        )
        refreshes.add_metric([], self.refreshes)
        yield refreshes
        timeouts = CounterMetricFamily(
            "huaweicloud_drs_scrape_timeouts",
            "Job and type pairs reported down because their refresh did not finish within a scrape's budget.",
        )
        timeouts.add_metric([], self.timeouts)
        yield timeouts
        stale = CounterMetricFamily(
            "huaweicloud_drs_stale_serves",
            "Job and type pairs served with their last good result because a refresh outlasted a scrape's budget "
            "(within max_staleness).",
        )
        stale.add_metric([], self.stale_serves)
        yield stale
        info = InfoMetricFamily("huaweicloud_drs_exporter_build", "Version of the exporter.")
        info.add_metric([], {"version": __version__})
        yield info


@dataclass
class ScrapeView:
    """Everything one scrape exposes, as fresh families (the reference for the cached rendering).

    Has the ``collect()`` that prometheus_client's encoders expect of a registry.
    """

    snapshots: list[Snapshot]
    ttl: float
    live: Collects  # the exporter's own metrics, last
    sources: Sequence[Collects] = ()  # the sources' families, in the renderer's order (cached ones first)

    def collect(self) -> Iterator[Metric]:
        """Every family, built now."""
        yield from progress_families(self.snapshots, self.ttl)
        for source in self.sources:
            yield from source.collect()
        yield from self.live.collect()
