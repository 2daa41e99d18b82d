"""Replication health of a simulated job: monitor data, RPO/RTO, DDL alarms, abnormal rows, health comparisons.

A scenario job may carry (every key optional)::

    health:
      monitor: {src_delay: 3, dst_delay: 1, src_normal: true, dst_normal: true, src_rps: 120, dst_rps: 118,
                apply_rate: 2048, trans_lines: 100000, trans_data: 512}      # v5 monitor-data / v3 DR monitoring
      rpo_ms: 1500                 # batch-rpo-and-rto delays (DR jobs; other jobs answer the entry DRS.M00304)
      rto_ms: 800
      rpo_error: DRS.M05003        # this job's entry of batch-rpo-and-rto carries this error code instead
      apply_rows_rate: 120         # batch-progress extras (-1 outside the incremental phase)
      apply_bytes_rate: 40960
      progress_map: {structure: "100%", data: "40%", index: "-1"}
      failed_reason: "..."         # batch-detail
      error_code: DRS.M00004       # batch-status/detail: the error code of a job in a *_FAILED status
      expired_days: 30             # batch-detail (absent: left out, as in the SDK's QueryJobResp)
      full_transfer_done_ago: 3600 # batch-detail full_transfer_complete_time, seconds ago
      failed_ago: 600              # batch-detail update_time, seconds ago (absent: when the simulator started)
      ddl: [{text: "ALTER TABLE secret_marker_ddl ...", status: 1, exe_result: false, ago: 120}]
      dirty: {incremental: 3, full: 1, tables: 2, sql: "UPDATE secret_marker_sql SET c=?", spread: 300}
      policy: {status: OPEN, interval_hour: 24, types: [lines, object_comparison], next_in: 3600}
      comparisons: [{id: h-1, type: lines, status: SUCCESSFUL, started_ago: 600},
                    {type: object_comparison, objects: {TABLE: [10, 9]}}, {type: lines, status: RUNNING}]
    health_fault: status:503            # a transport fault (faults.FAULTS) of every health API of the job
    health_answers: {show_compare_policy: error_body}   # one health API's answers distorted (ANSWER_FAULTS)

``POST /_sim/jobs/{id}`` with ``{"health": {...}}`` merges the given keys into the job's health.
Abnormal rows keep their ``sql`` even when asked with ``anonymize_mode=true`` (the simulator masks
nothing), so that tests can prove the exporter never lets it out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .compare_scenario import ANSWER_FAULTS, TASK_STATUSES, iso

HEALTH_OPERATIONS = (
    "show_monitor_data",
    "show_dr_monitoring_data",
    "batch_rpo_rto",
    "batch_status",
    "batch_detail",
    "list_ddl_alarms",
    "show_dirty_data",
    "list_health_compare_jobs",
    "show_health_compare_job",
    "show_health_object_compare",
    "show_compare_policy",
    "show_compare_progress",
)
HEALTH_TYPES = ("object_comparison", "lines", "account")
_KEYS = frozenset(
    {
        *("monitor", "rpo_ms", "rto_ms", "rpo_error", "error_code", "apply_rows_rate", "apply_bytes_rate"),
        *(
            "progress_map",
            "failed_reason",
            "expired_days",
            "full_transfer_done_ago",
            "failed_ago",
            "ddl",
            "dirty",
            "policy",
        ),
        "comparisons",
    }
)

ROW_AGE_SECONDS = 5.0  # age of the newest abnormal row


@dataclass
class SimHealthRun:
    """One health comparison."""

    id: str
    type: str
    status: str
    start: float
    end: float | None
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The item of the health-compare-jobs list."""
        return {
            "id": self.id,
            "type": self.type,
            "status": self.status,
            "start_time": iso(self.start),
            "end_time": iso(self.end) if self.end is not None else "",
            "compute_type": "master",
            "database_info": {},
        }


@dataclass
class SimHealth:
    """What a job's health APIs answer; ``raw`` is the scenario mapping (admin changes merge into it)."""

    raw: dict[str, Any] = field(default_factory=dict)
    runs: list[SimHealthRun] = field(default_factory=list)
    ddl_base: float = field(default_factory=time.time)

    def get(self, key: str, default: Any = None) -> Any:
        """A scenario value."""
        return self.raw.get(key, default)

    def ddl_items(self) -> list[dict[str, Any]]:
        """Every DDL alarm record, in sequence order."""
        out = []
        for n, item in enumerate(self.get("ddl") or [], start=1):
            when = self.ddl_base - float(item.get("ago", 60))
            out.append(
                {
                    "seqno": int(item.get("seqno", n)),
                    "checkpoint": f"mysql-bin.000001:{1000 * n}",
                    "status": int(item.get("status", 1)),
                    "ddl_timestamp": int(when * 1000),
                    "ddl_text": str(item.get("text", f"ALTER TABLE t{n} ADD COLUMN c INT")),
                    "exe_result": bool(item.get("exe_result", True)),
                    "record_time": int(when * 1000),
                    "clean_time": 0,
                }
            )
        return out

    def dirty_items(self, phase: str, now: float) -> list[dict[str, Any]]:
        """Abnormal rows of ``phase`` (``incremental`` or ``full``), newest first, spread over ``spread`` seconds."""
        dirty = self.get("dirty") or {}
        rows = int(dirty.get(phase, 0))
        tables = max(1, int(dirty.get("tables", 1)))
        spread = float(dirty.get("spread", 300))
        sql = str(dirty.get("sql", "UPDATE t SET c=? WHERE id=?"))
        # The newest row is a few seconds old: one dated "now" fell after the end_time of a reader
        # whose clock read happened a second boundary earlier (a test under load saw 3 of 4 rows).
        newest = now - ROW_AGE_SECONDS
        return [
            {
                "db_name": "db_0000",
                "schema_name": "",
                "table_name": f"table_{i % tables:07d}",
                "error_sql": sql,
                "error_time": iso(newest - spread * i / max(1, rows)),
                "error_msg": f"Duplicate entry for key 'PRIMARY' ({sql})",
            }
            for i in range(rows)
        ]


def health(raw: Any, job_id: str, old: SimHealth | None = None) -> SimHealth:
    """A job's health from its scenario mapping, merged into ``old`` (admin changes)."""
    if raw is None:
        return old or SimHealth()
    if not isinstance(raw, dict):
        raise ValueError(f"job {job_id}: health must be a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"job {job_id}: unknown health keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    merged = {**(old.raw if old else {}), **raw}
    for key in ("ddl",):
        if not isinstance(merged.get(key) or [], list):
            raise ValueError(f"job {job_id}: health {key} must be a list")
    for key in ("monitor", "dirty", "policy", "progress_map"):
        if not isinstance(merged.get(key) or {}, dict):
            raise ValueError(f"job {job_id}: health {key} must be a mapping")
    runs = _runs(merged.get("comparisons"), job_id) if "comparisons" in raw or old is None else old.runs
    return SimHealth(merged, runs, old.ddl_base if old is not None and "ddl" not in raw else time.time())


def _runs(raw: Any, job_id: str) -> list[SimHealthRun]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"job {job_id}: health comparisons must be a list")
    out = []
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"job {job_id}: each health comparison must be a mapping")
        kind, status = str(item.get("type", "lines")), str(item.get("status", "SUCCESSFUL"))
        if kind not in HEALTH_TYPES or status not in TASK_STATUSES:
            raise ValueError(f"job {job_id}: health comparison type in {HEALTH_TYPES}, status in {TASK_STATUSES}")
        start = time.time() - float(item.get("started_ago", 600 * n))
        running = status in ("RUNNING", "WAITING_FOR_RUNNING", "FULL_DOING", "INCRE_DOING")
        objects = {str(k): (int(v[0]), int(v[1])) for k, v in (item.get("objects") or {"TABLE": [10, 10]}).items()}
        end = None if running else start + float(item.get("duration", 60))
        out.append(SimHealthRun(str(item.get("id", f"{job_id}-health-{n}")), kind, status, start, end, objects))
    return out


def health_answers(raw: Any, job_id: str) -> dict[str, str]:
    """The ``health_answers`` of a job: health operation -> one of ``ANSWER_FAULTS``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"job {job_id}: health_answers must map operations to faults")
    for operation, fault in raw.items():
        if operation not in HEALTH_OPERATIONS or fault not in ANSWER_FAULTS:
            raise ValueError(
                f"job {job_id}: health_answers operations are {', '.join(HEALTH_OPERATIONS)}; "
                f"faults {', '.join(ANSWER_FAULTS)}"
            )
    return {str(k): str(v) for k, v in raw.items()}


def demo_health_jobs() -> list[dict[str, Any]]:
    """The jobs ``make demo`` needs for replication health: a DR job, a DDL alarm, abnormal rows, a failed job.

    Their DDL text and SQL carry the markers ``secret_marker_ddl`` and ``secret_marker_sql`` that
    the leak tests look for in logs, ``/metrics``, ``/`` and ``/status.json``.
    """
    return [
        {
            "id": "demo-dr",
            "name": "demo-dr",
            "job_type": "cloudDataGuard",
            "objects": {"table": 50},
            "health": {
                "rpo_ms": 1500,
                "rto_ms": 800,
                "monitor": {"src_delay": 2, "dst_delay": 1},
                "policy": {"status": "OPEN", "interval_hour": 24, "types": ["lines", "object_comparison"]},
                "comparisons": [
                    {"id": "demo-health-objects", "type": "object_comparison", "objects": {"TABLE": [50, 50]}},
                    {"id": "demo-health-rows", "type": "lines", "started_ago": 1200},
                ],
            },
        },
        {
            "id": "demo-ddl",
            "name": "demo-ddl",
            "job_type": "sync",
            "objects": {"table": 50},
            "health": {
                "ddl": [{"text": "ALTER TABLE secret_marker_ddl ADD COLUMN note TEXT", "exe_result": False, "ago": 300}]
            },
        },
        {
            "id": "demo-dirty",
            "name": "demo-dirty",
            "objects": {"table": 50},
            "health": {
                "dirty": {"incremental": 4, "tables": 2, "sql": "UPDATE secret_marker_sql SET note=? WHERE id=?"}
            },
        },
        {
            # Failed 11 days ago in the incremental phase (batch-detail says why): it ends by itself in
            # about 3 days (DRS's default of 14), a failed job nearing its automatic expiry.
            "id": "demo-failed",
            "name": "demo-failed",
            "status": "INCRE_TRANSFER_FAILED",
            "objects": {"table": 20},
            "health": {
                "error_code": "DRS.M00004",
                "failed_reason": "The target database refused the connection: access denied for the DRS account.",
                "full_transfer_done_ago": 12 * 86400,
                "failed_ago": 11 * 86400,
            },
        },
    ]
