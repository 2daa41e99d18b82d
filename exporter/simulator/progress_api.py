"""The progress-data API: real paging, search and the data-level faults of a job."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from ..base.objecttypes import OBJECT_TYPES
from .base import ApiError, HandlerBase, page_params
from .faults import ODD_PROGRESS
from .scenario import SimJob


class ProgressMixin(HandlerBase):
    """Answers ``GET /v5/{project_id}/jobs/{job_id}/progress-data/{type}``."""

    def _progress(self, project_id: str, job_id: str, object_type: str, query: str) -> bytes:
        sim = self.server
        if project_id != sim.scenario.project_id:
            raise ApiError(403, "DRS.M00261", "Invalid project ID.")
        job = sim.scenario.jobs.get(job_id)
        if job is None:
            raise ApiError(400, "DRS.M05003", "Task information not found.")
        if not job.listed:
            raise ApiError(400, "DRS.M05004", "The task has been deleted or its resources released.")
        with sim.lock:
            sim.key_stats[f"{job_id}/{object_type}"] += 1
            if len(sim.order) < 5000:
                sim.order.append(f"{job_id}/{parse_qs(query).get('offset', ['0'])[0]}")
        if job.latency_ms:
            time.sleep(job.latency_ms / 1000.0)
        if job.error:
            raise ApiError(400, job.error, job.error_msg)
        if object_type not in OBJECT_TYPES:
            raise ApiError(400, "DRS.M00202", "Invalid parameter value: type.")
        params = parse_qs(query)
        offset, limit = page_params(params, default_limit=10)
        total = job.objects.get(object_type, 0)
        search = params.get("search_name", [""])[0]
        elapsed = sim.scenario.elapsed()
        if search:
            indexes = [i for i in range(total) if search in job.row(object_type, i, 0)["src_tb"]]
            count = len(indexes)
            window: Iterable[int] = indexes[offset : offset + limit]
        else:
            count = total
            window = range(offset, min(total, offset + limit))
        if job.fault:
            return self._odd_progress(job, object_type, offset, limit, count, total, elapsed)
        rows = job.rows_json(object_type, window, elapsed)
        head = json.dumps({"count": count, "create_time": job.create_time(time.time())})[:-1]
        return f'{head}, "flow_compare_data": {rows}}}'.encode()

    def _odd_progress(
        self, job: SimJob, object_type: str, offset: int, limit: int, count: int, total: int, elapsed: float
    ) -> bytes:
        """An answer with the data-level faults of ``job.fault``."""
        fault = job.fault
        start = max(0, offset - 1) if fault == "repeat_rows" and offset > 0 else offset
        rows: list[dict[str, Any]] = [
            job.row(object_type, i, elapsed) for i in range(start, min(total, offset + limit))
        ]
        answer: dict[str, Any] = {"count": count, "create_time": job.create_time(time.time())}
        if fault == "empty_page_once" and offset > 0:
            with self.server.lock:
                self.server.page_asks[f"{job.id}/{object_type}/{offset}"] += 1
                asks = self.server.page_asks[f"{job.id}/{object_type}/{offset}"]
            if asks % 2 == 1:
                rows = []
        elif fault == "short_page" and offset > 0:
            rows = []
        elif fault == "first_page_invalid" and offset == 0:
            for row in rows:
                row["progress"] = None
        elif fault == "count_grows" and offset == 0:
            answer["count"] = max(0, total - 500)
        elif fault == "count_larger":
            answer["count"] = total * 3
        elif fault == "count_smaller":
            answer["count"] = 1
        elif fault == "count_negative":
            answer["count"] = -1
        elif fault == "count_string":
            answer["count"] = "many"
        elif fault == "endless":
            answer["count"] = 10**9
        elif fault == "create_time_garbage":
            answer["create_time"] = "yesterday"
        elif fault == "odd_progress":
            for i, row in enumerate(rows):
                odd = ODD_PROGRESS[i % len(ODD_PROGRESS)]
                if odd == "missing":
                    del row["progress"]
                elif i % 2 == 0:
                    row["progress"] = odd
        elif fault == "missing_keys":
            for i, row in enumerate(rows):
                if i % 3 == 0:
                    del row["src_db"], row["dst_tb"]
        elif fault == "control_chars":
            for i, row in enumerate(rows, start=start):
                row["src_tb"] = f"ctl\x01\x07\t{i}INVALIDUTF8"
        answer["flow_compare_data"] = rows
        body = json.dumps(answer, ensure_ascii=False).encode()
        if fault == "control_chars":
            body = body.replace(b"INVALIDUTF8", b"\xff\xfe")
        if fault == "oversize":
            body = body[:-1] + b', "padding": "' + b"x" * (4 * 1024 * 1024) + b'"}'
        return body
