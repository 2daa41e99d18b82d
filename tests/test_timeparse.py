"""ISO-8601 times in every form the DRS API and IAM write them, read without Python 3.11's fromisoformat."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from exporter.base.timeparse import parse_iso8601
from exporter.drs.progress import parse_create_time

BASE = datetime(2020, 9, 1, 18, 50, 20, tzinfo=timezone.utc)


# Every form the API documents or is seen to send; Python 3.10's fromisoformat refuses most of them.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-09-01T18:50:20.200Z", BASE + timedelta(milliseconds=200)),  # the SDK's example
        ("2020-09-01T18:50:20.2Z", BASE + timedelta(milliseconds=200)),  # one fraction digit
        ("2020-09-01T18:50:20.20Z", BASE + timedelta(milliseconds=200)),
        ("2020-09-01T18:50:20.701000Z", BASE + timedelta(microseconds=701000)),  # IAM's expires_at
        ("2020-09-01T18:50:20.123456789Z", BASE + timedelta(microseconds=123456)),  # nanoseconds cut
        ("2020-09-01T18:50:20Z", BASE),
        ("2020-09-01T18:50:20z", BASE),
        ("2020-09-01 18:50:20Z", BASE),
        ("2020-09-01T18:50Z", BASE - timedelta(seconds=20)),
        ("2020-09-02T02:50:20+08:00", BASE),
        ("2020-09-02T02:50:20+0800", BASE),  # no colon in the offset
        ("2020-09-02T02:50:20+08", BASE),
        ("2020-09-01T13:20:20-05:30", BASE),
        ("2020-09-01T18:50:20.200+00:00", BASE + timedelta(milliseconds=200)),
        (" 2020-09-01T18:50:20Z ", BASE),
        ("2020-09-01T18:50:20", None),  # no zone: ambiguous
        ("2020-09-01", None),
        ("2020-13-01T18:50:20Z", None),  # no 13th month
        ("2020-09-01T18:50:20+24:00", None),
        ("2020-09-01T18:50:20Zjunk", None),
        ("yesterday", None),
    ],
)
def test_iso8601_forms(text: str, expected: datetime | None) -> None:
    got = parse_iso8601(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected.timestamp(), abs=1e-6)
        assert parse_create_time(text) == got
