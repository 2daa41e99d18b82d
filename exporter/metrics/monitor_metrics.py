"""Metric families of DRS monitor data (delay by side, endpoint health, transfer totals), and their source."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from ..drs.monitor import MonitorData
from ..sources.monitor import MonitorReader, MonitorSnapshot
from .source import PerJobSource, SourceContext, reading_families

ENDPOINT_LABELS = ["job_id", "endpoint"]


def monitor_families(snapshot: MonitorSnapshot) -> Iterator[Metric]:
    """Every monitor-data family, in a fixed order; none at all while no job has monitor data on."""
    if not snapshot.jobs:
        return
    up, success, with_data = reading_families(snapshot, "monitor_data", "monitor data")
    stamp = GaugeMetricFamily(
        "huaweicloud_drs_monitor_data_timestamp_seconds",
        "Time of the monitor data as DRS reports it (update_time), as Unix time.",
        labels=["job_id"],
    )
    endpoint_up = GaugeMetricFamily(
        "huaweicloud_drs_endpoint_up",
        "1 if DRS reports the connection to the job's source or target database healthy, else 0.",
        labels=ENDPOINT_LABELS,
    )
    delay = GaugeMetricFamily(
        "huaweicloud_drs_endpoint_delay_seconds",
        "Replication delay on the source or target side of the job, as DRS reports it (src_delay, dst_delay).",
        labels=ENDPOINT_LABELS,
    )
    rps = GaugeMetricFamily(
        "huaweicloud_drs_endpoint_requests_per_second",
        "Requests per second at the job's source or target database, as DRS reports it.",
        labels=ENDPOINT_LABELS,
    )
    rows = GaugeMetricFamily(
        "huaweicloud_drs_job_transferred_rows",
        "Rows the job has transferred, as DRS reports it (trans_lines).",
        labels=["job_id"],
    )
    data_bytes = GaugeMetricFamily(
        "huaweicloud_drs_job_transferred_bytes",
        "Bytes the job has transferred, as DRS reports it (trans_data, in MB read as 2^20 bytes).",
        labels=["job_id"],
    )
    for job_id, data in with_data:
        if data.updated_at is not None:
            stamp.add_metric([job_id], data.updated_at)
        for name, side in data.endpoints().items():
            if side.up is not None:
                endpoint_up.add_metric([job_id, name], 1.0 if side.up else 0.0)
            if side.delay_seconds is not None:
                delay.add_metric([job_id, name], side.delay_seconds)
            if side.requests_per_second is not None:
                rps.add_metric([job_id, name], side.requests_per_second)
        if data.transferred_rows is not None:
            rows.add_metric([job_id], data.transferred_rows)
        if data.transferred_bytes is not None:
            data_bytes.add_metric([job_id], data.transferred_bytes)
    yield from (up, success, stamp, endpoint_up, delay, rps, rows, data_bytes)


class MonitorSource(PerJobSource[MonitorData]):
    """Monitor data of the jobs with ``monitor_data`` on, read in the background (never waited for)."""

    def __init__(self, context: SourceContext) -> None:
        interval = context.config.monitor_refresh_interval
        super().__init__(context, MonitorReader, "monitor_data", interval, monitor_families)
