"""The DRS data consistency dashboard: comparison status and age per job, problem tables, tables per status.

Built with the helpers of ``generate.py``, which lists it in ``DASHBOARDS``. Per-table series are
read only by instant queries bounded to the :data:`ROWS` tables with the largest row difference,
like the object tables of the job detail, so the dashboard stays fast at 100k tables.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig, DynamicConfigValue

from alerts.cutover import BLOCKED, READY, REASONS

from .generate import (
    BLOCKS_WORDS,
    COLORED_TEXT,
    NEUTRAL,
    READY_WORDS,
    ROWS,
    SEL,
    ZERO_GOOD,
    base,
    dashboard,
    organize,
    query,
    series,
    single,
    thresholds,
    variables,
)

TABLE = "job, job_id, src_db, src_tb, dst_db, dst_tb"
TABLE_NAMES = {
    "src_db": "Source database",
    "src_tb": "Source table",
    "dst_db": "Target database",
    "dst_tb": "Target table",
}
# Each series taken once (max by its labels but instance) before anything is summed, counted or
# matched: during a rollout, or with replicas, two targets export the same table, and matching
# their row counts on the table alone would be many-to-many.
PROBLEM = (
    f"max by ({TABLE}, compare_type, status) "
    f'(huaweicloud_drs_comparison_table_status{{{SEL}, status!~"consistent|comparing|waiting"}})'
)
SOURCE = f"max by ({TABLE}) (huaweicloud_drs_comparison_source_rows{{{SEL}}})"
TARGET = f"max by ({TABLE}) (huaweicloud_drs_comparison_target_rows{{{SEL}}})"


def tables(matchers: str = "") -> str:
    """Tables per job, type and status (huaweicloud_drs_comparison_tables with ``matchers``), each once."""
    return f"max by (job, job_id, compare_type, status) (huaweicloud_drs_comparison_tables{{{SEL}{matchers}}})"


# The tables not consistent with the largest row difference first (value comparisons and tables
# without row counts rank 0): the same bounded set for every column of the table.
WORST = f"topk({ROWS}, abs({SOURCE} - {TARGET}) * on ({TABLE}) group_right {PROBLEM} or {PROBLEM} * 0)"
FAILED = 'status=~"FAILED|TIMEOUT_INTERRUPT"'
INCONSISTENT = ', status="inconsistent"'
NOT_COMPARED = ', status!~"consistent|inconsistent|comparing|waiting"'


def _table(title: str, description: str, targets: list[Any], columns: dict[str, str], *, h: int) -> Any:
    """A table of instant queries merged on their labels, columns named and ordered as given."""
    panel = base(table.Panel(), title, description, "none", 24, h).filterable(True).thresholds(thresholds(NEUTRAL))
    for target in targets:
        panel = panel.with_target(target)
    hidden = ["Time", "__name__", "job", "instance", "namespace", "pod", "cluster"]
    hidden += [name for name in ("Value", "Value #A", "compare_type") if name not in columns]
    return panel.with_transformation(DataTransformerConfig(id_val="merge", options={})).with_transformation(
        organize(hidden, list(columns), columns)
    )


def readiness() -> Any:
    """One row per job: ready for cut-over or not, and a column per reason saying whether it blocks."""
    verdicts = (
        f'label_replace(max by (job_id) ({READY}{{{SEL}}}), "reason", "ready", "", "")'
        f"\nor max by (job_id, reason) ({BLOCKED}{{{SEL}}})"
    )
    panel = (
        base(
            table.Panel(),
            "Cut-over readiness",
            "Per DRS job with comparisons on: ready for cut-over (job_id:huaweicloud_drs_cutover_ready:bool), and "
            "which condition blocks it (job_id_reason:huaweicloud_drs_cutover_blocked:bool). Ready means: incremental "
            "replication, full migration complete, delay low for the rules' window, latest row and value comparisons "
            "SUCCESSFUL, recent and all tables consistent or empty, no inconsistent object type, no DDL alarm or "
            "abnormal rows. It cannot see application-level checks, sequences, triggers or users.",
            "none",
            24,
            6,
        )
        .filterable(True)
        .thresholds(thresholds(NEUTRAL))
        .with_target(query(verdicts, instant=True))
        # One row per job, one column per reason (and "ready").
        .with_transformation(
            DataTransformerConfig(
                id_val="groupingToMatrix",
                options={"columnField": "reason", "rowField": "job_id", "valueField": "Value"},
            )
        )
        .with_transformation(
            organize([], ["job_id\\reason", "ready", *REASONS], {"job_id\\reason": "DRS job", "ready": "Ready"})
        )
        .override_by_name(
            "Ready",
            [
                DynamicConfigValue(id_val="mappings", value=READY_WORDS),
                DynamicConfigValue(id_val="custom.cellOptions", value=COLORED_TEXT),
            ],
        )
    )
    for reason in REASONS:
        panel = panel.override_by_name(
            reason,
            [
                DynamicConfigValue(id_val="mappings", value=BLOCKS_WORDS),
                DynamicConfigValue(id_val="custom.cellOptions", value=COLORED_TEXT),
            ],
        )
    return panel


def consistency() -> Dashboard:
    """Comparison status and age per job, inconsistent and uncomparable tables, tables per status over time."""
    d = dashboard(
        "consistency",
        "DRS data consistency",
        "DRS comparison results (row counts and values per table) of the selected jobs, from huaweicloud-drs-exporter.",
        variables(),
    )
    stats = [
        single(
            "Jobs with inconsistent tables",
            "DRS jobs whose latest finished comparison found tables that differ.",
            "none",
            query(f"count(max by (job_id) ({tables(INCONSISTENT)}) > 0) or vector(0)"),
            ZERO_GOOD,
            w=6,
        ),
        single(
            "Inconsistent tables",
            "Tables that differ in the latest finished comparisons of the selected jobs (row and value).",
            "none",
            query(f"sum({tables(INCONSISTENT)}) or vector(0)"),
            ZERO_GOOD,
            w=6,
        ),
        single(
            "Comparisons failed",
            "Latest comparisons that ended FAILED or TIMEOUT_INTERRUPT.",
            "none",
            query(
                "count(max by (job, job_id, compare_type, compare_job_id, status) "
                f"(huaweicloud_drs_comparison_info{{{SEL}, {FAILED}}})) or vector(0)"
            ),
            ZERO_GOOD,
            w=6,
        ),
        single(
            "Jobs without comparisons read",
            "Jobs whose comparisons the exporter cannot read (huaweicloud_drs_comparison_up 0).",
            "none",
            query(f"count(max by (job, job_id) (huaweicloud_drs_comparison_up{{{SEL}}}) == 0) or vector(0)"),
            ZERO_GOOD,
            w=6,
        ),
    ]
    latest = _table(
        "Latest comparisons",
        "The latest comparison of each type per job, its status and how long ago it started.",
        [
            query(f"huaweicloud_drs_comparison_info{{{SEL}}}", instant=True, ref="A"),
            query(f"time() - huaweicloud_drs_comparison_start_timestamp_seconds{{{SEL}}}", instant=True, ref="B"),
        ],
        {
            "job_id": "DRS job",
            "compare_type": "Type",
            "compare_job_id": "Comparison",
            "status": "Status",
            "Value #B": "Started (seconds ago)",
        },
        h=8,
    )
    problems = _table(
        f"Tables not consistent (latest finished comparison, {ROWS} largest differences)",
        f"The {ROWS} tables with the largest row difference (source − target) among those whose latest finished "
        "comparison found them inconsistent or could not compare them, with the row counts of the row "
        "comparison. The count of all of them is in 'Inconsistent and uncomparable tables'.",
        [
            query(WORST, instant=True, ref="A"),
            query(f"{SOURCE} and on ({TABLE}) {WORST}", instant=True, ref="B"),
            query(f"{TARGET} and on ({TABLE}) {WORST}", instant=True, ref="C"),
            query(f"({SOURCE} - {TARGET}) and on ({TABLE}) {WORST}", instant=True, ref="D"),
        ],
        {
            "job_id": "DRS job",
            "compare_type": "Type",
            "status": "Status",
            **TABLE_NAMES,
            "Value #B": "Source rows",
            "Value #C": "Target rows",
            "Value #D": "Difference",
        },
        h=12,
    )
    for panel in stats:
        d = d.with_panel(panel)
    return (
        d.with_panel(readiness())
        .with_panel(latest)
        .with_panel(
            series(
                "Age of the latest finished comparison",
                "Seconds since the latest successfully finished comparison of each type ended.",
                "s",
                query(
                    f"time() - huaweicloud_drs_comparison_last_finished_timestamp_seconds{{{SEL}}}",
                    "{{job_id}} {{compare_type}}",
                ),
            )
        )
        .with_panel(
            series(
                "Inconsistent and uncomparable tables",
                "Tables of the latest finished comparison that differ, and those that could not be compared.",
                "short",
                query(
                    f"sum by (job_id, compare_type) ({tables(INCONSISTENT)})",
                    "{{job_id}} {{compare_type}} inconsistent",
                    ref="A",
                ),
                query(
                    f"sum by (job_id, compare_type) ({tables(NOT_COMPARED)})",
                    "{{job_id}} {{compare_type}} not compared",
                    ref="B",
                ),
            )
        )
        .with_panel(problems)
        .with_panel(
            series(
                "Tables per status",
                "Tables of the latest finished comparison per status, over time.",
                "short",
                query(
                    f"sum by (compare_type, status) ({tables()}) > 0",
                    "{{compare_type}} {{status}}",
                ),
                w=24,
            )
        )
        .with_panel(
            series(
                "Objects per type (object-level comparison)",
                "Objects of each type on the source and destination side.",
                "short",
                query(f"huaweicloud_drs_comparison_objects{{{SEL}}}", "{{job_id}} {{object_type}} {{side}}"),
                w=24,
            )
        )
        .with_panel(
            series(
                "Comparison reading health",
                "1 while the exporter reads the job's comparisons successfully.",
                "short",
                query(f"huaweicloud_drs_comparison_up{{{SEL}}}", "{{job_id}}"),
                w=24,
            ).min(0)
        )
    )
