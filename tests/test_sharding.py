"""Sharding (``--shard``/``--total-shards``/``--pod``): real exporter processes against the simulator."""

from __future__ import annotations

import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from exporter.base.sharding import Shard, pod_ordinal, shard_of
from exporter.simulator.health_scenario import demo_health_jobs

from .procs import Simulator, command, samples, sim_config, value, wait_for

SHARDS = 3
JOBS = 36
TYPES = ("table", "view")


def shard_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    """Every job discovered (two object types each), cached far beyond the test: each key is read once."""
    config = sim_config(sim, [], retries=0, cache_ttl=600, **extra)
    del config["jobs"]
    config["discovery"] = {
        "job_types": ["migration", "sync", "cloudDataGuard"],
        "object_types": list(TYPES),
        "refresh_interval": 600,
    }
    return config


def per_object(text: str) -> dict[tuple[tuple[str, str], ...], float]:
    return samples(text, "huaweicloud_drs_object_progress_ratio")


def jobs_of(text: str, family: str = "huaweicloud_drs_up") -> set[str]:
    return {dict(k)["job_id"] for k in samples(text, family)}


def job_types(text: str) -> set[tuple[str, str]]:
    return {(dict(k)["job_id"], dict(k).get("job_type", "")) for k in samples(text, "huaweicloud_drs_job_info")}


def read_jobs(stats: dict[str, Any]) -> dict[str, set[str]]:
    """The jobs the simulator's counts show each per-job API read for: progress data, batch progress,
    comparisons, and each replication-health operation on its own (monitor data, RPO/RTO, job
    details, DDL alarms, abnormal rows, health comparisons; some batched)."""
    kinds = {kind: {key.split("/")[0] for key in stats[kind]} for kind in ("progress_data", "jobs", "comparisons")}
    for key in stats["health"]:
        job_id, operation = key.split("/")[:2]
        kinds.setdefault(f"health {operation}", set()).add(job_id)
    return kinds


# Every per-job source's own health series: once each has one for every job of the process that it
# reads, the process has read every source of every one of its jobs.
SOURCE_UP = (
    "huaweicloud_drs_comparison_up",
    "huaweicloud_drs_monitor_data_up",
    "huaweicloud_drs_rpo_rto_up",
    "huaweicloud_drs_job_details_up",
    "huaweicloud_drs_ddl_data_up",
    "huaweicloud_drs_dirty_data_up",
    "huaweicloud_drs_health_compare_up",
)


def test_shards_split_the_jobs_and_their_union_is_one_process(start: Any) -> None:
    sim = Simulator(
        "--jobs", str(JOBS), "--objects", "5", "--types", ",".join(TYPES), "--speed", "0", "--comparisons",
        "--health-demo",
    )  # fmt: skip
    try:
        # The health demo's jobs move at their own speed: held still, the single process and the shards,
        # read seconds apart, see the same values.
        for job in demo_health_jobs():
            sim.admin(f"jobs/{job['id']}", {"stalled": True})
        # Every per-job source on: comparisons, monitor data (DR jobs' batched), RPO/RTO (batched), job
        # details (on by default; batched), DDL alarms, abnormal rows, health comparisons.
        config = shard_config(
            sim,
            comparisons=True,
            monitor_data=True,
            rpo_rto=True,
            job_details=True,
            ddl_alarms=True,
            dirty_rows=True,
            health_comparisons=True,
        )
        read: list[dict[str, int]] = []  # per shard: job/type -> progress-data requests
        reads: list[dict[str, set[str]]] = []  # per shard: the jobs each per-job API was asked for
        texts: list[str] = []

        def settled(exp: Any) -> dict[str, Any] | None:
            # The per-job sources read beside the scrape: wait (bounded) until each has served every
            # job of this process it reads (RPO/RTO: the DR jobs only), so that all its calls are counted.
            text = exp.metrics()
            mine = jobs_of(text)
            dr = {j for j, job_type in job_types(text) if job_type == "cloudDataGuard"}
            wanted = {family: dr & mine if family == "huaweicloud_drs_rpo_rto_up" else mine for family in SOURCE_UP}
            if not mine or any(not jobs_of(text, family) >= jobs for family, jobs in wanted.items()):
                return None
            stats: dict[str, Any] = sim.stats()
            return stats

        for shard in range(SHARDS):
            sim.admin("stats/reset", {})
            exp = start(config, "--shard", str(shard), "--total-shards", str(SHARDS))
            texts.append(exp.metrics())
            stats = wait_for(lambda exp=exp: settled(exp), timeout=30, interval=0.2)
            texts[-1] = exp.metrics()
            read.append(stats["progress_data"])
            reads.append(read_jobs(stats))
            assert stats["requests"].get("list_jobs_v5", 0) >= 1, "every shard lists the whole project"
        sim.admin("stats/reset", {})
        whole = start(config)
        single_stats = wait_for(lambda: settled(whole), timeout=30, interval=0.2)
        single = whole.metrics()
        everything = jobs_of(single)
        assert len(everything) >= 30
        owned = [jobs_of(text) for text in texts]
        # No job on two shards, every shard owns one, together they are all, each where crc32 says.
        assert all(owned), [len(jobs) for jobs in owned]
        assert sum(len(jobs) for jobs in owned) == len(set().union(*owned)) == len(everything)
        for shard, jobs in enumerate(owned):
            assert {j for j in everything if zlib.crc32(j.encode()) % SHARDS == shard} == jobs
            assert value(texts[shard], "huaweicloud_drs_shard_info", shard=str(shard), total_shards="3") == 1
            assert value(texts[shard], "huaweicloud_drs_shard_jobs") == len(jobs)
            # Job-level series (job info, DRS's batch progress) are the shard's jobs only too.
            assert jobs_of(texts[shard], "huaweicloud_drs_job_info") == jobs
            assert jobs_of(texts[shard], "huaweicloud_drs_job_progress_ratio") <= jobs
            # Project-level discovery describes the whole project on every shard (rules take the max).
            assert value(texts[shard], "huaweicloud_drs_discovered_jobs") == len(everything)
        # The union of the shards' per-object series is the single process's, values included.
        union: dict[tuple[tuple[str, str], ...], float] = {}
        for text in texts:
            objects = per_object(text)
            assert not objects.keys() & union.keys()
            union.update(objects)
        assert union == per_object(single)
        assert len(union) >= JOBS * len(TYPES) * 5
        # Each job's progress data was read by exactly one shard.
        readers = {f"{j}/{t}": [s for s in range(SHARDS) if read[s].get(f"{j}/{t}")] for j in everything for t in TYPES}
        assert all(len(shards) == 1 for shards in readers.values()), readers
        # Every per-job API, batched ones included, was asked only for the shard's own jobs; together
        # the shards asked for what the single process asked for.
        single_reads = read_jobs(single_stats)
        every_source = {
            "health show_monitor_data",
            "health batch_rpo_rto",
            "health batch_status",  # job details
            "health list_ddl_alarms",
            "health show_dirty_data",
            "health list_health_compare_jobs",
        }
        assert every_source <= single_reads.keys(), every_source - single_reads.keys()
        for kind, jobs_read in single_reads.items():
            for shard, jobs in enumerate(owned):
                asked = reads[shard].get(kind, set())
                assert asked <= jobs, (kind, shard, asked - jobs)
            assert set().union(*(r.get(kind, set()) for r in reads)) == jobs_read, kind
    finally:
        sim.stop()


def test_pod_name_gives_the_shard(start: Any) -> None:
    sim = Simulator("--jobs", "12", "--objects", "1", "--types", "table", "--speed", "0")
    try:
        exp = start(shard_config(sim), "--pod", "drs-exporter-huaweicloud-drs-exporter-2", "--total-shards", "3")
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_shard_info", shard="2", total_shards="3") == 1
        assert value(text, "huaweicloud_drs_shards") == 3
        assert all(shard_of(j, 3) == 2 for j in jobs_of(text))
        assert "shard 2 of 3" in exp.log()
    finally:
        sim.stop()


def test_status_page_and_json_name_the_shard(start: Any) -> None:
    # With 3 pods behind one Service, the page and status.json say whose jobs they list (review of issue 26).
    sim = Simulator("--jobs", "12", "--objects", "1", "--types", "table", "--speed", "0")
    try:
        exp = start(shard_config(sim), "--shard", "1", "--total-shards", "3")
        mine = jobs_of(exp.metrics())
        assert mine and all(shard_of(j, 3) == 1 for j in mine)
        body = exp.get("/status.json").json()
        assert body["shard"] == {"shard": 1, "total_shards": 3, "jobs": len(mine)}
        assert {j["job_id"] for p in body["projects"] for j in p["jobs"]} == mine
        page = exp.get("/").text
        assert f"Shard 1 of 3: this process exports only its {len(mine)} jobs" in page
    finally:
        sim.stop()


def test_configured_jobs_are_sharded_and_the_keys_configure_it(start: Any) -> None:
    sim = Simulator("--jobs", "12", "--objects", "1", "--types", "table", "--speed", "0")
    try:
        ids: list[str] = sim.info["jobs"]
        config = sim_config(sim, [{"id": i, "object_types": ["table"]} for i in ids], shard=1, total_shards=2)
        first = start(config)
        text = first.metrics()
        assert jobs_of(text) == {i for i in ids if shard_of(i, 2) == 1}
        # The start-up line counts this shard's configured jobs and keys, not every shard's.
        owned = len(jobs_of(text))
        assert 0 < owned < len(ids)
        assert f"{owned} jobs, {owned} keys, shard 1 of 2)" in first.log()
        # A flag wins over the key, also after a reload (the file says shard 1).
        exp = start(config, "--shard", "0", "--web.enable-lifecycle")
        assert jobs_of(exp.metrics()) == {i for i in ids if shard_of(i, 2) == 0}
        exp.config_path.write_text(yaml.safe_dump({**config, "cache_ttl": 5}))
        assert requests.post(exp.url + "/-/reload", timeout=30).status_code == 200
        text = exp.metrics()
        assert value(text, "huaweicloud_drs_config_last_reload_successful") == 1
        assert jobs_of(text) == {i for i in ids if shard_of(i, 2) == 0}
    finally:
        sim.stop()


BAD = [
    (["--shard", "3", "--total-shards", "3"], "--shard 3 must be below --total-shards 3"),
    (["--shard", "-1", "--total-shards", "3"], "--shard must be a whole number from 0, got '-1'"),
    (["--shard", "one", "--total-shards", "3"], "--shard must be a whole number from 0, got 'one'"),
    (["--shard", "1.5", "--total-shards", "3"], "--shard must be a whole number from 0, got '1.5'"),
    (["--total-shards", "0"], "--total-shards must be a whole number from 1, got '0'"),
    (["--total-shards", "-3"], "--total-shards must be a whole number from 1, got '-3'"),
    (["--total-shards", "three"], "--total-shards must be a whole number from 1, got 'three'"),
    (["--pod", "drs-exporter", "--total-shards", "3"], "cannot read a StatefulSet ordinal from pod name"),
    (["--pod", "drs-exporter-x", "--total-shards", "3"], "cannot read a StatefulSet ordinal from pod name"),
    (["--pod", "drs-exporter-3", "--total-shards", "3"], "--pod 'drs-exporter-3' (ordinal 3) must be below"),
    (["--pod", "drs-exporter-1"], "--pod needs --total-shards"),
    (["--pod", "drs-exporter-1", "--shard", "1", "--total-shards", "3"], "--shard and --pod cannot be combined"),
    # The shard came from the flag, not from the file's key `shard`.
    (["--shard", "2"], "invalid flag: --shard 2 must be below total_shards (1), got 2"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_shard_values_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    config = tmp_path / "drs.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "endpoint": "http://127.0.0.1:9",
                "project_id": "p" * 32,
                "auth": {"token": "t" * 40},
                "jobs": [{"id": "job-1"}],
            }
        )
    )
    done = subprocess.run(
        [command("drs-exporter"), "--config.file", str(config), "--web.listen-address", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode == 2, lines
    assert len(lines) == 1, lines
    assert message in lines[0] and "level=error" in lines[0]


def test_the_shard_of_a_job_is_crc32_mod_the_total() -> None:
    # The documented hash, pinned: the same on every platform and Python (not the salted hash()).
    assert [shard_of(j, 3) for j in ("job-0", "job-1", "job-2", "a" * 36)] == [
        zlib.crc32(j.encode()) % 3 for j in ("job-0", "job-1", "job-2", "a" * 36)
    ]
    # CRC-32's standard check value: anyone can compute the owner elsewhere.
    assert shard_of("123456789", 1000) == 0xCBF43926 % 1000 == 262
    assert Shard().owns("anything") and Shard(1, 2).owns("job-1") != Shard(0, 2).owns("job-1")
    assert pod_ordinal("exporter-0") == 0 and pod_ordinal("a-b-12") == 12
    for bad in ("exporter", "exporter-", "exporter-01", "-3", "exporter-1a"):
        with pytest.raises(ValueError, match="ordinal"):
            pod_ordinal(bad)
