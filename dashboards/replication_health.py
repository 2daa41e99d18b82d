"""The DRS replication health dashboard (issue 24): delay by side, endpoints, RPO/RTO, throughput,
DDL alarms, abnormal rows and failed jobs nearing their automatic expiry.

Built with the helpers of ``generate.py``, which lists it in ``DASHBOARDS``. Every family here is
per job (or per job and side or phase), so the queries scale with jobs. They take ``max by`` the
job's own labels: two replicas of one release export the same values, which must not add up.
Stats sum without ``or vector(0)``: an opt-in source that is off shows "No data", not a reassuring 0.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import statushistory, table
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig,
    DynamicConfigValue,
    ValueMap,
    ValueMapping,
    ValueMappingResult,
)

from alerts import rules

from .generate import (
    DS,
    NEUTRAL,
    SEL,
    ZERO_GOOD,
    base,
    dashboard,
    organize,
    query,
    ratio_bars,
    series,
    single,
    thresholds,
    variables,
)

# The health of every replication-health source: huaweicloud_drs_<source>_up{job_id} (docs/metrics.md).
SOURCES_UP = "monitor_data|rpo_rto|job_details|ddl_data|dirty_data|health_compare"
UP_WORDS: list[ValueMapping] = [
    ValueMap({"1": ValueMappingResult(text="up", color="green"), "0": ValueMappingResult(text="down", color="red")})
]


def per_job(family: str, by: str = "job_id") -> str:
    """``family`` of the selected jobs, one series per ``by`` (replicas of a release not added up)."""
    return f"max by ({by}) (huaweicloud_drs_{family}{{{SEL}}})"


ENDPOINTS = per_job("endpoint_up", "job_id, endpoint")


def up_history(title: str, description: str, expr: str, legend: str) -> Any:
    """A status history of 1 (up, green) / 0 (down, red) series."""
    return (
        base(statushistory.Panel(), title, description, "bool", 12, 8)
        .thresholds(thresholds([("red", None), ("green", 1)]))
        .mappings(UP_WORDS)
        .with_target(query(expr, legend))
    )


def failed_jobs() -> Any:
    """Failed jobs: DRS's error code, when the full phase ended, and the time left until DRS ends the job."""
    columns = {
        "job_id": "DRS job",
        "error_code": "Error code",
        "Value #B": "Ends by itself in",
        "Value #C": "Full migration completed (ago)",
    }
    panel = (
        base(
            table.Panel(),
            "Failed jobs and their automatic expiry",
            "DRS jobs in a failed status with DRS's error code (huaweicloud_drs_job_error_info; the reason text is on "
            "the exporter's status page, never in a label), the time left until DRS ends the failed job by itself "
            "(huaweicloud_drs_job_failed_expiry_timestamp_seconds − now) and how long ago the full migration "
            "completed (huaweicloud_drs_job_full_transfer_completed_timestamp_seconds).",
            "s",
            24,
            6,
        )
        .filterable(True)
        .thresholds(thresholds(NEUTRAL))
        .with_target(query(per_job("job_error_info", "job_id, error_code"), instant=True, ref="A"))
        .with_target(
            query(f"{per_job('job_failed_expiry_timestamp_seconds')} - time()", instant=True, ref="B"),
        )
        # Of the failed jobs only: the column says when their full phase ended.
        .with_target(
            query(
                f"time() - {per_job('job_full_transfer_completed_timestamp_seconds')}"
                f" and on (job_id) {per_job('job_error_info', 'job_id, error_code')}",
                instant=True,
                ref="C",
            )
        )
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(organize(["Time", "Value #A"], list(columns), columns))
        .override_by_name("Error code", [DynamicConfigValue(id_val="unit", value="none")])
    )
    return panel


def replication_health() -> Dashboard:
    """Where delay comes from, whether the endpoints are up, RPO/RTO, throughput, DDL alarms, abnormal rows."""
    d = dashboard(
        "replication",
        "DRS replication health",
        "Replication health of the selected DRS jobs from DRS's own APIs (huaweicloud-drs-exporter): delay by side "
        "and endpoint health (monitor data, opt-in), RPO/RTO of DR jobs, apply rates and phase progress, DDL alarms "
        "and abnormal rows (opt-in), scheduled comparisons (opt-in), failed jobs nearing their automatic expiry. "
        "docs/metrics.md says how to turn each source on.",
        variables(),
    )
    stats = [
        single(
            "Endpoints down",
            "Source or target databases DRS reports unhealthy (huaweicloud_drs_endpoint_up 0; monitor data on).",
            "none",
            query(f"count({ENDPOINTS} == 0) or count({ENDPOINTS}) * 0"),
            ZERO_GOOD,
        ),
        single(
            "Worst RPO",
            "The highest RPO among the selected DR jobs: how far DRS is behind the business database (red from "
            "the RPOHigh alert's threshold).",
            "s",
            query(f"max({per_job('job_rpo_seconds')})"),
            [("green", None), ("red", rules.DEFAULT.rpo_seconds)],
        ),
        single(
            "Active DDL alarms",
            "DDL alarms DRS holds for the selected jobs (huaweicloud_drs_ddl_alarms; DDL alarms on).",
            "none",
            query(f"sum({per_job('ddl_alarms')})"),
            ZERO_GOOD,
        ),
        single(
            "Failed DDL",
            "Active DDL alarms whose DDL did not apply on the target (huaweicloud_drs_ddl_failed).",
            "none",
            query(f"sum({per_job('ddl_failed')})"),
            ZERO_GOOD,
        ),
        single(
            "Abnormal rows",
            "Rows that failed to apply over the look-back window, all phases (huaweicloud_drs_dirty_rows; abnormal "
            "rows on).",
            "none",
            query(f"sum({per_job('dirty_rows', 'job_id, phase')})"),
            ZERO_GOOD,
        ),
        single(
            "Failed jobs",
            "DRS jobs in a failed status (huaweicloud_drs_job_error_info); DRS ends a failed job by itself after "
            "some days: see the table below.",
            "none",
            query(f"count({per_job('job_error_info', 'job_id, error_code')})"),
            ZERO_GOOD,
        ),
    ]
    for panel in stats:
        d = d.with_panel(panel)
    return (
        d.with_row(Row("Delay by side and endpoints"))
        .with_panel(
            series(
                "Delay by side",
                "Replication delay on the source and on the target side (huaweicloud_drs_endpoint_delay_seconds): "
                "where a job's delay comes from. Monitor data on (DR jobs: from the batched DR monitoring).",
                "s",
                query(per_job("endpoint_delay_seconds", "job_id, endpoint"), "{{job_id}} {{endpoint}}"),
            )
        )
        .with_panel(
            up_history(
                "Endpoint up",
                "Whether DRS reports the connection to the source and the target database healthy "
                "(huaweicloud_drs_endpoint_up).",
                per_job("endpoint_up", "job_id, endpoint"),
                "{{job_id}} {{endpoint}}",
            )
        )
        .with_panel(
            series(
                "RPO and RTO",
                "Disaster-recovery jobs: RPO, how far DRS is behind the business database, and RTO, how far the DR "
                "database is behind DRS (huaweicloud_drs_job_rpo_seconds, huaweicloud_drs_job_rto_seconds). The "
                "dashed line is the RPOHigh/RTOHigh alerts' threshold.",
                "s",
                query(per_job("job_rpo_seconds"), "{{job_id}} RPO", ref="A"),
                query(per_job("job_rto_seconds"), "{{job_id}} RTO", ref="B"),
                # Dashed at the RPOHigh and RTOHigh thresholds.
                line=[("green", None)]
                + [("red", float(t)) for t in sorted({rules.DEFAULT.rpo_seconds, rules.DEFAULT.rto_seconds})],
            )
        )
        .with_panel(
            series(
                "Endpoint requests per second",
                "Requests per second DRS sees at the source and at the target database "
                "(huaweicloud_drs_endpoint_requests_per_second).",
                "reqps",
                query(per_job("endpoint_requests_per_second", "job_id, endpoint"), "{{job_id}} {{endpoint}}"),
            )
        )
        .with_row(Row("Throughput and phases"))
        .with_panel(
            series(
                "Apply rate (rows)",
                "Rows per second applied to the target in the incremental phase "
                "(huaweicloud_drs_job_apply_rows_per_second; no series outside that phase).",
                "suffix: rows/s",
                query(per_job("job_apply_rows_per_second"), "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Apply rate (bytes)",
                "Bytes per second applied to the target in the incremental phase "
                "(huaweicloud_drs_job_apply_bytes_per_second).",
                "Bps",
                query(per_job("job_apply_bytes_per_second"), "{{job_id}}"),
            )
        )
        .with_panel(
            ratio_bars(
                "Phase progress",
                "Share of each phase done (structure, data, index; huaweicloud_drs_job_phase_progress_ratio). A "
                "phase not started yet has no bar.",
                query(per_job("job_phase_progress_ratio", "job_id, phase"), "{{job_id}} {{phase}}"),
            )
        )
        .with_panel(
            series(
                "Phase remaining time",
                "DRS's estimate of each phase's remaining time (huaweicloud_drs_job_phase_remaining_seconds).",
                "s",
                query(per_job("job_phase_remaining_seconds", "job_id, phase"), "{{job_id}} {{phase}}"),
            )
        )
        .with_row(Row("DDL alarms and abnormal rows"))
        .with_panel(
            series(
                "DDL alarms",
                "Active DDL alarms per job and, among them, the DDL that failed on the target "
                "(huaweicloud_drs_ddl_alarms, huaweicloud_drs_ddl_failed). Their sequence numbers, times and "
                "(on request) the DDL text are on the exporter's status page, never in Prometheus.",
                "short",
                query(per_job("ddl_alarms"), "{{job_id}} active", ref="A"),
                query(per_job("ddl_failed"), "{{job_id}} failed", ref="B"),
            ).min(0)
        )
        .with_panel(
            series(
                "Age of the latest DDL alarm",
                "Seconds since the latest active DDL alarm of each job "
                "(now − huaweicloud_drs_ddl_latest_alarm_timestamp_seconds).",
                "s",
                query(f"time() - {per_job('ddl_latest_alarm_timestamp_seconds')}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Abnormal rows",
                "Rows that failed to apply, per job and phase, counted over the configured look-back window "
                "(huaweicloud_drs_dirty_rows). The rows' SQL is never read into the exporter's metrics.",
                "short",
                query(per_job("dirty_rows", "job_id, phase"), "{{job_id}} {{phase}}"),
                w=24,
            ).min(0)
        )
        .with_row(Row("Scheduled (health) comparisons"))
        .with_panel(
            series(
                "Next scheduled comparison",
                "Time until DRS runs the job's next scheduled (health) comparison "
                "(huaweicloud_drs_compare_policy_next_run_timestamp_seconds − now; only while the policy is open; "
                "health comparisons on).",
                "s",
                query(f"{per_job('compare_policy_next_run_timestamp_seconds')} - time()", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Age of the latest scheduled comparison",
                "Seconds since the latest successful scheduled comparison of each type ended "
                "(huaweicloud_drs_health_compare_last_finished_timestamp_seconds). Their results are in the data "
                "consistency dashboard's terms: docs/metrics.md.",
                "s",
                query(
                    f"time() - {per_job('health_compare_last_finished_timestamp_seconds', 'job_id, compare_type')}",
                    "{{job_id}} {{compare_type}}",
                ),
            )
        )
        .with_row(Row("Failed jobs and health data"))
        .with_panel(failed_jobs())
        .with_panel(
            statushistory.Panel()
            .title("Health data read")
            .description(
                "1 (green) if the exporter's last read of each replication-health source worked for the job "
                "(huaweicloud_drs_<source>_up): a red row means the panels above show old or no data for it."
            )
            .datasource(DS)
            .unit("bool")
            .span(24)
            .height(8)
            .thresholds(thresholds([("red", None), ("green", 1)]))
            .mappings(UP_WORDS)
            .with_target(
                query(
                    'max by (__name__, job_id) ({__name__=~"huaweicloud_drs_(' + SOURCES_UP + f')_up", {SEL}}})',
                    "{{job_id}} {{__name__}}",
                )
            )
        )
    )
