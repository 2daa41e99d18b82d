"""Exposition bytes rendered once per refresh and joined per scrape.

Each key's families are encoded by prometheus_client's own encoders into sample lines when the
key refreshes, in every format a scrape has asked for in the last FORGET_SECONDS (no format is
rendered ahead before a scrape asks for it, the text one included: the first scrape in a format
renders what the refreshes have not).
A scrape joins the family headers and the cached sample lines in the order a fresh
``generate_latest`` would write them, plus a small live part with the exporter's own metrics.
Large parts also keep a raw deflate block, so a compressed answer is one gzip member made
mostly of cached blocks (see ``gzipstream``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from prometheus_client import exposition as text_exposition
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.utils import floatToGoString, parse_version

from ..metrics.collector import PER_OBJECT_FAMILY, Collects, progress_families
from ..metrics.compare_metrics import comparison_families, table_families
from ..sources.cache import Snapshot
from ..sources.comparisons import ComparisonSnapshot, TableSet
from . import gzipstream

BLOCK_MIN = 4096  # parts at least this large keep a cached deflate block
COMPARISON_BATCH = 10_000  # per-table comparison samples encoded at a time
_EOF = b"# EOF\n"
# A format not asked for in this long is no longer rendered ahead, and its last answer is let go.
FORGET_SECONDS = 600.0


class Format(NamedTuple):
    """An exposition format as prometheus_client chose it for one request.

    ``key`` names what the bytes depend on (the encoder and its arguments), so requests whose
    headers differ only in what does not change the bytes share one cached rendering;
    ``content_type`` is what prometheus_client answers that request's header with.
    """

    key: tuple[str, ...]
    encoder: Callable[..., bytes]
    content_type: str
    cached: bool = True


def _key(encoder: Callable[..., bytes]) -> tuple[str, ...] | None:
    """What the output of one of prometheus_client's encoders depends on, or None for one not known here."""
    func: Any = encoder
    kwargs: dict[str, Any] = {}
    if isinstance(encoder, partial):
        if encoder.args:
            return None
        func, kwargs = encoder.func, encoder.keywords
    escaping = kwargs.get("escaping", om_exposition.UNDERSCORES)
    if func is text_exposition.generate_latest and set(kwargs) <= {"escaping"}:
        return ("text", escaping)
    if func is om_exposition.generate_latest and set(kwargs) <= {"escaping", "version"}:
        # The OpenMetrics encoder uses its version only to leave out native histogram samples
        # below 2.0.0, so every version (a client's free choice) falls in one of a few classes:
        # one that cannot be compared with 2.0.0 ("2.x") is a class of its own, cached like the
        # others (rendering it afresh per request let any client make every scrape a full encode).
        version = parse_version(kwargs.get("version", "1.0.0"))
        try:
            cls = "2" if version >= (2, 0, 0) else "1"
        except TypeError:
            cls = "?"
        return ("openmetrics", escaping, cls)
    return None


def choose(accept: str) -> Format:
    """The format prometheus_client would answer an ``Accept`` header with."""
    encoder, content_type = choose_encoder(accept)
    key = _key(encoder)
    if key is None:
        return Format(("fresh", content_type), encoder, content_type, cached=False)
    return Format(key, encoder, content_type)


TEXT = choose("")
OPENMETRICS = choose("application/openmetrics-text; version=1.0.0")


class _Families:
    """A registry stand-in that yields the given families."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def _encode(fmt: Format, families: Iterable[Metric]) -> bytes:
    blob = fmt.encoder(_Families(families))
    return blob[: -len(_EOF)] if blob.endswith(_EOF) else blob


def _samples(blob: bytes) -> bytes:
    """The sample lines of one encoded family: its leading comment lines dropped."""
    start = 0
    while blob.startswith(b"#", start):
        start = blob.index(b"\n", start) + 1
    return blob[start:]


class Part:
    """Exposition bytes and, once asked for and when large enough, their deflate block."""

    __slots__ = ("_block", "_chunks", "_lock", "plain")

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._block: gzipstream.Block | None = None
        self._chunks: list[bytes] | None = None
        self._lock = threading.Lock()

    def chunks(self) -> list[bytes]:
        """The bytes cut into pieces of about CHUNK bytes, made once (see _Assembled on why)."""
        with self._lock:
            if self._chunks is None:
                self._chunks = _chunks([self.plain]) if len(self.plain) > CHUNK else [self.plain]
            return self._chunks

    def block(self) -> gzipstream.Block | None:
        """A cached deflate block of the bytes, or None for parts too small to be worth one."""
        if len(self.plain) < BLOCK_MIN:
            return None
        with self._lock:
            if self._block is None:
                self._block = gzipstream.deflate(self.plain)
            return self._block


def _shared(parts: list[Part], others: Iterable[list[Part]]) -> list[Part]:
    """``parts`` with each one equal to the same family's part of another format replaced by that one.

    Formats often agree for this data (escaping schemes change only names that need it), and
    sharing keeps one copy of the bytes and of their deflate block.
    """
    for other in others:
        for index, part in enumerate(parts):
            if part is not other[index] and part.plain == other[index].plain:
                parts[index] = other[index]
    return parts


class KeyRendering:
    """The sample lines of one snapshot, per format and family, rendered on first use.

    When the key's objects are the same, in the same order, as in the previous rendering, the
    per-object lines are rebuilt from that rendering's encoder output with only the values
    replaced: the labels part of a line depends on nothing else.
    """

    def __init__(self, snapshot: Snapshot, ttl: float, previous: KeyRendering | None = None) -> None:
        # Weak: the renderer keeps this rendering for as long as the snapshot lives (keyed weakly by
        # it); a strong reference back would keep both alive for ever.
        self._snapshot = weakref.ref(snapshot)
        self._ttl = ttl
        self._parts: dict[tuple[str, ...], list[Part]] = {}
        self._lock = threading.Lock()
        self._names = snapshot.data.rows.names if snapshot.data is not None else None
        if previous is not None and not previous.rendered():
            previous = previous._previous  # never rendered: look one further back (chains stay short)
        self._previous: KeyRendering | None = (
            previous if previous is not None and previous._names == self._names else None
        )
        self._pending = set(self._previous.rendered()) if self._previous is not None else set()

    def rendered(self) -> list[tuple[str, ...]]:
        """Keys of the formats rendered so far."""
        with self._lock:
            return list(self._parts)

    def _peek(self, fmt: Format) -> list[Part] | None:
        with self._lock:
            return self._parts.get(fmt.key)

    def parts(self, fmt: Format) -> list[Part]:
        """One part per progress family, in family order."""
        with self._lock:
            parts = self._parts.get(fmt.key)
            if parts is not None:
                return parts
            snapshot = self._snapshot()
            if snapshot is None:
                raise RuntimeError("the snapshot of this rendering is gone")
            reused = self._previous._peek(fmt) if self._previous is not None else None
            if reused is not None and snapshot.data is not None:
                families = progress_families([snapshot], self._ttl, objects_rows=False)
                parts = [Part(_samples(_encode(fmt, [family]))) for family in families]
                index = PER_OBJECT_FAMILY  # only its values changed: its labels are reused
                parts[index] = Part(_with_values(reused[index].plain, snapshot.data.rows.progress))
            else:
                parts = [Part(_samples(_encode(fmt, [f]))) for f in progress_families([snapshot], self._ttl)]
            self._parts[fmt.key] = _shared(parts, self._parts.values())
            self._pending.discard(fmt.key)
            if not self._pending:
                self._previous = None  # nothing more to reuse: let it go
            return parts


_values: dict[float, bytes] = {}


def _value(progress: float) -> bytes:
    # The encoder's own float formatting; progress takes few distinct values, so remember them.
    text = _values.get(progress)
    if text is None:
        text = floatToGoString(progress / 100).encode()  # type: ignore[no-untyped-call]
        if len(_values) < 100_000:
            _values[progress] = text
    return text


def _with_values(lines: bytes, progress: Sequence[float]) -> bytes:
    """Sample lines with their values replaced by ``progress`` / 100, one per line, in order."""
    out: list[bytes] = []
    for line, value in zip(lines.split(b"\n")[:-1], progress, strict=True):
        out.append(line[: line.rindex(b" ") + 1])
        out.append(_value(value))
        out.append(b"\n")
    return b"".join(out)


CHUNK = 256 * 1024  # what a warm answer is handed to the server in


def _chunks(blobs: Iterable[bytes]) -> list[bytes]:
    """The concatenation of ``blobs`` cut into pieces of about CHUNK bytes."""
    joined = b"".join(blobs)
    return [joined[i : i + CHUNK] for i in range(0, len(joined), CHUNK)]


@dataclass
class _Assembled:
    """A joined answer kept ready in chunks: a warm scrape then allocates nothing large (each server
    thread would otherwise keep its own large buffers, and RSS would grow with the thread count)."""

    snapshots: tuple[Snapshot, ...]
    parts: list[Part]
    plain: list[bytes]
    gz: list[bytes] | None = None  # the gzip header and deflate blocks of ``plain``, in chunks
    gz_end: gzipstream.Block = gzipstream.EMPTY  # their CRC and length (its data left out)


class Renderer:
    """Builds scrape answers from cached per-key renderings."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._headers: dict[tuple[str, ...], list[Part]] = {}
        self._last: dict[tuple[str, ...], _Assembled] = {}
        # Formats to render ahead, with when each was last asked for: only those scrapes ask for (a
        # Prometheus never asks for the text format, and rendering it ahead made its first scrape wait).
        self._wanted: dict[tuple[str, ...], tuple[Format, float]] = {}
        self._lock = threading.Lock()
        # What prepare() made of each snapshot, for as long as the snapshot lives.
        self._renderings: weakref.WeakKeyDictionary[Snapshot, KeyRendering] = weakref.WeakKeyDictionary()
        # Per format: the result sets last rendered and their per-table part.
        self._table_parts: dict[tuple[str, ...], tuple[list[tuple[str, str, TableSet]], Part]] = {}

    def prepare(self, snapshot: Snapshot, previous: Snapshot | None) -> None:
        """Render a fresh snapshot in the cache's render thread, in every format scrapes have asked for lately.

        ``previous`` is the key's last snapshot with data, whose rendering may be reused. Doing
        this in that thread keeps it inside the scrape budget a waiting scrape has.
        """
        rendering = KeyRendering(snapshot, self.ttl, self.prepared(previous) if previous is not None else None)
        for fmt in self._recent():
            rendering.parts(fmt)
        with self._lock:
            self._renderings[snapshot] = rendering

    def adopt(self, previous: Renderer, snapshots: Iterable[Snapshot]) -> None:
        """Keep ``previous``'s renderings of ``snapshots`` (a reload that leaves those keys alone)."""
        for snapshot in snapshots:
            rendering = previous.prepared(snapshot)
            if rendering is not None:
                with self._lock:
                    self._renderings[snapshot] = rendering

    def prepared(self, snapshot: Snapshot) -> KeyRendering | None:
        """What prepare() made of ``snapshot``, if it was prepared."""
        with self._lock:
            return self._renderings.get(snapshot)

    def _recent(self) -> list[Format]:
        """Formats asked for within FORGET_SECONDS; the others, and their last answers, are forgotten."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, (_, asked) in self._wanted.items() if now - asked > FORGET_SECONDS]:
                del self._wanted[key]
                self._last.pop(key, None)
            return [fmt for fmt, _ in self._wanted.values()]

    def _rendering(self, snapshot: Snapshot) -> KeyRendering:
        rendering = self.prepared(snapshot)
        if rendering is not None:
            return rendering
        return KeyRendering(snapshot, self.ttl)  # e.g. a scrape timeout made up at scrape time

    def _header(self, fmt: Format) -> list[Part]:
        with self._lock:
            headers = self._headers.get(fmt.key)
            if headers is None:
                headers = [Part(_encode(fmt, [family])) for family in progress_families([], self.ttl)]
                self._headers[fmt.key] = headers
            return headers

    def _assemble(self, snapshots: Sequence[Snapshot], fmt: Format) -> _Assembled:
        with self._lock:
            last = self._last.get(fmt.key)
        if last is not None and _same(last.snapshots, snapshots):
            return last
        per_key = [self._rendering(s).parts(fmt) for s in snapshots]
        parts: list[Part] = []
        for index, header in enumerate(self._header(fmt)):
            parts.append(header)
            parts.extend(key_parts[index] for key_parts in per_key)
        with self._lock:
            # Another format whose parts are all the same ones (see _shared): one joined answer for both.
            assembled = next(
                (
                    other
                    for other in self._last.values()
                    if _same(other.snapshots, snapshots) and _same(other.parts, parts)
                ),
                None,
            )
        if assembled is None:
            assembled = _Assembled(tuple(snapshots), parts, _chunks(p.plain for p in parts))
        with self._lock:
            self._last[fmt.key] = assembled
        return assembled

    @staticmethod
    def _deflate(parts: list[Part]) -> gzipstream.Block:
        """The parts as one deflate block: cached blocks of the large ones, the small ones compressed now."""
        blocks: list[gzipstream.Block] = []
        pending: list[bytes] = []
        for part in parts:
            block = part.block()
            if block is None:
                pending.append(part.plain)
                continue
            if pending:
                blocks.append(gzipstream.deflate(b"".join(pending)))
                pending = []
            blocks.append(block)
        if pending:
            blocks.append(gzipstream.deflate(b"".join(pending)))
        return gzipstream.join(blocks)

    def want(self, fmt: Format) -> None:
        """Note that a scrape asks for ``fmt``: refreshes render it ahead (called before waiting for them)."""
        with self._lock:
            wanted = self._wanted.get(fmt.key)
            self._wanted[fmt.key] = (fmt, time.monotonic()) if wanted is None else (wanted[0], time.monotonic())

    def prepare_comparisons(self, snapshot: ComparisonSnapshot) -> None:
        """Render a new comparison snapshot in every format scrapes have asked for lately (in the background)."""
        for fmt in self._recent():
            self.comparison_parts(snapshot, fmt)

    def _table_part(self, snapshot: ComparisonSnapshot, sets: list[tuple[str, str, TableSet]], fmt: Format) -> Part:
        """The per-table families, encoded in batches (bounded memory); shared with a format whose bytes are equal."""
        blobs: list[bytes] = []
        for batches in table_families(snapshot, batch=COMPARISON_BATCH):
            for index, family in enumerate(batches):
                blob = _encode(fmt, [family])
                blobs.append(blob if index == 0 else _samples(blob))
        tables = Part(b"".join(blobs))
        del blobs
        with self._lock:
            for other_sets, other in self._table_parts.values():
                if _same_sets(other_sets, sets) and other.plain == tables.plain:
                    tables = other
                    break
            self._table_parts[fmt.key] = (sets, tables)
        return tables

    def comparison_parts(self, snapshot: ComparisonSnapshot, fmt: Format) -> list[Part]:
        """The comparison families of ``snapshot`` in ``fmt``, rendered once per snapshot.

        The per-table families are rendered again only when a result set changed (a new finished
        comparison): a snapshot changes at every listing, its per-table results rarely.
        """
        with snapshot.lock:
            parts: list[Part] | None = snapshot.renderings.get(fmt.key)
            if parts is not None:
                return parts
            if not snapshot.jobs:
                parts = []
            else:
                sets = snapshot.table_sets()
                with self._lock:
                    cached = self._table_parts.get(fmt.key)
                if cached is not None and _same_sets(cached[0], sets):
                    tables = cached[1]
                else:
                    tables = self._table_part(snapshot, sets, fmt)
                parts = [Part(_encode(fmt, comparison_families(snapshot, per_table=False))), tables]
            snapshot.renderings[fmt.key] = parts
            return parts

    def render(
        self,
        snapshots: Sequence[Snapshot],
        fmt: Format,
        live: Collects,
        *,
        compress: bool,
        comparisons: ComparisonSnapshot | None = None,
    ) -> list[bytes]:
        """The whole answer, in chunks: every key's families, the comparisons, then the live ``collect()`` of ``live``.

        Compressed, it is a single gzip member: the cached blocks, then the live part with the
        final block and the trailer.
        """
        self.want(fmt)
        assembled = self._assemble(snapshots, fmt)
        extra = self.comparison_parts(comparisons, fmt) if comparisons is not None else []
        tail = fmt.encoder(live)
        if not compress:
            return [*assembled.plain, *(chunk for p in extra for chunk in p.chunks()), tail]
        if assembled.gz is None:
            joined = self._deflate(assembled.parts)
            assembled.gz_end = joined._replace(data=b"")
            assembled.gz = _chunks([gzipstream.HEADER, joined.data])
        if not extra:
            return [*assembled.gz, gzipstream.finish(assembled.gz_end, tail)]
        head = gzipstream.join([assembled.gz_end, *(p.block() or gzipstream.deflate(p.plain) for p in extra)])
        return [*assembled.gz, head.data, gzipstream.finish(head, tail)]


def _same_sets(a: list[tuple[str, str, TableSet]], b: list[tuple[str, str, TableSet]]) -> bool:
    """The same result set objects for the same jobs and types."""
    return len(a) == len(b) and all(x[:2] == y[:2] and x[2] is y[2] for x, y in zip(a, b, strict=True))


def _same(a: Sequence[object], b: Sequence[object]) -> bool:
    """The same objects, in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
