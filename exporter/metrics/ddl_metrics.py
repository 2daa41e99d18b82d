"""Metric families of DRS DDL alarms (active alarms, failed DDL, the latest alarm's time), and their source.

The DDL text is customer SQL: no family carries it, in a label or anywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from ..drs.ddl import DdlAlarms
from ..sources.ddl import DdlReader, DdlSnapshot
from .perjob import PerJobSource, health_families
from .source import SourceContext


def ddl_families(snapshot: DdlSnapshot) -> Iterator[Metric]:
    """Every DDL-alarm family, in a fixed order; none at all while no job has DDL alarms on."""
    if not snapshot.jobs:
        return
    up, success = health_families("huaweicloud_drs_ddl_data", "DDL alarms", snapshot)
    alarms = GaugeMetricFamily(
        "huaweicloud_drs_ddl_alarms",
        "Active DDL alarms of the job (DRS ddl list, status=1).",
        labels=["job_id"],
    )
    failed = GaugeMetricFamily(
        "huaweicloud_drs_ddl_failed",
        "Active DDL alarms of the job whose DDL failed on the target (exe_result false).",
        labels=["job_id"],
    )
    latest = GaugeMetricFamily(
        "huaweicloud_drs_ddl_latest_alarm_timestamp_seconds",
        "Unix time of the newest active DDL alarm's DDL (ddl_timestamp); no sample without an active alarm.",
        labels=["job_id"],
    )
    for job_id, job in sorted(snapshot.jobs.items()):
        data = job.data
        if data is None:
            continue
        alarms.add_metric([job_id], float(data.active))
        failed.add_metric([job_id], float(data.failed))
        if data.latest is not None:
            latest.add_metric([job_id], data.latest)
    yield from (up, success, alarms, failed, latest)


class DdlSource(PerJobSource[DdlAlarms]):
    """Active DDL alarms of the jobs with ``ddl_alarms`` on, read in the background (never waited for)."""

    SWITCH = "ddl_alarms"

    def __init__(self, context: SourceContext) -> None:
        self.build(context, DdlReader, context.config.ddl_refresh_interval)

    def families(self, snapshot: DdlSnapshot) -> Iterator[Metric]:
        """The DDL-alarm families."""
        return ddl_families(snapshot)
