"""Property-based tests: arbitrary JSON through the parser, arbitrary names through the exposition."""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.drs.client import merge
from exporter.drs.errors import DRSAPIError
from exporter.drs.interpret import decode_json
from exporter.drs.progress import parse_page
from exporter.drs.telemetry import ApiStats
from exporter.metrics.collector import ScrapeView, SelfMetrics
from exporter.render.exposition import OPENMETRICS, TEXT, Renderer
from exporter.sources.cache import Snapshot

# Every code point, surrogates and control characters included.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=20,
)
ROW = st.fixed_dictionaries(
    {},
    optional={
        "src_db": ANY_TEXT | JSON,
        "src_tb": ANY_TEXT,
        "dst_db": ANY_TEXT,
        "dst_tb": ANY_TEXT | st.none(),
        "progress": st.integers(-10, 110) | st.floats(allow_nan=True) | st.text(max_size=5) | st.none(),
    },
)
PAGE = st.fixed_dictionaries(
    {
        "count": st.integers(-5, 10**6) | st.text(max_size=5) | JSON,
        "flow_compare_data": st.lists(ROW, max_size=15) | JSON,
    },
    optional={"create_time": JSON},
)


@given(JSON | PAGE)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_parser_accepts_or_refuses_cleanly(body: Any) -> None:
    try:
        page = parse_page(body)
    except DRSAPIError as err:
        assert err.error_code == "invalid_response"
        return
    assert page.count >= 0
    for row in page.rows:
        assert all(isinstance(name, str) for name in row[:4])
        assert 0 <= row[4] <= 100 and math.isfinite(row[4])
        "".join(row[:4]).encode("utf-8")  # no lone surrogates left


@given(st.binary(max_size=300))
def test_any_body_bytes_decode_or_fail_as_value_error(raw: bytes) -> None:
    # Any other exception fails the test: the transport only maps ValueError to invalid_response.
    with contextlib.suppress(ValueError):
        decode_json(raw)


def render_page(body: dict[str, Any]) -> tuple[bytes, bytes, list[Snapshot]]:
    data = merge([parse_page(body)])
    now = time.time()
    snap = Snapshot(("job-1", "table"), data, None, now, 0.1, now)
    renderer = Renderer(30)
    renderer.prepare(snap, None)
    live = SelfMetrics(ApiStats(), 1, 0)
    return (
        b"".join(renderer.render([snap], TEXT, live, compress=False)),
        b"".join(renderer.render([snap], OPENMETRICS, live, compress=False)),
        [snap],
    )


NAMED_PAGE = st.lists(
    st.fixed_dictionaries(
        {
            "src_db": ANY_TEXT,
            "src_tb": ANY_TEXT,
            "dst_db": ANY_TEXT,
            "dst_tb": ANY_TEXT,
            "progress": st.integers(0, 100),
        }
    ),
    max_size=12,
).map(lambda rows: {"count": len(rows), "create_time": "1686038576882", "flow_compare_data": rows})


@given(NAMED_PAGE)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_names_give_parseable_exposition(body: dict[str, Any]) -> None:
    text, openmetrics, snaps = render_page(body)
    assert text == TEXT.encoder(ScrapeView(snaps, 30, SelfMetrics(ApiStats(), 1, 0)))
    families = {f.name: f for f in text_string_to_metric_families(text.decode("utf-8"))}
    parsed = families["huaweicloud_drs_object_progress_ratio"].samples
    assert len(parsed) == len(snaps[0].data.rows)  # type: ignore[union-attr]
    expected = {tuple(r[:4]) for r in snaps[0].data.rows}  # type: ignore[union-attr]
    assert {tuple(s.labels[k] for k in ("src_db", "src_tb", "dst_db", "dst_tb")) for s in parsed} == expected
    assert openmetrics.endswith(b"# EOF\n")


@given(st.lists(NAMED_PAGE, min_size=20, max_size=20))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_promtool_accepts_any_names(bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        text, _, _ = render_page(body)
        result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=60)
        assert result.returncode == 0, (json.dumps(body, ensure_ascii=True)[:500], result.stdout, result.stderr)
