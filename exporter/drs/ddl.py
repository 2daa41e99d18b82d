"""DDL alarms (v5 ``GET /v5/{project_id}/jobs/{job_id}/ddl?status=1``): DDL that DRS flagged, active ones.

Answer (SDK ``ListJobDdlsResponse``): ``{"count": n, "ddl_list": [{seqno, checkpoint, status,
ddl_timestamp, ddl_text, exe_result, record_time, clean_time}]}``, paged by item ``offset`` and
``limit`` (default 10; no maximum documented). ``status`` 1 is an active alarm, 0 none; asked
with ``status=1``, an item whose status is missing or unreadable counts as active (see
:func:`parse_ddl_item`);
``exe_result`` false means the DDL failed on the target. ``ddl_timestamp`` is milliseconds (API
reference); ``record_time`` and ``clean_time`` have no documented unit: both epoch seconds and
milliseconds are accepted (told apart by size, as everywhere in the exporter).

``ddl_text`` is customer SQL. Only :attr:`DdlAlarm.text` is kept: the first
``TEXT_LIMIT`` characters, control characters escaped, for the status page (which must still
HTML-escape it). It is left out of ``repr`` so that a logged value never carries it; it is never a
label and never logged above debug.

Public API: :class:`DdlAlarm`, :class:`DdlAlarms`, :func:`parse_ddl_page`, :func:`parse_ddl_item`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .compare import listing, timestamp
from .fields import boolean, count, excerpt, text

OPERATION = "list_ddl_alarms"
TEXT_LIMIT = 120
ITEMS_KEYS = ("ddl_list",)


@dataclass(frozen=True)
class DdlAlarm:
    """One DDL alarm; ``text`` is the cut, escaped start of the DDL (customer SQL: never a label or a log)."""

    seqno: int
    active: bool
    exe_result: bool | None  # False: the DDL failed on the target; None when not said
    time: float | None  # Unix seconds the DDL ran on the source
    record_time: float | None
    clean_time: float | None
    checkpoint: str
    text: str = field(repr=False, default="")


@dataclass(frozen=True)
class DdlAlarms:
    """A job's DDL alarms as listed (``count`` is what DRS says there are in all)."""

    job_id: str
    count: int
    alarms: tuple[DdlAlarm, ...]

    @property
    def active(self) -> int:
        """Active alarms among those listed."""
        return sum(1 for a in self.alarms if a.active)

    @property
    def failed(self) -> int:
        """Active alarms whose DDL failed on the target."""
        return sum(1 for a in self.alarms if a.active and a.exe_result is False)

    @property
    def latest(self) -> float | None:
        """Unix time of the newest active alarm's DDL, None without one."""
        times = [a.time for a in self.alarms if a.active and a.time is not None]
        return max(times) if times else None


def parse_ddl_item(item: Any) -> DdlAlarm | None:
    """One ``ddl_list`` item, or None without a usable ``seqno`` (the only key DRS gives an alarm)."""
    if not isinstance(item, dict):
        return None
    seqno = count(item.get("seqno"))
    if seqno is None:
        return None
    raw = item.get("status")
    return DdlAlarm(
        seqno=seqno,
        # Only a readable "no alarm" (0, "0", false) is not active: the items were asked for with
        # status=1, so one whose status is missing or unreadable ("²", "abc", 2) counts as active
        # rather than hiding an alarm the query says it has.
        active=not (count(raw) == 0 or boolean(raw) is False),
        exe_result=boolean(item.get("exe_result")),
        time=timestamp(item.get("ddl_timestamp")),
        record_time=timestamp(item.get("record_time")),
        clean_time=timestamp(item.get("clean_time")),
        checkpoint=text(item.get("checkpoint")),
        text=excerpt(item.get("ddl_text"), TEXT_LIMIT),
    )


def alarms_of(job_id: str, total: int | None, items: Iterable[DdlAlarm]) -> DdlAlarms:
    """The alarms of a job from every page, one per ``seqno`` (the last seen wins), newest first."""
    by_seqno = {a.seqno: a for a in items}
    ordered = sorted(by_seqno.values(), key=lambda a: (a.time or 0.0, a.seqno), reverse=True)
    return DdlAlarms(job_id, total if total is not None else len(ordered), tuple(ordered))


def parse_ddl_page(body: Any, job_id: str, operation: str = OPERATION) -> DdlAlarms:
    """One answer as the alarms of a job (for a single page; the client merges pages with :func:`alarms_of`)."""
    page = listing(body, ITEMS_KEYS, operation)
    return alarms_of(job_id, page.total, (a for a in map(parse_ddl_item, page.items) if a is not None))
