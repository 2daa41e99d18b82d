"""Abnormal rows (v5 ``dirty-data``) of the jobs that have them on, read in the background.

Per job and ``dirty_rows_refresh_interval``: one call per phase (incremental, full) for DRS's
count over the look-back window, always asked with ``anonymize_mode=true``. With
``dirty_rows_per_table`` the window's rows are listed instead, 1000 a page, at most
``dirty_rows_max_pages`` pages per phase: what is left after them is not read, and the state
says the read was capped. Each page is cut down to names and times as it is parsed
(:mod:`exporter.drs.dirty`): ``error_sql`` and ``error_msg`` never outlive it. What a failed
read leaves, and for how long, is :mod:`.perjob`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ..base.deadline import Deadline
from ..drs.client import DRSClient
from ..drs.dirty import OPERATION, PHASES, DirtyRows
from ..drs.health_job_client import fetch_dirty_rows
from .perjob import JobRead, JobsSnapshot, PerJobReader
from .reader import ErrorCounter


@dataclass(frozen=True)
class JobDirtyRows:
    """A job's abnormal rows of each phase in one read's window."""

    phases: tuple[DirtyRows, ...]  # in the order of drs.dirty.PHASES


JobDirty: TypeAlias = JobRead[JobDirtyRows]
DirtySnapshot: TypeAlias = JobsSnapshot[JobDirtyRows]


class DirtyReader(PerJobReader[JobDirtyRows]):
    """Keeps the abnormal rows of the jobs asked for, each read again once ``interval`` has passed."""

    NAME = "drs-dirty"
    OPERATION = OPERATION
    WHAT = "abnormal rows"

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        max_staleness: float,
        *,
        window: float,
        per_table: bool = False,
        max_pages: int = 10,
        on_error: ErrorCounter | None = None,
    ) -> None:
        super().__init__(interval, refresh_timeout, max_staleness, on_error=on_error)
        self.window = window  # seconds looked back
        self.per_table = per_table
        self.max_pages = max_pages

    def fetch(self, client: DRSClient, job_id: str, deadline: Deadline) -> JobDirtyRows:
        """Both phases of the job, one after the other within ``deadline``, over the same window."""
        end = None
        phases = []
        for phase in PHASES:
            rows = fetch_dirty_rows(
                client,
                job_id,
                deadline,
                window_seconds=self.window,
                phase=phase,
                per_table=self.per_table,
                max_pages=self.max_pages,
                now=end,
            )
            end = rows.end
            phases.append(rows)
        return JobDirtyRows(tuple(phases))
