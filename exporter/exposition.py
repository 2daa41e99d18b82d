"""Exposition bytes rendered once per refresh and joined per scrape.

Each key's families are encoded by prometheus_client's own encoders into sample lines when the
key refreshes (OpenMetrics lazily, on the first request that wants it). A scrape joins the
family headers and the cached sample lines in the order a fresh ``generate_latest`` would
write them, plus a small live part with the exporter's own metrics. Large parts also keep a
gzip member, so a compressed answer is mostly cached members too (a gzip stream may consist
of several members; Prometheus and every gzip reader accept that).
"""

from __future__ import annotations

import gzip
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from .cache import Snapshot
from .collector import Collects, progress_families

GZIP_MEMBER_MIN = 4096  # parts at least this large keep a cached gzip member
_EOF = b"# EOF\n"


class Format(NamedTuple):
    """An exposition format: its encoder, content type, and whether its renderings are cached."""

    name: str
    encoder: Callable[..., bytes]
    content_type: str
    cached: bool = True


def _format(name: str, accept: str) -> Format:
    encoder, content_type = choose_encoder(accept)
    return Format(name, encoder, content_type)


TEXT = _format("text", "")
OPENMETRICS = _format("openmetrics", "application/openmetrics-text; version=1.0.0")
# What Prometheus and common clients ask for. Other variants (the Accept header is the
# client's to choose) are rendered fresh, so that no client can make renderings pile up.
_KNOWN = {
    f.content_type: f
    for f in (
        TEXT,
        OPENMETRICS,
        _format("openmetrics", "application/openmetrics-text"),
        _format("text", "text/plain; version=1.0.0"),
    )
}


def choose(accept: str) -> Format:
    """The format prometheus_client would answer an ``Accept`` header with."""
    encoder, content_type = choose_encoder(accept)
    known = _KNOWN.get(content_type)
    return known if known is not None else Format(content_type, encoder, content_type, cached=False)


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
    """Exposition bytes and, once asked for and when large enough, their gzip member."""

    __slots__ = ("_gz", "_lock", "plain")

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._gz: bytes | None = None
        self._lock = threading.Lock()

    def gz(self) -> bytes | None:
        """A cached gzip member of the bytes, or None for parts too small to be worth one."""
        if len(self.plain) < GZIP_MEMBER_MIN:
            return None
        with self._lock:
            if self._gz is None:
                self._gz = gzip.compress(self.plain, compresslevel=6, mtime=0)
            return self._gz


class KeyRendering:
    """The sample lines of one snapshot, per format and family, rendered on first use.

    When the key's objects are the same, in the same order, as in the previous rendering, the
    per-object lines are rebuilt from that rendering's encoder output with only the values
    replaced: the labels part of a line depends on nothing else.
    """

    def __init__(self, snapshot: Snapshot, ttl: float, previous: KeyRendering | None = None) -> None:
        # Weak: the snapshot holds this rendering, and a cycle would outlive its refresh.
        self._snapshot = weakref.ref(snapshot)
        self._ttl = ttl
        self._parts: dict[str, list[Part]] = {}
        self._lock = threading.Lock()
        self._names = snapshot.data.rows.names if snapshot.data is not None else None
        if previous is not None and not previous.rendered():
            previous = previous._previous  # never rendered: look one further back (chains stay short)
        self._previous: KeyRendering | None = (
            previous if previous is not None and previous._names == self._names else None
        )
        self._pending = set(self._previous.rendered()) if self._previous is not None else set()

    def rendered(self) -> list[str]:
        """Content types rendered so far."""
        with self._lock:
            return list(self._parts)

    def _peek(self, fmt: Format) -> list[Part] | None:
        with self._lock:
            return self._parts.get(fmt.content_type)

    def parts(self, fmt: Format) -> list[Part]:
        """One part per progress family, in family order."""
        with self._lock:
            parts = self._parts.get(fmt.content_type)
            if parts is not None:
                return parts
            snapshot = self._snapshot()
            if snapshot is None:
                raise RuntimeError("the snapshot of this rendering is gone")
            reused = self._previous._peek(fmt) if self._previous is not None else None
            if reused is not None and snapshot.data is not None:
                families = progress_families([snapshot], self._ttl, objects_rows=False)
                parts = [Part(_samples(_encode(fmt, [family]))) for family in families]
                parts[0] = Part(_with_values(reused[0].plain, snapshot.data.rows.progress))
            else:
                parts = [Part(_samples(_encode(fmt, [f]))) for f in progress_families([snapshot], self._ttl)]
            self._parts[fmt.content_type] = parts
            self._pending.discard(fmt.content_type)
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
    gz: list[bytes] | None = None


class Renderer:
    """Builds scrape answers from cached per-key renderings."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._headers: dict[str, list[Part]] = {}
        self._last: dict[str, _Assembled] = {}
        self._wanted: dict[str, Format] = {TEXT.content_type: TEXT}  # formats to render ahead
        self._lock = threading.Lock()

    def prepare(self, snapshot: Snapshot, previous: Snapshot | None) -> KeyRendering:
        """Render a fresh snapshot in the refresh worker, in every format scrapes have asked for so far.

        ``previous`` is the key's last snapshot with data, whose rendering may be reused. Doing
        this in the worker keeps it inside the scrape budget a waiting scrape has.
        """
        earlier = previous.rendering if previous is not None else None
        rendering = KeyRendering(snapshot, self.ttl, earlier if isinstance(earlier, KeyRendering) else None)
        with self._lock:
            wanted = list(self._wanted.values())
        for fmt in wanted:
            rendering.parts(fmt)
        return rendering

    def _rendering(self, snapshot: Snapshot) -> KeyRendering:
        rendering = snapshot.rendering
        if isinstance(rendering, KeyRendering):
            return rendering
        return KeyRendering(snapshot, self.ttl)  # e.g. a scrape timeout made up at scrape time

    def _header(self, fmt: Format) -> list[Part]:
        with self._lock:
            headers = self._headers.get(fmt.content_type)
            if headers is None:
                headers = [Part(_encode(fmt, [family])) for family in progress_families([], self.ttl)]
                self._headers[fmt.content_type] = headers
            return headers

    def _assemble(self, snapshots: Sequence[Snapshot], fmt: Format) -> _Assembled:
        with self._lock:
            last = self._last.get(fmt.content_type)
        if (
            last is not None
            and len(last.snapshots) == len(snapshots)
            and all(a is b for a, b in zip(last.snapshots, snapshots, strict=True))
        ):
            return last
        per_key = [self._rendering(s).parts(fmt) for s in snapshots]
        parts: list[Part] = []
        for index, header in enumerate(self._header(fmt)):
            parts.append(header)
            parts.extend(key_parts[index] for key_parts in per_key)
        assembled = _Assembled(tuple(snapshots), parts, _chunks(p.plain for p in parts))
        with self._lock:
            self._last[fmt.content_type] = assembled
        return assembled

    @staticmethod
    def _gzip(parts: list[Part]) -> list[bytes]:
        members: list[bytes] = []
        pending: list[bytes] = []
        for part in parts:
            member = part.gz()
            if member is None:
                pending.append(part.plain)
                continue
            if pending:
                members.append(gzip.compress(b"".join(pending), compresslevel=6, mtime=0))
                pending = []
            members.append(member)
        if pending:
            members.append(gzip.compress(b"".join(pending), compresslevel=6, mtime=0))
        return _chunks(members)

    def render(self, snapshots: Sequence[Snapshot], fmt: Format, live: Collects, *, compress: bool) -> list[bytes]:
        """The whole answer, in chunks: every key's families, then the live ``collect()`` of ``live``."""
        with self._lock:
            self._wanted.setdefault(fmt.content_type, fmt)
        assembled = self._assemble(snapshots, fmt)
        tail = fmt.encoder(live)
        if not compress:
            return [*assembled.plain, tail]
        if assembled.gz is None:
            assembled.gz = self._gzip(assembled.parts)
        return [*assembled.gz, gzip.compress(tail, compresslevel=6, mtime=0)]
