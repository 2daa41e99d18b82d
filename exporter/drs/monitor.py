"""Monitor data: delay split by side, endpoints reachable, throughput (v5 ``monitor-data``, v3 DR monitoring).

``GET /v5/{project_id}/jobs/{job_id}/monitor-data`` answers one flat object per job (any job type
but Cassandra DR); ``POST /v3/{project_id}/jobs/disaster-recovery-monitoring-data`` answers the
same picture for DR jobs, many per call, under ``results[].data_guard_minitor`` (sic, the SDK's
and the API page's spelling; ``data_guard_monitor`` is accepted too). Field names (SDK
``huaweicloudsdkdrs`` 3.1.219, ``ShowMonitorDataResponse`` and ``QueryDataGuardMonitorResponse``):

=====================  ==============================  ==========================================
v5                     v3 DR                           read as
=====================  ==============================  ==========================================
``is_src_normal``      ``src_normal``                  ``source.up``
``src_delay``          ``sr_delay`` / ``src_delay``    ``source.delay_seconds`` (unit: see below)
``src_rps``/``src_io`` same                            requests / IO per second
``trans_data`` (MB)    ``trans_inMB`` / ``trans_in_mb``  ``transferred_bytes`` (MB read as 2**20 bytes)
``trans_lines``        same                            ``transferred_rows``
``apply_rate`` (B/s)   ``migration_bytes_per_second``  ``apply_bytes_per_second``
``update_time``        (none)                          ``updated_at`` (Unix seconds)
=====================  ==============================  ==========================================

The unit of ``src_delay``/``dst_delay`` is documented nowhere (neither the SDK nor the API
pages drs_03_0206 and drs_03_0119 name one). DRS shows delays in seconds elsewhere (batch
progress ``incre_trans_delay``), so a bare number is read as seconds unless the caller says
``delay_unit="ms"``; a string with its own unit (``"1500ms"``) is read as written. The DRS node's
CPU, memory and disk are left out on purpose: cloudeye-exporter exports them (``SYS.DRS``).

Public API: :class:`MonitorData`, :class:`Endpoint`, :func:`parse_monitor_data`,
:func:`parse_dr_monitoring`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .batch import Batch, parse_batch
from .compare import timestamp
from .fields import boolean, first, invalid, json_object, non_negative, seconds, text

OPERATION = "show_monitor_data"
DR_OPERATION = "show_dr_monitoring_data"
MEGABYTE = 2**20  # "MB" in DRS answers; its base is not documented either way


@dataclass(frozen=True)
class Endpoint:
    """One side (source or target database) of a job as DRS sees it; None where the answer gave nothing usable."""

    up: bool | None
    delay_seconds: float | None
    requests_per_second: float | None
    io_per_second: float | None
    offset: str  # replication position (binlog file:pos, GTID, LSN ...), as written, cut to 200 characters


@dataclass(frozen=True)
class MonitorData:
    """A job's monitor data."""

    job_id: str
    source: Endpoint
    target: Endpoint
    node_offset: str
    apply_bytes_per_second: float | None
    transferred_rows: float | None
    transferred_bytes: float | None
    updated_at: float | None  # Unix seconds of the data (v5 only)

    def endpoints(self) -> dict[str, Endpoint]:
        """``{"source": ..., "target": ...}``: the label values of ``endpoint``."""
        return {"source": self.source, "target": self.target}


def _side(item: dict[str, Any], normal: tuple[str, ...], prefix: tuple[str, ...], unit: str) -> Endpoint:
    return Endpoint(
        up=boolean(first(item, *normal)),
        delay_seconds=seconds(first(item, *(f"{p}_delay" for p in prefix)), unit),
        requests_per_second=non_negative(first(item, *(f"{p}_rps" for p in prefix))),
        io_per_second=non_negative(first(item, *(f"{p}_io" for p in prefix))),
        offset=text(first(item, *(f"{p}_offset" for p in prefix))),
    )


def _megabytes(value: Any) -> float | None:
    number = non_negative(value)
    return number * MEGABYTE if number is not None else None


def _monitor(job_id: str, item: dict[str, Any], unit: str) -> MonitorData:
    # Both spellings of every field, whichever API the item came from: the v3 page and SDK
    # already disagree on some (cpuUsed_percent / cpu_used_percent), so others may drift too.
    return MonitorData(
        job_id=job_id,
        source=_side(item, ("is_src_normal", "src_normal"), ("src", "sr"), unit),
        target=_side(item, ("is_dst_normal", "dst_normal"), ("dst",), unit),
        node_offset=text(item.get("node_offset")),
        apply_bytes_per_second=non_negative(first(item, "apply_rate", "migration_bytes_per_second")),
        transferred_rows=non_negative(item.get("trans_lines")),
        transferred_bytes=_megabytes(first(item, "trans_data", "trans_inMB", "trans_in_mb")),
        updated_at=timestamp(item.get("update_time")),
    )


def parse_monitor_data(body: Any, job_id: str, operation: str = OPERATION, delay_unit: str = "s") -> MonitorData:
    """The v5 answer of one job; ``invalid_response`` when it is no object or carries no monitor field at all."""
    item = json_object(body, operation)
    data = _monitor(job_id, item, delay_unit)
    if data.source == data.target == Endpoint(None, None, None, None, "") and data.updated_at is None:
        raise invalid("answer has no monitor field", operation, item)
    return data


def parse_dr_monitoring(
    body: Any, asked: list[str], operation: str = DR_OPERATION, delay_unit: str = "s"
) -> Batch[MonitorData]:
    """The v3 DR monitoring answer: one entry per DR job; an entry without its monitor object is that job's error."""

    def one(job_id: str, item: dict[str, Any]) -> MonitorData | None:
        data = first(item, "data_guard_minitor", "data_guard_monitor")
        return _monitor(job_id, data, delay_unit) if isinstance(data, dict) else None

    return parse_batch(body, asked, operation, one, id_keys=("id", "job_id"))
