"""The cached rendering is byte for byte what a fresh generate_latest of the same data writes."""

from __future__ import annotations

import gc
import time
import weakref

import pytest

from exporter.drs.progress import CompactRows, ProgressData, ProgressRow
from exporter.drs.telemetry import ApiStats
from exporter.drs.transport import ApiCall
from exporter.metrics.collector import ScrapeView, SelfMetrics
from exporter.render import parts
from exporter.render.exposition import OPENMETRICS, TEXT, Format, Renderer, choose
from exporter.render.gzipstream import HEADER
from exporter.sources.cache import SCRAPE_TIMEOUT, Snapshot
from exporter.web.server import accepts_gzip

from .accept import ACCEPTS, PROMETHEUS2
from .procs import gunzip_whole

ODD = ['q"uote', "back\\slash", "new\nline", "数据表", "tab\there", "", "sp ace", "\x01ctl"]


def data(n: int, prefix: str = "t") -> ProgressData:
    rows = [
        ProgressRow(ODD[i % len(ODD)], f"{prefix}{i}", "dst", f"{prefix}{i}", float((i * 7) % 101)) for i in range(n)
    ]
    return ProgressData(count=n + 3, create_time=1_700_000_000.5, rows=CompactRows(rows), skipped_rows=2)


def snapshots(renderer: Renderer) -> list[Snapshot]:
    now = time.time()
    out = [
        Snapshot(("job-a", "table"), data(3000), None, now, 0.25, now),
        Snapshot(("job-a", "view"), data(5, "v"), None, now, 0.01, now),
        Snapshot(("job-b", "table"), None, "DRS.M05003", now, 0.02, None),
        Snapshot(("job-c", "table"), None, SCRAPE_TIMEOUT, now, 1.5, now - 60),
        Snapshot(("job-d", "event"), data(0), None, now, 0.01, now),
    ]
    for snap in out[:3]:  # prepared in the refresh worker; the others made up at scrape time
        renderer.prepare(snap, None)
    return out


def live() -> SelfMetrics:
    stats = ApiStats()
    stats(ApiCall("show_progress_data", "job-b", "DRS.M05003", 0.2, 400))
    stats(ApiCall("show_progress_data", "job-a", None, 0.1, 200))
    return SelfMetrics(stats, refreshes=7, timeouts=1)


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
def test_cached_rendering_equals_generate_latest(fmt: Format, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts, "BLOCK_MIN", 64)  # many cached blocks, to test their joining
    renderer = Renderer(ttl=30)
    snaps = snapshots(renderer)
    metrics = live()
    expected = fmt.encoder(ScrapeView(snaps, 30, metrics))
    first = b"".join(renderer.render(snaps, fmt, metrics, compress=False))
    assert first == expected
    assert b"".join(renderer.render(snaps, fmt, metrics, compress=False)) == expected, "the warm path too"
    zipped = b"".join(renderer.render(snaps, fmt, metrics, compress=True))
    assert zipped.startswith(HEADER) and gunzip_whole(zipped) == expected
    again = b"".join(renderer.render(snaps, fmt, metrics, compress=True))
    assert gunzip_whole(again) == expected, "the warm path, compressed"


def test_a_changed_key_is_picked_up() -> None:
    renderer = Renderer(ttl=30)
    snaps = snapshots(renderer)
    metrics = live()
    b"".join(renderer.render(snaps, TEXT, metrics, compress=True))
    now = time.time()
    changed = Snapshot(("job-a", "view"), data(9, "w"), None, now, 0.01, now)
    renderer.prepare(changed, snaps[1])
    snaps[1] = changed
    expected = TEXT.encoder(ScrapeView(snaps, 30, metrics))
    assert b"".join(renderer.render(snaps, TEXT, metrics, compress=False)) == expected
    assert gunzip_whole(b"".join(renderer.render(snaps, TEXT, metrics, compress=True))) == expected


def test_choose() -> None:
    prometheus = PROMETHEUS2
    assert choose(prometheus).cached and choose(prometheus).content_type.startswith("application/openmetrics-text")
    assert choose("") == TEXT
    same = choose("text/plain;version=1.0.0;escaping=underscores")
    assert same.key == TEXT.key and same.content_type != TEXT.content_type, "the same bytes: one rendering"
    two = choose("application/openmetrics-text;version=2.0.0;escaping=allow-utf-8")
    assert two.cached and two.key == ("openmetrics", "allow-utf-8", "2")
    assert choose("application/openmetrics-text;version=7.1").key == ("openmetrics", "underscores", "2")
    # A version that cannot be compared with 2.0.0 is a class of its own, cached like the others.
    odd = choose("application/openmetrics-text;version=2.x")
    assert odd.cached and odd.key == ("openmetrics", "underscores", "?")
    assert choose("application/openmetrics-text;version=2.0.x").key == odd.key


def test_gzip_q0_is_not_acceptable() -> None:
    for header in ("gzip", "GZIP", "br, gzip", "gzip;q=0.5", "gzip; q=1"):
        assert accepts_gzip(header), header
    for header in ("", "identity", "gzip;q=0", "gzip; q=0.0, identity", "x-gzip", "*"):
        assert not accepts_gzip(header), header


def test_compact_rows_round_trip() -> None:
    rows = [ProgressRow(ODD[i % len(ODD)], f"t{i}", "d", "t", float(i)) for i in range(20)]
    compact = CompactRows(rows)
    assert list(compact) == rows
    assert len(compact) == 20 and compact[3] == rows[3]
    assert CompactRows(rows) == compact
    assert next(iter(CompactRows([*rows, rows[0]._replace(progress=50.0)]))).progress == 50.0, "one row per name"
    assert len(CompactRows([*rows, rows[0]])) == 20
    assert compact.completed() == 0
    assert CompactRows([ProgressRow("a", "b", "c", "d", 100.0)]).completed() == 1


@pytest.mark.parametrize("fmt", [TEXT, OPENMETRICS], ids=["text", "openmetrics"])
def test_same_objects_new_values_reuse_the_labels(fmt: Format, rebuilds: list[int]) -> None:
    """A refresh with the same objects rebuilds lines from the previous rendering: still exact bytes."""
    reused = rebuilds
    renderer = Renderer(ttl=30)
    now = time.time()
    metrics = live()

    def refresh(rows: list[ProgressRow], previous: Snapshot | None) -> Snapshot:
        snap = Snapshot(("job-a", "table"), ProgressData(len(rows), now, CompactRows(rows)), None, now, 0.1, now)
        renderer.prepare(snap, previous)
        return snap

    first = refresh(list(data(500).rows), None)
    assert b"".join(renderer.render([first], fmt, metrics, compress=False)) == fmt.encoder(
        ScrapeView([first], 30, metrics)
    )
    assert reused == []
    moved = [ProgressRow(r.src_db, r.src_tb, r.dst_db, r.dst_tb, min(100.0, r.progress + 3.5)) for r in first.data.rows]  # type: ignore[union-attr]
    second = refresh(moved, first)
    assert b"".join(renderer.render([second], fmt, metrics, compress=False)) == fmt.encoder(
        ScrapeView([second], 30, metrics)
    )
    assert reused and set(reused) == {500}, "the labels part was reused (for each format rendered ahead)"
    count = len(reused)
    assert renderer.prepared(second)._previous is None, "and the previous rendering let go"  # type: ignore[union-attr]
    third = refresh([ProgressRow("x", "y", "z", "w", 1.0), *moved[1:]], second)
    assert b"".join(renderer.render([third], fmt, metrics, compress=False)) == fmt.encoder(
        ScrapeView([third], 30, metrics)
    )
    assert len(reused) == count, "different objects: rendered afresh"


def test_a_prepared_rendering_goes_with_its_snapshot() -> None:
    renderer = Renderer(ttl=30)
    now = time.time()
    snap = Snapshot(("job-a", "table"), data(5), None, now, 0.1, now)
    renderer.prepare(snap, None)
    kept = renderer.prepared(snap)
    assert kept is not None, "the renderer keeps what it prepared"
    gone = weakref.ref(kept)
    del snap, kept
    gc.collect()
    assert gone() is None, "and lets it go with the snapshot"


@pytest.mark.parametrize("accept", list(ACCEPTS.values()), ids=list(ACCEPTS))
def test_every_header_is_served_from_cached_bytes(accept: str | None) -> None:
    renderer = Renderer(ttl=30)
    snaps = snapshots(renderer)
    metrics = live()
    fmt = choose(accept or "")
    assert fmt.cached
    for compress in (False, True):
        first = renderer.render(snaps, fmt, metrics, compress=compress)
        second = renderer.render(snaps, fmt, metrics, compress=compress)
        assert all(a is b for a, b in zip(first[:-1], second[:-1], strict=True)), "the same cached chunks"
        assert len(first) > 1, "only the live part is made per scrape"


def test_answers_hold_no_copy_of_the_cached_parts() -> None:
    """The large pieces of an answer are the cached lines and deflate blocks themselves, in every format:
    a copy per format (the joined answer of before) cost 162 MB each at 1M series."""
    renderer = Renderer(ttl=30)
    snaps = snapshots(renderer)
    metrics = live()
    rendering = renderer.prepared(snaps[0])
    assert rendering is not None
    for fmt in (TEXT, choose(PROMETHEUS2), OPENMETRICS):
        lines = rendering.parts(fmt)[0]  # the per-object part of the key of 3000 objects
        assert len(lines.plain) >= parts.PIECE_MIN
        assert any(piece is lines.plain for piece in renderer.render(snaps, fmt, metrics, compress=False))
        block = lines.block()
        assert block is not None
        assert any(piece is block.data for piece in renderer.render(snaps, fmt, metrics, compress=True))
    assert rendering.parts(TEXT)[0] is rendering.parts(OPENMETRICS)[0], "the same lines: one copy for both"
