"""The DRS data consistency dashboard: comparison status and age per job, problem tables, tables per status.

Written by ``python -m dashboards.generate`` with the other dashboards (into this directory and the
Helm chart's copy); its queries are proven against a live Prometheus in tests/test_comparisons_e2e.py.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import DataTransformerConfig

from .generate import SEL, base, dashboard, query, render, series

NAME = "drs-data-consistency.json"
TABLE_NAMES = {
    "src_db": "Source database",
    "src_tb": "Source table",
    "dst_db": "Target database",
    "dst_tb": "Target table",
}


def _table(title: str, description: str, targets: list[Any], columns: dict[str, str], *, h: int = 10) -> Any:
    """A table of instant queries joined on their labels, columns named and ordered as given."""
    panel = base(table.Panel(), title, description, "none", 24, h).filterable(True)
    for target in targets:
        panel = panel.with_target(target)
    if len(targets) > 1:
        panel = panel.with_transformation(DataTransformerConfig(id_val="merge", options={}))
    hidden = {"Time": True, "__name__": True, "job": True, "instance": True}
    hidden.update({name: True for name in ("Value", "compare_type") if name not in columns})
    return panel.with_transformation(
        DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": hidden,
                "indexByName": {name: i for i, name in enumerate(columns)},
                "renameByName": columns,
            },
        )
    )


def consistency() -> Dashboard:
    """Comparison status and age per job, inconsistent and uncomparable tables, tables per status over time."""
    d = dashboard(
        "huaweicloud-drs-data-consistency",
        "DRS data consistency",
        "DRS comparison results (row counts and values per table) of the selected jobs, from huaweicloud-drs-exporter.",
    )
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
        "Tables not consistent (latest finished comparison)",
        "Tables whose latest finished comparison found them inconsistent or could not compare them, with the "
        "row counts of the row comparison and their difference (source − target).",
        [
            query(
                f'huaweicloud_drs_comparison_table_status{{{SEL}, status!~"consistent|comparing|waiting"}} == 1',
                instant=True,
                ref="A",
            ),
            query(f"huaweicloud_drs_comparison_source_rows{{{SEL}}}", instant=True, ref="B"),
            query(f"huaweicloud_drs_comparison_target_rows{{{SEL}}}", instant=True, ref="C"),
            query(
                f"huaweicloud_drs_comparison_source_rows{{{SEL}}} - huaweicloud_drs_comparison_target_rows{{{SEL}}}",
                instant=True,
                ref="D",
            ),
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
    return (
        d.with_panel(latest)
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
                    "sum by (job_id, compare_type) "
                    f'(huaweicloud_drs_comparison_tables{{{SEL}, status="inconsistent"}})',
                    "{{job_id}} {{compare_type}} inconsistent",
                    ref="A",
                ),
                query(
                    "sum by (job_id, compare_type) (huaweicloud_drs_comparison_tables"
                    f'{{{SEL}, status!~"consistent|inconsistent|comparing|waiting"}})',
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
                    f"sum by (compare_type, status) (huaweicloud_drs_comparison_tables{{{SEL}}}) > 0",
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


def files() -> dict[str, str]:
    """File name to JSON text of the consistency dashboard."""
    return {NAME: render(consistency())}
