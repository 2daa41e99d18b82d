"""Client for the read-only DRS comparison APIs, on the progress client's transport (signing, retries, caps)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, wait
from functools import partial
from typing import Any, TypeVar

from .client import MAX_PAGE_SIZE, DRSClient
from .compare import (
    CompareRun,
    DatabasePair,
    ObjectOverview,
    TableResult,
    listing,
    parse_content_table,
    parse_database,
    parse_line_table,
    parse_object_overview,
    parse_run,
)
from .deadline import Deadline
from .errors import DEADLINE_EXCEEDED, PAGE_CAP_EXCEEDED, DRSAPIError

T = TypeVar("T")

LIST = "list_compare_jobs"
LINE_OVERVIEW = "show_line_compare_overview"
LINE_DETAIL = "show_line_compare_detail"
CONTENT_OVERVIEW = "show_content_compare_overview"
CONTENT_DETAIL = "show_content_compare_detail"
OBJECT_OVERVIEW = "show_object_compare_overview"
OPERATIONS = (LIST, LINE_OVERVIEW, LINE_DETAIL, CONTENT_OVERVIEW, CONTENT_DETAIL, OBJECT_OVERVIEW)


class CompareClient:
    """Reads one project's comparison tasks and their per-database and per-table results."""

    def __init__(self, client: DRSClient, *, max_pages: int = 1000) -> None:
        self.client = client
        self.max_pages = max_pages

    def _paged(
        self,
        path: str,
        *,
        job_id: str,
        operation: str,
        items_keys: tuple[str, ...],
        parse: Callable[[Any], T | None],
        deadline: Deadline,
        params: dict[str, Any] | None = None,
    ) -> list[T]:
        """Every item of an item-offset listing: limit 1000, on by the items received, until empty, short or total."""
        out: list[T] = []
        offset = 0
        for _ in range(self.max_pages):
            body = self.client.call(
                "GET",
                path,
                operation=operation,
                version="v3",
                job_id=job_id,
                params={**(params or {}), "offset": offset, "limit": MAX_PAGE_SIZE},
                deadline=deadline,
            )
            page = listing(body, items_keys, operation)
            out.extend(x for x in map(parse, page.items) if x is not None)
            offset += len(page.items)
            if len(page.items) < MAX_PAGE_SIZE or (page.total is not None and offset >= page.total):
                return out
        raise DRSAPIError(PAGE_CAP_EXCEEDED, f"more than {self.max_pages} pages", operation=operation)

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
        calls = [self.client.submit((job_id, run.id), self._detail, job_id, run, db, deadline) for db in databases]
        try:
            done, pending = wait(calls, timeout=deadline.remaining(), return_when=FIRST_EXCEPTION)
            for call in done:
                error = call.exception()
                if error is not None:
                    raise error
            if pending:
                operation = LINE_DETAIL if run.compare_type == "lines" else CONTENT_DETAIL
                raise DRSAPIError(DEADLINE_EXCEEDED, "comparison details not read in time", operation=operation)
        finally:
            for call in calls:
                call.cancel()
            # Reads already running end within the deadline: none outlives this call holding a transport slot.
            wait(calls, timeout=deadline.remaining())
        return [table for call in calls for table in call.result()]

    def _detail(self, job_id: str, run: CompareRun, db: DatabasePair, deadline: Deadline) -> list[TableResult]:
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
        )

    def objects(self, job_id: str, deadline: Deadline) -> ObjectOverview | None:
        """The job's latest object-level comparison (``GET …/object/compare``), or None when it has none."""
        body = self.client.call(
            "GET",
            f"/jobs/{job_id}/object/compare",
            operation=OBJECT_OVERVIEW,
            version="v3",
            job_id=job_id,
            deadline=deadline,
        )
        return parse_object_overview(body, OBJECT_OVERVIEW)
