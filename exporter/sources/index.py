"""What one scrape collects: every job, the project it belongs to and how it is collected.

Built once per scrape (after the job listings it waits for) and handed to the progress cache and
to every source, so that they all see the same jobs: nothing reads a listing or an owner that
another step of the same scrape happened to set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from ..base.sharding import Shard
from ..config import Config, DiscoveryConfig, JobConfig
from ..drs.joblist import JobMeta
from .cache import Key
from .projects import Project

DR_JOB_TYPE = "cloudDataGuard"  # disaster recovery: the jobs with RPO/RTO and batched DR monitoring


class Owner(NamedTuple):
    """The project a collected job belongs to and the settings it is collected with."""

    project: Project
    aggregate_only: bool
    job: JobConfig | None  # its configuration; None for a discovered job (its project's ``discovery`` applies)

    def setting(self, name: str, default: bool) -> bool:
        """A per-job switch such as ``comparisons``: the job's, else its discovery's, else ``default``.

        ``name`` is a field of both :class:`JobConfig` and :class:`DiscoveryConfig` (None: not set).
        """
        given: JobConfig | DiscoveryConfig | None = self.job if self.job is not None else self.project.config.discovery
        value = getattr(given, name, None) if given is not None else None
        return default if value is None else bool(value)


@dataclass(frozen=True)
class Index:
    """Every (job_id, object_type) to collect, the owner of each job, and the listings they came from."""

    keys: tuple[Key, ...]
    owners: Mapping[str, Owner]  # job_id -> owner: configured jobs, then discovered ones
    listed: Mapping[Project, Sequence[JobMeta]]  # each project's last successful listing (none without discovery)
    # (last listing succeeded, its duration) of each project with discovery, read with ``listed``
    discovery: Mapping[Project, tuple[bool, float]] = field(default_factory=dict)

    @cached_property
    def dr_jobs(self) -> frozenset[str]:
        """The DR jobs among the owners: by their configured ``job_type``, else as their project's listing says."""
        listed = {job.job_id: job.job_type for found in self.listed.values() for job in found}
        return frozenset(
            job_id
            for job_id, owner in self.owners.items()
            if (owner.job.job_type if owner.job is not None and owner.job.job_type else listed.get(job_id))
            == DR_JOB_TYPE
        )

    def jobs(self, project: Project) -> Iterator[tuple[str, Owner]]:
        """The jobs ``project`` owns: its configured ones, then those its listing found first."""
        for job_id, owner in self.owners.items():
            if owner.project is project and owner.job is not None:
                yield job_id, owner
        for job_id, owner in self.owners.items():
            if owner.project is project and owner.job is None:
                yield job_id, owner


def configured(projects: Sequence[Project], shard: Shard) -> dict[str, Owner]:
    """The owner of every configured job of ``shard`` (job ids are unique across projects)."""
    return {
        job.id: Owner(project, job.aggregate_only, job)
        for project in projects
        for job in project.config.jobs
        if shard.owns(job.id)
    }


def build(config: Config, projects: Sequence[Project], owners: Mapping[str, Owner]) -> Index:
    """The index as of the projects' last listings, on top of the configured jobs' ``owners``.

    Only this process's shard of the jobs (:attr:`Config.sharding`): every source takes its jobs
    from the index, so a job of another shard is neither read, nor cached, nor exported here.
    """
    shard = config.sharding
    keys = [key for key in config.keys if shard.owns(key[0])]
    all_owners = dict(owners)
    listed: dict[Project, Sequence[JobMeta]] = {}
    health: dict[Project, tuple[bool, float]] = {}
    for project in projects:
        discovery = project.config.discovery
        if project.directory is None or discovery is None:
            listed[project] = []
            continue
        found, up, duration = project.directory.last_listing()
        listed[project], health[project] = found, (up, duration)
        for job in found:
            if job.job_id in all_owners or not shard.owns(job.job_id):
                continue  # configured (here or in another project), listed by an earlier project, or another shard's
            all_owners[job.job_id] = Owner(project, discovery.aggregate_only, None)
            keys.extend((job.job_id, t) for t in discovery.object_types)
    return Index(tuple(dict.fromkeys(keys)), all_owners, listed, health)
