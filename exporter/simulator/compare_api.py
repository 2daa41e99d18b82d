"""The comparison APIs: the list of a job's comparisons, row and value results per database and table, objects."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs

from .base import ApiError, HandlerBase, page_params
from .compare_scenario import QUOTED_SQL_ERROR, SimComparison
from .scenario import SimJob

TABLE_COMPARE = re.compile(r"^/v3/([^/]+)/jobs/([^/]+)/table/compare/?$")
COMPARE_RESULT = re.compile(r"^/v3/([^/]+)/jobs/([^/]+)/compare/([^/]+)/(line|content)-(overview|detail)/?$")
OBJECT_COMPARE = re.compile(r"^/v3/([^/]+)/jobs/([^/]+)/object/compare/?$")


def compare_route(path: str) -> tuple[str, re.Match[str]] | None:
    """The operation name and match of a comparison API path, or None."""
    for operation, pattern in (
        ("list_compare_jobs", TABLE_COMPARE),
        ("compare_result", COMPARE_RESULT),
        ("show_object_compare_overview", OBJECT_COMPARE),
    ):
        match = pattern.match(path)
        if match:
            if operation == "compare_result":
                operation = f"{match.group(4)}_{match.group(5)}"
            return operation, match
    return None


class CompareMixin(HandlerBase):
    """Answers the v3 comparison APIs from each job's scenario comparisons."""

    def _compare_job(self, project_id: str, job_id: str) -> SimJob:
        job = self._project(project_id).jobs.get(job_id)
        if job is None:
            raise ApiError(400, "DRS.10000010", "Task not found. Check the task ID.")
        if not job.listed:
            raise ApiError(400, "DRS.M05004", "The task has been deleted or its resources released.")
        if job.error:
            raise ApiError(400, job.error, job.error_msg)
        return job

    def _compare(self, operation: str, match: re.Match[str], query: str) -> bytes:
        """The answer of one comparison API request."""
        job = self._compare_job(match.group(1), match.group(2))
        params = parse_qs(query)
        if operation == "show_object_compare_overview":
            self._count_compare(job.id, "objects", operation)
            answer = job.object_comparison.answer() if job.object_comparison is not None else {"compare_result": []}
            return misbehave(job.compare_answers.get(operation), answer, "compare_result")
        offset, limit = page_params(params, default_limit=1000)
        if operation == "list_compare_jobs":
            self._count_compare(job.id, "list", operation)
            runs = [c.summary() for c in job.comparisons]
            return self._page(job, operation, "compare_jobs", "count", runs, offset, limit)
        run = next((c for c in job.comparisons if c.id == match.group(3)), None)
        if run is None:
            raise ApiError(400, "DRS.M00202", "The value of compare_job_id is invalid.")
        self._count_compare(job.id, run.id, operation)
        lines = match.group(4) == "line"
        items: list[dict[str, Any]] = []
        if lines != (run.type == "lines"):
            # DRS's API pages do not say whether line-overview/-detail answer 400 or an empty list for a
            # contents comparison (nor which error code): an empty list is the kinder guess.
            items = []
        elif match.group(5) == "overview":
            items = [run.overview(db, lines) for db in run.databases()]
        else:
            items = self._detail(run, lines, params)
        return self._page(job, operation, self._items_key(operation), "total_count", items, offset, limit)

    def _page(
        self, job: SimJob, operation: str, key: str, total_key: str, items: list[Any], offset: int, limit: int
    ) -> bytes:
        """One page of ``items`` under ``key``, as the job's ``compare_answers`` fault (if any) distorts it."""
        return page_answer(job.compare_answers.get(operation), key, total_key, items, offset, limit)

    @staticmethod
    def _items_key(operation: str) -> str:
        return {
            "line_overview": "data_compare_overview_infos",
            "line_detail": "table_line_compare_result_infos",
        }.get(operation, "content_compare_result_infos")

    @staticmethod
    def _detail(run: SimComparison, lines: bool, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        db = params.get("db_name", [None])[0]
        status = params.get("status", [None])[0]
        indexes = run.indexes(db)
        if lines and status is not None and status.lstrip("-").isdigit():
            indexes = [i for i in indexes if run.code(i) == int(status)]  # type: ignore[assignment]
        return [run.line_item(i) if lines else run.content_item(i) for i in indexes]

    def _count_compare(self, job_id: str, what: str, operation: str) -> None:
        sim = self.server
        with sim.lock:
            sim.compare_stats[f"{job_id}/{what}/{operation}"] += 1


def page_answer(fault: str | None, key: str, total_key: str, items: list[Any], offset: int, limit: int) -> bytes:
    """One page of ``items`` under ``key`` (total under ``total_key``), as an ``ANSWER_FAULTS`` fault distorts it."""
    total: int = len(items)
    page: Any = items[offset : offset + limit]
    if fault == "endless":
        total, page = 10**9, [items[(offset + k) % len(items)] for k in range(limit)] if items else []
    elif fault == "unicode_status":
        page = [{**item, "status": "\u00b2"} for item in page]
    return misbehave(fault, {total_key: total, key: page}, key)


def misbehave(fault: str | None, answer: dict[str, Any], key: str) -> bytes:
    """The body of ``answer`` as a ``compare_answers`` fault answers it (``key`` names its list)."""
    if fault == "status:503":
        raise ApiError(503, "APIGW.0613", "The service is unavailable.")
    if fault == "sql_error":
        raise ApiError(400, "DRS.10000001", QUOTED_SQL_ERROR)
    if fault == "nested":
        return b"[" * 100_000 + b"]" * 100_000
    if fault == "sql_error_body":
        answer = {"error_code": "DRS.10000001", "error_msg": QUOTED_SQL_ERROR}
    elif fault == "error_body":
        answer = {"error_code": "DRS.10000024", "error_msg": "Another operation is running."}
    elif fault in ("no_list", "null_list", "not_list"):
        answer = {k: v for k, v in answer.items() if k != key}
        if fault != "no_list":
            answer[key] = None if fault == "null_list" else {"a": 1}
    return json.dumps(answer).encode()
