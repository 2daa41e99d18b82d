"""Comparison state: guards on per-table results, and rendered bytes equal to a fresh encoding."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest
from prometheus_client.exposition import generate_latest

from exporter.base.deadline import Deadline
from exporter.config import ObjectFilter
from exporter.drs.compare import CompareRun, ObjectCount, ObjectOverview, TableResult
from exporter.drs.compare_client import ReadError
from exporter.metrics.compare_metrics import ComparisonMetrics
from exporter.render import comparisons as comparison_rendering
from exporter.render import exposition
from exporter.render.comparisons import ComparisonRendering
from exporter.render.exposition import OPENMETRICS, TEXT
from exporter.sources.comparisons import (
    ComparisonReader,
    ComparisonSnapshot,
    Guards,
    JobComparisons,
    TableSet,
    TypeState,
)

NO_FILTER = ObjectFilter()


def tables(n: int, db: str = "db") -> list[TableResult]:
    return [
        TableResult(db, f"t{i}", db, f"t{i}", "inconsistent" if i % 3 == 0 else "consistent", 10 + i, 9 + i, 1)
        for i in range(n)
    ]


def test_counts_cover_every_table_whatever_the_guards_keep() -> None:
    results = [*tables(5), TableResult("other", "x", "other", "x", "too_large", None, None, None)]
    full = TableSet.build("c", results, max_objects=None, object_filter=NO_FILTER, aggregate_only=False)
    assert len(full) == 6 and full.not_exported == 0
    assert (full.counts["inconsistent"], full.counts["consistent"], full.counts["too_large"]) == (2, 3, 1)
    assert full.counts["sql_error"] == 0
    rows = list(full)
    assert rows[0].src_tb == "t0" and rows[0].status == "inconsistent" and rows[0].source_rows == 10
    assert rows[5].status == "too_large" and rows[5].source_rows != rows[5].source_rows  # NaN: no count given

    capped = TableSet.build("c", results, max_objects=2, object_filter=NO_FILTER, aggregate_only=False)
    assert [r.src_tb for r in capped] == ["t0", "t1"] and capped.not_exported == 4 and capped.counts == full.counts
    only_other = ObjectFilter(include_src_db=re.compile("^other$"))
    filtered = TableSet.build("c", results, max_objects=None, object_filter=only_other, aggregate_only=False)
    assert [r.src_db for r in filtered] == ["other"] and filtered.not_exported == 5
    aggregate = TableSet.build("c", results, max_objects=None, object_filter=NO_FILTER, aggregate_only=True)
    assert len(aggregate) == 0 and aggregate.not_exported == 6 and aggregate.counts == full.counts


def snapshot(lines: bool = True) -> ComparisonSnapshot:
    def run(i: str, kind: str) -> CompareRun:
        return CompareRun(i, kind, "SUCCESSFUL", 1.7e9, 1.7e9 + 60)

    def state(i: str, kind: str, n: int) -> TypeState:
        built = TableSet.build(i, tables(n), max_objects=None, object_filter=NO_FILTER, aggregate_only=False)
        return TypeState(run(i, kind), run(i, kind), built)

    types = {"contents": state("v", "contents", 4)}
    if lines:
        types["lines"] = state("r", "lines", 7)
    objects = ObjectOverview("o", "SUCCESSFUL", 1.7e9, (ObjectCount("TABLE", 7, 6, "inconsistent"),))
    return ComparisonSnapshot(
        {
            "j1": JobComparisons("j1", True, None, 1.7e9, types, objects),
            "j2": JobComparisons("j2", False, "DRS.M05003", None, {}),
        }
    )


@pytest.mark.parametrize("lines", [True, False])
@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
def test_rendering_in_batches_is_a_fresh_encoding(
    monkeypatch: pytest.MonkeyPatch, fmt: exposition.Format, lines: bool
) -> None:
    monkeypatch.setattr(comparison_rendering, "COMPARISON_BATCH", 3)  # several batches per family
    snap = snapshot(lines)
    fresh = fmt.encoder(ComparisonMetrics(snap)).removesuffix(b"# EOF\n")
    renderer = ComparisonRendering()
    parts = renderer.parts(snap, ComparisonMetrics(snap), fmt)
    assert b"".join(p.plain for p in parts) == fresh
    assert fresh.count(b"# HELP huaweicloud_drs_comparison_source_rows ") == 1
    assert (b"huaweicloud_drs_comparison_source_rows{" in fresh) == lines
    # A new snapshot with the same result sets reuses the per-table part; the small part is rendered anew.
    again = ComparisonSnapshot(dict(snap.jobs))
    assert renderer.parts(again, ComparisonMetrics(again), fmt)[1] is parts[1]


def test_no_comparison_jobs_no_families() -> None:
    assert generate_latest(ComparisonMetrics(ComparisonSnapshot({}))) == b""
    empty = ComparisonSnapshot({})
    assert ComparisonRendering().parts(empty, ComparisonMetrics(empty), TEXT) == []


class FakeClient:
    """A comparison client whose result reads fail as told (no HTTP: the reader's handling only)."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.table_reads = 0

    def runs(self, job_id: str, deadline: Deadline) -> list[CompareRun]:
        return [CompareRun("r1", "lines", "SUCCESSFUL", 1.7e9, 1.7e9 + 60)]

    def tables(self, job_id: str, run: CompareRun, deadline: Deadline) -> list[TableResult]:
        self.table_reads += 1
        raise self.failure

    def objects(self, job_id: str, deadline: Deadline) -> ObjectOverview | None:
        return None


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (RuntimeError("a bug"), "internal_error"),
        (RecursionError(), "internal_error"),
        (ReadError("page_cap_exceeded", "too many", operation="show_line_compare_detail"), "page_cap_exceeded"),
    ],
)
def test_reader_failures_are_error_codes_counted_once(failure: Exception, code: str) -> None:
    counted: list[tuple[str, str, str]] = []
    reader = ComparisonReader(60, 5, Guards(None, NO_FILTER), on_error=lambda *error: counted.append(error))
    client = FakeClient(failure)
    reader.close()  # no background refresh: the job is read here, once
    reader.want({"j1": (client, False)})  # type: ignore[dict-item]
    state = reader._job("j1")
    assert state is not None and (state.up, state.error_code) == (False, code)
    assert counted == [("show_line_compare_detail", "j1", code)]


def test_reader_a_comparison_too_large_is_not_read_again_at_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    # The reader's clock only (Deadline and the rest keep the real one).
    monkeypatch.setattr("exporter.sources.comparisons.time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    reader = ComparisonReader(60, 5, Guards(None, NO_FILTER))
    client = FakeClient(ReadError("page_cap_exceeded", "too many", operation="show_line_compare_detail"))
    reader.close()  # no background refresh: the job is read here, once per interval
    reader.want({"j1": (client, False)})  # type: ignore[dict-item]
    reads = []
    for _ in range(20):  # 20 intervals of 60 s
        state = reader._job("j1")
        assert state is not None and state.error_code == "page_cap_exceeded"
        reads.append(client.table_reads)
        now[0] += 60
    # Read at 0, then after 4, 8 (doubling) intervals: 3 reads in 20 intervals, not 20.
    assert reads[-1] == 3 and reads[:5] == [1, 1, 1, 1, 2]
