"""Client calls of the per-job v5 replication-health APIs, on the progress client's transport.

Each reads one job within the caller's deadline and raises :class:`~exporter.drs.errors.DRSAPIError`
when it cannot (an answer of the wrong shape is ``invalid_response``, counted as a failed call
by the transport; too many pages is ``page_cap_exceeded``, raised as
:class:`~exporter.drs.compare_client.ReadError`, which the caller counts). Lists are paged by
item offsets (``offset += items received``) until an empty or short page or the total.

Public API (one call per area):

- :func:`fetch_monitor_data` → :class:`~exporter.drs.monitor.MonitorData` (``monitor-data``: 1 call)
- :func:`fetch_ddl_alarms` → :class:`~exporter.drs.ddl.DdlAlarms` (``ddl?status=1``: 1 call per 100 alarms)
- :func:`fetch_dirty_rows` → :class:`~exporter.drs.dirty.DirtyRows` (``dirty-data``: 1 call for the
  count; per table, or when DRS leaves the count out, 1 call per 1000 rows of the window, at most
  ``max_pages``: beyond them the answer says it is ``capped``)
- :func:`fetch_health_comparisons` → :class:`~exporter.drs.health_compare.HealthComparisons`
  (``health-compare-jobs`` + ``compare-policy`` + one ``…/object/{id}`` for the latest finished
  object comparison, unless already known + one ``compare-progress/{id}`` per running latest run)
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from types import MappingProxyType

from ..base.deadline import Deadline
from .client import MAX_PAGE_SIZE, DRSClient
from .compare import CompareRun, Listing, ObjectOverview, latest, parse_object_overview, parse_run
from .compare_client import read_pages
from .ddl import ITEMS_KEYS as DDL_ITEMS
from .ddl import OPERATION as DDL_OPERATION
from .ddl import DdlAlarms, alarms_of, parse_ddl_item
from .dirty import OPERATION as DIRTY_OPERATION
from .dirty import PHASES, DirtyItem, DirtyRows, parse_dirty_page, tables_of
from .health_compare import (
    HEALTH_TYPES,
    LIST,
    OBJECTS,
    POLICY,
    PROGRESS,
    CompareProgress,
    HealthComparisons,
    parse_policy,
    parse_progress,
)
from .health_compare import ITEMS_KEYS as HEALTH_ITEMS
from .monitor import OPERATION as MONITOR_OPERATION
from .monitor import MonitorData, parse_monitor_data

# The DDL list documents no maximum page size (default 10); 100 keeps a page small if a server
# caps lower (paging then stops at the short page and the mismatch with count is logged).
DDL_PAGE = 100
DDL_MAX_PAGES = 10  # a thousand active alarms is plenty to show
DIRTY_MAX_PAGES = 10  # 10,000 abnormal rows per job and phase in one read
# A comparison id goes into request paths: letters, digits, '-' and '_' only ("../x" would ask for another resource).
_PATH_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def fetch_monitor_data(
    client: DRSClient, job_id: str, deadline: Deadline | float, *, delay_unit: str = "s"
) -> MonitorData:
    """A job's monitor data; ``delay_unit``: how bare delays are read (undocumented; see drs.monitor)."""
    data: MonitorData = client.call(
        "GET",
        f"/jobs/{job_id}/monitor-data",
        operation=MONITOR_OPERATION,
        job_id=job_id,
        deadline=deadline,
        parse=partial(parse_monitor_data, job_id=job_id, operation=MONITOR_OPERATION, delay_unit=delay_unit),
    )
    return data


def fetch_ddl_alarms(client: DRSClient, job_id: str, deadline: Deadline | float) -> DdlAlarms:
    """The job's active DDL alarms (``status=1``), every page."""
    items = read_pages(
        client,
        f"/jobs/{job_id}/ddl",
        job_id=job_id,
        operation=DDL_OPERATION,
        items_keys=DDL_ITEMS,
        parse=parse_ddl_item,
        deadline=Deadline.of(deadline),
        params={"status": 1},
        max_pages=DDL_MAX_PAGES,
        version="v5",
        limit=DDL_PAGE,
    )
    return alarms_of(job_id, None, items)


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch_dirty_rows(
    client: DRSClient,
    job_id: str,
    deadline: Deadline | float,
    *,
    window_seconds: float = 3600.0,
    phase: str = "incremental",
    per_table: bool = False,
    max_pages: int = DIRTY_MAX_PAGES,
    now: float | None = None,
) -> DirtyRows:
    """Abnormal rows of ``phase`` (``incremental`` or ``full``) in the last ``window_seconds``, always anonymized.

    Without ``per_table`` one call with ``limit=1`` reads DRS's count. With it (or when an answer
    has no count) the rows of the window are listed, names and time only, at most ``max_pages``
    pages of 1000: rows left after them are not read, and the answer is ``capped`` (its tables,
    and its count when DRS gave none, then cover only the rows read). Each page's items are cut
    down to names and times as it is parsed: ``error_sql`` never outlives its page.
    """
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {tuple(PHASES)}")
    end = time.time() if now is None else now
    begin = end - window_seconds
    params: dict[str, str | int] = {"begin_time": _utc(begin), "end_time": _utc(end), "anonymize_mode": "true"}
    mode = PHASES[phase]
    if mode is not None:
        params["task_mode"] = mode
    deadline = Deadline.of(deadline)

    def page(offset: int, limit: int) -> Listing:
        listed: Listing = client.call(
            "GET",
            f"/jobs/{job_id}/dirty-data",
            operation=DIRTY_OPERATION,
            job_id=job_id,
            params={**params, "offset": offset, "limit": limit},
            deadline=deadline,
            parse=partial(parse_dirty_page, operation=DIRTY_OPERATION),
        )
        return listed

    if not per_table:
        first = page(0, 1)
        if first.total is not None:
            return DirtyRows(job_id, phase, first.total, begin, end)
    total: int | None = None
    items: list[DirtyItem] = []
    offset = 0
    for _ in range(max(1, max_pages)):
        listed = page(offset, MAX_PAGE_SIZE)
        total = listed.total if total is None else total  # the first answer's: the window does not move
        offset += len(listed.items)
        if per_table:
            items.extend(listed.items)
        if len(listed.items) < MAX_PAGE_SIZE or (total is not None and offset >= total):
            capped = False
            break
    else:
        capped = total is None or offset < total
    count = total if total is not None else offset
    return DirtyRows(
        job_id,
        phase,
        count,
        begin,
        end,
        tables_of(items) if per_table else None,
        capped=capped,
        exact=total is not None or not capped,
    )


def fetch_health_comparisons(
    client: DRSClient,
    job_id: str,
    deadline: Deadline | float,
    *,
    policy: bool = True,
    details: bool = True,
    known: ObjectOverview | None = None,
) -> HealthComparisons:
    """The job's health comparisons: runs, latest per type, policy, and (``details``) objects and progress.

    ``known``: an object overview read before; a finished comparison's result never changes, so it is
    not asked for again while it is still the latest finished object comparison.
    """
    deadline = Deadline.of(deadline)
    runs: list[CompareRun] = read_pages(
        client,
        f"/jobs/{job_id}/health-compare-jobs",
        job_id=job_id,
        operation=LIST,
        items_keys=HEALTH_ITEMS,
        parse=parse_run,
        deadline=deadline,
        version="v5",
    )
    newest: dict[str, CompareRun] = {}
    finished: dict[str, CompareRun] = {}
    for kind in HEALTH_TYPES:
        run, done = latest(runs, kind)
        if run is not None:
            newest[kind] = run
        if done is not None:
            finished[kind] = done
    schedule = None
    if policy:
        schedule = client.call(
            "GET",
            f"/jobs/{job_id}/compare-policy",
            operation=POLICY,
            job_id=job_id,
            deadline=deadline,
            parse=partial(parse_policy, operation=POLICY),
        )
    objects: ObjectOverview | None = None
    progress: dict[str, CompareProgress] = {}
    if details:
        done_objects = finished.get("object_comparison")
        if known is not None and done_objects is not None and known.compare_job_id == done_objects.id:
            objects = known
        elif done_objects is not None and _PATH_ID.fullmatch(done_objects.id):
            objects = _objects(client, job_id, done_objects.id, deadline)
        for run in newest.values():
            if run.running and _PATH_ID.fullmatch(run.id):
                progress[run.id] = client.call(
                    "GET",
                    f"/jobs/{job_id}/compare-progress/{run.id}",
                    operation=PROGRESS,
                    job_id=job_id,
                    deadline=deadline,
                    parse=partial(parse_progress, compare_job_id=run.id, operation=PROGRESS),
                )
    return HealthComparisons(
        job_id=job_id,
        policy=schedule,
        runs=tuple(runs),
        latest=MappingProxyType(newest),
        latest_finished=MappingProxyType(finished),
        objects=objects,
        progress=MappingProxyType(progress),
    )


def _objects(client: DRSClient, job_id: str, compare_job_id: str, deadline: Deadline) -> ObjectOverview | None:
    overview: ObjectOverview | None = client.call(
        "GET",
        f"/jobs/{job_id}/health-compare-jobs/object/{compare_job_id}",
        operation=OBJECTS,
        job_id=job_id,
        deadline=deadline,
        parse=partial(parse_object_overview, operation=OBJECTS),
    )
    if overview is not None and not overview.compare_job_id:
        overview = replace(overview, compare_job_id=compare_job_id)
    return overview
