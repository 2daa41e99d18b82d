"""Client calls of the batched v3 replication-health APIs, on the progress client's transport.

Each takes many job ids and sends them ``CHUNK`` at a time (``POST …/jobs/<api>`` with
``{"jobs": [...]}``), one call after the other within the caller's deadline; signing, retries,
429 backoff, size caps and the per-attempt ``api_requests_total``/``api_errors_total`` counts are
the transport's. The answer is a :class:`~exporter.drs.batch.Batch`: values per job, and per job
the reason it has none (an entry's own ``error_code``, a missing entry, or the failure of its
chunk's call). When every chunk's call failed the error is raised instead, so that a caller can
tell "the API is down or missing here" (``http_404``, ``APIGW.0101``) from "some jobs failed".
Entry errors are not counted by the transport (the HTTP call succeeded): count them with
``ApiStats.error(operation, job_id, code)``, all but those marked ``call_failed`` (the failure of
their chunk's call, which the transport counted).

Public API (one call per area):

- :func:`fetch_rpo_rto` → ``Batch[RpoRto]`` (``batch-rpo-and-rto``)
- :func:`fetch_dr_monitoring` → ``Batch[MonitorData]`` (``disaster-recovery-monitoring-data``)
- :func:`fetch_batch_progress` → ``Batch[BatchProgress]`` (``batch-progress``, with throughput and phases)
- :func:`fetch_job_status` → ``Batch[JobStatus]`` (``batch-status``)
- :func:`fetch_job_details` → ``Batch[JobDetail]`` (``batch-detail``)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TypeVar

from ..base.deadline import Deadline
from .batch import Batch, EntryError, chunks
from .client import DRSClient
from .errors import DRSAPIError
from .jobstatus import DETAIL_OPERATION, STATUS_OPERATION, JobDetail, JobStatus, parse_job_detail, parse_job_status
from .monitor import DR_OPERATION, MonitorData, parse_dr_monitoring
from .rpo import OPERATION as RPO_OPERATION
from .rpo import RpoRto, parse_rpo_rto
from .throughput import OPERATION as PROGRESS_OPERATION
from .throughput import BatchProgress, parse_batch_progress

T = TypeVar("T")

# Jobs per call. No maximum is documented for these APIs except DR monitoring ("at most 10 per
# call" on its API page); 50 is what the exporter's batch-progress call has always sent. Job
# details are whole job descriptions (endpoints, objects, tags): 10 per call keeps each answer small.
CHUNK = 50
DR_MONITORING_CHUNK = 10
DETAIL_CHUNK = 10


def _batched(
    client: DRSClient,
    path: str,
    operation: str,
    job_ids: Iterable[str],
    size: int,
    parse: Callable[..., Batch[T]],  # (body, asked=job ids) -> the batch
    deadline: Deadline | float,
) -> Batch[T]:
    deadline = Deadline.of(deadline)
    result: Batch[T] = Batch()
    failures: list[DRSAPIError] = []
    groups = chunks(job_ids, size)
    for group in groups:
        try:
            part: Batch[T] = client.call(
                "POST",
                path,
                operation=operation,
                version="v3",
                json_body={"jobs": group},
                deadline=deadline,
                parse=partial(parse, asked=group),  # a wrong shape fails the call itself
            )
        except DRSAPIError as err:
            failures.append(err)
            errors = {j: EntryError(j, err.error_code, err.error_msg, call_failed=True) for j in group}
            part = Batch.of({}, errors)
        result = result.merged(part)
    if groups and len(failures) == len(groups):
        raise failures[0]
    return result


def fetch_rpo_rto(
    client: DRSClient, job_ids: Iterable[str], deadline: Deadline | float, *, delay_unit: str = "ms"
) -> Batch[RpoRto]:
    """RPO and RTO of DR jobs; ``delay_unit``: how a bare ``delay`` is read (the API page says ms)."""
    parse = partial(parse_rpo_rto, operation=RPO_OPERATION, delay_unit=delay_unit)
    return _batched(client, "/jobs/batch-rpo-and-rto", RPO_OPERATION, job_ids, CHUNK, parse, deadline)


def fetch_dr_monitoring(
    client: DRSClient, job_ids: Iterable[str], deadline: Deadline | float, *, delay_unit: str = "s"
) -> Batch[MonitorData]:
    """Monitor data of DR jobs, ten per call; ``delay_unit``: how bare delays are read (undocumented)."""
    parse = partial(parse_dr_monitoring, operation=DR_OPERATION, delay_unit=delay_unit)
    path = "/jobs/disaster-recovery-monitoring-data"
    return _batched(client, path, DR_OPERATION, job_ids, DR_MONITORING_CHUNK, parse, deadline)


def fetch_batch_progress(client: DRSClient, job_ids: Iterable[str], deadline: Deadline | float) -> Batch[BatchProgress]:
    """Job-level progress with apply rates and phase progress (the batch-progress answer, whole)."""
    parse = partial(parse_batch_progress, operation=PROGRESS_OPERATION)
    return _batched(client, "/jobs/batch-progress", PROGRESS_OPERATION, job_ids, CHUNK, parse, deadline)


def fetch_job_status(client: DRSClient, job_ids: Iterable[str], deadline: Deadline | float) -> Batch[JobStatus]:
    """Status and error code of each job."""
    parse = partial(parse_job_status, operation=STATUS_OPERATION)
    return _batched(client, "/jobs/batch-status", STATUS_OPERATION, job_ids, CHUNK, parse, deadline)


def fetch_job_details(client: DRSClient, job_ids: Iterable[str], deadline: Deadline | float) -> Batch[JobDetail]:
    """Failure reason, phase times and automatic expiry of each job."""
    parse = partial(parse_job_detail, operation=DETAIL_OPERATION)
    return _batched(client, "/jobs/batch-detail", DETAIL_OPERATION, job_ids, DETAIL_CHUNK, parse, deadline)
