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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from ..drs.progress import CompactRows
from ..metrics.collector import PER_OBJECT_FAMILY, Collects, progress_families
from ..metrics.source import Exposed
from ..sources.cache import Snapshot
from . import gzipstream, lines
from .parts import OPENMETRICS, TEXT, Format, Part, choose, encode, pieces, samples, shared
from .sources import SourceRendering

__all__ = ["OPENMETRICS", "TEXT", "Format", "KeyRendering", "Part", "Renderer", "choose"]

# A format not asked for in this long is no longer rendered ahead, and its last answer is let go.
FORGET_SECONDS = 600.0


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
            # The small families by prometheus_client; the per-object one (at PER_OBJECT_FAMILY) below.
            families = progress_families([snapshot], self._ttl, objects_rows=False)
            parts = [Part(samples(encode(fmt, [family]))) for family in families]
            if snapshot.data is not None:
                parts[PER_OBJECT_FAMILY] = self._objects(fmt, snapshot, snapshot.data.rows)
            self._parts[fmt.key] = shared(parts, self._parts.values())
            self._pending.discard(fmt.key)
            if not self._pending:
                self._previous = None  # nothing more to reuse: let it go
            return parts

    def _objects(self, fmt: Format, snapshot: Snapshot, rows: CompactRows) -> Part:
        """The per-object part in ``fmt`` (lock held): reused, shared with another format, or written."""
        index = PER_OBJECT_FAMILY
        framed = lines.frame(fmt)
        for key, other in self._parts.items():
            # Lines are a function of the frame and the rows alone: the same frame, the same bytes
            # (Prometheus 2's and 3's formats, and the text format, share one copy).
            if framed is not None and lines.known_frame(key) == framed:
                return other[index]
        reused = self._previous._peek(fmt) if self._previous is not None else None
        if reused is not None:
            return Part(_with_values(reused[index].plain, rows.progress))  # only its values changed
        written = lines.object_lines(fmt, snapshot.key, rows)
        if written is None:  # a format whose lines have no known frame: prometheus_client writes them
            family = list(progress_families([snapshot], self._ttl))[index]
            written = samples(encode(fmt, [family]))
        return Part(written)


def _with_values(encoded: bytes, progress: Sequence[float]) -> bytes:
    """Sample lines with their values replaced by ``progress`` / 100, one per line, in order."""
    out: list[bytes] = []
    for line, value in zip(encoded.split(b"\n")[:-1], progress, strict=True):
        out.append(line[: line.rindex(b" ") + 1])
        out.append(lines.value_text(value).encode())
        out.append(b"\n")
    return b"".join(out)


@dataclass
class _Assembled:
    """An answer kept ready as pieces: a warm scrape then allocates nothing large. The large pieces
    are the cached parts and deflate blocks themselves, not a joined copy (which cost a second full
    copy of the exposition per format: 162 MB each at 1M series)."""

    snapshots: tuple[Snapshot, ...]
    parts: list[Part]
    plain: list[bytes]
    gz: list[bytes] | None = None  # the gzip header and the deflate blocks of ``plain``
    gz_end: gzipstream.Block = gzipstream.EMPTY  # their CRC and length (its data left out)


class Renderer:
    """Builds scrape answers from cached per-key renderings."""

    def __init__(self, ttl: float, renderings: Mapping[str, SourceRendering[Any]] | None = None) -> None:
        self.ttl = ttl
        # The cached renderings of the sources registered with one, by source name.
        self.renderings: Mapping[str, SourceRendering[Any]] = dict(renderings or {})
        self._headers: dict[tuple[str, ...], list[Part]] = {}
        self._last: dict[tuple[str, ...], _Assembled] = {}
        # Formats to render ahead, with when each was last asked for: only those scrapes ask for (a
        # Prometheus never asks for the text format, and rendering it ahead made its first scrape wait).
        self._wanted: dict[tuple[str, ...], tuple[Format, float]] = {}
        self._lock = threading.Lock()
        # What prepare() made of each snapshot, for as long as the snapshot lives.
        self._renderings: weakref.WeakKeyDictionary[Snapshot, KeyRendering] = weakref.WeakKeyDictionary()

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
                headers = [Part(encode(fmt, [family])) for family in progress_families([], self.ttl)]
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
            assembled = _Assembled(tuple(snapshots), parts, pieces(p.plain for p in parts))
        with self._lock:
            self._last[fmt.key] = assembled
        return assembled

    @staticmethod
    def _deflate(parts: list[Part]) -> list[gzipstream.Block]:
        """The parts as deflate blocks: cached blocks of the large ones, runs of small ones compressed now."""
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
        return blocks

    def want(self, fmt: Format) -> None:
        """Note that a scrape asks for ``fmt``: refreshes render it ahead (called before waiting for them)."""
        with self._lock:
            wanted = self._wanted.get(fmt.key)
            self._wanted[fmt.key] = (fmt, time.monotonic()) if wanted is None else (wanted[0], time.monotonic())

    def prepare_source(self, name: str, exposed: Exposed) -> None:
        """Render a source's new state in every format scrapes have asked for lately (in the source's reader thread)."""
        rendering = self.renderings.get(name)
        if rendering is None or exposed.state is None:
            return
        for fmt in self._recent():
            rendering.parts(exposed.state, exposed.families, fmt)

    def source_parts(self, name: str, exposed: Exposed, fmt: Format) -> list[Part] | None:
        """A source's cached parts in ``fmt``; None for a source encoded live with every scrape."""
        rendering = self.renderings.get(name)
        if rendering is None:
            return None
        if exposed.state is None:
            raise ValueError(f"source {name} has a cached rendering but exposed no state")
        return rendering.parts(exposed.state, exposed.families, fmt)

    def render(
        self,
        snapshots: Sequence[Snapshot],
        fmt: Format,
        live: Collects,
        *,
        compress: bool,
        sources: Sequence[tuple[str, Exposed]] = (),
    ) -> list[bytes]:
        """The whole answer, in chunks: every key's families, the sources', then the live ``collect()`` of ``live``.

        The sources with a cached rendering come first, in their order, then the others, encoded
        now together with ``live`` (the order ``ScrapeView`` writes them in when given the sources
        in that order). Compressed, it is a single gzip member: the cached blocks, then the live
        part with the final block and the trailer.
        """
        self.want(fmt)
        assembled = self._assemble(snapshots, fmt)
        extra: list[Part] = []
        encoded_live: list[Collects] = []
        for name, exposed in sources:
            parts = self.source_parts(name, exposed, fmt)
            if parts is None:
                encoded_live.append(exposed.families)
            else:
                extra.extend(parts)
        tail = fmt.encoder(_Chain([*encoded_live, live]) if encoded_live else live)
        if not compress:
            return [*assembled.plain, *pieces(p.plain for p in extra), tail]
        if assembled.gz is None:
            blocks = self._deflate(assembled.parts)
            assembled.gz_end = gzipstream.combine(blocks)
            assembled.gz = [gzipstream.HEADER, *(block.data for block in blocks)]
        if not extra:
            return [*assembled.gz, gzipstream.finish(assembled.gz_end, tail)]
        blocks = self._deflate(extra)
        head = gzipstream.combine([assembled.gz_end, *blocks])
        return [*assembled.gz, *(block.data for block in blocks), gzipstream.finish(head, tail)]


class _Chain:
    """Collectors one after the other, as one."""

    def __init__(self, collectors: Sequence[Collects]) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def _same(a: Sequence[object], b: Sequence[object]) -> bool:
    """The same objects, in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
