"""Alerts on DRS replication health (issue 24): endpoints, RPO/RTO, DDL alarms, abnormal rows, expiry.

One alert per DRS job and subject, like every other alert; :func:`rules.alert_groups` adds the group and
:func:`rules.inhibit_rules` the inhibitions. Windows and thresholds are :class:`rules.Settings` fields.

Each replication-health source of the exporter (``huaweicloud_drs_<source>_up{job_id}``) keeps its last
good data after a failed reading while it is younger than ``max_staleness``. An alert here reads a
job's data only while that source has read the job successfully within ``health_failing_for``: one
failed reading changes nothing, and data older than that never fires as if it were current. From
then on the job's *HealthDataFailing* fires instead (the same window, so the one takes over from the
other at the same evaluation).
"""

from __future__ import annotations

from typing import Any

from .rules import FAILED, FINISHED, MAINTENANCE, NOT_STARTED, PAUSED, Settings, _alert, labels, last, project, quiet

# The replication-health sources (huaweicloud_drs_<source>_up), by the families they feed.
SOURCES = ("monitor_data", "rpo_rto", "job_details", "ddl_data", "dirty_data", "health_compare")
# Sources that still answer for a failed job: its details (the failure reason, the expiry) are the point.
FAILED_JOB_SOURCES = ("job_details",)
# Endpoint health means nothing while DRS does not replicate (paused, finished, not started, maintenance);
# for a failed job it is the likely cause, so it still fires.
NOT_CONNECTED = f"{PAUSED}|{FINISHED}|{NOT_STARTED}|{MAINTENANCE}"
# The endpoints DRS reports unhealthy, selected by every label of the alert (its target labels and
# job_id): another namespace's or release's exporter may watch the same job.
ENDPOINTS_TEMPLATE = (
    '{{ $sel := "" }}{{ range $k, $v := $labels }}{{ $sel = printf "%s%s=%q," $sel $k $v }}{{ end }}'
    "{{ range printf `group by (endpoint) (last_over_time(huaweicloud_drs_endpoint_up{%s}[LOOKBACK]) == 0)` $sel"
    ' | query | sortByLabel "endpoint" }}{{ .Labels.endpoint }} {{ end }}'
)


def fresh(s: Settings, source: str) -> str:
    """``and on`` clause: jobs that ``source`` has read successfully within ``health_failing_for``."""
    job = labels(s, "job_id")
    return f"and on ({job}) max by ({job}) (max_over_time(huaweicloud_drs_{source}_up[{s.health_failing_for}])) == 1"


def failing(s: Settings, source: str) -> str:
    """Jobs that ``source`` has not read once in ``health_failing_for``, and watched that long, as a
    ``source`` label: a new job (or a source just turned on) gets the window to succeed first."""
    job = labels(s, "job_id")
    w = s.health_failing_for
    metric = f"huaweicloud_drs_{source}_up"
    done = FINISHED if source in FAILED_JOB_SOURCES else f"{FINISHED}|{FAILED}"
    return (
        f"label_replace(\n"
        f"  max by ({job}) (max_over_time({metric}[{w}])) == 0\n"
        f"    and on ({job}) max by ({job}) (last_over_time({metric}[{s.lookback}] offset {w}))\n"
        f"    {quiet(s, done)},\n"
        f'  "source", "{source}", "", ""\n'
        ")"
    )


def alerts(s: Settings) -> list[dict[str, Any]]:
    """Per job: an endpoint down, RPO/RTO high, DDL failed or alarmed, abnormal rows, a failed job
    nearing its expiry, and the replication-health data itself unreadable."""
    job = labels(s, "job_id")
    endpoints = ENDPOINTS_TEMPLATE.replace("LOOKBACK", s.lookback)
    # DRS's own time of the monitor data: an old answer says nothing of the connections now.
    old_monitor = (
        f"unless on ({job}) time() - {last('huaweicloud_drs_monitor_data_timestamp_seconds', s)} > {s.stale_seconds}"
    )
    # A job whose latest status is known and not failed (resumed, retried): its expiry is over.
    not_failed = f'unless on ({job}) job_id_status:huaweicloud_drs_job_info:latest{{status!~"{FAILED}", status!=""}}'
    ddl_failed = f"{last('huaweicloud_drs_ddl_failed', s)} > 0"
    return [
        _alert(
            "EndpointDown",
            # One alert per job whichever side is down: the description names them.
            f"count by ({job}) ({last('huaweicloud_drs_endpoint_up', s, 'endpoint')} == 0)\n"
            f"  {fresh(s, 'monitor_data')}\n  {old_monitor}\n  {quiet(s, NOT_CONNECTED)}",
            s.endpoint_down_for,
            # DRS retries the connection; JobFailed pages once it gives up, RPOHigh/ReplicationDelayHigh
            # say the cost meanwhile (and this inhibits them: one alert for the cause).
            "warning",
            "DRS cannot reach a database of a job.",
            "DRS reports the connection of job {{ $labels.job_id }} to its database(s) unhealthy for "
            f"{s.endpoint_down_for}: {endpoints}(huaweicloud_drs_endpoint_up); nothing is replicated over it.",
            s,
        ),
        _alert(
            "RPOHigh",
            f"{last('huaweicloud_drs_job_rpo_seconds', s)} > {s.rpo_seconds}\n  {fresh(s, 'rpo_rto')}\n  {quiet(s)}",
            s.rpo_rto_for,
            "warning",
            "A DRS disaster-recovery job's RPO is over its threshold.",
            "DRS reports an RPO (business database to DRS) of {{ $value | humanizeDuration }} for job "
            f"{{{{ $labels.job_id }}}} (threshold {s.rpo_seconds}s): a failover now would lose that much data.",
            s,
        ),
        _alert(
            "RTOHigh",
            f"{last('huaweicloud_drs_job_rto_seconds', s)} > {s.rto_seconds}\n  {fresh(s, 'rpo_rto')}\n  {quiet(s)}",
            s.rpo_rto_for,
            "warning",
            "A DRS disaster-recovery job's RTO is over its threshold.",
            "DRS reports an RTO (DRS to the disaster-recovery database) of {{ $value | humanizeDuration }} for job "
            f"{{{{ $labels.job_id }}}} (threshold {s.rto_seconds}s): a failover now would wait that long for the "
            "data DRS holds.",
            s,
        ),
        _alert(
            "DDLFailed",
            f"{ddl_failed}\n  {fresh(s, 'ddl_data')}",
            s.ddl_for,
            "warning",
            "A DDL statement of a DRS job failed on the destination.",
            "{{ $value }} active DDL alarm(s) of DRS job {{ $labels.job_id }} are DDL statements that failed on "
            "the destination (huaweicloud_drs_ddl_failed): its schema differs from the source's. The status page "
            "lists them.",
            s,
        ),
        _alert(
            "DDLAlarmActive",
            # A failed DDL is among the alarms: DDLFailed says it, this one only while none failed.
            f"{last('huaweicloud_drs_ddl_alarms', s)} > 0\n  {fresh(s, 'ddl_data')}\n  unless on ({job}) {ddl_failed}",
            s.ddl_for,
            "warning",
            "A DRS job has active DDL alarms.",
            "DRS job {{ $labels.job_id }} has {{ $value }} active DDL alarm(s) (huaweicloud_drs_ddl_alarms): DDL "
            "statements DRS flagged for a look. The status page lists them.",
            s,
        ),
        _alert(
            "DirtyRows",
            # A count over the exporter's look-back window, not a counter: increase() of it would fall as
            # rows leave the window and miss a steady trickle. Any row in the window is a row not applied.
            f"sum by ({job}) ({last('huaweicloud_drs_dirty_rows', s, 'phase')}) > 0\n  {fresh(s, 'dirty_data')}",
            s.dirty_rows_for,
            "warning",
            "Rows of a DRS job failed to apply on the destination.",
            "DRS reports {{ $value }} abnormal row(s) of job {{ $labels.job_id }} within the exporter's look-back "
            "window (huaweicloud_drs_dirty_rows, by phase): those rows are missing or different on the destination.",
            s,
        ),
        _alert(
            "FailedJobExpiring",
            f"{last('huaweicloud_drs_job_failed_expiry_timestamp_seconds', s)} < time() + {s.failed_expiry_seconds}\n"
            f"  {fresh(s, 'job_details')}\n  {not_failed}",
            s.failed_expiry_for,
            "warning",
            "A failed DRS job ends by itself soon.",
            "DRS ends failed job {{ $labels.job_id }} automatically at {{ $value | humanizeTimestamp }} (expired_days; "
            f"warned {s.failed_expiry_seconds}s ahead): retry or resume it before then, or it has to start over.",
            s,
        ),
        _alert(
            "HealthDataFailing",
            project(
                f"count by ({job}) (\n" + "\n  or ".join(failing(s, source) for source in SOURCES) + "\n)",
                s,
            ),
            "0s",
            "warning",
            "DRS replication-health data of a job cannot be read.",
            "{{ $value }} replication-health source(s) of DRS job {{ $labels.job_id }} have not read it once in "
            f"{s.health_failing_for} (huaweicloud_drs_<source>_up): their alerts (endpoints, RPO/RTO, DDL, "
            "abnormal rows, expiry) cannot fire for it.",
            s,
        ),
    ]
