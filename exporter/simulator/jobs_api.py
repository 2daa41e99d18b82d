"""The job lists (v5, v3), job progress and batch progress."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .base import ApiError, HandlerBase
from .scenario import Scenario


class JobsMixin(HandlerBase):
    """Job discovery and job-level progress answers."""

    def _listed(self, scenario: Scenario, job_type: str, statuses: set[str], name: str) -> list[dict[str, Any]]:
        """Listed top-level jobs of ``job_type``, children nested, filtered like the real API."""
        jobs = [j for j in scenario.jobs.values() if j.listed and j.job_type == job_type]
        out: list[dict[str, Any]] = []
        for job in jobs:
            if job.parent is not None or (statuses and job.status not in statuses) or (name and name not in job.name):
                continue
            summary = job.summary()
            summary["children"] = [c.summary() for c in jobs if c.parent == job.id]
            out.append(summary)
        return out

    def _v5_list(self, project_id: str, query: str) -> bytes:
        scenario = self._project(project_id)
        if not scenario.v5_list:
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        params = parse_qs(query)
        job_type = params.get("job_type", [""])[0]
        if job_type not in ("migration", "sync", "cloudDataGuard"):
            raise ApiError(400, "DRS.M00201", "Parameter job_type is empty or invalid.")
        statuses = {s for s in params.get("status", [""])[0].split(",") if s}
        jobs = self._listed(scenario, job_type, statuses, params.get("name", [""])[0])
        offset, limit = int(params.get("offset", ["0"])[0]), int(params.get("limit", ["10"])[0])
        if not 1 <= limit <= 1000 or offset < 0:
            raise ApiError(400, "DRS.M00211", "The page is over the upper limit.")
        return json.dumps({"total_count": len(jobs), "jobs": jobs[offset : offset + limit]}).encode()

    def _v3_list(self, project_id: str, body: bytes) -> bytes:
        scenario = self._project(project_id)
        try:
            request = json.loads(body)
            page, per_page = int(request.get("cur_page", 1)), int(request.get("per_page", 10))
            job_type = str(request.get("db_use_type", "migration"))
        except (ValueError, TypeError, AttributeError):
            raise ApiError(400, "DRS.M00007", "Invalid request parameter.") from None
        if page < 1 or not 1 <= per_page <= 1000:
            raise ApiError(400, "DRS.M00210", "Invalid page value.")
        jobs = self._listed(scenario, job_type, set(), "")
        start = (page - 1) * per_page
        return json.dumps({"total_record": len(jobs), "jobs": jobs[start : start + per_page]}).encode()

    def _job_progress(self, scenario: Scenario, job_id: str) -> dict[str, Any]:
        job = scenario.jobs.get(job_id)
        if job is None or not job.listed:
            return {"job_id": job_id, "error_code": "DRS.M05003", "error_msg": "Task information not found."}
        elapsed = scenario.elapsed()
        mean = job.mean_progress(elapsed)
        speed = job.speed if job.frozen_at is None else 0.0
        remaining = "" if speed <= 0 else str(round((100 - mean) / speed))
        incremental = job.status == "INCRE_TRANSFER_STARTED"
        health = job.health
        phases = health.get("progress_map") or {
            "structure": "100%",
            "data": f"{round(mean)}%",
            "index": "100%" if mean >= 100 else "-1",
        }
        return {
            "job_id": job_id,
            "progress": str(round(mean)),
            "incre_trans_delay": str(int(job.delay)),
            "incr_trans_delay_millis": str(int(job.delay * 1000)),
            "task_mode": job.task_type,
            "transfer_status": job.status,
            "process_time": str(int(elapsed * 1000)),
            "remaining_time": remaining,
            "apply_rows_rate": int(health.get("apply_rows_rate", 120)) if incremental else -1,
            "apply_bytes_rate": int(health.get("apply_bytes_rate", 40960)) if incremental else -1,
            "progress_map": {
                phase: {"completed": str(done), "remaining_time": {"100%": "0", "-1": "-1"}.get(str(done), remaining)}
                for phase, done in phases.items()
            },
        }

    def _batch_progress(self, project_id: str, body: bytes) -> bytes:
        scenario = self._project(project_id)
        if not scenario.batch_progress:
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        try:
            ids = [str(i) for i in json.loads(body)["jobs"]]
        except (ValueError, TypeError, KeyError):
            raise ApiError(400, "DRS.M00007", "Invalid request parameter.") from None
        with self.server.lock:  # which jobs each batch asked for: sharded exporters must split them
            self.server.job_stats.update(f"{i}/batch_progress" for i in ids)
        return json.dumps({"results": [self._job_progress(scenario, i) for i in ids], "count": len(ids)}).encode()

    def _v5_job(self, project_id: str, job_id: str, query: str) -> bytes:
        scenario = self._project(project_id)
        result = self._job_progress(scenario, job_id)
        if "error_code" in result:
            raise ApiError(400, result["error_code"], result["error_msg"])
        info = {
            k: result[k]
            for k in (
                "progress",
                "incr_trans_delay_millis",
                "task_mode",
                "transfer_status",
                "process_time",
                "remaining_time",
            )
        }
        info["incr_trans_delay"] = result["incre_trans_delay"]
        return json.dumps({"job": {"id": job_id, "progress_info": info}}).encode()
