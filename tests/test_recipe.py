"""docs/architecture.md's "add a new DRS API source" recipe, run: its example source, verbatim.

The code between ``# recipe: <file>`` and ``# end of recipe`` is the page's, block for block
(``test_the_page_shows_this_code``): mypy checks it with the tests, and the scrape test
registers it in an exporter, so the page cannot drift into code that does not type-check or run.
"""

from __future__ import annotations

import logging
import re
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric

from exporter import app, config
from exporter.base.deadline import Deadline
from exporter.drs.client import DRSClient
from exporter.drs.errors import DRSAPIError
from exporter.drs.health_client import fetch_rpo_rto
from exporter.drs.rpo import OPERATION as RPO_OPERATION
from exporter.drs.rpo import RpoRto
from exporter.metrics.source import Exposed, Source, SourceContext
from exporter.render.exposition import OPENMETRICS, TEXT, Format
from exporter.render.sources import Registration, SourceRendering
from exporter.sources.index import Index
from exporter.sources.projects import max_staleness
from exporter.sources.reader import INTERNAL_ERROR, BackgroundReader, ErrorCounter

from .procs import Simulator, gunzip_whole, samples, sim_config, wait_for

log = logging.getLogger(__name__)
PAGE = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"

# recipe: sources/rpo_example.py


@dataclass(frozen=True, eq=False)  # compared (and cached) by identity: a new read is a new state
class RpoState:
    """Each job's last good RPO/RTO and the Unix time it was read."""

    jobs: Mapping[str, tuple[RpoRto, float]]


class RpoReader(BackgroundReader):
    """RPO/RTO of the jobs asked for: one batched read per project every ``interval``, in the background."""

    def __init__(
        self,
        interval: float,
        refresh_timeout: float,
        *,
        max_staleness: float,
        on_change: Callable[[RpoState], None],
        on_error: ErrorCounter,
    ) -> None:
        super().__init__(
            "drs-rpo",
            interval=interval,
            refresh_timeout=refresh_timeout,
            max_staleness=max_staleness,
            on_error=on_error,
        )
        self.on_change = on_change  # a new state was read: the renderer renders it ahead
        self.state = RpoState({})
        self._read_at: float | None = None  # monotonic start of the last read

    def want(self, jobs: Mapping[str, DRSClient]) -> RpoState:
        """The last state, at once; starts a read when one is due and none is running."""
        with self._lock:
            now = time.monotonic()
            if self._running is None and self.is_due(self._read_at, now):
                self._read_at = now
                self.start(self._read, dict(jobs))
            return self.state

    def handover(self) -> RpoState:
        """What was read depends on the jobs' projects alone: a reload keeps it."""
        return self.state

    def take_over(self, state: RpoState) -> None:
        self.state = state

    def _read(self, jobs: dict[str, DRSClient]) -> None:
        by_client: dict[DRSClient, list[str]] = {}
        for job_id, client in jobs.items():
            by_client.setdefault(client, []).append(job_id)
        deadline = Deadline.after(self.refresh_timeout)
        calls = [(ids, self._pool.submit(fetch_rpo_rto, c, ids, deadline)) for c, ids in by_client.items()]
        read: dict[str, RpoRto] = {}
        for ids, call in calls:
            try:
                batch = call.result(timeout=self.refresh_timeout + 5)  # the calls end by the deadline
            except DRSAPIError:
                continue  # every call of the project failed: the transport counted each attempt
            except Exception:
                log.exception("RPO/RTO read failed unexpectedly")
                for job_id in ids:
                    self.count(RPO_OPERATION, job_id, INTERNAL_ERROR)
                continue
            read.update(batch.values)
            for job_id, error in batch.errors.items():
                if not error.call_failed:  # an entry's own error (the transport counted failed calls)
                    self.count(RPO_OPERATION, job_id, error.error_code)
        now = time.time()
        with self._lock:  # a job's last good value stays within max_staleness; a job not asked for goes
            kept = {j: v for j, v in self.state.jobs.items() if j in jobs and self.fresh(v[1], now)}
            kept.update((job_id, (value, now)) for job_id, value in read.items())
            self.state = state = RpoState(kept)
        self.on_change(state)


# end of recipe
# recipe: metrics/rpo_example.py


@dataclass(frozen=True)
class RpoMetrics:
    """The families of one state, built fresh: what its cached rendering must equal."""

    state: RpoState

    def collect(self) -> Iterator[Metric]:
        rpo = GaugeMetricFamily(
            "huaweicloud_drs_rpo_seconds", "RPO of the DR job as DRS reports it.", labels=["job_id"]
        )
        rto = GaugeMetricFamily(
            "huaweicloud_drs_rto_seconds", "RTO of the DR job as DRS reports it.", labels=["job_id"]
        )
        for job_id, (value, _) in sorted(self.state.jobs.items()):
            for family, number in ((rpo, value.rpo_seconds), (rto, value.rto_seconds)):
                if number is not None:
                    family.add_metric([job_id], number)
        yield from (rpo, rto)


class RpoSource:
    """RPO/RTO of the jobs of each scrape's index, read in the background."""

    def __init__(self, context: SourceContext) -> None:
        self.reader = RpoReader(
            context.config.cache_ttl,
            context.config.refresh_timeout,
            max_staleness=max_staleness(context.config),
            on_change=lambda state: context.on_change(Exposed(RpoMetrics(state), state)),
            on_error=context.stats.error,
        )

    def expose(self, index: Index, deadline: Deadline) -> Exposed:
        state = self.reader.want({job_id: owner.project.client for job_id, owner in index.owners.items()})
        return Exposed(RpoMetrics(state), state)

    def adopt(self, previous: Source) -> None:
        if isinstance(previous, RpoSource):
            self.reader.adopt(previous.reader)

    def close(self) -> None:
        self.reader.close()


# end of recipe

RECIPE = re.compile(r"^# recipe: (\S+)\n(.*?)^# end of recipe$", re.S | re.M)


def recipe_blocks(text: str) -> list[tuple[str, str]]:
    """The (file, code) of each ``# recipe:`` region of ``text``."""
    return [(name, code.strip()) for name, code in RECIPE.findall(text)]


def page_blocks(page: str) -> list[tuple[str, str]]:
    """The (last file named before it, code) of each fenced Python block of the recipe section."""
    section = page.split("### Add a new DRS API source", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    pieces = re.split(r"^ *```python\n(.*?)\n *```$", section, flags=re.S | re.M)
    # pieces: prose, code, prose, code, ..., prose
    return [
        (re.findall(r"`([a-z_/]+\.py)`", pieces[i - 1])[-1], textwrap.dedent(pieces[i]).strip())
        for i in range(1, len(pieces), 2)
    ]


def test_the_page_shows_this_code() -> None:
    here = recipe_blocks(Path(__file__).read_text(encoding="utf-8"))
    assert [name for name, _ in here] == ["sources/rpo_example.py", "metrics/rpo_example.py"]
    assert page_blocks(PAGE.read_text(encoding="utf-8")) == here


def test_a_changed_block_on_the_page_is_found() -> None:
    page = PAGE.read_text(encoding="utf-8")
    changed = page.replace("self.on_change(state)", "pass", 1)
    assert changed != page and page_blocks(changed) != recipe_blocks(Path(__file__).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator("--jobs", "1", "--objects", "5", "--health-demo")
    yield simulator
    simulator.stop()


def test_the_recipe_source_registered_in_one_line_is_scraped_counted_handed_over_and_closed(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "SOURCES", (*app.SOURCES, Registration("rpo", RpoSource, SourceRendering)))
    # demo-dr is a DR job with RPO 1.5 s and RTO 0.8 s; demo-ddl is not one: its entry carries DRS.M00304.
    cfg = config.parse(sim_config(sim, ["demo-dr", "demo-ddl"], cache_ttl=600, max_staleness=900))
    exporter = app.Exporter(cfg)
    successor: app.Exporter | None = None
    try:
        source = exporter.source(RpoSource)
        assert source.reader.max_staleness == 900, "max_staleness reaches the base"
        prepared: list[RpoState] = []
        to_renderer = source.reader.on_change

        def on_change(state: RpoState) -> None:
            prepared.append(state)
            to_renderer(state)

        source.reader.on_change = on_change

        def scraped() -> str:
            return b"".join(exporter.scrape(30, TEXT, compress=False)).decode()

        text = wait_for(lambda: next((t for t in [scraped()] if "huaweicloud_drs_rpo_seconds{" in t), None), timeout=30)
        assert samples(text, "huaweicloud_drs_rpo_seconds") == {(("job_id", "demo-dr"),): 1.5}
        assert samples(text, "huaweicloud_drs_rto_seconds") == {(("job_id", "demo-dr"),): 0.8}
        errors = samples(text, "huaweicloud_drs_api_errors_total")
        assert errors[(("error_code", "DRS.M00304"), ("job_id", "demo-ddl"), ("operation", RPO_OPERATION))] == 1
        assert prepared and prepared[-1] is source.reader.state, "each new state goes to on_change"
        fmt: Format
        for fmt in (TEXT, OPENMETRICS):
            for compress in (False, True):
                body = b"".join(exporter.scrape(30, fmt, compress=compress))
                assert (gunzip_whole(body) if compress else body) == fmt.encoder(exporter.view(30)), (fmt.key, compress)

        # A read is not started again while one runs, and is due again only after the interval.
        reader = source.reader
        read_at = reader._read_at
        reader.want({})
        assert reader._read_at == read_at, "not due within the interval"
        gate = threading.Event()

        def held() -> None:
            gate.wait(5)

        with reader._lock:
            reader.start(held)
        reader._read_at = None  # due
        reader.want({})
        assert reader._read_at is None, "a read is running: want() starts none and keeps the due time"
        gate.set()

        successor = app.Exporter(cfg, previous=exporter)
        assert successor.source(RpoSource).reader.state is reader.state, "a reload keeps what was read"
    finally:
        exporter.close()
    # Closed, the reader's threads end (a reload closes the previous exporter's sources).
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("drs-rpo_")], timeout=10)
    assert successor is not None
    successor.close()
