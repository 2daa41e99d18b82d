"""The replication-health APIs: v5 monitor data, DDL alarms, dirty data, health comparisons; v3 batch calls."""

from __future__ import annotations

import json
import operator
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from ..base.timeparse import parse_iso8601
from .base import ApiError, HandlerBase, page_params
from .compare_api import misbehave, page_answer
from .compare_scenario import iso
from .scenario import Scenario, SimJob

V3_BATCH = re.compile(
    r"^/v3/([^/]+)/jobs/(batch-rpo-and-rto|batch-status|batch-detail|disaster-recovery-monitoring-data)/?$"
)
V5_JOB_API = re.compile(
    r"^/v5/([^/]+)/jobs/([^/]+)/(monitor-data|ddl|dirty-data|compare-policy|health-compare-jobs"
    r"|health-compare-jobs/object/[^/]+|health-compare-jobs/[^/]+|compare-progress/[^/]+)/?$"
)
_BATCH_OPERATIONS = {
    "batch-rpo-and-rto": "batch_rpo_rto",
    "batch-status": "batch_status",
    "batch-detail": "batch_detail",
    "disaster-recovery-monitoring-data": "show_dr_monitoring_data",
}
_JOB_OPERATIONS = {
    "monitor-data": "show_monitor_data",
    "ddl": "list_ddl_alarms",
    "dirty-data": "show_dirty_data",
    "compare-policy": "show_compare_policy",
    "health-compare-jobs": "list_health_compare_jobs",
}
_NOT_FOUND = {"error_code": "DRS.M05003", "error_msg": "Task information not found."}


@dataclass(frozen=True)
class HealthRoute:
    """A health API request: its operation, project, job (None for batch calls) and comparison id."""

    operation: str
    project_id: str
    job_id: str | None = None
    item_id: str | None = None


def health_route(path: str) -> HealthRoute | None:
    """The route of a health API path, or None."""
    if (m := V3_BATCH.match(path)) is not None:
        return HealthRoute(_BATCH_OPERATIONS[m.group(2)], m.group(1))
    if (m := V5_JOB_API.match(path)) is None:
        return None
    tail = m.group(3)
    if tail in _JOB_OPERATIONS:
        return HealthRoute(_JOB_OPERATIONS[tail], m.group(1), m.group(2))
    item = tail.rsplit("/", 1)[1]
    if tail.startswith("compare-progress/"):
        return HealthRoute("show_compare_progress", m.group(1), m.group(2), item)
    if tail.startswith("health-compare-jobs/object/"):
        return HealthRoute("show_health_object_compare", m.group(1), m.group(2), item)
    return HealthRoute("show_health_compare_job", m.group(1), m.group(2), item)


def _asked(body: bytes) -> list[str]:
    try:
        jobs = json.loads(body)["jobs"]
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "DRS.M00007", "Invalid request parameter.") from None
    if not isinstance(jobs, list) or not jobs:
        raise ApiError(400, "DRS.M00201", "Parameter jobs is empty or invalid.")
    return [str(j) for j in jobs]


def _local(t: float) -> str:
    """``yyyy-MM-dd HH:mm:ss`` (UTC), as batch-rpo-and-rto writes times."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


class HealthMixin(HandlerBase):
    """Answers the replication-health APIs from each job's ``health`` scenario."""

    def _health_jobs(self, route: HealthRoute, body: bytes) -> list[SimJob]:
        """The scenario jobs a request is about (every one asked for, for a batch call)."""
        jobs = self.server.scenario.jobs
        if route.job_id is not None:
            return [jobs[route.job_id]] if route.job_id in jobs else []
        try:
            return [jobs[i] for i in _asked(body) if i in jobs]
        except ApiError:
            return []

    def _health(self, route: HealthRoute, method: str, query: str, body: bytes) -> bytes:
        """The answer of one health API request."""
        scenario = self._project(route.project_id)
        if route.job_id is None:
            if method != "POST":
                raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
            return self._batch(scenario, route.operation, _asked(body))
        if method != "GET":
            raise ApiError(404, "APIGW.0101", "The API does not exist or has not been published")
        job = scenario.jobs.get(route.job_id)
        if job is None:
            raise ApiError(400, "DRS.M05003", "Task information not found.")
        if not job.listed:
            raise ApiError(400, "DRS.M05004", "The task has been deleted or its resources released.")
        self._count_health(job.id, route.operation)
        if job.error:
            raise ApiError(400, job.error, job.error_msg)
        params = parse_qs(query)
        fault = job.health_answers.get(route.operation)
        op = route.operation
        if op == "show_monitor_data":
            return misbehave(fault, self._monitor(job, v5=True), "")
        if op == "list_ddl_alarms":
            return self._ddl(job, params, fault)
        if op == "show_dirty_data":
            return self._dirty(job, params, fault)
        if op == "show_compare_policy":
            return misbehave(fault, self._policy(job), "")
        if op == "list_health_compare_jobs":
            offset, limit = page_params(params, default_limit=10)
            status = params.get("status", [""])[0]
            runs = [r.summary() for r in job.health.runs if not status or r.status == status]
            return page_answer(fault, "compare_jobs", "count", runs, offset, limit)
        run = next((r for r in job.health.runs if r.id == route.item_id), None)
        if run is None:
            raise ApiError(400, "DRS.M00202", "The value of compare_job_id is invalid.")
        if op == "show_health_object_compare":
            done = run.status not in ("RUNNING", "WAITING_FOR_RUNNING", "FULL_DOING", "INCRE_DOING")
            results = [
                {"type": t, "source_count": s, "target_count": d, "status": (0 if s != d else 2) if done else 3}
                for t, (s, d) in run.objects.items()
            ]
            return misbehave(fault, {"compare_result": results if run.type == "object_comparison" else []}, "")
        if op == "show_compare_progress":
            return misbehave(fault, self._compare_progress(run.status, run.start), "")
        detail = run.summary()
        detail["job_name"] = job.name or job.id
        return misbehave(
            fault, {k: detail[k] for k in ("id", "type", "start_time", "end_time", "status", "job_name")}, ""
        )

    def _count_health(self, job_id: str, operation: str) -> None:
        with self.server.lock:
            self.server.health_stats[f"{job_id}/{operation}"] += 1

    # --- v3 batch calls ---------------------------------------------------------------------

    def _batch(self, scenario: Scenario, operation: str, ids: list[str]) -> bytes:
        fault = None
        for job_id in ids:
            if job_id in scenario.jobs:
                self._count_health(job_id, operation)
                fault = fault or scenario.jobs[job_id].health_answers.get(operation)
        results = [self._entry(scenario.jobs.get(i), i, operation) for i in ids]
        return misbehave(fault, {"count": len(results), "results": results}, "results")

    def _entry(self, job: SimJob | None, job_id: str, operation: str) -> dict[str, Any]:
        id_key = "job_id" if operation == "batch_rpo_rto" else "id"
        if job is None or not job.listed:
            return {id_key: job_id, **_NOT_FOUND}
        health = job.health
        if operation == "show_dr_monitoring_data":
            dr = job.job_type == "cloudDataGuard"
            return {"id": job_id, "data_guard_minitor": self._monitor(job, v5=False) if dr else None}
        if operation == "batch_rpo_rto":
            if health.get("rpo_error"):
                return {"job_id": job_id, "error_code": health.get("rpo_error"), "error_msg": "Simulated RPO error."}
            if job.job_type != "cloudDataGuard" and health.get("rpo_ms") is None:
                return {"job_id": job_id, "error_code": "DRS.M00304", "error_msg": "Not a disaster recovery task."}
            now = time.time()
            hop = {"check_point": "mysql-bin.000003:1234", "gtid_set": "", "time": _local(now)}
            rpo, rto = health.get("rpo_ms", 1000), health.get("rto_ms", 500)
            return {"job_id": job_id, "rpo_info": {**hop, "delay": str(rpo)}, "rto_info": {**hop, "delay": str(rto)}}
        entry: dict[str, Any] = {"id": job_id, "status": job.status}
        if job.status.endswith("_FAILED"):
            entry["error_code"] = health.get("error_code", "DRS.M00004")
            entry["error_message"] = "Simulated job failure."
        if operation == "batch_status":
            return entry
        started = self.server.scenario.started
        # DRS's "last update" of the job; a failed job's is taken as its failure time when ``failed_ago`` says so.
        updated = time.time() - float(health.get("failed_ago")) if health.get("failed_ago") is not None else started
        entry.update(
            {
                "name": job.name or job.id,
                "failed_reason": health.get("failed_reason", ""),
                "actual_start_time": str(int(started * 1000)),
                "update_time": str(int(updated * 1000)),
                "job_direction": "up",
                "job_kernel_direction": "up",
                "db_use_type": job.job_type,
                "multi_write": False,
            }
        )
        if health.get("full_transfer_done_ago") is not None:
            entry["full_transfer_complete_time"] = str(
                int((time.time() - float(health.get("full_transfer_done_ago"))) * 1000)
            )
        if health.get("expired_days") is not None:
            entry["expired_days"] = str(health.get("expired_days"))
        return entry

    # --- v5 per-job calls -------------------------------------------------------------------

    @staticmethod
    def _monitor(job: SimJob, *, v5: bool) -> dict[str, Any]:
        """Monitor data with the SDK's types: delays and rates as integers, the other numbers as strings."""
        m = job.health.get("monitor") or {}
        src_delay, dst_delay = int(m.get("src_delay", job.delay)), int(m.get("dst_delay", 0))
        common = {
            "bandwidth": "10",
            "dst_delay": dst_delay,
            "src_rps": str(m.get("src_rps", 100)),
            "dst_rps": str(m.get("dst_rps", 100)),
            "src_io": str(m.get("src_io", 20)),
            "dst_io": str(m.get("dst_io", 20)),
            "node_offset": "mysql-bin.000003:1200",
            "dst_offset": "mysql-bin.000003:1100",
            "trans_lines": str(m.get("trans_lines", 100000)),
        }
        src_ok, dst_ok = bool(m.get("src_normal", True)), bool(m.get("dst_normal", True))
        if v5:
            return {
                **common,
                "is_src_normal": src_ok,
                "is_dst_normal": dst_ok,
                "src_offset": "mysql-bin.000003:1234",
                "src_delay": src_delay,
                "trans_data": str(m.get("trans_data", 512)),
                "used_volumes": "10",
                "used_memory": "2048",
                "used_cpu_percent": "12",
                "node_volume_size": 100,
                "node_memory_size": 8192,
                "update_time": iso(time.time()),
                "apply_rate": int(m.get("apply_rate", 2048)),
            }
        return {
            **common,
            "src_normal": src_ok,
            "dst_normal": dst_ok,
            "sr_offset": "mysql-bin.000003:1234",
            "sr_delay": src_delay,
            "trans_inMB": str(m.get("trans_data", 512)),
            "cpuUsed_percent": "12",
            "mem_used_inMB": "2048",
            "node_mem_inMB": 8192,
            "node_volume_inGB": 100,
            "volume_used_inGB": "10",
            "migration_bytes_per_second": int(m.get("apply_rate", 2048)),
        }

    def _ddl(self, job: SimJob, params: dict[str, list[str]], fault: str | None) -> bytes:
        offset, limit = page_params(params, default_limit=10)
        items = job.health.ddl_items()
        filters = (
            ("status", "status", operator.eq),
            ("start_seq_no", "seqno", operator.ge),
            ("end_seq_no", "seqno", operator.le),
        )
        for key, name, compare in filters:
            if key in params:
                try:
                    value = int(params[key][0])
                except ValueError:
                    raise ApiError(400, "DRS.M00202", f"Invalid parameter value: {key}.") from None
                items = [i for i in items if compare(i[name], value)]
        return page_answer(fault, "ddl_list", "count", items, offset, limit)

    def _dirty(self, job: SimJob, params: dict[str, list[str]], fault: str | None) -> bytes:
        offset, limit = page_params(params, default_limit=10)
        anonymize = params.get("anonymize_mode", ["false"])[0].lower()
        mode = params.get("task_mode", [""])[0]
        if anonymize not in ("true", "false") or mode not in ("", "FULL_TRANSFER"):
            raise ApiError(400, "DRS.M00202", "Invalid parameter value.")
        self._count_health(job.id, "show_dirty_data/" + ("anonymized" if anonymize == "true" else "plain"))
        now = time.time()
        items = job.health.dirty_items("full" if mode else "incremental", now)
        bounds = []
        for key in ("begin_time", "end_time"):
            raw = params.get(key, [""])[0]
            value = parse_iso8601(raw) if raw else None
            if raw and value is None:
                raise ApiError(400, "DRS.M00202", f"Invalid parameter value: {key}.")
            bounds.append(value)
        begin, end = bounds
        items = [
            i
            for i in items
            if (begin is None or (parse_iso8601(i["error_time"]) or 0) >= begin)
            and (end is None or (parse_iso8601(i["error_time"]) or 0) <= end)
        ]
        return page_answer(fault, "dirty_data_list", "count", items, offset, limit)

    @staticmethod
    def _policy(job: SimJob) -> dict[str, Any]:
        policy = job.health.get("policy") or {"status": "CLOSED"}
        return {
            "period": str(policy.get("period", "")),
            "status": str(policy.get("status", "OPEN")),
            "begin_time": "00:00",
            "end_time": "23:59",
            "compare_type": list(policy.get("types", ["lines"])),
            "next_compare_time": iso(time.time() + float(policy.get("next_in", 3600))),
            "compare_policy": "normal",
            "interval_hour": int(policy.get("interval_hour", 24)),
        }

    @staticmethod
    def _compare_progress(status: str, start: float) -> dict[str, Any]:
        running = status in ("RUNNING", "WAITING_FOR_RUNNING", "FULL_DOING", "INCRE_DOING")
        done = min(99.0, (time.time() - start) / 6) if running else 100.0
        return {
            "full_info": {"progress": round(done, 1), "src_speed": "10", "recheck_entities": 0},
            "incre_info": {"delay": 2.0 if running else 0.0, "src_speed": "1", "rps": 50, "log_point": "p"}
            | {"recheck_entities": 0},
            "global_info": {"src_speed": "11"},
        }
