"""Client for the read-only DRS comparison APIs, on the progress client's transport (signing, retries, caps)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, wait
from functools import partial
from typing import Any, TypeVar

from ..base.deadline import Deadline
from .client import MAX_PAGE_SIZE, DRSClient
from .compare import (
    CompareRun,
    DatabasePair,
    Listing,
    ObjectOverview,
    TableResult,
    listing,
    parse_content_table,
    parse_database,
    parse_line_table,
    parse_object_overview,
    parse_run,
)
from .errors import DEADLINE_EXCEEDED, PAGE_CAP_EXCEEDED, DRSAPIError

log = logging.getLogger(__name__)
T = TypeVar("T")

LIST = "list_compare_jobs"
LINE_OVERVIEW = "show_line_compare_overview"
LINE_DETAIL = "show_line_compare_detail"
CONTENT_OVERVIEW = "show_content_compare_overview"
CONTENT_DETAIL = "show_content_compare_detail"
OBJECT_OVERVIEW = "show_object_compare_overview"


class ReadError(DRSAPIError):
    """A failure found by the comparison client itself, after (or between) successful HTTP calls.

    No HTTP attempt reported it, so whoever handles it counts it in ``api_errors_total``.
    """


class RowBudget:
    """The items some reads may still take together (one comparison's databases, a window's rows); thread-safe.

    Called with ``(items, operation)`` for each page read: raises ``page_cap_exceeded`` once over.
    """

    def __init__(self, rows: int, what: str) -> None:
        self.left = rows
        self.limit = rows
        self.what = what
        self._lock = threading.Lock()

    def __call__(self, rows: int, operation: str) -> None:
        with self._lock:
            self.left -= rows
            if self.left < 0:
                raise ReadError(PAGE_CAP_EXCEEDED, f"{self.what} has more than {self.limit} items", operation=operation)


class CompareClient:
    """Reads one project's comparison tasks and their per-database and per-table results."""

    def __init__(self, client: DRSClient, *, max_pages: int = 1000) -> None:
        self.client = client
        self.max_pages = max_pages

    def _paged(self, path: str, **kw: Any) -> list[Any]:
        return read_pages(self.client, path, max_pages=self.max_pages, **kw)

    def runs(self, job_id: str, deadline: Deadline) -> list[CompareRun]:
        """Every data-level comparison of the job (``GET …/table/compare``)."""
        return self._paged(
            f"/jobs/{job_id}/table/compare",
            job_id=job_id,
            operation=LIST,
            items_keys=("compare_jobs",),
            parse=parse_run,
            deadline=deadline,
        )

    def _overview(self, job_id: str, run: CompareRun, deadline: Deadline) -> list[DatabasePair]:
        lines = run.compare_type == "lines"
        return self._paged(
            f"/jobs/{job_id}/compare/{run.id}/{'line' if lines else 'content'}-overview",
            job_id=job_id,
            operation=LINE_OVERVIEW if lines else CONTENT_OVERVIEW,
            items_keys=("data_compare_overview_infos",) if lines else ("content_compare_result_infos",),
            parse=parse_database,
            deadline=deadline,
        )

    def tables(self, job_id: str, run: CompareRun, deadline: Deadline) -> list[TableResult]:
        """Per-table results of a row (``lines``) or value (``contents``) comparison, database by database.

        The detail items carry no database name, so they are asked for per source database of the
        overview, several databases at a time in the client's page pool (a job may have thousands).
        """
        databases = list(dict.fromkeys(self._overview(job_id, run, deadline)))
        # One cap for the whole comparison, not per database: a server paging forever in several
        # databases at once must not hold more than max_pages pages' worth of tables in memory.
        budget = RowBudget(self.max_pages * MAX_PAGE_SIZE, f"comparison {run.id}")
        calls = [
            self.client.submit((job_id, run.id), self._detail, job_id, run, db, deadline, budget) for db in databases
        ]
        try:
            done, pending = wait(calls, timeout=deadline.remaining(), return_when=FIRST_EXCEPTION)
            for call in done:
                error = call.exception()
                if error is not None:
                    raise error
            if pending:
                operation = LINE_DETAIL if run.compare_type == "lines" else CONTENT_DETAIL
                raise ReadError(DEADLINE_EXCEEDED, "comparison details not read in time", operation=operation)
        finally:
            for call in calls:
                call.cancel()
            # Reads already running end within the deadline: none outlives this call holding a transport slot.
            wait(calls, timeout=deadline.remaining())
        return [table for call in calls for table in call.result()]

    def _detail(
        self, job_id: str, run: CompareRun, db: DatabasePair, deadline: Deadline, budget: RowBudget
    ) -> list[TableResult]:
        lines = run.compare_type == "lines"
        return self._paged(
            f"/jobs/{job_id}/compare/{run.id}/{'line' if lines else 'content'}-detail",
            job_id=job_id,
            operation=LINE_DETAIL if lines else CONTENT_DETAIL,
            items_keys=("table_line_compare_result_infos",)
            if lines
            else ("content_compare_result_infos", "content_compare_result_infost"),
            parse=partial(parse_line_table if lines else parse_content_table, db=db),
            deadline=deadline,
            params={"db_name": db.src_db, "target_db_name": db.dst_db},
            budget=budget,
        )

    def objects(self, job_id: str, deadline: Deadline) -> ObjectOverview | None:
        """The job's latest object-level comparison (``GET …/object/compare``), or None when it has none."""
        overview: ObjectOverview | None = self.client.call(
            "GET",
            f"/jobs/{job_id}/object/compare",
            operation=OBJECT_OVERVIEW,
            version="v3",
            job_id=job_id,
            deadline=deadline,
            parse=partial(parse_object_overview, operation=OBJECT_OVERVIEW),
        )
        return overview


def read_pages(
    client: DRSClient,
    path: str,
    *,
    job_id: str,
    operation: str,
    items_keys: tuple[str, ...],
    parse: Callable[[Any], T | None],
    deadline: Deadline,
    params: dict[str, Any] | None = None,
    budget: Callable[[int, str], None] | None = None,
    max_pages: int = 1000,
    version: str = "v3",
    limit: int = MAX_PAGE_SIZE,
    check: Callable[[Any], Listing] | None = None,
) -> list[T]:
    """Every item of an item-offset listing: ``limit`` per page, on by the items received, until empty, short or total.

    ``check`` validates a page within its HTTP attempt (default: :func:`listing` of ``items_keys``);
    ``budget(items, operation)`` may refuse more items. A total that disagrees with the pages does
    not change where paging stops, but it is logged.
    """
    out: list[T] = []
    offset = 0
    check = check or partial(listing, items_keys=items_keys, operation=operation)
    for _ in range(max_pages):
        page: Listing = client.call(
            "GET",
            path,
            operation=operation,
            version=version,
            job_id=job_id,
            params={**(params or {}), "offset": offset, "limit": limit},
            deadline=deadline,
            parse=check,  # a wrong shape fails the call itself, so it is counted as a failed request
        )
        if budget is not None:
            budget(len(page.items), operation)
        out.extend(x for x in map(parse, page.items) if x is not None)
        offset += len(page.items)
        short = len(page.items) < limit
        if short or (page.total is not None and offset >= page.total):
            if page.total is not None and (offset < page.total if short else offset > page.total):
                log.warning(
                    "%s of job %s (%s): the answer says %d items in all, the pages held %d: paging stopped there",
                    operation,
                    job_id,
                    params or {},
                    page.total,
                    offset,
                )
            return out
    raise ReadError(PAGE_CAP_EXCEEDED, f"more than {max_pages} pages", operation=operation)
