"""Exposition formats and parts: encoded families, kept with their deflate block.

A format is what prometheus_client's chosen encoder depends on; a part is the bytes one or more
families encode to in one format. The renderer joins parts into answers (``exposition``), and
the sources' cached renderings are made of them (``sources``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, NamedTuple

from prometheus_client import exposition as text_exposition
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.utils import parse_version

from . import gzipstream

BLOCK_MIN = 4096  # parts at least this large keep a cached deflate block
_EOF = b"# EOF\n"


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


def encode(fmt: Format, families: Iterable[Metric]) -> bytes:
    blob = fmt.encoder(_Families(families))
    return blob[: -len(_EOF)] if blob.endswith(_EOF) else blob


def samples(blob: bytes) -> bytes:
    """The sample lines of one encoded family: its leading comment lines dropped."""
    start = 0
    while blob.startswith(b"#", start):
        start = blob.index(b"\n", start) + 1
    return blob[start:]


class Part:
    """Exposition bytes and, once asked for and when large enough, their deflate block."""

    __slots__ = ("_block", "_lock", "plain")

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._block: gzipstream.Block | None = None
        self._lock = threading.Lock()

    def block(self) -> gzipstream.Block | None:
        """A cached deflate block of the bytes, or None for parts too small to be worth one."""
        if len(self.plain) < BLOCK_MIN:
            return None
        with self._lock:
            if self._block is None:
                self._block = gzipstream.deflate(self.plain)
            return self._block


def shared(parts: list[Part], others: Iterable[list[Part]]) -> list[Part]:
    """``parts`` with each one equal to the same family's part of another format replaced by that one.

    Formats often agree for this data (escaping schemes change only names that need it), and
    sharing keeps one copy of the bytes and of their deflate block.
    """
    for other in others:
        for index, part in enumerate(parts):
            if part is not other[index] and part.plain == other[index].plain:
                parts[index] = other[index]
    return parts


# Parts at least this large are handed to the server as they are (the cached object itself, sent
# through memoryviews: no copy per format or per scrape); runs of smaller ones are joined, so that
# a few hundred tiny parts cost one send, not one each.
PIECE_MIN = 16 * 1024


def pieces(blobs: Iterable[bytes]) -> list[bytes]:
    """The concatenation of ``blobs`` as an answer's pieces: large blobs themselves, runs of small ones joined."""
    out: list[bytes] = []
    run: list[bytes] = []
    for blob in blobs:
        if len(blob) >= PIECE_MIN:
            if run:
                out.append(b"".join(run))
                run = []
            out.append(blob)
        elif blob:
            run.append(blob)
    if run:
        out.append(b"".join(run))
    return out
