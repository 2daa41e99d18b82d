"""Grafana dashboards for huaweicloud-drs-exporter, as code with the Grafana Foundation SDK.

`python -m dashboards.generate` writes the JSON files next to this script; a test fails when
the committed JSON differs from what this code generates.

Queries scale with jobs, not objects: everything over a time range reads the recorded job-level
and per-database series of `alerts/rules.py`; the only queries on per-object series are instant
and bounded (`bottomk`, object type and source-database variables). Every stat has thresholds.
Other modules add dashboards to :data:`DASHBOARDS` (the one place they are assembled).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common, stat, statushistory, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
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
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    TableBarGaugeCellOptions,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
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

from alerts import rules, timing

HERE = Path(__file__).resolve().parent
# The Helm chart ships a copy (charts can only read files inside themselves).
CHART_COPY = HERE.parent / "helm" / "huaweicloud-drs-exporter" / "files" / "dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
UIDS = {
    "overview": "huaweicloud-drs-overview",
    "detail": "huaweicloud-drs-job-detail",
    "health": "huaweicloud-drs-exporter-health",
    "consistency": "huaweicloud-drs-data-consistency",
    "replication": "huaweicloud-drs-replication",
}
# Recorded series carry no instance (a restart must not split them): job-level queries select on
# the scrape job; the exporter's own metrics also on the instance.
# One release at a time (namespace and Service, empty outside Kubernetes): two releases watching
# the same DRS job must not be counted twice.
JOB = 'job=~"$job", namespace=~"$namespace", service=~"$service"'
TARGET = f'{JOB}, instance=~"$instance"'
SEL = f'{JOB}, job_id=~"$job_id"'
OBJ = f'{SEL}, object_type=~"$object_type", src_db=~"$src_db"'
SCRAPE_TIMEOUT_COLOR = "dark-red"
# What ObjectsStalled counts, read the same way (without instance: a restart changes nothing).
# An object's series once, whichever targets export it (a rollout, replicas): max by these first.
OBJECT = "job, job_id, object_type, src_db, src_tb, dst_db, dst_tb"
NOT_MOVING = rules.stalled_objects(rules.DEFAULT, f"{{{OBJ}}}").replace("\n", "")
TAGS = ["huaweicloud", "drs", "generated"]
ROWS = 50  # rows of an object table: the least advanced, never every object

Panel = Any  # a panel builder of any visualisation
Steps = list[tuple[str, float | None]]

GOOD_HIGH: Steps = [("red", None), ("yellow", 0.5), ("green", 0.99)]
ZERO_GOOD: Steps = [("green", None), ("red", 1)]
NEUTRAL: Steps = [("blue", None)]


def thresholds(steps: Steps) -> ThresholdsConfig:
    """Absolute thresholds from (colour, lower bound) pairs, the first unbounded."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(color=c, value=v) for c, v in steps])


def query(expr: str, legend: str = "__auto", *, instant: bool = False, ref: str = "A") -> Dataquery:
    """A Prometheus query on the dashboard's datasource."""
    q = Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(DS)
    if instant:
        q = q.instant().format(PromQueryFormat.TABLE)
    return q


def _query_variable(name: str, label: str, expr: str, *, multi: bool = True, one: bool = False) -> QueryVariable:
    """A query variable; ``one``: exactly one value, no "All" (empty when the label does not exist)."""
    variable = (
        QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(expr)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi and not one)
        .include_all(not one)
    )
    if one:
        return variable
    return variable.all_value(".+").current(VariableOption(selected=True, text="All", value="$__all"))


def variables(*, instance: bool = False, objects: bool = False) -> list[Any]:
    """datasource, job and a multi-select job_id; the instance, object type and source database where used."""
    out: list[Any] = [
        DatasourceVariable("datasource").label("Data source").type("prometheus"),
        _query_variable("job", "Job", "label_values(huaweicloud_drs_up, job)", multi=False),
        _query_variable("namespace", "Namespace", 'label_values(huaweicloud_drs_up{job=~"$job"}, namespace)', one=True),
        _query_variable(
            "service",
            "Release (Service)",
            'label_values(huaweicloud_drs_up{job=~"$job", namespace=~"$namespace"}, service)',
            one=True,
        ),
    ]
    if instance:
        out.append(_query_variable("instance", "Instance", f"label_values(huaweicloud_drs_up{{{JOB}}}, instance)"))
    out.append(
        _query_variable("job_id", "DRS job", f"label_values(job_id:huaweicloud_drs_objects:sum{{{JOB}}}, job_id)")
    )
    if objects:
        out.append(
            _query_variable(
                "object_type", "Object type", f"label_values(huaweicloud_drs_objects{{{SEL}}}, object_type)"
            )
        )
        out.append(
            _query_variable(
                "src_db",
                "Source database",
                f"label_values(job_id_src_db:huaweicloud_drs_database_objects:sum{{{SEL}}}, src_db)",
            )
        )
    return out


def link(title: str, uid: str) -> DashboardLink:
    """A link to another dashboard, keeping the time range and the variables."""
    return (
        DashboardLink(title)
        .type(DashboardLinkType.LINK)
        .url(f"/d/{uid}")
        .include_vars(True)
        .keep_time(True)
        .icon("dashboard")
        .tooltip("")
        .as_dropdown(False)
        .target_blank(False)
        .tags([])
    )


def dashboard(key: str, title: str, description: str, variables_: list[Any]) -> Dashboard:
    """A dashboard with the common settings, links to the others and ``variables_``."""
    names = {
        "overview": "Overview",
        "detail": "Job detail",
        "health": "Exporter health",
        "consistency": "Data consistency",
        "replication": "Replication health",
    }
    d = (
        Dashboard(title)
        .uid(UIDS[key])
        .description(description)
        .tags(TAGS)
        .editable()
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .variables(variables_)
    )
    for other, uid in UIDS.items():
        if other != key:
            d = d.link(link(names[other], uid))
    return d


def base(builder: Panel, title: str, description: str, unit: str, w: int, h: int) -> Panel:
    """What every panel has: title, description, the dashboard's data source, unit and size."""
    return builder.title(title).description(description).datasource(DS).unit(unit).span(w).height(h)


def series(
    title: str,
    description: str,
    unit: str,
    *targets: Dataquery,
    w: int = 12,
    h: int = 8,
    line: Steps | None = None,
) -> Panel:
    """A time series panel; ``line`` draws thresholds as lines (the alert's threshold, the scrape timeout)."""
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
    if line is not None:
        panel = panel.thresholds(thresholds(line)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single(
    title: str, description: str, unit: str, target: Dataquery, steps: Steps, *, w: int = 4, text: bool = False
) -> Panel:
    """A stat panel showing the last value, coloured by ``steps``."""
    return (
        base(stat.Panel(), title, description, unit, w, 4)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.NAME if text else BigValueTextMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
        .thresholds(thresholds(steps))
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
        .thresholds(thresholds(GOOD_HIGH))
        .with_target(target)
    )


def organize(exclude: list[str], order: list[str], names: dict[str, str]) -> DataTransformerConfig:
    """Grafana's organize transformation: hide, order and rename columns."""
    return DataTransformerConfig(
        id_val="organize",
        options={
            "excludeByName": dict.fromkeys(exclude, True),
            "indexByName": {name: i for i, name in enumerate(order)},
            "renameByName": names,
        },
    )


def object_table(title: str, description: str, expr: str, *, h: int = 12) -> Panel:
    """A table of objects: job, type, source and target names, progress as a bar, least progress first."""
    return (
        base(table.Panel(), title, description, "percentunit", 24, h)
        .min(0)
        .max(1)
        .filterable(True)
        .thresholds(thresholds(GOOD_HIGH))
        .with_target(query(expr, instant=True))
        .with_transformation(
            organize(
                ["Time", "__name__", "job", "instance", "namespace", "pod", "cluster"],
                ["job_id", "object_type", "src_db", "src_tb", "dst_db", "dst_tb", "Value"],
                {
                    "job_id": "DRS job",
                    "object_type": "Type",
                    "src_db": "Source database",
                    "src_tb": "Source object",
                    "dst_db": "Target database",
                    "dst_tb": "Target object",
                    "Value": "Progress",
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


COMPLETION = (
    f"sum(job_id:huaweicloud_drs_objects_completed:sum{{{SEL}}}) / sum(job_id:huaweicloud_drs_objects:sum{{{SEL}}})"
)

# The job table: one instant query per column, joined on job_id.
JOB_COLUMNS: list[tuple[str, str, str, str]] = [
    # (ref, column, unit, expression)
    ("A", "Name", "none", f"max by (job_id, name) (huaweicloud_drs_job_info{{{SEL}}})"),
    ("B", "Status", "none", f"max by (job_id, status) (job_id_status:huaweicloud_drs_job_info:latest{{{SEL}}})"),
    # Every query keeps job_id only (plus name, status): the merged table has no label columns to hide.
    (
        "C",
        "Completion",
        "percentunit",
        f"max by (job_id) (job_id:huaweicloud_drs_objects_completed_per_objects:ratio{{{SEL}}})",
    ),
    (
        "D",
        "ETA",
        "s",
        f"max by (job_id) ((job_id:huaweicloud_drs_objects:sum{{{SEL}}}"
        f" - job_id:huaweicloud_drs_objects_completed:sum{{{SEL}}})"
        f" / (job_id:huaweicloud_drs_objects_completed:deriv30m{{{SEL}}} > 0))",
    ),
    ("E", "DRS remaining time", "s", f"max by (job_id) (job_id:huaweicloud_drs_job_remaining_seconds:max{{{SEL}}})"),
    (
        "F",
        "Replication delay",
        "s",
        f"max by (job_id) (job_id:huaweicloud_drs_job_incremental_delay_seconds:max{{{SEL}}})",
    ),
    # Jobs with comparisons on only (docs/metrics.md "Ready for cut-over"); the reasons are in the next panel.
    ("G", "Cut-over", "none", f"max by (job_id) (job_id:huaweicloud_drs_cutover_ready:bool{{{SEL}}})"),
]
# Which exporter shard owns each job (docs/deployment.md, sharding; 0 without), as recorded: a label
# column like Name and Status.
SHARD_COLUMN = (
    "H",
    f"max by (job_id, shard) (job_id_shard:huaweicloud_drs_job_info:latest{{{SEL}}})",
)
# 1 / 0 of job_id:huaweicloud_drs_cutover_ready:bool in words and colours.
READY_WORDS = [
    {
        "type": "value",
        "options": {"1": {"text": "ready", "color": "green"}, "0": {"text": "not ready", "color": "red"}},
    }
]
BLOCKS_WORDS = [{"type": "value", "options": {"1": {"text": "blocks", "color": "red"}, "0": {"text": "—"}}}]
COLORED_TEXT = {"type": "color-text"}


def job_table() -> Panel:
    """Every DRS job: name, status, completion, ETA, DRS's remaining time and delay; the job links to its detail."""
    panel = (
        base(
            table.Panel(),
            "DRS jobs",
            "One row per DRS job. ETA: unfinished objects / completion rate of the last 30 minutes (empty while "
            "nothing completes). Cut-over: job_id:huaweicloud_drs_cutover_ready:bool (jobs with comparisons on; "
            "why not in 'Cut-over readiness: blocking reasons'). Shard: the exporter shard that owns the job "
            "(0 without sharding). The DRS job links to its detail dashboard.",
            "none",
            24,
            8,
        )
        .filterable(True)
        .thresholds(thresholds(NEUTRAL))
        # merge: one row per job_id from the six instant queries, one Time column (a join would
        # repeat Time and every shared label once per query).
        .with_transformation(DataTransformerConfig(id_val="merge", options={}))
    )
    for ref, _, _, expr in JOB_COLUMNS:
        panel = panel.with_target(query(expr, instant=True, ref=ref))
    panel = panel.with_target(query(SHARD_COLUMN[1], instant=True, ref=SHARD_COLUMN[0]))
    values = {f"Value #{ref}": column for ref, column, _, _ in JOB_COLUMNS[2:]}  # A, B: their labels are the column
    panel = panel.with_transformation(
        organize(
            ["Time", "Value #A", "Value #B", f"Value #{SHARD_COLUMN[0]}"],
            ["job_id", "name", "status", *values, "shard"],
            {"job_id": "DRS job", "name": "Name", "status": "Status", **values, "shard": "Shard"},
        )
    )
    detail = (
        f"/d/{UIDS['detail']}?${{__url_time_range}}&var-datasource=${{datasource}}&var-job=${{job}}"
        "&var-job_id=${__value.raw}"
    )
    panel = panel.override_by_name(
        "DRS job", [DynamicConfigValue(id_val="links", value=[{"title": "Job detail", "url": detail}])]
    )
    for _, column, unit, _ in JOB_COLUMNS[3:]:
        panel = panel.override_by_name(column, [DynamicConfigValue(id_val="unit", value=unit)])
    panel = panel.override_by_name(
        "Cut-over",
        [
            DynamicConfigValue(id_val="mappings", value=READY_WORDS),
            DynamicConfigValue(id_val="custom.cellOptions", value=COLORED_TEXT),
        ],
    )
    return panel.override_by_name(
        "Completion",
        [
            DynamicConfigValue(
                id_val="custom.cellOptions",
                value=TableBarGaugeCellOptions(
                    mode=BarGaugeDisplayMode.GRADIENT, value_display_mode=BarGaugeValueMode.TEXT
                ).to_json(),
            ),
            DynamicConfigValue(id_val="thresholds", value=thresholds(GOOD_HIGH).build().to_json()),
            DynamicConfigValue(id_val="unit", value="percentunit"),
            DynamicConfigValue(id_val="min", value=0),
            DynamicConfigValue(id_val="max", value=1),
        ],
    )


def blocking_reasons() -> Panel:
    """What keeps each job from being ready for cut-over: one row per job and blocking reason."""
    return (
        base(
            table.Panel(),
            "Cut-over readiness: blocking reasons",
            "Per DRS job that is not ready for cut-over, each reason that blocks it "
            "(job_id_reason:huaweicloud_drs_cutover_blocked:bool == 1; docs/metrics.md 'Ready for cut-over'). "
            "Empty: every job with comparisons on is ready.",
            "none",
            24,
            6,
        )
        .filterable(True)
        .thresholds(thresholds(NEUTRAL))
        .with_target(
            query(
                f"max by (job_id, reason) (job_id_reason:huaweicloud_drs_cutover_blocked:bool{{{SEL}}}) == 1",
                instant=True,
            )
        )
        .with_transformation(
            organize(["Time", "Value"], ["job_id", "reason"], {"job_id": "DRS job", "reason": "Reason"})
        )
    )


def overview() -> Dashboard:
    """DRS migration overview: the job table, completion, trends, DRS's own progress and delay, freshness."""
    s = rules.DEFAULT
    d = dashboard(
        "overview",
        "DRS migration overview",
        "Progress of Huawei Cloud DRS migration jobs, from huaweicloud-drs-exporter.",
        variables(),
    )
    return (
        d.with_row(Row("Summary"))
        .with_panel(
            single(
                "DRS jobs",
                "DRS jobs with progress data (after the filters above).",
                "short",
                query(f"count(job_id:huaweicloud_drs_objects:sum{{{SEL}}}) or vector(0)"),
                NEUTRAL,
            )
        )
        .with_panel(
            single(
                "Objects",
                "Objects of the selected jobs, summed over object types (the API's count).",
                "short",
                query(f"sum(job_id:huaweicloud_drs_objects:sum{{{SEL}}})"),
                NEUTRAL,
            )
        )
        .with_panel(
            single(
                "Completion",
                "Completed objects / objects over all selected jobs.",
                "percentunit",
                query(COMPLETION),
                GOOD_HIGH,
            )
        )
        .with_panel(
            single(
                "Failed or paused jobs",
                "Jobs whose DRS status is failed or paused.",
                "short",
                query(
                    f'count(job_id_status:huaweicloud_drs_job_info:latest{{{SEL}, status=~"{rules.FAILED}|'
                    f'{rules.PAUSED}"}}) or vector(0)'
                ),
                ZERO_GOOD,
            )
        )
        .with_panel(
            single(
                "Keys down",
                "Job and object type pairs whose last refresh failed (huaweicloud_drs_up == 0).",
                "short",
                query(f"count(max by (job, job_id, object_type) (huaweicloud_drs_up{{{SEL}}}) == 0) or vector(0)"),
                ZERO_GOOD,
            )
        )
        .with_panel(
            single(
                "Firing alerts",
                "DRS alerts firing now for the selected scrape job (see Alertmanager for silenced ones).",
                "short",
                query(f'count(ALERTS{{alertname=~"{rules.PREFIX}.+", alertstate="firing", {JOB}}}) or vector(0)'),
                ZERO_GOOD,
            )
        )
        .with_row(Row("Jobs"))
        .with_panel(job_table())
        .with_panel(blocking_reasons())
        .with_row(Row("Completion"))
        .with_panel(
            ratio_bars(
                "Completion by job",
                "Completed objects / objects, per DRS job.",
                query(f"job_id:huaweicloud_drs_objects_completed_per_objects:ratio{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Completion over time",
                "Completed objects / objects, per DRS job.",
                "percentunit",
                query(f"job_id:huaweicloud_drs_objects_completed_per_objects:ratio{{{SEL}}}", "{{job_id}}"),
            )
        )
        .with_panel(
            series(
                "Mean object progress and DRS job progress",
                "Average progress of the exported objects (moves before objects complete) and the job's progress "
                "as DRS reports it (covers objects without series too), per DRS job.",
                "percentunit",
                query(f"job_id:huaweicloud_drs_object_progress_ratio:avg{{{SEL}}}", "{{job_id}} objects"),
                query(f"job_id:huaweicloud_drs_job_progress_ratio:max{{{SEL}}}", "{{job_id}} DRS", ref="B"),
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
                "Unfinished objects divided by the completion rate of the last 30 minutes (empty while nothing "
                "completes), and DRS's own remaining time.",
                "s",
                query(JOB_COLUMNS[3][3], "{{job_id}} estimate"),
                query(JOB_COLUMNS[4][3], "{{job_id}} DRS", ref="B"),
            )
        )
        .with_panel(
            series(
                "Replication delay",
                f"Incremental replication delay as DRS reports it; the dashed line is the alert's threshold "
                f"({s.delay_seconds}s).",
                "s",
                query(JOB_COLUMNS[5][3], "{{job_id}}"),
                line=[("green", None), ("red", s.delay_seconds)],
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
                f"Age of the progress data DRS reports (now - create_time); the dashed line is the stale alert's "
                f"threshold ({s.stale_seconds}s).",
                "s",
                query(
                    f"max by (job_id) (time() - huaweicloud_drs_progress_data_timestamp_seconds{{{SEL}}})",
                    "{{job_id}}",
                ),
                line=[("green", None), ("red", s.stale_seconds)],
            )
        )
        .with_panel(
            series(
                "API errors by code",
                "Failed DRS and IAM API requests per second, by error code (retried ones included).",
                "reqps",
                query(
                    f"sum by (error_code) (rate(huaweicloud_drs_api_errors_total{{{JOB}}}[$__rate_interval]))",
                    "{{error_code}}",
                ),
            )
        )
    )


def job_detail() -> Dashboard:
    """DRS job detail: the least advanced objects, objects not moving, completion by source database."""
    d = dashboard(
        "detail",
        "DRS job detail",
        "Objects of the selected Huawei Cloud DRS jobs, from huaweicloud-drs-exporter. Object tables show the "
        f"{ROWS} least advanced objects: narrow them with the object type and source database variables.",
        variables(objects=True),
    )
    return (
        d.with_panel(
            single(
                "Completion",
                "Completed objects / objects of the selected jobs.",
                "percentunit",
                query(COMPLETION),
                GOOD_HIGH,
                w=6,
            )
        )
        .with_panel(
            single(
                "Unfinished objects",
                "Objects not at 100 % (invalid rows left out).",
                "short",
                query(
                    f"sum(job_id:huaweicloud_drs_objects:sum{{{SEL}}} - job_id:huaweicloud_drs_objects_completed:sum"
                    f"{{{SEL}}} - job_id:huaweicloud_drs_skipped_rows:sum{{{SEL}}})"
                ),
                NEUTRAL,
                w=6,
            )
        )
        .with_panel(
            single(
                "Objects not moving",
                "Started, unfinished objects whose progress is the same as 30 minutes ago.",
                "short",
                query(f"count({NOT_MOVING}) or vector(0)", instant=True),
                ZERO_GOOD,
                w=6,
            )
        )
        .with_panel(
            single(
                "Objects without series",
                "Objects counted but not exported one by one (filters, max_objects_per_key, aggregate_only): "
                "the tables below cannot show them.",
                "short",
                query(f"sum(job_id:huaweicloud_drs_objects_not_exported:sum{{{SEL}}})"),
                [("green", None), ("yellow", 1)],
                w=6,
            )
        )
        .with_panel(
            object_table(
                f"Least advanced objects ({ROWS})",
                f"The {ROWS} unfinished objects with the least progress.",
                f"bottomk({ROWS}, max by ({OBJECT}) (huaweicloud_drs_object_progress_ratio{{{OBJ}}}) < 1)",
                h=14,
            )
        )
        .with_panel(
            object_table(
                f"Objects not moving (30 minutes, {ROWS} least advanced)",
                "Started, unfinished objects whose progress has not changed for 30 minutes (progress only grows: "
                "the same value 30 minutes ago means no movement).",
                f"bottomk({ROWS}, {NOT_MOVING})",
                h=10,
            )
        )
        .with_panel(
            ratio_bars(
                "Completion by source database",
                "Share of the objects of each source database at 100 %, from the recorded per-database series: "
                "the exporter's counts over every object for jobs whose objects are not all exported "
                "(aggregate_only, max_objects_per_key, object_filters), else the exported objects. A capped job "
                "from an exporter without those counts shows no bar rather than the exported objects' share.",
                query(
                    "job_id_src_db:huaweicloud_drs_database_objects_completed_per_database_objects:ratio"
                    f'{{{SEL}, src_db=~"$src_db"}}',
                    "{{job_id}} {{src_db}}",
                    instant=True,
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
                    f'max by (job_id, object_type) (huaweicloud_drs_objects{{{SEL}, object_type=~"$object_type"}}'
                    f' - huaweicloud_drs_objects_completed{{{SEL}, object_type=~"$object_type"}})',
                    "{{job_id}} {{object_type}}",
                ),
                h=10,
            )
        )
    )


def exporter_health() -> Dashboard:
    """The exporter itself: API traffic, errors, latency, refreshes and per-key health."""
    d = dashboard(
        "health",
        "DRS exporter health",
        "API traffic, errors and refresh health of huaweicloud-drs-exporter.",
        variables(instance=True),
    )
    rate = "[$__rate_interval]"
    scrape = timing.DEFAULT.scrape_timeout
    # Its own colour: the chart finds the scrape-timeout lines by it and sets serviceMonitor.scrapeTimeout.
    timeout_line = [("green", None), (SCRAPE_TIMEOUT_COLOR, scrape)]
    return (
        d.with_panel(
            single(
                "Version",
                "Exporter version per instance.",
                "none",
                query(f"huaweicloud_drs_exporter_build_info{{{TARGET}}}", "{{instance}} {{version}}"),
                NEUTRAL,
                w=6,
                text=True,
            )
        )
        .with_panel(
            single(
                "Keys down",
                "Job and object type pairs whose last refresh failed.",
                "short",
                query(
                    f'count(max by (job, job_id, object_type) (huaweicloud_drs_up{{{TARGET}, job_id=~"$job_id"}}) == 0)'
                    " or vector(0)"
                ),
                ZERO_GOOD,
                w=6,
            )
        )
        .with_panel(
            single(
                "Refreshes",
                "Refreshes per second (all pages of a job and type each).",
                "ops",
                query(f"sum(rate(huaweicloud_drs_refreshes_total{{{TARGET}}}{rate}))"),
                NEUTRAL,
                w=6,
            )
        )
        .with_panel(
            single(
                "Scrape timeouts",
                "Keys reported down per second because their refresh outlasted the scrape timeout: see the "
                "README's timing rule.",
                "ops",
                query(f"sum(rate(huaweicloud_drs_scrape_timeouts_total{{{TARGET}}}{rate}))"),
                [("green", None), ("red", 0.0001)],
                w=6,
            )
        )
        .with_panel(
            statushistory.Panel()
            .title("Refresh up")
            .description("1 (green) if the last refresh of the job and object type succeeded, 0 (red) if not.")
            .datasource(DS)
            .unit("bool")
            .span(24)
            .height(8)
            .thresholds(thresholds([("red", None), ("green", 1)]))
            .with_target(query(f'huaweicloud_drs_up{{{TARGET}, job_id=~"$job_id"}}', "{{job_id}} {{object_type}}"))
        )
        .with_panel(
            series(
                "Refresh duration",
                f"Duration of the last refresh of each job and object type; the dashed line is the default scrape "
                f"timeout ({scrape:g}s): refreshes near it report up 0.",
                "s",
                query(
                    f'huaweicloud_drs_collect_duration_seconds{{{TARGET}, job_id=~"$job_id"}}',
                    "{{job_id}} {{object_type}}",
                ),
                line=timeout_line,
            )
        )
        .with_panel(
            series(
                "Scrape duration",
                f"How long Prometheus's scrapes of the exporter take; the dashed line is the default scrape "
                f"timeout ({scrape:g}s).",
                "s",
                query(f"scrape_duration_seconds{{{TARGET}}}", "{{instance}}"),
                line=timeout_line,
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
    )


# Every dashboard, by file name (other modules add theirs here).
def data_consistency() -> Dashboard:
    """The data consistency dashboard (``consistency.py``, which builds on this module's helpers)."""
    from . import consistency

    return consistency.consistency()


def replication_health() -> Dashboard:
    """The replication health dashboard (``replication_health.py``, on this module's helpers)."""
    from . import replication_health

    return replication_health.replication_health()


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "drs-overview.json": overview,
    "drs-job-detail.json": job_detail,
    "drs-exporter-health.json": exporter_health,
    "drs-data-consistency.json": data_consistency,
    "drs-replication-health.json": replication_health,
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
    targets = [Path(argv[0])] if argv else [HERE, CHART_COPY]
    for target in targets:
        for name, text in files().items():
            (target / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
