"""Alerts on DRS data consistency (comparison results), written by ``python -m alerts.rules`` with the others.

Kept apart from ``rules.py`` so that each file has one subject; ``rules.files()`` adds
``consistency_alerts.yaml``, which the Helm chart ships like the other rule files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

BY_JOB = "job, instance, job_id"
NAME = "consistency_alerts.yaml"


@dataclass(frozen=True)
class ConsistencySettings:
    """Durations and the comparison age of the consistency alerts."""

    inconsistent_for: str = "5m"
    failed_for: str = "5m"
    # A job in incremental replication should have a finished row comparison at most this old.
    max_comparison_age_seconds: int = 7 * 86400
    missing_for: str = "1h"


DEFAULT = ConsistencySettings()


def alerting_rules(alert: Callable[..., dict[str, Any]], s: ConsistencySettings = DEFAULT) -> dict[str, Any]:
    """The consistency alerts; ``alert`` builds one alert as ``rules._alert`` does, settings bound."""
    age = s.max_comparison_age_seconds
    finished = "huaweicloud_drs_comparison_last_finished_timestamp_seconds"
    return {
        "groups": [
            {
                "name": "huaweicloud-drs.consistency",
                "rules": [
                    alert(
                        "HuaweiCloudDRSTablesInconsistent",
                        f"sum by ({BY_JOB}, compare_type) "
                        '(huaweicloud_drs_comparison_tables{status="inconsistent"}) > 0',
                        s.inconsistent_for,
                        "warning",
                        "Tables differ between source and destination.",
                        "The latest finished {{ $labels.compare_type }} comparison of DRS job {{ $labels.job_id }} "
                        "found {{ $value }} inconsistent tables (exporter {{ $labels.instance }}); see the DRS data "
                        "consistency dashboard for which ones.",
                    ),
                    alert(
                        "HuaweiCloudDRSComparisonFailed",
                        'huaweicloud_drs_comparison_info{status=~"FAILED|TIMEOUT_INTERRUPT"} == 1',
                        s.failed_for,
                        "warning",
                        "A DRS comparison failed or timed out.",
                        "The latest {{ $labels.compare_type }} comparison {{ $labels.compare_job_id }} of DRS job "
                        "{{ $labels.job_id }} ended {{ $labels.status }}: its tables were not compared.",
                    ),
                    alert(
                        "HuaweiCloudDRSComparisonMissing",
                        f"(\n  time() - max by ({BY_JOB}) ({finished}) > {age}\n"
                        f"  or\n  max by ({BY_JOB}) (huaweicloud_drs_comparison_up)\n"
                        f"    unless on ({BY_JOB}) max by ({BY_JOB}) ({finished})\n)\n"
                        f"and on ({BY_JOB})\n"
                        f'max by ({BY_JOB}) (huaweicloud_drs_job_info{{status="INCRE_TRANSFER_STARTED"}})',
                        s.missing_for,
                        "warning",
                        "A replicating DRS job has no recent finished comparison.",
                        "DRS job {{ $labels.job_id }} is in incremental replication, but none of its comparisons "
                        f"finished within the last {age} seconds (exporter {{{{ $labels.instance }}}}): whether "
                        "source and destination match is unknown.",
                    ),
                ],
            }
        ]
    }


def fast(seconds: int = 20) -> ConsistencySettings:
    """Settings with the durations shortened, for end-to-end tests."""
    short = f"{seconds}s"
    return replace(DEFAULT, inconsistent_for=short, failed_for=short, missing_for=short)
