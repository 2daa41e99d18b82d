"""Comparison tasks of a simulated job: row (``lines``) and value (``contents``) comparisons, object level.

A scenario job may carry::

    comparisons:
      - {id: cmp-1, type: lines, status: SUCCESSFUL, tables: 40, statuses: [0, 3, 23], started_ago: 3600}
      - {type: contents, status: RUNNING, tables: 40}
    object_comparison: {status: SUCCESSFUL, objects: {DB: [2, 2], TABLE: [40, 39]}}
    compare_answers: {line_detail: unicode_status, list_compare_jobs: no_list}

``compare_answers`` makes one comparison API of the job misbehave (``ANSWER_FAULTS``), the others
answering as usual; ``compare_fault`` (a transport fault of ``faults.FAULTS``) hits all of them.

Table ``i`` is ``db_{i // per_db}``.``table_{i}`` (the progress-data names of object type ``table``);
``statuses`` gives the status codes (0-27) of the first tables, the rest are consistent (2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TASK_STATUSES = (
    "RUNNING",
    "WAITING_FOR_RUNNING",
    "SUCCESSFUL",
    "FAILED",
    "CANCELLED",
    "TIMEOUT_INTERRUPT",
    "FULL_DOING",
    "INCRE_DOING",
)
IN_FLIGHT = ("RUNNING", "WAITING_FOR_RUNNING", "FULL_DOING", "INCRE_DOING")
END_TIME_STYLES = ("iso", "missing", "empty", "null")
# How one comparison API's answers misbehave (scenario or admin ``compare_answers: {operation: fault}``).
ANSWER_FAULTS = (
    "no_list",  # 200 with the total but without the list
    "null_list",  # 200 whose list is null
    "not_list",  # 200 whose list is a mapping
    "error_body",  # 200 with a DRS error body (DRS.10000024) and nothing else
    "unicode_status",  # every item's status is "²" (str.isdigit() says yes, int() says no)
    "endless",  # full pages forever: the items again and again, total a billion
    "nested",  # 200 with JSON nested 100,000 deep
    "status:503",  # 503 APIGW.0613
    "sql_error",  # 400 whose error_msg quotes customer SQL (QUOTED_SQL_ERROR), as MySQL-style errors do
    "sql_error_body",  # 200 with a DRS error body whose error_msg quotes customer SQL
)
# The API's message of the sql_error faults: customer SQL that must never reach a log above debug.
QUOTED_SQL_ERROR = "You have an error in your SQL syntax near 'ALTER TABLE secret_marker_quoted ADD c INT'"
ANSWER_OPERATIONS = (
    "list_compare_jobs",
    "line_overview",
    "line_detail",
    "content_overview",
    "content_detail",
    "show_object_compare_overview",
)
# content-detail item status per status code of a table (compare.STATUS_CODES):
# 1 comparing, 3 pending, 4 cancelled, else 2 completed.
_CONTENT_STATE = {5: 1, 6: 3, 7: 4}


def iso(t: float) -> str:
    """UTC ISO-8601 to the second, as the comparison list writes times."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimComparison:
    """One comparison task and the tables it compared."""

    id: str
    type: str = "lines"
    status: str = "SUCCESSFUL"
    start: float = field(default_factory=lambda: time.time() - 3600)
    end: float | None = None
    tables: int = 10
    per_db: int = 500
    statuses: list[int] = field(default_factory=list)
    end_time_style: str = "iso"

    def summary(self) -> dict[str, Any]:
        """The item of the comparison list."""
        item: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "options": {},
            "start_time": iso(self.start),
            "status": self.status,
            "export_status": "INIT",
            "report_remain_seconds": -1,
        }
        if self.end is not None and self.end_time_style == "iso":
            item["end_time"] = iso(self.end)
        elif self.end_time_style in ("empty", "null"):
            item["end_time"] = "" if self.end_time_style == "empty" else None
        return item

    def code(self, index: int) -> int:
        """The status code (compare.STATUS_CODES) of table ``index``."""
        if self.status in IN_FLIGHT:
            return 5
        return self.statuses[index] if index < len(self.statuses) else 2

    def databases(self) -> list[str]:
        """Source database names, in order."""
        return [f"db_{d:04d}" for d in range(0, (self.tables + self.per_db - 1) // self.per_db)]

    def indexes(self, db: str | None) -> range:
        """Tables of one database (every table when ``db`` is None or unknown)."""
        if db is None or not db.startswith("db_") or not db[3:].isdigit():
            return range(self.tables) if db is None else range(0)
        first = int(db[3:]) * self.per_db
        return range(first, min(self.tables, first + self.per_db))

    def rows(self, index: int) -> tuple[int, int]:
        """Source and target row counts of table ``index``."""
        source = 1000 + (index * 7919) % 100_000
        code = self.code(index)
        if code == 0:
            return source, source - (index % 5 + 1)
        if code in (3, 12, 22):
            return source, 0
        return source, source

    def overview(self, db: str, lines: bool) -> dict[str, Any]:
        """The per-database item of line-overview (``lines``) or content-overview."""
        codes = [self.code(i) for i in self.indexes(db)]
        bad = sum(1 for c in codes if c == 0)
        uncomparable = sum(1 for c in codes if c not in (0, 2, 5, 6))
        running = any(c in (5, 6) for c in codes)
        status = 5 if running else 0 if bad else 2 if not uncomparable else 4
        names = {"source_db_name": db, "target_db_name": db} if lines else {"source_db": db, "target_db": db}
        return {
            **names,
            "status": status,
            "compare_num": len(codes),
            "compare_end_num": sum(1 for c in codes if c not in (5, 6)),
            "data_inconsistent_num": bad,
            "uncomparable_num": uncomparable,
        }

    def line_item(self, index: int) -> dict[str, Any]:
        """A line-detail item: no database name, as in the real API."""
        source, target = self.rows(index)
        name = f"table_{index:07d}"
        return {
            "source_table_name": name,
            "target_table_name": name,
            "source_row_num": source,
            "target_row_num": target,
            "difference_row_num": source - target,
            "status": self.code(index),
            "compare_line_config_filter": "",
        }

    def content_item(self, index: int) -> dict[str, Any]:
        """A content-detail item."""
        source, target = self.rows(index)
        code = self.code(index)
        name, db = f"table_{index:07d}", f"db_{index // self.per_db:04d}"
        return {
            "source_db": db,
            "target_db": db,
            "source_table_name": name,
            "target_table_name": name,
            "source_row_num": source,
            "target_row_num": target,
            "difference_row_num": source - target,
            "line_compare_result": source == target,
            "content_compare_result": code == 2 if code in (0, 2) else None,
            "message": "" if code in (0, 2, 5, 6, 7) else f"could not compare (status {code})",
            "compare_line_config_filter": "",
            "status": _CONTENT_STATE.get(code, 2),
            "complete_shard_count": 1,
            "total_shard_count": 1,
            "progress": 100.0 if code not in (5, 6) else 40.0,
        }


@dataclass
class SimObjectComparison:
    """The latest object-level comparison: object counts per type on both sides."""

    id: str
    status: str = "SUCCESSFUL"
    start: float = field(default_factory=lambda: time.time() - 3600)
    objects: dict[str, tuple[int, int]] = field(default_factory=dict)

    def answer(self) -> dict[str, Any]:
        """The body of ``GET …/object/compare``."""
        running = self.status in IN_FLIGHT
        return {
            "compare_job_id": self.id,
            "status": self.status,
            "create_time": iso(self.start),
            "start_time": iso(self.start),
            "export_status": "INIT",
            "report_remain_seconds": -1,
            "error_msg": "",
            "compare_result": [
                {
                    "type": kind,
                    "source_count": src,
                    "target_count": dst,
                    "status": 3 if running else 0 if src != dst else 2,
                }
                for kind, (src, dst) in self.objects.items()
            ],
        }


def comparison(raw: Any, job_id: str, n: int) -> SimComparison:
    """A comparison from its scenario (or admin) mapping."""
    if not isinstance(raw, dict):
        raise ValueError(f"job {job_id}: each comparison must be a mapping")
    status = str(raw.get("status", "SUCCESSFUL"))
    kind = str(raw.get("type", "lines"))
    style = str(raw.get("end_time", "iso"))
    if status not in TASK_STATUSES:
        raise ValueError(f"job {job_id}: comparison status must be one of {TASK_STATUSES}")
    if kind not in ("lines", "contents"):
        raise ValueError(f"job {job_id}: comparison type must be lines or contents")
    if style not in END_TIME_STYLES:
        raise ValueError(f"job {job_id}: comparison end_time must be one of {END_TIME_STYLES}")
    start = time.time() - float(raw.get("started_ago", 3600))
    duration = float(raw.get("duration", 60))
    codes = [int(c) for c in raw.get("statuses", [])]
    if any(not 0 <= c <= 27 for c in codes):
        raise ValueError(f"job {job_id}: comparison statuses are codes 0-27")
    return SimComparison(
        id=str(raw.get("id", f"{job_id}-cmp-{n}")),
        type=kind,
        status=status,
        start=start,
        end=None if status in IN_FLIGHT else start + duration,
        tables=int(raw.get("tables", 10)),
        per_db=max(1, int(raw.get("per_db", 500))),
        statuses=codes,
        end_time_style=style,
    )


def comparisons(raw: Any, job_id: str) -> list[SimComparison]:
    """The comparisons of a scenario job."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ValueError(f"job {job_id}: comparisons must be a list")
    return [comparison(item, job_id, n) for n, item in enumerate(raw, start=1)]


def object_comparison(raw: Any, job_id: str) -> SimObjectComparison | None:
    """The object-level comparison of a scenario job."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("objects", {}), dict):
        raise ValueError(f"job {job_id}: object_comparison must be a mapping with objects: {{TYPE: [src, dst]}}")
    status = str(raw.get("status", "SUCCESSFUL"))
    if status not in TASK_STATUSES:
        raise ValueError(f"job {job_id}: object_comparison status must be one of {TASK_STATUSES}")
    objects = {str(k): (int(v[0]), int(v[1])) for k, v in raw.get("objects", {}).items()}
    return SimObjectComparison(
        str(raw.get("id", f"{job_id}-objects")), status, time.time() - float(raw.get("started_ago", 3600)), objects
    )


def answer_faults(raw: Any, job_id: str) -> dict[str, str]:
    """The ``compare_answers`` of a scenario job: comparison operation -> one of ``ANSWER_FAULTS``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"job {job_id}: compare_answers must map operations to faults")
    for operation, fault in raw.items():
        if operation not in ANSWER_OPERATIONS:
            raise ValueError(f"job {job_id}: compare_answers operations are {', '.join(ANSWER_OPERATIONS)}")
        if fault not in ANSWER_FAULTS:
            raise ValueError(f"job {job_id}: compare_answers faults are {', '.join(ANSWER_FAULTS)}")
    return {str(k): str(v) for k, v in raw.items()}
