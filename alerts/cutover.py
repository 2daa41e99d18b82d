"""Cut-over readiness: one recorded verdict per DRS job, with its reasons (issue 25).

``job_id_reason:huaweicloud_drs_cutover_blocked:bool{reason=…}`` is 1 for each reason that blocks a
job and 0 for each that does not (every reason of :data:`REASONS`, for every job whose comparisons
the exporter reads); ``job_id:huaweicloud_drs_cutover_ready:bool`` is 1 when none blocks it. The
status page judges the same conditions from the exporter's snapshots (``exporter/web/cutover.py``):
one table of cases, ``alerts/cutover_cases.yaml``, drives both tests.

Each reason is written as the set of jobs it blocks, so that a missing input blocks where it
must (no status, no delay reading, no comparison: not ready) and does not where the input is
optional: the replication-health series (``huaweicloud_drs_ddl_alarms``, ``huaweicloud_drs_dirty_rows``,
``huaweicloud_drs_job_full_transfer_completed_timestamp_seconds``) block only when present and bad.
"""

from __future__ import annotations

from typing import Any

from exporter.web.cutover import REASONS as REASONS  # the fixed set, in the order the status page lists them

from .consistency import IN_FLIGHT, latest_comparisons
from .rules import INCREMENTAL, Settings, _alert, labels, last, status

READY = "job_id:huaweicloud_drs_cutover_ready:bool"
BLOCKED = "job_id_reason:huaweicloud_drs_cutover_blocked:bool"
# The two data comparisons readiness needs: row counts and values.
TYPES = "lines|contents"
FINE_TABLES = "consistent|empty"
DELAY = "huaweicloud_drs_job_incremental_delay_seconds"
# The blocking reasons in an alert's description, selected by every label of the alert (its target
# labels and job_id): "tables_not_consistent delay ".
REASONS_TEMPLATE = (
    '{{ $sel := "" }}{{ range $k, $v := $labels }}{{ $sel = printf "%s%s=%q," $sel $k $v }}{{ end }}'
    f'{{{{ range printf `{BLOCKED}{{%s}} == 1` $sel | query | sortByLabel "reason" }}}}'
    "{{ .Labels.reason }} {{ end }}"
)
FULL_DONE = "huaweicloud_drs_job_full_transfer_completed_timestamp_seconds"
COMPLETION = "job_id:huaweicloud_drs_objects_completed_per_objects:ratio"


def watched(s: Settings) -> str:
    """One series (value 1) per job whose comparisons the exporter reads: the jobs readiness is judged for."""
    return f"group by ({labels(s, 'job_id')}) (last_over_time(huaweicloud_drs_comparison_up[{s.lookback}]))"


def blocked(s: Settings) -> dict[str, str]:
    """Per reason, the jobs it blocks (any labels beyond the target labels and job_id)."""
    job = labels(s, "job_id")
    jobs = watched(s)
    w = s.cutover_window
    by_type = labels(s, "job_id", "compare_type")
    successful = latest_comparisons(s, f'{{compare_type=~"{TYPES}", status="SUCCESSFUL"}}')
    finished = (
        f"max by ({by_type}) (last_over_time(huaweicloud_drs_comparison_last_finished_timestamp_seconds"
        f'{{compare_type=~"{TYPES}"}}[{s.lookback}]))'
    )
    tables = last(f'huaweicloud_drs_comparison_tables{{compare_type=~"{TYPES}"}}', s, "compare_type", "status")
    unfine = last(
        f'huaweicloud_drs_comparison_tables{{compare_type=~"{TYPES}", status!~"{FINE_TABLES}"}}',
        s,
        "compare_type",
        "status",
    )
    missing = " or ".join(
        f'{jobs} unless on ({job}) last_over_time(huaweicloud_drs_comparison_info{{compare_type="{t}"}}[{s.lookback}])'
        for t in TYPES.split("|")
    )
    return {
        # Every latest status of the job is incremental: two replicas (or targets) of the release that
        # disagree (one INCRE_TRANSFER_FAILED, one still INCRE_TRANSFER_STARTED) both count.
        "not_incremental": f"{jobs} unless on ({job}) {status(s, INCREMENTAL)}\n"
        f'or group by ({job}) (job_id_status:huaweicloud_drs_job_info:latest{{status!~"{INCREMENTAL}"}})',
        # A job and type whose last refresh failed (or whose object series are gone while its key is
        # there): its objects drop out of the completion, which then covers the other types only.
        "progress_unknown": f"min by ({job}) (last_over_time(huaweicloud_drs_up[{s.lookback}])) == 0\n"
        f"or count by ({job}) (\n  {last('huaweicloud_drs_up', s, 'object_type')}\n"
        f"    unless on ({labels(s, 'job_id', 'object_type')}) {last('huaweicloud_drs_objects', s, 'object_type')}\n)",
        # The exporter's per-object progress, else (no progress data) DRS saying the full phase ended.
        "full_incomplete": f"{COMPLETION} < 1\nor {jobs} unless on ({job}) {COMPLETION} unless on ({job}) "
        + last(FULL_DONE, s),
        # Over the whole window, which readings must cover: max_over_time sees only the samples there
        # are, so a reading that started inside the window, or a gap in it (exporter down, scrapes
        # lost), is no proof. Covered: at every rule evaluation of the window (a subquery at the
        # evaluation interval, counted against the same subquery of a constant) a reading within the
        # lookback, so one missed scrape changes nothing.
        "delay": f"max by ({job}) (max_over_time({DELAY}[{w}])) >= {s.cutover_delay_seconds}\n"
        f"or {jobs} unless on ({job}) (\n  count_over_time(({last(DELAY, s)})[{w}:])\n"
        f"    >= on () group_left count_over_time(vector(1)[{w}:])\n)\n"
        f"or {jobs} unless on ({job}) {last(DELAY, s)}",
        # The exporter could not read the job's comparisons now (listing, or a newer run's results): it
        # keeps exporting the last state it read, which says nothing of a comparison since. Any target.
        "comparison_unreadable": f"min by ({job}) (last_over_time(huaweicloud_drs_comparison_up[{s.lookback}])) == 0",
        # No comparison of a type, or its latest finished but its tables are not read (or it compared none).
        "comparison_missing": f"{missing}\nor {successful}\n  unless on ({by_type}) sum by ({by_type}) ({tables}) > 0",
        "comparison_running": latest_comparisons(s, f'{{compare_type=~"{TYPES}", status=~"{IN_FLIGHT}"}}'),
        "comparison_failed": latest_comparisons(s, f'{{compare_type=~"{TYPES}", status!~"SUCCESSFUL|{IN_FLIGHT}"}}'),
        # Too old, of unknown age, or finished before DRS's full phase did (where DRS says when that was).
        "comparison_stale": f"{successful}\n  and on ({by_type}) (\n"
        f"    time() - {finished} > {s.cutover_comparison_max_age_seconds}\n"
        f"    or {finished} < on ({job}) group_left {last(FULL_DONE, s)}\n  )\n"
        f"or {successful}\n  unless on ({by_type}) {finished}",
        "tables_not_consistent": f"{successful}\n  and on ({by_type}) sum by ({by_type}) ({unfine}) > 0",
        "objects_inconsistent": "count by ({job}) ({objs})".format(
            job=job, objs=last('huaweicloud_drs_comparison_object_status{status="inconsistent"}', s, "object_type")
        ),
        "ddl_alarm": f"{last('huaweicloud_drs_ddl_alarms', s)} > 0",
        "dirty_rows": f"sum by ({job}) (max by ({labels(s, 'job_id', 'phase')}) "
        f"(max_over_time(huaweicloud_drs_dirty_rows[{w}]))) > 0",
    }


def records(s: Settings) -> list[tuple[str, str]]:
    """(record, expr) of the reasons' 0/1 series (one rule: promtool refuses two of one name), then of
    the verdict (read from them, so after them)."""
    job = labels(s, "job_id")
    jobs = watched(s)
    each = [
        f"label_replace(\n  {jobs}\n    and on ({job}) (\n{_indent(expr)}\n    )\n  or 0 * {jobs},\n"
        f'  "reason", "{reason}", "", ""\n)'
        for reason, expr in ((r, blocked(s)[r]) for r in REASONS)
    ]
    return [(BLOCKED, "\nor ".join(each)), (READY, f"1 - max by ({job}) ({BLOCKED})")]


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())


def alerts(s: Settings) -> list[dict[str, Any]]:
    """The job became ready (info); it was ready and is not any more, while replicating (warning)."""
    job = labels(s, "job_id")
    return [
        _alert(
            "JobReadyForCutover",
            f"{READY} == 1",
            s.cutover_ready_for,
            "info",
            "A DRS job is ready for cut-over.",
            "DRS job {{ $labels.job_id }} is in incremental replication with its full migration complete, a delay "
            f"below {s.cutover_delay_seconds}s for {s.cutover_window}, and row and value comparisons that finished "
            f"SUCCESSFUL within {s.cutover_comparison_max_age_seconds}s with every table consistent. Application-level "
            "checks (sequences, triggers, users) are still yours.",
            s,
        ),
        _alert(
            "CutoverReadinessLost",
            # A comparison under way blocks readiness (its result is not known), but a re-check is no loss.
            f'max by ({job}) ({BLOCKED}{{reason!="comparison_running"}}) == 1\n'
            f"and on ({job}) max_over_time({READY}[{s.cutover_lost_window}]) == 1\n"
            f"and on ({job}) {status(s, INCREMENTAL)}",
            s.cutover_lost_for,
            "warning",
            "A DRS job that was ready for cut-over is not any more.",
            "DRS job {{ $labels.job_id }} was ready for cut-over within the last "
            f"{s.cutover_lost_window} and is still replicating, but is not ready now: {REASONS_TEMPLATE}",
            s,
        ),
    ]
