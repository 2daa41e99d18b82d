"""Validation of DRS comparison answers (row and value comparisons) into typed values.

The field names drift between APIs (``source_db_name`` / ``source_db``, ``difference_row_num``
/ ``diff_row_num``, ``count`` / ``total_count``), counts come as numbers or numeric strings,
and statuses as the integer codes 0-27 or as string enums: every spelling is accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import INVALID_RESPONSE, DRSAPIError, error_from_body
from .progress import parse_create_time, safe_text

COMPARE_TYPES = ("lines", "contents")

# The integer `status` of line-overview, line-detail and content-overview items (codes 0-27 in Huawei's DRS
# API reference; 1 and 24-26 undefined) -> stable metric names (the list: docs/configuration.md).
STATUS_CODES: Mapping[int, str] = {
    0: "inconsistent",
    2: "consistent",
    3: "target_missing",  # destination DB/table missing
    4: "failed",
    5: "comparing",
    6: "waiting",
    7: "cancelled",
    8: "empty",  # source DB empty
    9: "empty",  # destination DB empty
    10: "empty",  # both empty
    11: "source_missing",
    12: "target_missing",
    13: "source_missing",  # neither table exists
    14: "connection_failed",  # source
    15: "connection_failed",  # destination
    16: "sql_timeout",  # source
    17: "sql_timeout",  # destination
    18: "sql_error",  # source
    19: "sql_error",  # destination
    20: "source_missing",  # neither database exists
    21: "source_missing",
    22: "target_missing",
    23: "too_large",  # 100 million rows or more: not compared
    27: "timed_out",
}
# The string enums of the legacy and v5 APIs (the v3 SDK misspells TARGET_DB_NOT_EXIST).
STATUS_TEXTS: Mapping[str, str] = {
    "CONSISTENT": "consistent",
    "INCONSISTENT": "inconsistent",
    "COMPARING": "comparing",
    "WAITING_FOR_COMPARISON": "waiting",
    "FAILED_TO_COMPARE": "failed",
    "TARGET_DB_NOT_EXIST": "target_missing",
    "TARGET_DB_NOT_EXIT": "target_missing",
    "CAN_NOT_COMPARE": "failed",
}
# Every table status name, in the order the metrics document them.
TABLE_STATUSES = (
    "consistent",
    "inconsistent",
    "comparing",
    "waiting",
    "cancelled",
    "target_missing",
    "source_missing",
    "connection_failed",
    "sql_timeout",
    "sql_error",
    "empty",
    "too_large",
    "timed_out",
    "failed",
    "unknown",
)
# Comparison-task states: the `status` of the table/compare list and the object-level overview.
FINISHED = "SUCCESSFUL"
IN_FLIGHT = frozenset({"RUNNING", "WAITING_FOR_RUNNING", "FULL_DOING", "INCRE_DOING"})
_TASK_STATUS = re.compile(r"[A-Z][A-Z_]{0,39}")
_NUMERIC = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAIVE_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?")
# Object-level result status: 0 inconsistent, 2 consistent, 3 not finished.
OBJECT_STATUSES: Mapping[int, str] = {0: "inconsistent", 2: "consistent", 3: "comparing"}
# content-detail's own item status: "1 comparing, 2 completed, 3 pending, 4 cancelled", which one
# SDK renders with minus signs; both readings are accepted.
CONTENT_ITEM_STATUS: Mapping[int, str] = {1: "comparing", 2: "completed", 3: "waiting", 4: "cancelled"}


def status_name(value: Any) -> str:
    """The metric name of a per-table or per-database status: an integer code, a numeric string or a string enum.

    ``2``, ``2.0`` and ``"2.0"`` are the same code; only ASCII digits are numbers (``"²"`` is ``unknown``).
    """
    if isinstance(value, bool) or value is None:
        return "unknown"
    if isinstance(value, str) and not _NUMERIC.fullmatch(value.strip()):
        return STATUS_TEXTS.get(value.strip().upper(), "unknown")
    code = number(value)
    return STATUS_CODES.get(code, "unknown") if code is not None else "unknown"


def task_status(value: Any) -> str:
    """A comparison task's status as the API spells it, or ``UNKNOWN`` for anything else (bounded label values)."""
    if isinstance(value, str) and _TASK_STATUS.fullmatch(value.strip()):
        return value.strip()
    return "UNKNOWN"


def number(value: Any) -> int | None:
    """An integer, an integral float or a numeric string of ASCII digits; None when missing or garbage."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not _NUMERIC.fullmatch(text):
            return None  # int() would take "²"-like digits of other scripts and "1_000"
        if text.lstrip("+-").isdigit():
            return int(text)
        value = float(text)
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    return None


def row_count(value: Any) -> int | None:
    """A row count: a number of at least zero, else None (not exported)."""
    count = number(value)
    return count if count is not None and count >= 0 else None


def timestamp(value: Any) -> float | None:
    """Unix seconds from an ISO-8601 time or epoch (milli)seconds; None when absent, empty or garbage.

    The comparison APIs write UTC (``…Z``); a time without a zone is read as UTC too.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NAIVE_ISO.fullmatch(text):
            text += "Z"
        return parse_create_time(text)
    return parse_create_time(value)


def _text(item: Mapping[str, Any], *keys: str) -> str:
    """The first of ``keys`` present as a string (numbers are written out); "" when none is."""
    for key in keys:
        value = item.get(key)
        if isinstance(value, str):
            return safe_text(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return ""


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if item.get(key) is not None:
            return item[key]
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _invalid(why: str, operation: str) -> DRSAPIError:
    return DRSAPIError(INVALID_RESPONSE, why, status=200, operation=operation)


@dataclass(frozen=True)
class CompareRun:
    """One data-level comparison task of a job, as the comparison list describes it."""

    id: str
    compare_type: str
    status: str
    start_time: float | None
    end_time: float | None

    @property
    def finished(self) -> bool:
        """True when it ended successfully (its results never change again)."""
        return self.status == FINISHED

    @property
    def running(self) -> bool:
        """True while DRS is still comparing."""
        return self.status in IN_FLIGHT

    def order(self) -> tuple[float, float, str]:
        """Sort key for "latest": end time, else start time (a run without either is oldest), then id."""
        end = self.end_time if self.end_time is not None else -math.inf
        start = self.start_time if self.start_time is not None else -math.inf
        return (max(end, start), start, self.id)


@dataclass(frozen=True)
class Listing:
    """One page of a paged answer: its items and the total the API reports (None when absent)."""

    items: list[Any]
    total: int | None


def listing(body: Any, items_keys: tuple[str, ...], operation: str) -> Listing:
    """Items and total of a paged answer whose list may be under any of ``items_keys``.

    A missing (or null) list is only an empty one when the answer says its total is 0: otherwise the
    answer is an error (its own ``error_code`` if it carries one), never "no items", so that the last
    good data is kept rather than dropped.
    """
    if not isinstance(body, dict):
        raise _invalid("answer is not a JSON object", operation)
    items = next((body[key] for key in items_keys if body.get(key) is not None), None)
    raw_total = number(_first(body, "total_count", "count"))
    total = raw_total if raw_total is not None and raw_total >= 0 else None
    if items is None:
        found = error_from_body(body)
        if found is not None:
            raise DRSAPIError(found[0], found[1], status=200, operation=operation, from_api=True)
        if total != 0:
            raise _invalid(f"answer has no {items_keys[0]} list", operation)
        items = []
    if not isinstance(items, list):
        raise _invalid(f"{items_keys[0]} is not a list", operation)
    return Listing(items, total)


def parse_run(item: Any) -> CompareRun | None:
    """A comparison task of the list, or None when it has no id."""
    if not isinstance(item, dict):
        return None
    run_id = _text(item, "id", "compare_job_id", "compare_task_id")
    if not run_id:
        return None
    return CompareRun(
        id=run_id[:128],
        compare_type=_text(item, "type", "compare_type")[:32],
        status=task_status(_first(item, "status", "compare_task_status")),
        start_time=timestamp(_first(item, "start_time", "create_time")),
        end_time=timestamp(item.get("end_time")),
    )


def latest(runs: Iterable[CompareRun], compare_type: str) -> tuple[CompareRun | None, CompareRun | None]:
    """The latest run of ``compare_type``, and its latest finished run; list order is never relied on."""
    of_type = [r for r in runs if r.compare_type == compare_type]
    if not of_type:
        return None, None
    newest = max(of_type, key=_started)
    finished = [r for r in of_type if r.finished]
    return newest, max(finished, key=CompareRun.order) if finished else None


def _started(run: CompareRun) -> tuple[float, tuple[float, float, str]]:
    """Sort key for the newest run: the latest start; a run in flight that has not started yet is newer still."""
    if run.start_time is not None:
        return run.start_time, run.order()
    # "Latest" by when it started: a run started after a finished one is the newer, whatever its end;
    # one waiting to run (no start yet) comes after every run that started.
    return (math.inf if run.running else -math.inf), run.order()


@dataclass(frozen=True)
class DatabasePair:
    """One source/destination database pair of a comparison overview."""

    src_db: str
    dst_db: str
    status: str


def parse_database(item: Any) -> DatabasePair | None:
    """An overview item (line-overview or content-overview spellings), or None without a source database."""
    if not isinstance(item, dict):
        return None
    src = _text(item, "source_db_name", "source_db")
    if not src:
        return None
    return DatabasePair(src, _text(item, "target_db_name", "target_db") or src, status_name(item.get("status")))


@dataclass(frozen=True)
class TableResult:
    """One table's comparison result; row counts are None where the API gave none."""

    src_db: str
    src_tb: str
    dst_db: str
    dst_tb: str
    status: str
    source_rows: int | None = None
    target_rows: int | None = None
    difference: int | None = None


def _table(item: Any, db: DatabasePair, status: str) -> TableResult:
    source, target = row_count(item.get("source_row_num")), row_count(item.get("target_row_num"))
    difference = number(_first(item, "difference_row_num", "diff_row_num"))
    if difference is None and source is not None and target is not None:
        difference = source - target
    src_tb = _text(item, "source_table_name")
    return TableResult(
        src_db=_text(item, "source_db_name", "source_db") or db.src_db,
        src_tb=src_tb,
        dst_db=_text(item, "target_db_name", "target_db") or db.dst_db,
        dst_tb=_text(item, "target_table_name") or src_tb,
        status=status,
        source_rows=source,
        target_rows=target,
        difference=difference,
    )


def parse_line_table(item: Any, db: DatabasePair) -> TableResult | None:
    """A line-detail item (it carries no database: ``db`` is the pair it was asked for)."""
    if not isinstance(item, dict) or not _text(item, "source_table_name"):
        return None
    status = item.get("status")
    return _table(item, db, status_name(item.get("line_compare_result") if status is None else status))


def content_verdict(item: Mapping[str, Any]) -> str:
    """A value comparison's verdict for one table: running states first, then the boolean result."""
    raw = number(item.get("status"))
    state = CONTENT_ITEM_STATUS.get(abs(raw)) if raw is not None else None
    if state in ("comparing", "waiting", "cancelled"):
        return str(state)
    result = _boolean(item.get("content_compare_result"))
    if result is None:
        return "failed" if _text(item, "message") else "unknown"
    return "consistent" if result else "inconsistent"


def parse_content_table(item: Any, db: DatabasePair) -> TableResult | None:
    """A content-detail item."""
    if not isinstance(item, dict) or not _text(item, "source_table_name"):
        return None
    return _table(item, db, content_verdict(item))


@dataclass(frozen=True)
class ObjectCount:
    """Objects of one type on both sides in the object-level comparison."""

    object_type: str
    source: int | None
    target: int | None
    status: str


@dataclass(frozen=True)
class ObjectOverview:
    """The latest object-level comparison of a job."""

    compare_job_id: str
    status: str
    start_time: float | None
    objects: tuple[ObjectCount, ...]


def parse_object_overview(body: Any, operation: str = "show_object_compare") -> ObjectOverview | None:
    """The object-level overview, or None when the job has none."""
    if not isinstance(body, dict):
        raise _invalid("answer is not a JSON object", operation)
    found = error_from_body(body)
    if found is not None and not body.get("compare_result"):
        raise DRSAPIError(found[0], found[1], status=200, operation=operation, from_api=True)
    results = body.get("compare_result") or []
    if not isinstance(results, list):
        raise _invalid("compare_result is not a list", operation)
    if not results and not body.get("compare_job_id") and not body.get("status"):
        return None
    objects: dict[str, ObjectCount] = {}
    for item in results:
        if not isinstance(item, dict):
            continue
        kind = _text(item, "type")
        if not kind or not _TASK_STATUS.fullmatch(kind):
            continue
        code = number(item.get("status"))
        objects[kind] = ObjectCount(
            kind,
            number(item.get("source_count")),
            number(item.get("target_count")),
            OBJECT_STATUSES.get(code, "unknown") if code is not None else "unknown",
        )
    return ObjectOverview(
        compare_job_id=_text(body, "compare_job_id")[:128],
        status=task_status(body.get("status")),
        start_time=timestamp(_first(body, "start_time", "create_time")),
        objects=tuple(objects.values()),
    )
