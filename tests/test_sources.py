"""The data-source seam: the shared background reader, sources registered in one line, one index per scrape.

A cached rendering must equal a fresh ``generate_latest`` of the same families: checked here for
a whole scrape with every registered source and one more added by its registration line alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter import app, config
from exporter.base.deadline import Deadline
from exporter.metrics.compare_metrics import ComparisonSource
from exporter.metrics.jobs import JobSource
from exporter.metrics.source import Exposed, SourceContext
from exporter.render.exposition import OPENMETRICS, TEXT, Format
from exporter.render.sources import Registration, SourceRendering
from exporter.sources import jobs as jobs_module
from exporter.sources.comparisons import ComparisonReader
from exporter.sources.index import Index, Owner
from exporter.sources.jobs import JobProgressReader
from exporter.sources.reader import BackgroundReader

from .procs import Simulator, gunzip_whole, samples, sim_config, wait_for


def test_the_job_level_and_comparison_readers_share_the_background_reader() -> None:
    for reader in (JobProgressReader, ComparisonReader):
        assert issubclass(reader, BackgroundReader)
        # The skeleton is the base's: no reader keeps its own threads, due check or closing.
        assert not {"close", "start", "is_due", "fresh", "count", "adopt", "_run"} & set(vars(reader))


class Tally(BackgroundReader):
    """A reader whose read waits for ``gate`` and then counts itself."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("test-tally", interval=10, refresh_timeout=1, **kwargs)
        self.gate = threading.Event()
        self.done = 0
        self.last: float | None = None

    def want(self) -> threading.Event | None:
        with self._lock:
            now = time.monotonic()
            if self._running is None and not self.is_due(self.last, now):
                return None
            self.last = now
            return self.start(self._read)

    def _read(self) -> None:
        if not self.gate.wait(timeout=5):
            raise RuntimeError("never let through")
        self.done += 1
        if self.done == 1:
            raise RuntimeError("a bug in a read")  # must not stop later reads

    def handover(self) -> int:
        return self.done

    def take_over(self, state: int) -> None:
        self.done += state


def test_one_read_at_a_time_due_by_interval_and_a_failed_read_does_not_stop_the_next() -> None:
    counted: list[tuple[str, str, str]] = []
    reader = Tally(on_error=lambda *error: counted.append(error), max_staleness=30)
    try:
        first = reader.want()
        assert first is not None and reader.want() is first, "one read at a time: the one in flight"
        reader.gate.set()
        assert first.wait(timeout=5)
        wait_for(lambda: reader.running() is None, timeout=5)
        assert reader.reads == 1 and reader.done == 1
        assert reader.want() is None, "not due again within the interval"
        reader.last = time.monotonic() - 10
        second = reader.want()
        assert second is not None and second.wait(timeout=5)
        wait_for(lambda: reader.reads == 2, timeout=5)
        assert reader.done == 2, "the read after the failed one ran"
        assert reader.fresh(time.time() - 29, time.time()) and not reader.fresh(time.time() - 31, time.time())
        reader.count("op", "job-1", "internal_error")
        assert counted == [("op", "job-1", "internal_error")]
    finally:
        reader.close()
    reader.last = None
    assert reader.want() is None, "a closed reader starts nothing"


def test_adopt_hands_over_only_between_readers_of_one_kind() -> None:
    old, new = Tally(), Tally()
    old.done = 3
    new.adopt(old)
    assert new.done == 3
    new.adopt(object())
    assert new.done == 3
    for reader in (old, new):
        reader.close()


@dataclass(frozen=True)
class EchoState:
    """An immutable state: a new object whenever the families change."""

    jobs: tuple[str, ...]


@dataclass(frozen=True)
class EchoMetrics:
    state: EchoState
    name: str

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, "Test source: 1 per job of the index.", labels=["job_id"])
        for job_id in self.state.jobs:
            family.add_metric([job_id], 1.0)
        yield family


class EchoReader(BackgroundReader):
    def __init__(self) -> None:
        super().__init__("test-echo", interval=600, refresh_timeout=5)
        self.state = EchoState(())

    def want(self, jobs: tuple[str, ...]) -> EchoState:
        with self._lock:
            if jobs != self.state.jobs and self._running is None:
                self.start(self._read, jobs)
            return self.state

    def _read(self, jobs: tuple[str, ...]) -> None:
        with self._lock:
            self.state = EchoState(jobs)


class EchoSource:
    """What a new DRS API area adds: a source on the background reader, exposing its families."""

    family = "test_echo_jobs"

    def __init__(self, context: SourceContext) -> None:
        self.reader = EchoReader()

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        state = self.reader.want(tuple(sorted(index.owners)))
        return Exposed(EchoMetrics(state, self.family), state)

    def adopt(self, previous: object) -> None:
        pass

    def close(self) -> None:
        self.reader.close()


class LiveEchoSource(EchoSource):
    family = "test_live_echo_jobs"

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        return Exposed(EchoMetrics(EchoState(tuple(sorted(index.owners))), self.family))


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator("--jobs", "2", "--objects", "300", "--comparisons")
    yield simulator
    simulator.stop()


def test_a_source_added_by_its_registration_line_is_cached_and_equals_a_fresh_encoding(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        app,
        "SOURCES",
        (Registration("live-echo", LiveEchoSource), *app.SOURCES, Registration("echo", EchoSource, SourceRendering)),
    )
    cfg = config.parse(
        sim_config(
            sim,
            sim.info["jobs"],
            cache_ttl=600,
            comparisons=True,
            compare_refresh_interval=600,
            monitor_data=True,
            monitor_refresh_interval=600,
            dirty_rows=True,
            dirty_rows_refresh_interval=600,
            ddl_alarms=True,
            ddl_refresh_interval=600,
            health_comparisons=True,
            health_compare_refresh_interval=600,
        )
    )
    exporter = app.Exporter(cfg)
    try:
        first = b"".join(exporter.scrape(30, TEXT, compress=False))
        assert b"test_live_echo_jobs{" in first
        wait_for(lambda: any(job.types for job in exporter.comparison_snapshot().jobs.values()), timeout=30)
        wait_for(lambda: b"test_echo_jobs{" in b"".join(exporter.scrape(30, TEXT, compress=False)), timeout=10)
        # Every registered source has samples in the scrapes compared below.
        for sample in (
            b"huaweicloud_drs_endpoint_delay_seconds{",
            b"huaweicloud_drs_job_details_last_success",
            b"huaweicloud_drs_dirty_rows{",
            b"huaweicloud_drs_ddl_alarms{",
            b"huaweicloud_drs_health_compare_up{",
        ):
            wait_for(lambda s=sample: s in b"".join(exporter.scrape(30, TEXT, compress=False)), timeout=10)
        echo = exporter.sources["echo"]
        assert isinstance(echo, EchoSource)
        fmt: Format
        for fmt in (TEXT, OPENMETRICS):
            for compress in (False, True):
                body = b"".join(exporter.scrape(30, fmt, compress=compress))
                fresh = fmt.encoder(exporter.view(30))
                assert (gunzip_whole(body) if compress else body) == fresh, (fmt.key, compress)
            # The cached source's bytes are rendered once per state and format, then reused.
            exposed = echo.expose(exporter.index(Deadline.after(5)), Deadline.after(5))
            again = Exposed(EchoMetrics(echo.reader.state, "not encoded again"), echo.reader.state)
            assert exporter.renderer.source_parts("echo", again, fmt) is exporter.renderer.source_parts(
                "echo", exposed, fmt
            )
        text = fresh.decode()
        order = [
            text.index(f"# HELP {name} ")
            for name in (
                "huaweicloud_drs_object_progress_ratio",
                "huaweicloud_drs_comparison_up",
                "test_echo_jobs",
                "test_live_echo_jobs",
                "huaweicloud_drs_job_info",
                "huaweicloud_drs_job_details_up",
                "huaweicloud_drs_monitor_data_up",
                "huaweicloud_drs_dirty_data_up",
                "huaweicloud_drs_ddl_data_up",
                "huaweicloud_drs_health_compare_up",
                "huaweicloud_drs_api_requests",
            )
        ]
        assert order == sorted(order), "progress, cached sources, live sources (registration order), own metrics"
    finally:
        exporter.close()


def test_a_source_reads_the_jobs_of_the_index_it_is_handed(sim: Simulator) -> None:
    # Nothing was scraped or listed: the comparison source goes by the index alone, not by what
    # an earlier step of a scrape left behind.
    exporter = app.Exporter(config.parse(sim_config(sim, [sim.info["jobs"][1]], compare_refresh_interval=600)))
    try:
        project = exporter.projects[0]
        wanted = sim.info["jobs"][0]  # not configured: as if a listing had found it, with comparisons on
        discovered = Owner(project, False, None)
        assert not discovered.setting("comparisons", False) and discovered.setting("comparisons", True)
        on = config.parse(sim_config(sim, [{"id": wanted, "comparisons": True}])).projects[0].jobs[0]
        index = Index(((wanted, "table"),), {wanted: Owner(project, False, on)}, {project: ()})
        source = exporter.source(ComparisonSource)
        source.expose(index, Deadline.after(5))
        wait_for(lambda: set(source.snapshot().jobs) == {wanted}, timeout=15)
        assert exporter._owners.keys() == {sim.info["jobs"][1]}, "the exporter's own index is untouched"
    finally:
        exporter.close()


def test_an_unexpected_failure_of_job_level_progress_is_counted_in_api_errors(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(jobs_module, "parse_job_progress", broken)
    monkeypatch.setattr(jobs_module, "parse_batch_entry", broken)  # what batch progress is parsed with
    job_id = sim.info["jobs"][0]
    exporter = app.Exporter(config.parse(sim_config(sim, [job_id], cache_ttl=600)))
    try:
        reader = exporter.projects[0].progress
        exporter.scrape(30, TEXT, compress=False)  # starts the read and waits for it (nothing known yet)
        wait_for(lambda: reader.reads >= 1, timeout=15)
        text = b"".join(exporter.scrape(30, TEXT, compress=False)).decode()
        errors = samples(text, "huaweicloud_drs_api_errors_total")
        assert errors[(("error_code", "internal_error"), ("job_id", job_id), ("operation", "batch_progress"))] == 1
    finally:
        exporter.close()


def test_discovery_health_is_that_of_the_listing_the_index_was_built_from(sim: Simulator) -> None:
    discovery = {"refresh_interval": 600, "job_types": ["migration", "sync", "cloudDataGuard"]}
    cfg = config.parse({**sim_config(sim, []), "discovery": discovery})
    exporter = app.Exporter(cfg)
    try:
        project = exporter.projects[0]
        directory = project.directory
        assert directory is not None
        listed = exporter.index(Deadline.after(15))
        assert listed.listed[project] and listed.discovery[project][0], "listed once, successfully"
        # A listing ends between the index and the source's turn: the jobs change, and it fails.
        with directory._lock:
            directory.jobs, directory.up, directory.duration = directory.jobs[:1], False, 99.0
        text = exporter.source(JobSource).expose(listed, Deadline.after(5)).families
        families = {f.name: f for f in text.collect()}
        pid = (project.config.project_id,)
        found = {tuple(s.labels.values()): s.value for s in families["huaweicloud_drs_discovered_jobs"].samples}
        info = [s for s in families["huaweicloud_drs_job_info"].samples]
        assert found[pid] == len(listed.listed[project]) == len(info), "discovered_jobs counts the jobs job_info shows"
        up = {tuple(s.labels.values()): s.value for s in families["huaweicloud_drs_discovery_up"].samples}
        assert up[pid] == 1.0
        duration = {
            tuple(s.labels.values()): s.value for s in families["huaweicloud_drs_discovery_duration_seconds"].samples
        }
        assert duration[pid] == listed.discovery[project][1] != 99.0
    finally:
        exporter.close()
