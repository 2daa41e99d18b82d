"""The per-object progress lines of one key, written without prometheus_client's per-sample work.

prometheus_client's encoders cost about 10 µs a sample (a Sample tuple, a label dict, sorting and
escaping each label, formatting), which made a key's first rendering the bulk of a cold scrape at
1M series. A gauge sample without timestamp is ``<name>{<label>="<value>",...} <value>`` in every
format the renderer caches, and only the label values and the value change from one object to
the next. So the line's frame (the name and the label names as the format escapes them, in the
encoder's label order) is taken from prometheus_client's own encoding of one probe sample in that
format, and only the values are put in here, escaped as both encoders escape label values
(backslash, newline, double quote: ``openmetrics._escape`` with ``ALLOWUTF8``) and formatted with
its ``floatToGoString``. A format whose probe does not have that shape gets no frame, and the
renderer encodes with prometheus_client. ``tests/test_lines.py`` compares the bytes with
``generate_latest`` for hostile names in every cached format class.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple

import orjson
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.utils import floatToGoString

from ..drs.progress import CompactRows
from ..metrics.collector import OBJECT_FAMILY, OBJECT_LABELS
from .parts import Format, encode, samples

# OBJECT_LABELS are the key's two labels, then the four names of a row.
_KEY_LABELS = 2  # job_id, object_type: the same on every line of a key
_PROBE_VALUE = "0.0"  # floatToGoString(0.0)


class Frame(NamedTuple):
    """What surrounds the label values of a line in one format: ``pieces[0] v pieces[1] v ... pieces[-1] value``."""

    pieces: tuple[str, ...]
    order: tuple[int, ...]  # the index in OBJECT_LABELS of each label value, in line order


_frames: dict[tuple[str, ...], Frame | None] = {}
_frames_lock = threading.Lock()


def frame(fmt: Format) -> Frame | None:
    """The frame of a per-object line in ``fmt``, from prometheus_client's encoding of a probe (None: unknown shape)."""
    with _frames_lock:
        if fmt.key in _frames:
            return _frames[fmt.key]
    found = _probe(fmt)
    with _frames_lock:
        _frames[fmt.key] = found
    return found


def known_frame(key: tuple[str, ...]) -> Frame | None:
    """The frame :func:`frame` found for the format of ``key``; None when not looked for yet or unknown."""
    with _frames_lock:
        return _frames.get(key)


def _probe(fmt: Format) -> Frame | None:
    # Markers that no escaping scheme of label values touches, each once in the line.
    markers = [f"\x00{i}\x00" for i in range(len(OBJECT_LABELS))]
    family = GaugeMetricFamily(OBJECT_FAMILY, "probe", labels=OBJECT_LABELS)
    family.add_metric(markers, 0.0)
    line = samples(encode(fmt, [family])).decode("utf-8")
    end = " " + _PROBE_VALUE + "\n"
    if not line.endswith(end) or line.count("\n") != 1 or any(line.count(m) != 1 for m in markers):
        return None
    body = line[: -len(_PROBE_VALUE) - 1]  # up to and including the space before the value
    found = sorted((body.index(m), i) for i, m in enumerate(markers))
    pieces: list[str] = []
    start = 0
    for position, i in found:
        pieces.append(body[start:position])
        start = position + len(markers[i])
    pieces.append(body[start:])
    return Frame(tuple(pieces), tuple(i for _, i in found))


def escape(value: str) -> str:
    """A label value as both of prometheus_client's encoders write it."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


_values: dict[float, str] = {}


def value_text(progress: float) -> str:
    """``progress`` percent as the encoders write the ratio (progress takes few distinct values: remembered)."""
    text = _values.get(progress)
    if text is None:
        text = floatToGoString(progress / 100)  # type: ignore[no-untyped-call]
        if len(_values) < 100_000:
            _values[progress] = text
    return text


def object_lines(fmt: Format, key: Sequence[str], rows: CompactRows) -> bytes | None:
    """The per-object sample lines of one key in ``fmt``, or None when ``fmt`` has no known frame."""
    found = frame(fmt)
    if found is None:
        return None
    if not len(rows):
        return b""
    # One %-template per key: the key's own labels written in, a %s per name and one for the value.
    template = [found.pieces[0].replace("%", "%%")]
    picks: list[int] = []
    for label, piece in zip(found.order, found.pieces[1:], strict=True):
        if label < _KEY_LABELS:
            template.append(escape(key[label]).replace("%", "%%"))
        else:
            template.append("%s")
            picks.append(label - _KEY_LABELS)  # its place in a row's names (src_db, src_tb, dst_db, dst_tb)
        template.append(piece.replace("%", "%%"))
    template.append("%s\n")
    line = "".join(template)
    names: list[list[str]] = orjson.loads(rows.names)
    # orjson writes a backslash for every character the exposition escapes (backslash, double
    # quote, newline) and for other control characters: without one, no name needs escaping.
    if "\\" in rows.names:
        names = [[escape(name) for name in row] for row in names]
    pick = itemgetter(*picks)
    values = map(value_text, rows.progress)
    return "".join([line % (*pick(row), value) for row, value in zip(names, values, strict=True)]).encode("utf-8")
