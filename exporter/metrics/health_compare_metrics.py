"""Metric families of DRS's scheduled ("health") comparisons and their compare policy, and their source.

Families of their own (``huaweicloud_drs_health_compare_*``), not the on-demand comparison families
with a ``source`` label: why is in docs/metrics.md ("Scheduled (health) comparisons").
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from ..drs.health_compare import HealthComparisons
from ..sources.health_compare import HealthCompareReader, HealthCompareSnapshot
from .compare_metrics import add_run
from .perjob import PerJobSource, health_families
from .source import SourceContext

TYPE_LABELS = ["job_id", "compare_type"]


def _gauge(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"huaweicloud_drs_{name}", text, labels=labels)


def health_compare_families(snapshot: HealthCompareSnapshot) -> Iterator[Metric]:
    """Every health-comparison family, in a fixed order; none at all while no job has them on."""
    if not snapshot.jobs:
        return
    up, success = health_families(
        "huaweicloud_drs_health_compare", "health comparisons", snapshot, " (list, policy, object result, progress)"
    )
    with_data = [(job_id, job.data) for job_id, job in sorted(snapshot.jobs.items()) if job.data is not None]
    enabled = _gauge(
        "compare_policy_enabled",
        "1 if DRS runs the job's health comparisons on a schedule (compare policy OPEN), else 0 (CLOSED, NO_SUPPORT).",
        ["job_id"],
    )
    next_run = _gauge(
        "compare_policy_next_run_timestamp_seconds",
        "Next scheduled health comparison of the job (next_compare_time), as Unix time.",
        ["job_id"],
    )
    interval = _gauge(
        "compare_policy_interval_seconds",
        "Time between two scheduled health comparisons of the job (interval_hour).",
        ["job_id"],
    )
    info = _gauge(
        "health_compare_info",
        "1 for the latest health comparison of each type (object_comparison, lines, account), with its id and "
        "status as DRS reports it (RUNNING, SUCCESSFUL, FAILED, CANCELLED, TIMEOUT_INTERRUPT, ...).",
        [*TYPE_LABELS, "compare_job_id", "status"],
    )
    start = _gauge(
        "health_compare_start_timestamp_seconds",
        "Start of the latest health comparison of each type, as Unix time.",
        TYPE_LABELS,
    )
    end = _gauge(
        "health_compare_end_timestamp_seconds",
        "End of the latest health comparison of each type, as Unix time (absent while it runs).",
        TYPE_LABELS,
    )
    finished = _gauge(
        "health_compare_last_finished_timestamp_seconds",
        "End (else start) of the latest successfully finished health comparison of each type, as Unix time.",
        [*TYPE_LABELS, "compare_job_id"],
    )
    objects = _gauge(
        "health_compare_objects",
        "Objects of each type on the source and destination side in the latest finished health object comparison.",
        ["job_id", "object_type", "side"],
    )
    object_status = _gauge(
        "health_compare_object_status",
        "1 with the verdict of each object type in the latest finished health object comparison "
        "(consistent, inconsistent, comparing, unknown).",
        ["job_id", "object_type", "status"],
    )
    progress = _gauge(
        "health_compare_progress_ratio",
        "Share of the full comparison done by the running health comparison of each type (full_info.progress), 0-1.",
        TYPE_LABELS,
    )
    delay = _gauge(
        "health_compare_incremental_delay_seconds",
        "Incremental data not yet compared by the running health comparison of each type (incre_info.delay).",
        TYPE_LABELS,
    )
    rate = _gauge(
        "health_compare_rows_per_second",
        "Rows compared per second by the running health comparison of each type (incre_info.rps).",
        TYPE_LABELS,
    )
    recheck = _gauge(
        "health_compare_recheck_rows",
        "Rows with differences waiting to be checked again by the running health comparison of each type.",
        TYPE_LABELS,
    )
    for job_id, data in with_data:
        policy = data.policy
        if policy is not None:
            enabled.add_metric([job_id], 1.0 if policy.enabled else 0.0)
            if policy.enabled and policy.next_compare_time is not None:
                next_run.add_metric([job_id], policy.next_compare_time)
            if policy.interval_hours is not None:
                interval.add_metric([job_id], policy.interval_hours * 3600.0)
        _runs(job_id, data, info, start, end, finished, (progress, delay, rate, recheck))
        overview = data.objects
        if overview is not None:
            for count in overview.objects:
                for side, value in (("source", count.source), ("target", count.target)):
                    if value is not None:
                        objects.add_metric([job_id, count.object_type, side], value)
                object_status.add_metric([job_id, count.object_type, count.status], 1.0)
    yield from (up, success, enabled, next_run, interval, info, start, end, finished, objects, object_status)
    yield from (progress, delay, rate, recheck)


def _runs(
    job_id: str,
    data: HealthComparisons,
    info: GaugeMetricFamily,
    start: GaugeMetricFamily,
    end: GaugeMetricFamily,
    finished: GaugeMetricFamily,
    running: tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily],
) -> None:
    """The latest run of each type, its latest finished one, and the progress of a running one."""
    for compare_type in sorted(set(data.latest) | set(data.latest_finished)):
        key = [job_id, compare_type]
        run = data.latest.get(compare_type)
        if run is not None:
            add_run(key, run, info, start, end)
            now = data.progress.get(run.id) if run.running else None
            if now is not None:
                for family, value in zip(
                    running,
                    (now.full_ratio, now.incremental_delay_seconds, now.rows_per_second, now.recheck_rows),
                    strict=True,
                ):
                    if value is not None:
                        family.add_metric(key, value)
        done = data.latest_finished.get(compare_type)
        when = (done.end_time if done.end_time is not None else done.start_time) if done is not None else None
        if done is not None and when is not None:
            finished.add_metric([*key, done.id], when)


class HealthCompareSource(PerJobSource[HealthComparisons]):
    """Health comparisons of the jobs with ``health_comparisons`` on, read in the background (never waited for)."""

    SWITCH = "health_comparisons"

    def __init__(self, context: SourceContext) -> None:
        self.build(context, HealthCompareReader, context.config.health_compare_refresh_interval)

    def families(self, snapshot: HealthCompareSnapshot) -> Iterator[Metric]:
        """The health-comparison families."""
        return health_compare_families(snapshot)
