"""Counts of the exporter's own API calls, kept apart from the collected DRS data."""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .transport import ApiCall

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiStats:
    """Observer of every API attempt: requests, errors by code, and a latency histogram."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self.throttled_seconds: dict[str, float] = {}  # project_id -> seconds of 429 backoff
        # Jobs collected, once known: a call about another job (one still in flight when its job
        # stopped being listed) must not bring back the error series retain_jobs() dropped.
        self._jobs: set[str] | None = None

    def __call__(self, call: ApiCall) -> None:
        with self._lock:
            self.requests[call.operation] += 1
            if call.error_code is not None and self._counts_job(call.job_id):
                self.errors[(call.operation, call.job_id, call.error_code)] += 1
            counts = self._buckets.setdefault(call.operation, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, call.duration)] += 1
            self._sums[call.operation] = self._sums.get(call.operation, 0.0) + call.duration

    def error(self, operation: str, job_id: str, code: str) -> None:
        """Count a failure found after the HTTP exchange (too many pages, a reader bug): no request, no latency."""
        with self._lock:
            if self._counts_job(job_id):
                self.errors[(operation, job_id, code)] += 1

    def _counts_job(self, job_id: str) -> bool:
        return not job_id or self._jobs is None or job_id in self._jobs

    def throttled(self, project_id: str, seconds: float) -> None:
        """Count ``seconds`` added to a project's backoff after a 429."""
        with self._lock:
            self.throttled_seconds[project_id] = self.throttled_seconds.get(project_id, 0.0) + seconds

    def retain_jobs(self, job_ids: set[str]) -> None:
        """Forget the error counts of jobs no longer collected (calls not about a job are kept)."""
        with self._lock:
            self._jobs = set(job_ids)
            for key in [k for k in self.errors if k[1] and k[1] not in job_ids]:
                del self.errors[key]

    def collect(self) -> Iterator[Metric]:
        """Fresh metric families from the counts so far."""
        requests = CounterMetricFamily(
            "huaweicloud_drs_api_requests",
            "HTTP requests sent to the DRS and IAM APIs, retries included.",
            labels=["operation"],
        )
        errors = CounterMetricFamily(
            "huaweicloud_drs_api_errors",
            "Failed API requests by the API's error code (also ones retried successfully later); "
            "job_id is empty for calls not about a job.",
            labels=["operation", "job_id", "error_code"],
        )
        latency = HistogramMetricFamily(
            "huaweicloud_drs_api_request_duration_seconds",
            "Duration of API requests, one per attempt, from the request's start to the end of its answer "
            "(waiting for a free connection slot is not included).",
            labels=["operation"],
        )
        throttled = CounterMetricFamily(
            "huaweicloud_drs_api_throttled_seconds",
            "Seconds during which no request was sent to a project's API because it answered 429 (Retry-After "
            "or backoff), for every worker of that project.",
            labels=["project_id"],
        )
        with self._lock:
            for operation, n in sorted(self.requests.items()):
                requests.add_metric([operation], n)
            for (operation, job_id, code), n in sorted(self.errors.items()):
                errors.add_metric([operation, job_id, code], n)
            for operation, counts in sorted(self._buckets.items()):
                cumulative = 0
                buckets: list[tuple[str, float]] = []
                for bound, count in zip([*BUCKETS, float("inf")], counts, strict=True):
                    cumulative += count
                    buckets.append((_bound(bound), cumulative))
                latency.add_metric([operation], buckets, self._sums[operation])
            for project_id, seconds in sorted(self.throttled_seconds.items()):
                throttled.add_metric([project_id], seconds)
        yield requests
        yield errors
        yield latency
        yield throttled


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class ReloadStatus:
    """Whether the last configuration reload worked, and when one last did (start-up counts as one)."""

    def __init__(self) -> None:
        self.successful = True
        self.success_at = time.time()

    def record(self, ok: bool) -> None:
        """The outcome of a reload."""
        self.successful = ok
        if ok:
            self.success_at = time.time()

    def collect(self) -> Iterator[Metric]:
        """The two gauges Prometheus and Alertmanager export about their own reloads."""
        ok = GaugeMetricFamily(
            "huaweicloud_drs_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful (1) or not (0).",
        )
        ok.add_metric([], 1.0 if self.successful else 0.0)
        yield ok
        at = GaugeMetricFamily(
            "huaweicloud_drs_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload (start-up counts as one).",
        )
        at.add_metric([], self.success_at)
        yield at
