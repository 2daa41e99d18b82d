"""RPO and RTO of the DR jobs (v3 ``batch-rpo-and-rto``), read in the background.

One batched call per project (per 50 DR jobs) per ``rpo_rto_refresh_interval``: when any DR job
of a project is due, all of that project's are read together. A job whose entry carries its own
``error_code`` is marked down with it and counted once in ``huaweicloud_drs_api_errors_total``;
the other jobs of the answer keep their values. A failed call marks its jobs down (the transport
counted it). Either way a job keeps its last good values while they are younger than
``max_staleness``. Scrapes never wait for these reads.
"""

from __future__ import annotations

from concurrent.futures import wait

from ..drs.health_client import fetch_rpo_rto
from ..drs.rpo import OPERATION, RpoRto
from .perjob import JobRead, JobsSnapshot, PerJobReader

JobRpoRto = JobRead[RpoRto]
RpoRtoSnapshot = JobsSnapshot[RpoRto]


class RpoRtoReader(PerJobReader[RpoRto]):
    """Keeps the RPO and RTO of the DR jobs asked for, each project's read again once ``interval`` has passed."""

    NAME = "drs-rpo-rto"

    def _due(self, due: list[str]) -> list[str]:
        # Every wanted job of a project with a due job: the call costs the same, and the project's
        # jobs stay in step (a job discovered later does not cost a call of its own).
        clients = {id(self._wanted[j]) for j in due}
        return [j for j, client in self._wanted.items() if id(client) in clients]

    def _refresh(self, due: list[str]) -> None:
        reads = self._batches(fetch_rpo_rto, OPERATION, due)
        # Each call has its own deadline; this bound only guards against a bug.
        wait(reads, timeout=-(-len(reads) // self.WORKERS) * self.refresh_timeout + 10)
        values: dict[str, RpoRto] = {}
        errors: dict[str, str] = {}
        self._gather(reads, values, errors)
        self._store(values, errors)
