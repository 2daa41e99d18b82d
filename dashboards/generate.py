"""Grafana dashboards for huaweicloud-drs-exporter, as code with the Grafana Foundation SDK.

`python -m dashboards.generate` writes the JSON files next to this script; a test fails when
the committed JSON differs from what this code generates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, stat, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
    ThresholdsConfig,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    BarGaugeValueMode,
    BigValueGraphMode,
    BigValueTextMode,
    LegendDisplayMode,
    LegendPlacement,
    TableBarGaugeCellOptions,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).resolve().parent
# The Helm chart ships a copy (charts can only read files inside themselves).
CHART_COPY = HERE.parent / "helm" / "huaweicloud-drs-exporter" / "files" / "dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
TARGET = 'job=~"$job", instance=~"$instance"'
SEL = f'{TARGET}, job_id=~"$job_id"'
TAGS = ["huaweicloud", "drs", "generated"]

Panel = Any  # a panel builder of any visualisation


def query(expr: str, legend: str = "__auto", *, instant: bool = False, ref: str = "A") -> Dataquery:
    """A Prometheus query on the dashboard's datasource."""
    q = Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)
    if instant:
        q = q.instant().format(PromQueryFormat.TABLE)
    return q


def variables() -> list[Any]:
    """datasource, job, instance and a multi-select job_id, each narrowing the next."""
    all_option = VariableOption(selected=True, text="All", value="$__all")
    return [
        DatasourceVariable("datasource").label("Data source").type("prometheus"),
        QueryVariable("job")
        .label("Job")
        .datasource(DS)
        .query("label_values(huaweicloud_drs_up, job)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".+")
        .current(all_option),
        QueryVariable("instance")
        .label("Instance")
        .datasource(DS)
        .query('label_values(huaweicloud_drs_up{job=~"$job"}, instance)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(all_option),
        QueryVariable("job_id")
        .label("DRS job")
        .description("DRS task IDs")
        .datasource(DS)
        .query(f"label_values(huaweicloud_drs_up{{{TARGET}}}, job_id)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(all_option),
    ]


def dashboard(uid: str, title: str, description: str) -> Dashboard:
    """A dashboard with the common settings and variables."""
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(variables())
    )


def base(builder: Panel, title: str, description: str, unit: str, w: int, h: int) -> Panel:
    """What every panel has: title, description, the dashboard's data source, unit and size."""
    return builder.title(title).description(description).datasource(DS).unit(unit).span(w).height(h)


def series(title: str, description: str, unit: str, *targets: Dataquery, w: int = 12, h: int = 8) -> Panel:
    """A time series panel."""
    panel = (
        base(timeseries.Panel(), title, description, unit, w, h)
        .fill_opacity(10)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.TABLE)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single(title: str, description: str, unit: str, target: Dataquery, *, w: int = 6, text: bool = False) -> Panel:
    """A stat panel showing the last value."""
    return (
        base(stat.Panel(), title, description, unit, w, 4)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.NAME if text else BigValueTextMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .with_target(target)
    )


def ratio_bars(title: str, description: str, target: Dataquery, *, w: int = 12, h: int = 8) -> Panel:
    """Horizontal bars of 0-1 ratios, red to green."""
    return (
        base(bargauge.Panel(), title, description, "percentunit", w, h)
        .min(0)
        .max(1)
        .orientation(VizOrientation.HORIZONTAL)
        .display_mode(BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(
            ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    Threshold(color="red", value=None),
                    Threshold(color="yellow", value=0.5),
                    Threshold(color="green", value=0.99),
                ]
            )
        )
        .with_target(target)
    )


def object_table(title: str, description: str, expr: str, *, w: int = 24, h: int = 12) -> Panel:
    """A table of objects: job, type, source and target names, progress as a bar, least progress first."""
    return (
        base(table.Panel(), title, description, "percentunit", w, h)
        .min(0)
        .max(1)
        .filterable(True)
        .with_target(query(expr, instant=True))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True},
                    "indexByName": {
                        "job_id": 0,
                        "object_type": 1,
                        "src_db": 2,
                        "src_tb": 3,
                        "dst_db": 4,
                        "dst_tb": 5,
                        "Value": 6,
                    },
                    "renameByName": {
                        "job_id": "DRS job",
                        "object_type": "Type",
                        "src_db": "Source database",
                        "src_tb": "Source object",
                        "dst_db": "Target database",
                        "dst_tb": "Target object",
                        "Value": "Progress",
                    },
                },
            )
        )
        .override_by_name(
            "Progress",
            [
                DynamicConfigValue(
                    id_val="custom.cellOptions",
                    value=TableBarGaugeCellOptions(
                        mode=BarGaugeDisplayMode.GRADIENT, value_display_mode=BarGaugeValueMode.TEXT
                    ).to_json(),
                )
            ],
        )
        .sort_by([common.TableSortByFieldState().display_name("Progress").desc(False)])
    )


def job_table(title: str, description: str, expr: str) -> Panel:
    """A table of DRS jobs from huaweicloud_drs_job_info."""
    return (
        base(table.Panel(), title, description, "none", 24, 8)
        .filterable(True)
        .with_target(query(expr, instant=True))
        .with_transformation(
            DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "Value": True},
                    "indexByName": {
                        "job_id": 0,
                        "name": 1,
                        "status": 2,
                        "job_type": 3,
                        "engine_type": 4,
                        "task_type": 5,
                        "project_id": 6,
                        "region": 7,
                    },
                    "renameByName": {
                        "job_id": "DRS job",
                        "name": "Name",
                        "status": "Status",
                        "job_type": "Type",
                        "engine_type": "Engine",
                        "task_type": "Task",
                        "project_id": "Project",
                        "region": "Region",
                    },
                },
            )
        )
    )


def overview() -> Dashboard:
    """DRS migration overview: completion, counts, trends, freshness, ETA and API errors per job."""
    d = dashboard(
        "huaweicloud-drs-overview",
        "DRS migration overview",
        "Progress of Huawei Cloud DRS migration jobs, from huaweicloud-drs-exporter.",
    )
    d = (
        d.with_row(Row("Summary"))
        .with_panel(
            single(
                "DRS jobs",
                "DRS jobs the exporter watches (after the filters above).",
                "short",
                query(f"count(count by (job_id) (huaweicloud_drs_up{{{SEL}}}))"),
            )
        )
        .with_panel(
            single(
                "Objects",
                "Objects of the selected jobs, summed over object types (the API's count).",
                "short",
                query(f"sum(job_id:huaweicloud_drs_objects:sum{{{SEL}}})"),
            )
        )
        .with_panel(
            single(
                "Completed objects",
                "Listed objects at 100 % progress.",
                "short",
                query(f"sum(job_id:huaweicloud_drs_objects_completed:sum{{{SEL}}})"),
            )
        )
        .with_panel(
            single(
                "Keys down",
                "Job and object type pairs whose last refresh failed (huaweicloud_drs_up == 0).",
                "short",
                query(f"count(huaweicloud_drs_up{{{SEL}}} == 0) or vector(0)"),
            )
        )
        .with_row(Row("Completion"))
        .with_panel(
            ratio_bars(
                "Completion by job",
                "Completed objects / objects, per DRS job.",
                query(f"job_id:huaweicloud_drs_completion:ratio{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Completion over time",
                "Completed objects / objects, per DRS job.",
                "percentunit",
                query(f"job_id:huaweicloud_drs_completion:ratio{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Mean object progress",
                "Average progress of all listed objects, per DRS job: moves before objects complete.",
                "percentunit",
                query(f"job_id:huaweicloud_drs_object_progress:avg{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Completion rate",
                "Objects completing per second, from the trend of the last 30 minutes.",
                "ops",
                query(f"job_id:huaweicloud_drs_objects_completed:deriv30m{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Estimated time to completion",
                "Unfinished objects divided by the completion rate of "
                "the last 30 minutes; empty while nothing completes.",
                "s",
                query(
                    f"(job_id:huaweicloud_drs_objects:sum{{{SEL}}}"
                    f" - job_id:huaweicloud_drs_objects_completed:sum{{{SEL}}})"
                    f" / (job_id:huaweicloud_drs_objects_completed:deriv30m{{{SEL}}} > 0)",
                    "{{job_id}}",
                ),
            )
        )
        .with_panel(
            series(
                "Objects and completed objects",
                "The API's count and the objects at 100 %, per job.",
                "short",
                query(f"job_id:huaweicloud_drs_objects:sum{{{SEL}}}", "{{job_id}} objects"),
                query(f"job_id:huaweicloud_drs_objects_completed:sum{{{SEL}}}", "{{job_id}} completed", ref="B"),
            )
        )
        .with_row(Row("Health"))
        .with_panel(
            series(
                "Data freshness",
                "Age of the progress data DRS reports (now - create_time).",
                "s",
                query(
                    f"time() - huaweicloud_drs_progress_data_timestamp_seconds{{{SEL}}}", "{{job_id}} {{object_type}}"
                ),
            )
        )
        .with_panel(
            series(
                "API errors by code",
                "Failed DRS and IAM API requests per second, by error code (retried ones included).",
                "reqps",
                query(
                    f"sum by (error_code) (rate(huaweicloud_drs_api_errors_total{{{TARGET}}}[$__rate_interval]))",
                    "{{error_code}}",
                ),
            )
        )
    )
    return d


def job_detail() -> Dashboard:
    """DRS job detail: every object, objects not moving, completion by source database."""
    d = dashboard(
        "huaweicloud-drs-job-detail",
        "DRS job detail",
        "Every object of the selected Huawei Cloud DRS jobs, from huaweicloud-drs-exporter.",
    )
    return (
        d.with_panel(
            object_table(
                "Objects",
                "Every listed object with its progress, least progress first.",
                f"huaweicloud_drs_object_progress_ratio{{{SEL}}}",
                h=14,
            )
        )
        .with_panel(
            object_table(
                "Objects not moving (30 minutes)",
                "Unfinished objects whose progress has not changed for 30 minutes.",
                f"huaweicloud_drs_object_progress_ratio{{{SEL}}} < 1"
                f" and changes(huaweicloud_drs_object_progress_ratio{{{SEL}}}[30m]) == 0",
                h=10,
            )
        )
        .with_panel(
            ratio_bars(
                "Completion by source database",
                "Share of the objects of each source database at 100 %.",
                query(
                    f"sum by (job_id, src_db) (huaweicloud_drs_object_progress_ratio{{{SEL}}} == bool 1)"
                    f" / count by (job_id, src_db) (huaweicloud_drs_object_progress_ratio{{{SEL}}})",
                    "{{job_id}} {{src_db}}",
                ),
                h=10,
            )
        )
        .with_panel(
            series(
                "Unfinished objects",
                "Objects not yet at 100 %, per job and object type.",
                "short",
                query(
                    f"huaweicloud_drs_objects{{{SEL}}} - huaweicloud_drs_objects_completed{{{SEL}}}",
                    "{{job_id}} {{object_type}}",
                ),
                h=10,
            )
        )
    )


def exporter_health() -> Dashboard:
    """The exporter itself: API traffic, errors, latency, refreshes and per-key health."""
    d = dashboard(
        "huaweicloud-drs-exporter-health",
        "DRS exporter health",
        "API traffic, errors and refresh health of huaweicloud-drs-exporter.",
    )
    rate = "[$__rate_interval]"
    return (
        d.with_panel(
            single(
                "Version",
                "Exporter version per instance.",
                "none",
                query(f"huaweicloud_drs_exporter_build_info{{{TARGET}}}", "{{instance}} {{version}}"),
                text=True,
            )
        )
        .with_panel(
            single(
                "Keys down",
                "Job and object type pairs whose last refresh failed.",
                "short",
                query(f"count(huaweicloud_drs_up{{{SEL}}} == 0) or vector(0)"),
            )
        )
        .with_panel(
            single(
                "Refreshes",
                "Refreshes per second (all pages of a job and type each).",
                "ops",
                query(f"sum(rate(huaweicloud_drs_refreshes_total{{{TARGET}}}{rate}))"),
            )
        )
        .with_panel(
            single(
                "Scrape timeouts",
                "Keys reported down per second because their refresh outlasted the scrape timeout.",
                "ops",
                query(f"sum(rate(huaweicloud_drs_scrape_timeouts_total{{{TARGET}}}{rate}))"),
            )
        )
        .with_panel(
            series(
                "API requests by operation",
                "DRS and IAM API requests per second, retries included.",
                "reqps",
                query(
                    f"sum by (operation) (rate(huaweicloud_drs_api_requests_total{{{TARGET}}}{rate}))", "{{operation}}"
                ),
            )
        )
        .with_panel(
            series(
                "API errors by operation and code",
                "Failed API requests per second.",
                "reqps",
                query(
                    f"sum by (operation, error_code) (rate(huaweicloud_drs_api_errors_total{{{TARGET}}}{rate}))",
                    "{{operation}} {{error_code}}",
                ),
            )
        )
        .with_panel(
            series(
                "API request latency",
                "Quantiles of API request duration, per operation.",
                "s",
                *[
                    query(
                        f"histogram_quantile({q}, sum by (le, operation) "
                        f"(rate(huaweicloud_drs_api_request_duration_seconds_bucket{{{TARGET}}}{rate})))",
                        f"p{round(q * 100)} {{{{operation}}}}",
                        ref=ref,
                    )
                    for q, ref in ((0.5, "A"), (0.9, "B"), (0.99, "C"))
                ],
            )
        )
        .with_panel(
            series(
                "Refresh duration",
                "Duration of the last refresh of each job and object type.",
                "s",
                query(f"huaweicloud_drs_collect_duration_seconds{{{SEL}}}", "{{job_id}} {{object_type}}"),
            )
        )
        .with_panel(
            series(
                "Refresh up",
                "1 if the last refresh of the job and object type succeeded.",
                "bool",
                query(f"huaweicloud_drs_up{{{SEL}}}", "{{job_id}} {{object_type}}"),
                w=24,
            )
        )
    )


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "drs-overview.json": overview,
    "drs-job-detail.json": job_detail,
    "drs-exporter-health.json": exporter_health,
}


def render(builder: Dashboard) -> str:
    """Pretty JSON of a dashboard, with a trailing newline."""
    model = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(builder.build()))
    # Stable panel ids in reading order, so links to a panel survive regeneration.
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def files() -> dict[str, str]:
    """File name to JSON text of every dashboard."""
    return {name: render(build()) for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    """Write the dashboards (into the directory given, default this one and the chart's copy)."""
    from . import consistency  # imports this module's helpers

    targets = [Path(argv[0])] if argv else [HERE, CHART_COPY]
    for target in targets:
        for name, text in {**files(), **consistency.files()}.items():
            (target / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
