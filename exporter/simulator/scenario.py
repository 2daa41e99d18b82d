"""What the simulator serves: jobs, their objects and how their progress moves over time."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from ..base.objecttypes import OBJECT_TYPES
from .compare_scenario import SimComparison, SimObjectComparison, answer_faults, comparisons, object_comparison
from .faults import FAULTS, Faults, apply_faults
from .health_scenario import SimHealth, health, health_answers

TIME_FORMATS = ("epoch_ms", "iso")
_PACES: list[tuple[float, float]] = []  # per object index: (start percent, speed factor)
_PACES_LOCK = threading.Lock()


def _pace(index: int) -> tuple[float, float]:
    """Where object ``index`` starts and how fast it moves; one in ten is done from the start."""
    if index >= len(_PACES):
        with _PACES_LOCK:  # made once per index, shared by every job and request thread
            while len(_PACES) <= index:
                h = (len(_PACES) * 2654435761 + 97) & 0xFFFFFFFF
                _PACES.append((100.0, 0.0) if h % 10 == 0 else (float(h % 60), 0.5 + ((h >> 8) % 1000) / 1000.0))
    return _PACES[index]


def _grow_prefixes(prefixes: list[str], object_type: str, index: int) -> None:
    """The fixed part of each generated row up to ``index``, made once (request threads share them)."""
    with _PACES_LOCK:
        while len(prefixes) <= index:
            i = len(prefixes)
            db, tb = f"db_{i // 500:04d}", f"{object_type}_{i:07d}"
            prefixes.append(f'{{"src_db":"{db}","src_tb":"{tb}","dst_db":"{db}","dst_tb":"{tb}","progress":')


@dataclass
class SimJob:
    """One DRS job: object counts per type and how its progress advances."""

    id: str
    objects: dict[str, int]
    time_format: str = "epoch_ms"
    speed: float = 0.2  # mean percent per second
    error: str | None = None  # answer every request with this DRS error code
    error_msg: str = "Simulated job error."  # ... and this message
    latency_ms: float = 0.0
    create_time_lag: float = 0.0
    names: list[dict[str, str]] = field(default_factory=list)
    frozen_at: float | None = None  # stalled: progress as it was at this elapsed time
    fault: str | None = None  # one of FAULTS: how this job's progress-data answers misbehave
    fault_fired: bool = False
    # What the job lists (GET /v5/.../jobs, POST /v3/.../jobs) say about it.
    name: str = ""
    status: str = "INCRE_TRANSFER_STARTED"
    job_type: str = "migration"
    engine_type: str = "mysql-to-mysql"
    task_type: str = "FULL_INCR_TRANS"
    parent: str | None = None  # listed as a child of this job
    listed: bool = True  # False: gone from the lists (deleted)
    delay: float = 2.0  # incremental replication delay in seconds
    comparisons: list[SimComparison] = field(default_factory=list)
    object_comparison: SimObjectComparison | None = None
    compare_fault: str | None = None  # one of FAULTS, for the comparison APIs only
    compare_answers: dict[str, str] = field(default_factory=dict)  # comparison operation -> ANSWER_FAULTS
    health: SimHealth = field(default_factory=SimHealth)  # replication-health answers (health_scenario)
    health_fault: str | None = None  # one of FAULTS, for the replication-health APIs only
    health_answers: dict[str, str] = field(default_factory=dict)  # health operation -> ANSWER_FAULTS

    def mean_progress(self, elapsed: float) -> float:
        """Mean progress of the job's tables in percent (the job-level progress)."""
        total = self.objects.get("table", 0) or sum(self.objects.values())
        if not total:
            return 0.0
        sample = range(0, total, max(1, total // 200))
        return sum(self.progress(i, elapsed) for i in sample) / len(sample)

    def summary(self) -> dict[str, Any]:
        """The job as the list APIs describe it."""
        return {
            "id": self.id,
            "name": self.name or self.id,
            "status": self.status,
            "engine_type": self.engine_type,
            "job_type": self.job_type,
            "task_type": self.task_type,
            "net_type": "vpc",
            "job_direction": "up",
            "create_time": "1686038576882",
            "enterprise_project_id": "0",
        }

    _prefixes: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def progress(self, index: int, elapsed: float) -> int:
        """Percent done of object ``index`` after ``elapsed`` seconds."""
        if self.frozen_at is not None:
            elapsed = min(elapsed, self.frozen_at)
        base, factor = _pace(index)
        return min(100, int(base + elapsed * self.speed * factor))

    def row(self, object_type: str, index: int, elapsed: float) -> dict[str, Any]:
        """The API row of object ``index``."""
        if index < len(self.names):
            named = self.names[index]
            names = {key: named.get(key, "") for key in ("src_db", "src_tb", "dst_db", "dst_tb")}
        else:
            db = f"db_{index // 500:04d}"
            tb = f"{object_type}_{index:07d}"
            names = {"src_db": db, "src_tb": tb, "dst_db": db, "dst_tb": tb}
        names_progress: dict[str, Any] = dict(names)
        names_progress["progress"] = self.progress(index, elapsed)
        return names_progress

    def rows_json(self, object_type: str, indexes: Iterable[int], elapsed: float) -> str:
        """The JSON array of rows ``indexes``; generated names need no escaping, so skip json.dumps."""
        parts: list[str] = []
        named = len(self.names)
        prefixes = self._prefixes.setdefault(object_type, [])
        if isinstance(indexes, range) and indexes.step == 1 and indexes.start >= named and len(indexes):
            # A window of generated rows, the common page: one comprehension with progress()
            # inlined, no call per row. This is most of the simulator's CPU per page, which adds to
            # the latency every client sees while requests queue for the simulator's one interpreter.
            step = (elapsed if self.frozen_at is None else min(elapsed, self.frozen_at)) * self.speed
            start, stop = indexes.start, indexes.stop
            _pace(stop - 1)
            if stop > len(prefixes):
                _grow_prefixes(prefixes, object_type, stop - 1)
            return (
                "["
                + ",".join(
                    [
                        f"{prefix}{min(100, int(base + step * factor))}}}"
                        for prefix, (base, factor) in zip(prefixes[start:stop], _PACES[start:stop], strict=True)
                    ]
                )
                + "]"
            )
        for index in indexes:
            if index < named:
                row = json.dumps(self.row(object_type, index, elapsed), ensure_ascii=False)
                if not row.isascii():
                    try:
                        row.encode("utf-8")
                    except UnicodeEncodeError:  # a lone surrogate: as \ud800, as a JSON API would write it
                        row = json.dumps(self.row(object_type, index, elapsed))
                parts.append(row)
                continue
            if index >= len(prefixes):
                _grow_prefixes(prefixes, object_type, index)
            parts.append(f"{prefixes[index]}{self.progress(index, elapsed)}}}")
        return "[" + ",".join(parts) + "]"

    def create_time(self, now: float) -> str:
        """``create_time`` in this job's format."""
        t = now - self.create_time_lag
        if self.time_format == "iso":
            return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return str(int(t * 1000))


@dataclass
class Scenario:
    """All jobs of the simulated project, plus faults."""

    project_id: str = "0123456789abcdef0123456789abcdef"
    jobs: dict[str, SimJob] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    started: float = field(default_factory=time.time)
    v5_list: bool = True  # False: GET /v5/{project_id}/jobs answers 404, as in regions without it
    batch_progress: bool = True  # False: POST /v3/{project_id}/jobs/batch-progress answers 404

    def elapsed(self) -> float:
        """Seconds since the simulator started."""
        return time.time() - self.started


def generated(
    jobs: int, objects: int, types: list[str], time_format: str = "mixed", speed: float = 0.2
) -> dict[str, SimJob]:
    """``jobs`` jobs named ``job-0001``… with ``objects`` objects of each type."""
    out: dict[str, SimJob] = {}
    for n in range(1, jobs + 1):
        fmt = time_format if time_format in TIME_FORMATS else TIME_FORMATS[(n - 1) % 2]
        job_id = f"job-{n:04d}"
        out[job_id] = SimJob(job_id, dict.fromkeys(types, objects), time_format=fmt, speed=speed)
    return out


def job_from_dict(raw: dict[str, Any]) -> SimJob:
    """A job from its scenario mapping."""
    objects = raw.get("objects", {"table": 100})
    if not isinstance(objects, dict) or not all(t in OBJECT_TYPES for t in objects):
        raise ValueError(f"job {raw.get('id')}: objects must map object types {OBJECT_TYPES} to counts")
    fmt = raw.get("time_format", "epoch_ms")
    if fmt not in TIME_FORMATS:
        raise ValueError(f"job {raw.get('id')}: time_format must be one of {TIME_FORMATS}")
    return SimJob(
        id=str(raw["id"]),
        objects={str(k): int(v) for k, v in objects.items()},
        time_format=fmt,
        speed=float(raw.get("speed", 0.2)),
        error=raw.get("error"),
        error_msg=str(raw.get("error_msg", "Simulated job error.")),
        latency_ms=float(raw.get("latency_ms", 0)),
        create_time_lag=float(raw.get("create_time_lag", 0)),
        names=list(raw.get("names", [])),
        frozen_at=0.0 if raw.get("stalled") else None,
        fault=_fault(raw.get("fault")),
        **{k: raw[k] for k in ("name", "status", "job_type", "engine_type", "task_type", "parent") if k in raw},
        listed=bool(raw.get("listed", True)),
        delay=float(raw.get("delay", 2.0)),
        comparisons=comparisons(raw.get("comparisons"), str(raw["id"])),
        object_comparison=object_comparison(raw.get("object_comparison"), str(raw["id"])),
        compare_fault=_fault(raw.get("compare_fault")),
        compare_answers=answer_faults(raw.get("compare_answers"), str(raw["id"])),
        health=health(raw.get("health"), str(raw["id"])),
        health_fault=_fault(raw.get("health_fault")),
        health_answers=health_answers(raw.get("health_answers"), str(raw["id"])),
    )


def _fault(value: Any) -> str | None:
    if value is None:
        return None
    if value in FAULTS:
        return str(value)
    raise ValueError(f"unknown fault {value!r}; known: {', '.join(FAULTS)}")


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML (or JSON) scenario file."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    scenario = Scenario()
    if "project_id" in raw:
        scenario.project_id = str(raw["project_id"])
    for item in raw.get("jobs", []):
        job = job_from_dict(item)
        scenario.jobs[job.id] = job
    scenario.faults = apply_faults(scenario.faults, raw.get("faults", {}))
    scenario.v5_list = bool(raw.get("v5_list", True))
    scenario.batch_progress = bool(raw.get("batch_progress", True))
    return scenario


def update_job(job: SimJob, changes: dict[str, Any], elapsed: float) -> None:
    """Apply an admin change (``stalled``, ``error``, ``speed``, ``latency_ms``, ``health``, ...)."""
    for key, value in changes.items():
        if key == "stalled":
            job.frozen_at = elapsed if value else None
        elif key == "error":
            job.error = value or None
        elif key == "fault":
            job.fault = _fault(value or None)
            job.fault_fired = False
        elif key in ("speed", "latency_ms", "create_time_lag", "delay"):
            setattr(job, key, float(value))
        elif key in ("status", "name", "engine_type", "job_type"):
            setattr(job, key, str(value))
        elif key == "comparisons":
            job.comparisons = comparisons(value, job.id)
        elif key == "object_comparison":
            job.object_comparison = object_comparison(value, job.id)
        elif key == "compare_fault":
            job.compare_fault = _fault(value or None)
        elif key == "compare_answers":
            job.compare_answers = answer_faults(value, job.id)
        elif key == "listed":
            job.listed = bool(value)
        elif key == "health":
            job.health = health(value, job.id, job.health)
        elif key == "health_fault":
            job.health_fault = _fault(value or None)
        elif key == "health_answers":
            job.health_answers = health_answers(value, job.id)
        else:
            raise ValueError(f"unknown job setting {key!r}")


def dump(scenario: Scenario) -> str:
    """JSON summary of the jobs, for ``GET /_sim/jobs``."""
    return json.dumps(
        {
            job.id: {"objects": job.objects, "time_format": job.time_format, "error": job.error}
            for job in scenario.jobs.values()
        }
    )
