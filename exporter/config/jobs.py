"""The settings of one job and of discovered jobs: what to collect and which replication-health sources to read."""

from __future__ import annotations

import re
from typing import Annotated

from .validation import Model, between, doc, one_of
from .values import JOB_TYPES, JobId, JobType, ObjectType, Status, job_types, object_types, statuses


class JobConfig(Model, frozen=True):
    """A DRS job and what to collect for it (a bare id stands for `{id: ...}`)."""

    id: Annotated[JobId, doc("DRS job id")]
    object_types: Annotated[tuple[ObjectType, ...], object_types("object types to collect")] = ("table",)
    aggregate_only: Annotated[
        bool,
        doc(
            "no per-object series: `huaweicloud_drs_database_objects` and `..._completed` per `src_db` "
            "instead (for the largest jobs)"
        ),
    ] = False
    comparisons: Annotated[
        bool | None,
        doc("export this job's DRS comparison results (row and value comparisons); default: the global `comparisons`"),
    ] = None
    monitor_data: Annotated[
        bool | None,
        doc(
            "export this job's monitor data (delay by side, endpoint health, rows and bytes transferred; one "
            "API call per `monitor_refresh_interval`; DR jobs are read ten to a call); default: the global "
            "`monitor_data`"
        ),
    ] = None
    job_type: Annotated[
        str | None,
        one_of(
            JOB_TYPES,
            "the job's type, where no discovery lists it (this wins over a listing): a `cloudDataGuard` "
            "(disaster recovery) job gets RPO/RTO and its monitor data from the batched DR APIs",
        ),
    ] = None
    rpo_rto: Annotated[
        bool | None,
        doc(
            "export this DR job's RPO and RTO (`huaweicloud_drs_job_rpo_seconds`, `..._rto_seconds`); "
            "default: the global `rpo_rto`"
        ),
    ] = None
    job_details: Annotated[
        bool | None,
        doc(
            "export why this job failed and when its full phase ended (batch-status, batch-detail; shared with the "
            "project's other jobs, see the global `job_details`); default: the global `job_details`"
        ),
    ] = None
    dirty_rows: Annotated[
        bool | None,
        doc(
            "export this job's abnormal rows (rows DRS failed to apply, per phase over `dirty_rows_window`; two API "
            "calls per `dirty_rows_refresh_interval`); default: the global `dirty_rows`"
        ),
    ] = None
    ddl_alarms: Annotated[
        bool | None,
        doc(
            "export this job's active DDL alarms (one API call per `ddl_refresh_interval`); "
            "default: the global `ddl_alarms`"
        ),
    ] = None

    health_comparisons: Annotated[
        bool | None,
        doc(
            'export this job\'s scheduled ("health") comparisons: their latest results, the compare policy and '
            "the progress of a running one (2-6 API calls per `health_compare_refresh_interval`); default: the "
            "global `health_comparisons`"
        ),
    ] = None


class DiscoveryConfig(Model, frozen=True):
    """Which jobs of a project to find by listing them."""

    job_types: Annotated[tuple[JobType, ...], job_types("job types to list (the list API requires them)")] = ()
    status: Annotated[
        tuple[Status, ...],
        statuses("only jobs in these statuses, e.g. `INCRE_TRANSFER_STARTED`"),
    ] = ()
    name_regex: Annotated[re.Pattern[str] | None, doc("only jobs whose name matches")] = None
    exclude_regex: Annotated[re.Pattern[str] | None, doc("no jobs whose name matches")] = None
    object_types: Annotated[tuple[ObjectType, ...], object_types("object types to collect for each discovered job")] = (
        "table",
    )
    refresh_interval: Annotated[float, between(1, 86400, "seconds between job listings")] = 300.0
    aggregate_only: Annotated[bool, doc("`aggregate_only` for every discovered job")] = False
    comparisons: Annotated[
        bool | None, doc("`comparisons` for every discovered job; default: the global `comparisons`")
    ] = None
    monitor_data: Annotated[
        bool | None, doc("`monitor_data` for every discovered job; default: the global `monitor_data`")
    ] = None
    rpo_rto: Annotated[bool | None, doc("`rpo_rto` for every discovered DR job; default: the global `rpo_rto`")] = None
    job_details: Annotated[
        bool | None, doc("`job_details` for every discovered job; default: the global `job_details`")
    ] = None
    dirty_rows: Annotated[
        bool | None, doc("`dirty_rows` for every discovered job; default: the global `dirty_rows`")
    ] = None
    ddl_alarms: Annotated[
        bool | None, doc("`ddl_alarms` for every discovered job; default: the global `ddl_alarms`")
    ] = None
    health_comparisons: Annotated[
        bool | None,
        doc("`health_comparisons` for every discovered job; default: the global `health_comparisons`"),
    ] = None

    def wants(self, name: str) -> bool:
        """True when a job called ``name`` passes the include and exclude patterns."""
        if self.name_regex is not None and not self.name_regex.search(name):
            return False
        return not (self.exclude_regex is not None and self.exclude_regex.search(name))
