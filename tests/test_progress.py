"""Validation of progress-data answers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import orjson
import pytest

from exporter.drs.errors import DRSAPIError
from exporter.drs.interpret import decode_json
from exporter.drs.progress import Page, parse_create_time, parse_page, parse_page_bytes, parse_row

TS = datetime(2023, 6, 6, 8, 2, 56, 882000, timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1686038576882", TS),
        (1686038576882, TS),
        (1686038576.882, TS),
        ("1686038576.882", TS),
        ("2023-06-06T08:02:56.882Z", TS),
        ("2023-06-06T16:02:56.882+08:00", TS),
        ("2023-06-06T08:02:56.882", None),  # no zone: ambiguous
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (-5, None),
        (float("nan"), None),
        ([1], None),
    ],
)
def test_create_time(value: Any, expected: float | None) -> None:
    got = parse_create_time(value)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (10, 10.0),
        (0, 0.0),
        (100, 100.0),
        (55.5, 55.5),
        ("42", 42.0),
        ("42%", 42.0),
        (-1, None),
        (101, None),
        ("x", None),
        (None, None),
        (True, None),
        (float("inf"), None),
    ],
)
def test_row_progress(progress: Any, expected: float | None) -> None:
    row = parse_row({"src_db": "a", "src_tb": "b", "dst_db": "c", "dst_tb": "d", "progress": progress})
    assert (row.progress if row else None) == expected


def test_row_names() -> None:
    row = parse_row({"src_db": None, "src_tb": "b", "dst_db": 7, "progress": 1})
    assert row is not None and (row.src_db, row.src_tb, row.dst_db, row.dst_tb) == ("", "b", "7", "")
    assert parse_row({"src_db": {"x": 1}, "progress": 1}) is None
    assert parse_row(["not", "a", "dict"]) is None
    assert parse_row({"src_db": "a"}) is None  # progress missing


def test_page_skips_and_counts_bad_rows() -> None:
    page = parse_page(
        {
            "count": "3",
            "create_time": "bad",
            "flow_compare_data": [
                {"src_db": "a", "src_tb": "b", "dst_db": "a", "dst_tb": "b", "progress": 5},
                {"progress": "??"},
                17,
            ],
        }
    )
    assert page.count == 3
    assert len(page.rows) == 1
    assert page.skipped_rows == 2
    assert page.create_time is None and page.bad_create_time


def test_page_without_rows_key() -> None:
    page = parse_page({"count": 0})
    assert page.rows == [] and page.count == 0


@pytest.mark.parametrize(
    "body", [None, [], "x", {"count": True}, {"count": 1.5}, {"count": 1, "flow_compare_data": "x"}]
)
def test_page_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as info:
        parse_page(body)
    assert info.value.error_code == "invalid_response"


def _row(progress: Any = 5, **names: Any) -> dict[str, Any]:
    return {"src_db": "a", "src_tb": "b", "dst_db": "a", "dst_tb": "b", "progress": progress, **names}


# (body, whether the typed fast path takes it); every body must parse the same both ways.
FAST_PATH_CASES = [
    ({"count": 2, "create_time": "1686038576882", "flow_compare_data": [_row(0), _row(100, src_tb="c")]}, True),
    ({"count": 2, "create_time": 1686038576882, "flow_compare_data": [_row(37)], "extra": [1]}, True),
    ({"count": 1, "create_time": "2023-06-06T08:02:56.882Z", "flow_compare_data": [_row(extra="x")]}, True),
    ({"count": 0, "flow_compare_data": []}, True),
    ({"count": 0}, True),
    ({"count": 0, "flow_compare_data": None, "create_time": None}, True),
    ({"count": 1, "create_time": "bad", "flow_compare_data": [_row()]}, True),
    ({"count": "2", "flow_compare_data": [_row()]}, False),  # numbers as strings
    ({"count": 2.0, "flow_compare_data": [_row()]}, False),
    ({"count": 1, "flow_compare_data": [_row(37.5)]}, False),
    ({"count": 1, "flow_compare_data": [_row(True)]}, False),
    ({"count": 1, "flow_compare_data": [_row(101)]}, False),
    ({"count": 1, "flow_compare_data": [_row(-1)]}, False),
    ({"count": 1, "flow_compare_data": [_row(None)]}, False),
    ({"count": 1, "flow_compare_data": [_row(src_db=None)]}, False),
    ({"count": 1, "flow_compare_data": [_row(dst_tb=7)]}, False),
    ({"count": 1, "flow_compare_data": [{"src_db": "a", "progress": 1}]}, False),
    ({"count": 1, "flow_compare_data": [_row(src_tb="表")]}, False),
    ({"count": 2, "flow_compare_data": [_row(), 17]}, False),
    ({"count": 1, "create_time": [1], "flow_compare_data": [_row()]}, False),
    ({"count": -1, "flow_compare_data": []}, False),
    ({"count": True}, False),
    ([], False),
]


@pytest.mark.parametrize(("body", "fast"), FAST_PATH_CASES)
def test_typed_fast_path_agrees_with_the_general_parser(body: Any, fast: bool) -> None:
    raw = orjson.dumps(body)
    quick = parse_page_bytes(raw)
    assert (quick is not None) == fast
    try:
        general: Page | DRSAPIError = parse_page(decode_json(raw))
    except DRSAPIError as exc:
        general = exc
    if quick is not None:
        assert quick == general


def test_typed_fast_path_refuses_what_json_cannot_carry() -> None:
    # Invalid UTF-8 and NaN: the general path reads them (replacing bytes), the fast path declines.
    assert parse_page_bytes(b'{"count": 1, "flow_compare_data": [{"src_db": "\xff"}]}') is None
    assert parse_page_bytes(b'{"count": NaN}') is None
    assert parse_page_bytes(b"") is None


@pytest.mark.parametrize(
    ("raw", "fast"),
    [
        # ASCII bytes are trusted as ASCII names only without escapes: \u00e9 decodes to é.
        (
            rb'{"count": 1, "flow_compare_data": [{"src_db": "a", "src_tb": "\u00e9", "dst_db": "a", "dst_tb": "b", '
            rb'"progress": 5}]}',
            False,
        ),
        (
            rb'{"count": 1, "flow_compare_data": [{"src_db": "a", "src_tb": "\ud800", "dst_db": "a", "dst_tb": "b", '
            rb'"progress": 5}]}',
            False,
        ),
        (
            rb'{"count": 1, "flow_compare_data": [{"src_db": "a", "src_tb": "\u0041\"\\", "dst_db": "a", '
            rb'"dst_tb": "b", '
            rb'"progress": 5}]}',
            True,
        ),
        (
            b'{"count": 1, "flow_compare_data": [{"src_db": "a", "src_tb": "\xc3\xa9", "dst_db": "a", "dst_tb": "b", '
            b'"progress": 5}]}',
            False,
        ),
    ],
)
def test_typed_fast_path_reads_escapes_like_the_general_parser(raw: bytes, fast: bool) -> None:
    quick = parse_page_bytes(raw)
    assert (quick is not None) == fast
    general = parse_page(decode_json(raw))
    if quick is not None:
        assert quick == general
    assert general.names[0][1] in ("é", "?", 'A"\\')  # a lone surrogate cannot be a label value
