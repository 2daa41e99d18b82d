"""Validation of progress-data answers."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from exporter.errors import DRSAPIError
from exporter.progress import parse_create_time, parse_page, parse_row

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
