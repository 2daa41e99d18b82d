"""The per-object lines written by render/lines.py are prometheus_client's, for any names, in every format.

Hypothesis draws hostile names (quotes, backslashes, newlines, control characters, ``%`` and
braces, which the line template must not take for its own, any non-ASCII text, empty names) and
compares the cached rendering, cold and warm, plain and gzip, with ``generate_latest`` of the
same families in every format class the renderer caches.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.drs.progress import CompactRows, ProgressData, ProgressRow
from exporter.drs.telemetry import ApiStats
from exporter.metrics.collector import ScrapeView, SelfMetrics
from exporter.render import lines
from exporter.render.exposition import Format, Renderer, choose
from exporter.sources.cache import Snapshot

from .accept import ACCEPTS, PROMETHEUS2, PROMETHEUS3
from .procs import gunzip_whole

# One format per cache key: every class of Accept header prometheus_client negotiates.
FORMATS: dict[tuple[str, ...], Format] = {}
for _header in ACCEPTS.values():
    _fmt = choose(_header or "")
    if _fmt.cached:
        FORMATS.setdefault(_fmt.key, _fmt)

# Any text UTF-8 can hold (a lone surrogate cannot be a label value: the parser replaces it first).
HOSTILE = st.text(
    alphabet=st.sampled_from('"\\\n\r\t%{}=, ._-:\x00\x01\x7f') | st.characters(exclude_categories=["Cs"]),
    max_size=12,
)
ROWS = st.lists(
    st.tuples(HOSTILE, HOSTILE, HOSTILE, HOSTILE, st.integers(0, 100) | st.floats(0, 100)),
    max_size=12,
    unique_by=lambda row: row[:4],
)


def test_every_cached_format_has_a_frame() -> None:
    # Otherwise the renderer falls back to prometheus_client and the tests below prove nothing new.
    assert len(FORMATS) >= 8
    for fmt in FORMATS.values():
        assert lines.frame(fmt) is not None, fmt.key


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=ROWS, job_id=HOSTILE, new_values=st.lists(st.floats(0, 100), min_size=12, max_size=12))
def test_lines_equal_generate_latest_for_hostile_names(
    rows: list[tuple[str, str, str, str, float]], job_id: str, new_values: list[float]
) -> None:
    now = time.time()
    data = ProgressData(len(rows), None, CompactRows(ProgressRow(*row) for row in rows))
    snap = Snapshot((job_id, "table"), data, None, now, 0.1, now)
    renderer = Renderer(30)
    renderer.prepare(snap, None)
    live = SelfMetrics(ApiStats(), 1, 0)
    # The same objects with new values: the values-only rebuild of the previous lines.
    changed = [(*row[:4], new_values[i]) for i, row in enumerate(rows)]
    again = Snapshot(
        (job_id, "table"),
        ProgressData(len(rows), None, CompactRows(ProgressRow(*r) for r in changed)),
        None,
        now,
        0.1,
        now,
    )
    for fmt in FORMATS.values():
        expected = fmt.encoder(ScrapeView([snap], 30, live))
        assert b"".join(renderer.render([snap], fmt, live, compress=False)) == expected, fmt.key
        assert gunzip_whole(b"".join(renderer.render([snap], fmt, live, compress=True))) == expected, fmt.key
    renderer.prepare(again, snap)
    for fmt in FORMATS.values():
        expected = fmt.encoder(ScrapeView([again], 30, live))
        assert b"".join(renderer.render([again], fmt, live, compress=False)) == expected, fmt.key


@pytest.mark.parametrize("key", sorted(FORMATS), ids=lambda k: "-".join(k))
def test_formats_with_one_frame_share_one_copy(key: tuple[str, ...]) -> None:
    rows = CompactRows(ProgressRow("db", f"t{i}", "db", f"t{i}", float(i)) for i in range(50))
    now = time.time()
    snap = Snapshot(("job-1", "table"), ProgressData(50, None, rows), None, now, 0.1, now)
    renderer = Renderer(30)
    renderer.prepare(snap, None)
    live = SelfMetrics(ApiStats(), 1, 0)
    first = choose("")  # the text format, rendered first
    renderer.render([snap], first, live, compress=False)
    renderer.render([snap], FORMATS[key], live, compress=False)
    rendering = renderer.prepared(snap)
    assert rendering is not None
    ours, text = rendering.parts(FORMATS[key])[0], rendering.parts(first)[0]
    if lines.frame(FORMATS[key]) == lines.frame(first):
        assert ours is text, "the same lines are kept once"
    else:
        assert ours.plain != text.plain


def test_a_values_only_refresh_keeps_one_copy_for_formats_with_one_frame(rebuilds: list[int]) -> None:
    renderer = Renderer(30)
    formats = [choose(""), choose(PROMETHEUS2), choose(PROMETHEUS3)]
    for fmt in formats:
        renderer.want(fmt)  # refreshes render these ahead
    now = time.time()

    def refresh(shift: float, previous: Snapshot | None) -> Snapshot:
        rows = CompactRows(ProgressRow("db", f"t{i}", "db", f"t{i}", (i + shift) % 100) for i in range(50))
        snap = Snapshot(("job-1", "table"), ProgressData(50, None, rows), None, now, 0.1, now)
        renderer.prepare(snap, previous)
        return snap

    second = refresh(1.0, refresh(0.0, None))
    rendering = renderer.prepared(second)
    assert rendering is not None
    first, *others = (rendering.parts(fmt)[0] for fmt in formats)
    assert all(other is first for other in others), "one copy of the rebuilt lines"
    assert rebuilds == [50], "rebuilt once, for the three formats"
    live = SelfMetrics(ApiStats(), 1, 0)
    for fmt in formats:
        expected = fmt.encoder(ScrapeView([second], 30, live))
        assert b"".join(renderer.render([second], fmt, live, compress=False)) == expected
