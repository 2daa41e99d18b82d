"""Alerts on DRS data consistency (comparison results), per DRS job like every other alert.

Kept apart from ``rules.py`` so that each file has one subject; :func:`rules.alert_groups` adds
their group, so they are written to ``prometheus_alerts.yaml`` and templated by the chart with the
other alerts. Windows and thresholds are :class:`rules.Settings` fields (``comparison_*``).
"""

from __future__ import annotations

from typing import Any

from .rules import Settings, _alert, labels, last, status

INCREMENTAL = "INCRE_TRANSFER_STARTED"
NOT_COMPARED = "FAILED|TIMEOUT_INTERRUPT"
IN_FLIGHT = "RUNNING|WAITING_FOR_RUNNING|FULL_DOING|INCRE_DOING"
# Table verdicts of a finished comparison: the data differs (or one side is missing); nothing to
# compare; and everything else, which the comparison could not judge (timed out, too large, errors).
DIFFERS = "inconsistent|target_missing|source_missing"
FINE = "consistent|empty"
# The scheduled ("health") comparisons that answer ComparisonMissing: row comparisons. An object or
# account comparison says nothing of whether the rows match.
HEALTH_DATA = "lines"


def latest_comparisons(s: Settings, selector: str = "") -> str:
    """Of the latest comparison of each job and type, the series matching ``selector``.

    A new comparison leaves the old one's series in the lookback window: each series' last sample
    time is compared with the newest of its job and type, as the jobs' latest status is recorded
    in ``rules.recording_groups``.
    """
    key = labels(s, "job_id", "compare_type")
    by = labels(s, "job_id", "compare_type", "compare_job_id", "status")

    def seen(sel: str) -> str:
        return f"max by ({by}) (last_over_time(timestamp(huaweicloud_drs_comparison_info{sel})[{s.lookback}:]))"

    return f"group by ({by}) (\n  {seen(selector)}\n    == on ({key}) group_left max by ({key}) ({seen('')})\n)"


def alerts(s: Settings) -> list[dict[str, Any]]:
    """Inconsistent tables, failed comparisons and jobs without a recent finished comparison."""
    job = labels(s, "job_id")
    age = s.comparison_max_age_seconds
    finished = last("huaweicloud_drs_comparison_last_finished_timestamp_seconds", s)

    def tables(selector: str) -> str:
        return f"sum by ({labels(s, 'job_id', 'compare_type')}) " + (
            f"({last(f'huaweicloud_drs_comparison_tables{{{selector}}}', s, 'compare_type', 'status')})"
        )

    objects = last('huaweicloud_drs_comparison_object_status{status="inconsistent"}', s, "object_type")
    running = latest_comparisons(s, f'{{status=~"{IN_FLIGHT}"}}')
    health = last(f'huaweicloud_drs_health_compare_last_finished_timestamp_seconds{{compare_type=~"{HEALTH_DATA}"}}', s)
    return [
        _alert(
            "TablesInconsistent",
            tables(f'status=~"{DIFFERS}"') + " > 0",
            s.comparison_inconsistent_for,
            "warning",
            "Tables differ between source and destination.",
            "The latest finished {{ $labels.compare_type }} comparison of DRS job {{ $labels.job_id }} found "
            "{{ $value }} tables inconsistent or missing on one side; the DRS data consistency dashboard lists them.",
            s,
        ),
        _alert(
            "TablesNotCompared",
            tables(f'status!~"{DIFFERS}|{FINE}"') + " > 0",
            s.comparison_inconsistent_for,
            "warning",
            "Tables of a finished comparison were not compared.",
            "The latest finished {{ $labels.compare_type }} comparison of DRS job {{ $labels.job_id }} left "
            "{{ $value }} tables uncompared (timed out, too large, failed or not reached): whether they match is "
            "unknown; the DRS data consistency dashboard lists them.",
            s,
        ),
        _alert(
            "ObjectsInconsistent",
            f"count by ({job}) ({objects})",
            s.comparison_inconsistent_for,
            "warning",
            "Object types differ between source and destination.",
            "The latest object-level comparison of DRS job {{ $labels.job_id }} found {{ $value }} object type(s) "
            "inconsistent (huaweicloud_drs_comparison_object_status names them).",
            s,
        ),
        _alert(
            "ComparisonFailed",
            latest_comparisons(s, f'{{status=~"{NOT_COMPARED}"}}'),
            s.comparison_failed_for,
            "warning",
            "A DRS comparison failed or timed out.",
            "The latest {{ $labels.compare_type }} comparison {{ $labels.compare_job_id }} of DRS job "
            "{{ $labels.job_id }} ended {{ $labels.status }}: its tables were not compared.",
            s,
        ),
        _alert(
            "ComparisonMissing",
            f"(\n  time() - {finished} > {age}\n"
            f"  or\n  max by ({job}) (last_over_time(huaweicloud_drs_comparison_up[{s.lookback}]))\n"
            f"    unless on ({job}) {finished}\n)\n"
            # A comparison under way is the answer to this alert: no page while it runs.
            f"unless on ({job}) {running}\n"
            # A current scheduled row comparison (DRS's compare policy, read with health_comparisons on)
            # answers it as well: DR jobs often have only those.
            f"unless on ({job}) time() - {health} <= {age}\n"
            f"and on ({job}) {status(s, INCREMENTAL)}",
            s.comparison_missing_for,
            "warning",
            "A replicating DRS job has no recent finished comparison.",
            "DRS job {{ $labels.job_id }} is in incremental replication, but none of its comparisons (nor a "
            f"scheduled row comparison) finished within the last {age} seconds: whether source and destination "
            "match is unknown.",
            s,
        ),
    ]
