"""Cached renderings of the sources' families, and the registration that pairs a source with one.

A source registered with a rendering has its families encoded once per state and format (in
the reader's thread when the state changes, for the formats scrapes have asked for lately)
and joined into every scrape until the state changes. The bytes must be those of a fresh
``generate_latest`` of the same families: tests/test_sources.py holds that for every rendering
registered in ``app.SOURCES``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..metrics.collector import Collects
from ..metrics.source import Source, SourceContext
from .parts import Format, Part, encode

S = TypeVar("S")


class _StateParts:
    """One state's parts per format."""

    __slots__ = ("by_format", "lock")

    def __init__(self) -> None:
        self.by_format: dict[tuple[str, ...], list[Part]] = {}
        self.lock = threading.Lock()


class SourceRendering(Generic[S]):
    """A source's families per state and format, encoded once per state (kept while the state lives)."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[Any, _StateParts] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def parts(self, state: S, families: Collects, fmt: Format) -> list[Part]:
        """The parts of ``state`` in ``fmt``: rendered on first use, then the same objects."""
        with self._lock:
            entry = self._states.get(state)
            if entry is None:
                entry = self._states[state] = _StateParts()
        with entry.lock:  # one rendering per state and format, while other states render
            parts = entry.by_format.get(fmt.key)
            if parts is None:
                parts = entry.by_format[fmt.key] = self.render(state, families, fmt)
            return parts

    def render(self, state: S, families: Collects, fmt: Format) -> list[Part]:
        """The families encoded in ``fmt``: one part, or none when there is nothing to write."""
        blob = encode(fmt, families.collect())
        return [Part(blob)] if blob else []


@dataclass(frozen=True)
class Registration:
    """One data source of ``app.SOURCES``: how to build it, and its cached rendering (None: live)."""

    name: str
    build: Callable[[SourceContext], Source]
    rendering: Callable[[], SourceRendering[Any]] | None = None
