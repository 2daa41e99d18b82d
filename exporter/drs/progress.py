"""Validation of progress-data answers into compact, typed values."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Annotated, Any, NamedTuple

import msgspec
import orjson

from ..base.timeparse import parse_iso8601
from .errors import INVALID_RESPONSE, DRSAPIError

# Epoch values above this are milliseconds: as seconds they would be after the year 5000.
_MILLIS_THRESHOLD = 1e11


class ProgressRow(NamedTuple):
    """One migrated object and its progress in percent (0-100)."""

    src_db: str
    src_tb: str
    dst_db: str
    dst_tb: str
    progress: float


Names = tuple[str, str, str, str]  # (src_db, src_tb, dst_db, dst_tb): what names an object


class CompactRows:
    """Rows kept between scrapes without an object per row: names as one JSON string, progress as an array."""

    __slots__ = ("_names", "_progress")

    def __init__(self, rows: Iterable[ProgressRow] = ()) -> None:
        by_name = {(r.src_db, r.src_tb, r.dst_db, r.dst_tb): r.progress for r in rows}
        self._names, self._progress = self._pack(list(by_name), by_name.values())

    @staticmethod
    def _pack(names: list[Names], progress: Iterable[float]) -> tuple[str, array[float]]:
        # orjson: the names of a key are packed on every refresh, and it is ten times faster here.
        return orjson.dumps(names).decode(), array("d", progress)

    @classmethod
    def from_names(cls, by_name: dict[Names, float]) -> CompactRows:
        """Rows from a mapping of (src_db, src_tb, dst_db, dst_tb) to progress, in insertion order."""
        return cls.from_columns(list(by_name), by_name.values())

    @classmethod
    def from_columns(cls, names: list[Names], progress: Iterable[float]) -> CompactRows:
        """Rows from distinct names and their progress, in order (no two names may be equal)."""
        compact = cls.__new__(cls)
        compact._names, compact._progress = cls._pack(names, progress)
        return compact

    def __len__(self) -> int:
        return len(self._progress)

    def __iter__(self) -> Iterator[ProgressRow]:
        for (src_db, src_tb, dst_db, dst_tb), progress in zip(orjson.loads(self._names), self._progress, strict=True):
            yield ProgressRow(src_db, src_tb, dst_db, dst_tb, progress)

    def __getitem__(self, index: int) -> ProgressRow:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactRows):
            return self._names == other._names and self._progress == other._progress
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    @property
    def names(self) -> str:
        """The names of every row, as one JSON string (equal strings: same objects in the same order)."""
        return self._names

    @property
    def progress(self) -> array[float]:
        """Progress of every row in percent, in row order."""
        return self._progress

    def completed(self) -> int:
        """Rows at 100 percent (never above: rows are validated to 0-100)."""
        return self._progress.count(100.0)  # a C loop: a third of the CPU of a generator

    def mean(self) -> float | None:
        """Mean progress in percent (None without rows); summed in row order, so the same rows give the same mean."""
        return sum(self._progress) / len(self._progress) if self._progress else None

    def __repr__(self) -> str:
        return f"CompactRows({len(self)} rows)"


@dataclass
class Page:
    """One validated page of progress data, as columns: the names of each row and its progress."""

    count: int
    create_time: float | None
    names: list[Names]
    progress: list[float]  # percent, row by row; integers in the typed fast path (equal as floats)
    skipped_rows: int = 0
    bad_create_time: bool = False
    short: bool = False  # empty or short before count, twice: the listing ended here

    @classmethod
    def of_rows(cls, count: int, create_time: float | None, rows: Iterable[ProgressRow], **kw: Any) -> Page:
        """A page from whole rows."""
        rows = list(rows)
        return cls(count, create_time, list(map(_NAMES, rows)), list(map(_PROGRESS, rows)), **kw)

    @property
    def rows(self) -> list[ProgressRow]:
        """The valid rows."""
        return [ProgressRow(*names, progress) for names, progress in zip(self.names, self.progress, strict=True)]

    @property
    def items(self) -> int:
        """Items the page held, valid or not."""
        return len(self.names) + self.skipped_rows


@dataclass
class ProgressData:
    """Every object of one (job, object type), merged across pages."""

    count: int
    create_time: float | None
    rows: CompactRows
    skipped_rows: int = 0
    duplicate_rows: int = 0
    pages: int = 1
    listed: int | None = None  # distinct rows received, skipped ones included (None: not paged by the client)
    ended_early: bool = False  # a page stayed empty or short before count
    # Set by the cardinality guards: aggregates over every object, whatever gets a series.
    completed: int | None = None
    # Mean progress (percent) of every valid listed row: covers guarded and aggregate_only jobs too.
    progress_mean: float | None = None
    not_exported: int = 0
    databases: dict[str, tuple[int, int]] | None = None  # src_db -> (objects, completed)


def parse_create_time(value: Any) -> float | None:
    """Unix seconds from epoch milliseconds or seconds (number or digits) or ISO-8601 with a zone."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits: no time
            return None
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return parse_iso8601(text)
    if number is None or not math.isfinite(number) or number <= 0:
        return None
    return number / 1000.0 if number >= _MILLIS_THRESHOLD else number


def parse_count(value: Any) -> int:
    """The ``count`` field: an integer (or digit string) of at least zero."""
    if isinstance(value, bool):
        raise ValueError("count is a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise ValueError(f"count is not an integer: {str(value)[:40]!r}")
    if number < 0:
        raise ValueError(f"count is negative: {number}")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def safe_text(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates from JSON's \\ud800) replaced: label values must encode."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _progress(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > 100:
        return None
    return number


def parse_row(item: Any) -> ProgressRow | None:
    """A row, or None when it cannot be trusted (not an object, bad names or progress)."""
    if not isinstance(item, dict):
        return None
    names = [_text(item.get(key)) for key in ("src_db", "src_tb", "dst_db", "dst_tb")]
    progress = _progress(item.get("progress"))
    if progress is None or any(name is None for name in names):
        return None
    src_db, src_tb, dst_db, dst_tb = (n or "" for n in names)
    return ProgressRow(src_db, src_tb, dst_db, dst_tb, progress)


_FIELDS = itemgetter("src_db", "src_tb", "dst_db", "dst_tb", "progress")
_NAMES = itemgetter(0, 1, 2, 3)
_PROGRESS = itemgetter(4)


def _all_well_formed(rows: list[tuple[Any, ...]]) -> bool:
    # Whole-page checks with C-level iteration: four ASCII strings and an integer percent per row.
    names = list(chain.from_iterable(map(_NAMES, rows)))
    progress = list(map(_PROGRESS, rows))
    return (
        set(map(type, names)) <= {str}
        and set(map(type, progress)) == {int}
        and min(progress) >= 0
        and max(progress) <= 100
        and "".join(names).isascii()
    )


def parse_rows(items: list[Any]) -> tuple[list[ProgressRow], int]:
    """Valid rows and the number skipped; a page of well-formed rows is checked as a whole."""
    try:
        fast: list[Any] | None = list(map(_FIELDS, items))
    except (KeyError, TypeError, AttributeError):
        fast = None
    if fast and _all_well_formed(fast):
        return fast, 0  # tuples of the ProgressRow shape; integer progress compares equal to float
    rows: list[ProgressRow] = []
    skipped = 0
    for item in items:
        row = parse_row(item)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    return rows, skipped


def parse_page(body: Any, operation: str = "show_progress_data") -> Page:
    """Validate one answer; raises ``invalid_response`` when its shape is wrong."""

    def invalid(why: str) -> DRSAPIError:
        return DRSAPIError(INVALID_RESPONSE, why, status=200, operation=operation)

    if not isinstance(body, dict):
        raise invalid("answer is not a JSON object")
    try:
        count = parse_count(body.get("count"))
    except ValueError as exc:
        raise invalid(str(exc)) from None
    items = body.get("flow_compare_data")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise invalid("flow_compare_data is not a list")
    rows, skipped = parse_rows(items)
    raw_time = body.get("create_time")
    create_time = parse_create_time(raw_time)
    return Page.of_rows(
        count, create_time, rows, skipped_rows=skipped, bad_create_time=raw_time is not None and create_time is None
    )


class _Row(msgspec.Struct, gc=False):  # strings and an integer only: no cycles for the GC to look for
    src_db: str
    src_tb: str
    dst_db: str
    dst_tb: str
    progress: Annotated[int, msgspec.Meta(ge=0, le=100)]


class _Page(msgspec.Struct, gc=False):
    count: Annotated[int, msgspec.Meta(ge=0)]
    flow_compare_data: list[_Row] | None = None
    create_time: str | int | float | None = None


_PAGE = msgspec.json.Decoder(_Page)
_EXACT_FLOAT = 2**53  # larger integers lose digits as floats
_ROW_NAMES = attrgetter("src_db", "src_tb", "dst_db", "dst_tb")
_ROW_PROGRESS = attrgetter("progress")


def parse_page_bytes(raw: bytes) -> Page | None:
    """The common page (integer count, well-formed rows) decoded and checked in one pass; None otherwise.

    Decoding straight into typed rows takes half the CPU of decoding to dicts and checking them,
    and a refresh is CPU-bound at low latency. Anything unusual (strings for numbers, a bad row,
    other names) gets None, and the caller parses the answer the general way, with the same result.
    """
    try:
        page = _PAGE.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 is not a DecodeError
        return None
    rows = page.flow_compare_data or []
    names = list(map(_ROW_NAMES, rows))
    # ASCII bytes without any escape decode to ASCII names: checked on the bytes (memchr), a
    # hundred times cheaper than joining the names; an escape anywhere means checking the names.
    if names and not (raw.isascii() and raw.find(b"\\") < 0) and not "".join(chain.from_iterable(names)).isascii():
        return None
    if page.count > _EXACT_FLOAT:
        # The general parser reads such a count as a float (orjson); it decides, so both agree.
        return None
    create_time = parse_create_time(page.create_time)
    return Page(
        page.count,
        create_time,
        names,
        list(map(_ROW_PROGRESS, rows)),
        bad_create_time=page.create_time is not None and create_time is None,
    )
