"""Abnormal ("dirty") rows: rows DRS failed to apply (v5 ``GET /v5/{project_id}/jobs/{job_id}/dirty-data``).

Query (SDK ``ShowDirtyDataRequest``): ``begin_time``, ``end_time`` (UTC ``2020-09-01T18:50:20Z``),
``offset``, ``limit`` (1-1000, default 10), ``anonymize_mode`` (bool), ``task_mode`` (absent: the
incremental phase; ``FULL_TRANSFER``: the full phase). Answer: ``{"count": n, "dirty_data_list":
[{db_name, schema_name, table_name, error_sql, error_time, error_msg}]}``.

The signal is ``count`` over a look-back window: one call with ``limit=1`` gives it. Per table
(an opt-in: it pages through every row of the window) only the names and the time are read.
``error_sql`` and ``error_msg`` hold customer data (values, keys): they are never read into a
value here, whatever the page held, and the client always asks with ``anonymize_mode=true``.

Public API: :class:`DirtyRows`, :class:`DirtyTable`, :data:`PHASES`, :func:`parse_dirty_page`,
:func:`dirty_item`, :func:`tables_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .compare import Listing, listing, timestamp
from .fields import text

OPERATION = "show_dirty_data"
ITEMS_KEYS = ("dirty_data_list",)
# phase label -> task_mode query value (None: the parameter is left out)
PHASES: dict[str, str | None] = {"incremental": None, "full": "FULL_TRANSFER"}
NAME_LIMIT = 128


class DirtyItem(NamedTuple):
    """What is kept of one abnormal row: where, and when."""

    db_name: str
    schema_name: str
    table_name: str
    error_time: float | None


@dataclass(frozen=True)
class DirtyTable:
    """Abnormal rows of one table in the window."""

    db_name: str
    schema_name: str
    table_name: str
    rows: int
    latest: float | None  # Unix time of the newest one


@dataclass(frozen=True)
class DirtyRows:
    """A job's abnormal rows of one phase in ``[begin, end]`` (Unix seconds)."""

    job_id: str
    phase: str  # "incremental" or "full"
    count: int
    begin: float
    end: float
    tables: tuple[DirtyTable, ...] | None = None  # None unless asked for per table
    # The listing stopped at its page bound with rows left: ``tables`` covers only the rows read, and
    # ``count`` too unless ``exact`` (DRS's own ``count`` was in the answer).
    capped: bool = False
    exact: bool = True  # ``count`` is DRS's own count, or every row of the window was listed


def dirty_item(item: Any) -> DirtyItem | None:
    """The names and time of one ``dirty_data_list`` item (``error_sql``/``error_msg`` are not looked at)."""
    if not isinstance(item, dict):
        return None
    names = tuple(text(item.get(k), NAME_LIMIT) for k in ("db_name", "schema_name", "table_name"))
    if not names[2]:
        return None
    return DirtyItem(names[0], names[1], names[2], timestamp(item.get("error_time")))


def parse_dirty_page(body: Any, operation: str = OPERATION) -> Listing:
    """One answer checked (``invalid_response`` for a wrong shape), its items cut down to :class:`DirtyItem`.

    The raw items (with their SQL) are dropped here, so that nothing beyond this page's
    lifetime refers to them.
    """
    page = listing(body, ITEMS_KEYS, operation)
    return Listing([d for d in map(dirty_item, page.items) if d is not None], page.total)


def tables_of(items: Iterable[DirtyItem]) -> tuple[DirtyTable, ...]:
    """Rows per table, most rows first."""
    rows: dict[tuple[str, str, str], list[float | None]] = {}
    for item in items:
        rows.setdefault((item.db_name, item.schema_name, item.table_name), []).append(item.error_time)
    out = [
        DirtyTable(db, schema, table, len(times), max((t for t in times if t is not None), default=None))
        for (db, schema, table), times in rows.items()
    ]
    return tuple(sorted(out, key=lambda t: (-t.rows, t.db_name, t.schema_name, t.table_name)))
