"""Job-level families (job info, DRS's own job progress, discovery health) and their live source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric

from ..base.deadline import Deadline
from ..drs.joblist import JobMeta, JobProgress
from ..drs.throughput import Throughput
from ..sources.index import Index
from .source import Exposed, SourceContext


@dataclass
class JobMetrics:
    """Job-level families: job info, DRS's own progress, delay, remaining time, throughput and phase
    progress, and discovery health."""

    infos: list[tuple[JobMeta, str, str]]  # (job, project_id, region)
    progress: list[JobProgress]
    discovery: list[tuple[str, bool, float, int]]  # (project_id, up, duration, jobs)
    throughput: list[Throughput] = field(default_factory=list)  # from the same batch-progress answers

    def collect(self) -> Iterator[Metric]:
        """Fresh families from the latest listings and progress readings."""
        info = GaugeMetricFamily(
            "huaweicloud_drs_job_info",
            "DRS job metadata from the job lists (status from batch progress for jobs not discovered); always 1.",
            labels=["job_id", "name", "status", "engine_type", "job_type", "task_type", "project_id", "region"],
        )
        for job, project_id, region in self.infos:
            info.add_metric(
                [job.job_id, job.name, job.status, job.engine_type, job.job_type, job.task_type, project_id, region], 1
            )
        ratio = GaugeMetricFamily(
            "huaweicloud_drs_job_progress_ratio", "Overall job progress as DRS reports it, 0-1.", labels=["job_id"]
        )
        delay = GaugeMetricFamily(
            "huaweicloud_drs_job_incremental_delay_seconds",
            "Incremental replication delay of the job as DRS reports it.",
            labels=["job_id"],
        )
        remaining = GaugeMetricFamily(
            "huaweicloud_drs_job_remaining_seconds", "Remaining time of the job as DRS estimates it.", labels=["job_id"]
        )
        for p in self.progress:
            for family, number in (
                (ratio, p.progress_ratio),
                (delay, p.delay_seconds),
                (remaining, p.remaining_seconds),
            ):
                if number is not None:
                    family.add_metric([p.job_id], number)
        throughput = list(throughput_families(self.throughput))
        up = GaugeMetricFamily(
            "huaweicloud_drs_discovery_up", "1 if the last job listing of the project succeeded.", labels=["project_id"]
        )
        duration = GaugeMetricFamily(
            "huaweicloud_drs_discovery_duration_seconds", "Duration of the last job listing.", labels=["project_id"]
        )
        found = GaugeMetricFamily(
            "huaweicloud_drs_discovered_jobs", "Jobs found by the last successful listing.", labels=["project_id"]
        )
        for project_id, ok, seconds, jobs in self.discovery:
            up.add_metric([project_id], 1.0 if ok else 0.0)
            duration.add_metric([project_id], seconds)
            found.add_metric([project_id], jobs)
        yield from (info, ratio, delay, remaining, *throughput, up, duration, found)


def throughput_families(rates: list[Throughput]) -> Iterator[GaugeMetricFamily]:
    """Apply rates and per-phase progress (batch progress; a job not in a phase, -1 there, has no sample)."""
    rows = GaugeMetricFamily(
        "huaweicloud_drs_job_apply_rows_per_second",
        "Rows per second the job applies in its incremental phase, as DRS reports it (batch progress "
        "apply_rows_rate); no sample before the incremental phase.",
        labels=["job_id"],
    )
    data = GaugeMetricFamily(
        "huaweicloud_drs_job_apply_bytes_per_second",
        "Bytes per second the job applies in its incremental phase, as DRS reports it (batch progress "
        "apply_bytes_rate); no sample before the incremental phase.",
        labels=["job_id"],
    )
    ratio = GaugeMetricFamily(
        "huaweicloud_drs_job_phase_progress_ratio",
        "Share of each phase of the job done (structure, data, index), 0-1, as DRS reports it; no sample for a "
        "phase the job is not in yet.",
        labels=["job_id", "phase"],
    )
    remaining = GaugeMetricFamily(
        "huaweicloud_drs_job_phase_remaining_seconds",
        "Remaining time of each phase of the job as DRS estimates it; no sample for a phase the job is not in yet.",
        labels=["job_id", "phase"],
    )
    for t in rates:
        for family, number in ((rows, t.apply_rows_per_second), (data, t.apply_bytes_per_second)):
            if number is not None:
                family.add_metric([t.job_id], number)
        for phase in t.phases:
            if phase.ratio is not None:
                ratio.add_metric([t.job_id, phase.phase], phase.ratio)
            if phase.remaining_seconds is not None:
                remaining.add_metric([t.job_id, phase.phase], phase.remaining_seconds)
    yield from (rows, data, ratio, remaining)


class JobSource:
    """Job info, job-level progress and discovery health, built live on every scrape (the cheap path).

    The listings come from the scrape's index; progress from each project's
    :class:`~exporter.sources.jobs.JobProgressReader` (``Project.progress``, which a reload hands
    over with its project).
    """

    def __init__(self, context: SourceContext) -> None:
        self.config = context.config
        self.projects = context.projects

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        """Job info, DRS's job-level progress and discovery health, as of now."""
        infos: list[tuple[JobMeta, str, str]] = []
        progress: list[JobProgress] = []
        throughput: list[Throughput] = []
        discovery: list[tuple[str, bool, float, int]] = []
        for project in self.projects:
            region = project.config.region or ""
            found = {job.job_id: job for job in index.listed.get(project, ())}
            ids = [job_id for job_id, _ in index.jobs(project)]  # this shard's: configured, then listed
            readings = project.progress.read(ids, deadline) if ids else {}
            progress.extend(readings[i].progress for i in ids if i in readings)
            throughput.extend(readings[i].throughput for i in ids if i in readings)
            for job_id in ids:
                meta = found.get(job_id)
                if meta is None:  # configured, not listed: the status is what batch progress says
                    status = readings[job_id].progress.status if job_id in readings else ""
                    meta = JobMeta(job_id, "", status, "", "", "")
                infos.append((meta, project.config.project_id, region))
            if project in index.discovery:  # as of the index: the same listing job_info shows
                up, duration = index.discovery[project]
                discovery.append((project.config.project_id, up, duration, len(index.listed.get(project, ()))))
        return Exposed(JobMetrics(infos, progress, discovery, throughput))

    def adopt(self, previous: object) -> None:
        """Nothing of its own: the projects hand over their listings and progress readers."""

    def close(self) -> None:
        """Nothing of its own: the projects stop their readers."""
